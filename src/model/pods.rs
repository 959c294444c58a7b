//! `/v1/pods`: a pod as the API shows it, the create body and the PATCH
//! body that starts or stops one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub id: String,
    pub name: Option<String>,
    /// The base's id
    pub base: String,
    pub base_name: String,
    pub command: Vec<String>,
    /// Its address on the pod network
    pub address: Option<String>,
    /// created | running | stopping | exited | dead (creating, removing while that work runs)
    pub state: String,
    pub exit_code: Option<i32>,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WantedState {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodRequest {
    /// Base id, name or id prefix
    pub base: String,
    pub name: Option<String>,
    /// Command and arguments [default: /bin/sh]
    pub command: Option<Vec<String>>,
    /// Environment (not supported yet: must be empty)
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Volumes (not supported yet: must be empty)
    pub volumes: Option<Vec<String>>,
    /// `created` (default) or `running`
    pub state: Option<WantedState>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodPatch {
    /// `running` starts it, `exited` stops it
    pub state: WantedState,
}
