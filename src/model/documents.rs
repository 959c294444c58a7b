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
}
