//! The API's request and response shapes, shared by the server (`api/`,
//! which serves them and documents them with utoipa) and the client
//! (`client/`, `cli/`, which decode them), so that a field renamed on one
//! side cannot silently vanish from the other. Plain data: serde and utoipa
//! derives only, no axum and nothing from the layers below; conversions
//! from the catalog's and fleet's types live with the handlers.
//!
//! utoipa names a schema after its type: the names here are the OpenAPI
//! document's (docs/openapi.json), and so are field order and doc comments.

pub mod bases;
pub mod bootfiles;
pub mod builders;
pub mod documents;
pub mod hosts;
pub mod images;
pub mod info;
pub mod instances;
pub mod jobs;
pub mod netboot;
pub mod pods;
pub mod uplinks;
pub mod volumes;
