//! `/v1/images`: an image as the API shows it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// SHA-1 (hex) of the binary
    pub id: String,
    pub name: String,
    pub tag: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub sha1: String,
    pub builder_id: Option<String>,
    pub nacl_id: Option<String>,
    pub uplink_id: Option<String>,
    pub uplink_url: Option<String>,
    pub includeos_version: Option<String>,
    pub created: String,
}
