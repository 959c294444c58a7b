//! `/v1/isos`, `/v1/microkernels` and `/v1/osimages`: a stored boot file
//! and an OS image as the API shows them, and what asks for an OS image.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An ISO or microkernel file in its store.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredFile {
    pub name: String,
    /// Bytes
    pub size: u64,
    /// sha256 of the bytes, hex (also the download's ETag)
    pub sha256: String,
    /// upload
    pub source: String,
    pub created: String,
}

/// An OS image: an ISO's contents extracted into a sealed dataset, served
/// to booting machines at `/<name>/<version>/` by the file server.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OsImage {
    pub name: String,
    pub version: String,
    /// upload | path | url | iso
    pub source_kind: String,
    /// The path, the URL (credentials masked) or the stored ISO's name
    pub source: String,
    /// downloading | preparing | ready | failed
    pub state: String,
    /// 0..1 of the current state (the download's bytes)
    pub progress: f64,
    /// Why it failed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The job that makes it
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Bytes of the ISO, once whole
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// sha256 of the ISO, once whole
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub created: String,
    pub updated: String,
}

/// Where an OS image's ISO comes from (exactly one): a file on the server,
/// a URL (http or https; checked against `base.import.allow`), or an ISO
/// of the store. An upload is `POST /v1/osimages/upload`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum OsImageSource {
    Path {
        /// Absolute path of a regular file on the server (no symlinks on the way)
        path: String,
    },
    Url {
        url: String,
        /// Refuse the ISO unless its sha256 is this (hex)
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    Iso {
        /// Name of an ISO in the store
        iso: String,
    },
}

/// `POST /v1/osimages`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OsImageRequest {
    pub name: String,
    pub version: String,
    pub source: OsImageSource,
}

/// What `POST /v1/osimages` answers: the image (downloading or preparing)
/// and the job that makes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OsImageAccepted {
    pub osimage: OsImage,
    pub job: super::jobs::Job,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_exactly_one_of_path_url_iso() {
        let one = |v: serde_json::Value| serde_json::from_value::<OsImageSource>(v);
        assert!(matches!(
            one(serde_json::json!({"path": "/x.iso"})),
            Ok(OsImageSource::Path { .. })
        ));
        assert!(matches!(
            one(serde_json::json!({"url": "http://h/x.iso", "sha256": "ab"})),
            Ok(OsImageSource::Url { .. })
        ));
        assert!(matches!(
            one(serde_json::json!({"iso": "x.iso"})),
            Ok(OsImageSource::Iso { .. })
        ));
        for bad in [
            serde_json::json!({"path": "/x.iso", "url": "http://h/"}),
            serde_json::json!({"iso": "x.iso", "sha256": "ab"}),
            serde_json::json!({}),
            serde_json::json!("upload"),
        ] {
            assert!(one(bad.clone()).is_err(), "{bad} accepted");
        }
    }
}
