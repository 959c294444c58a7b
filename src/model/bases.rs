//! `/v1/bases`: a base as the API shows it, and what asks for an import.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Base {
    /// sha256 of the archive it was imported from
    pub id: String,
    pub name: String,
    /// File or URL it came from
    pub source: String,
    /// Archive size in bytes
    pub size: u64,
    /// importing | ready | removing
    pub state: String,
    pub created: String,
}

/// Import from a URL (JSON body); an upload gives `name` and `sha256` in the query.
#[derive(Debug, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportRequest {
    /// http(s) URL of a root file system tarball (gzip, xz, zstd or plain)
    #[param(ignore)]
    pub url: Option<String>,
    /// Refuse the archive unless its sha256 is this
    pub sha256: Option<String>,
    /// Base name [default: from the URL's file name]
    pub name: Option<String>,
}
