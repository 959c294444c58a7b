//! `/v1/bases`: a base as the API shows it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
