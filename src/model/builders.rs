//! `/v1/bobproviders` and `/v1/builders`: a bob provider, a bob it offers
//! and a prepared builder as the API shows them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BobProvider {
    pub id: String,
    pub name: String,
    /// local | http | oci
    pub kind: String,
    /// Directory, index URL or registry repository URL
    pub url: String,
    /// When its list of bobs was last refreshed (absent: never)
    pub updated: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BobModel {
    pub id: String,
    pub name: String,
    /// IncludeOS version it builds (git describe)
    pub version: String,
    pub vcs_ref: String,
    pub build_date: String,
    pub vendor: String,
    pub services: Vec<String>,
    pub provider_id: String,
    pub size: u64,
    /// sha256:HEX of the archive or OCI manifest
    pub digest: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuilderModel {
    pub id: String,
    pub name: String,
    pub version: String,
    pub vcs_ref: String,
    pub build_date: String,
    pub vendor: String,
    pub provider_id: String,
    /// Services it can build
    pub services: Vec<String>,
    pub digest: String,
    /// The sealed base it runs from
    pub base_id: String,
    pub created: String,
}
