//! `/v1/bobproviders` and `/v1/builders`: a bob provider, a bob it offers
//! and a prepared builder as the API shows them; what asks for a build and
//! what a build job makes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::images::Image;

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

/// What to build: a stored NaCl (`naclId`) or its text (`nacl`)
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildBody {
    pub nacl_id: Option<String>,
    pub nacl: Option<String>,
    /// Uplink to embed [default: the default uplink]
    pub uplink_id: Option<String>,
    /// Image tag [default: the uplink's]
    pub tag: Option<String>,
    /// Image name [default: the NaCl's name, else the service's]
    pub name: Option<String>,
    /// The jetpack host that must run it, when several share the fleet [default: whichever has a free build slot first]
    #[serde(default)]
    pub host: Option<String>,
}

/// The result of a build job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildResult {
    #[serde(flatten)]
    pub image: Image,
    /// The same binary was stored already
    pub existed: bool,
    /// Milliseconds the builder's build entry point ran
    pub build_ms: u64,
    /// Milliseconds of the whole build (pod made to pod gone)
    pub total_ms: u64,
}
