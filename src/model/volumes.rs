//! `/v1/volumes`: named volumes as the API shows them and the create body.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub created: String,
    /// Ids of the pods that name it (it cannot be removed while any does)
    pub pods: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeRequest {
    pub name: String,
}
