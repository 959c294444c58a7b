//! `/v1/netboot`: a netboot mapping as the API shows it (which image a
//! machine booting with iPXE gets, by its MAC), and what sets one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A machine's netboot mapping: `/boot/ipxe?mac=` on the file server
/// boots the image named here (by id for good, or the newest with the
/// tag at boot time).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetbootMapping {
    /// aa:bb:cc:dd:ee:ff
    pub mac: String,
    /// The image it boots (a whole id)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Or the tag whose newest image it boots
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The kernel command line ('' for none)
    pub append: String,
    pub created: String,
    pub updated: String,
}

/// What `PUT /v1/netboot/{mac}` maps the machine to: exactly one of
/// `imageId` (an id or unique prefix, resolved now) and `tag`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetbootRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The kernel command line: printable ASCII, at most 1024 characters
    /// (iPXE expands `${...}` in it)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<String>,
}
