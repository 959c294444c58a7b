//! `/v1/nacls` and `/v1/snippets`: a stored document as the API shows it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A NaCl document or snippet.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Document {
    pub id: String,
    pub name: String,
    pub content: String,
    pub created: String,
    pub updated: String,
    /// On a NaCl just saved: what jetpack's checker warns about (checks
    /// the reference does not make); absent when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::nacl::Diagnostic>,
}
