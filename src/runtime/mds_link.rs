//! The runtime's side of the MDS: what a `Host` needs to point its pods at
//! a running MDS (the AC_METADATA_URL of each process) and to keep the
//! MDS's index of pods current through its control socket (the client
//! side). Starting the MDS process is the server's (server/mds.rs).

use std::path::PathBuf;

use super::{Host, Pod, RuntimeError};
use crate::config::Config;
use crate::mds::control::{self, Request};
use crate::mds::{Keys, PodRecord};

/// What a host needs to point its pods at the MDS and keep the MDS's
/// index current; absent when jetpack.conf has no (valid) MDS keys.
pub struct MdsLink {
    keys: Keys,
    /// `http://HOST:PORT`, the pod network's host address.
    url: String,
    socket: PathBuf,
}

impl MdsLink {
    /// The link jetpack.conf describes, if it has (valid) MDS keys.
    pub(super) fn from_config(config: &Config) -> Option<MdsLink> {
        let keys = Keys::new(&config.mds_token_key, &config.mds_signing_key).ok()?;
        Some(MdsLink {
            keys,
            url: format!("http://{}:{}", config.ip4_range.host(), config.mds_port),
            socket: mds_socket(config),
        })
    }

    /// The keys the MDS must run with to serve this host's pods.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Where pods reach the MDS: `http://HOST:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The MDS's control socket.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }
}

impl Host {
    /// The MDS this host points its pods at, if jetpack.conf has the keys.
    pub fn mds_link(&self) -> Option<&MdsLink> {
        self.mds.as_ref()
    }

    /// What the MDS is to know of every pod that has an address.
    pub fn mds_records(&self) -> Result<Vec<PodRecord>, RuntimeError> {
        Ok(self
            .pods()?
            .iter()
            .filter_map(|p| self.mds_record(p))
            .collect())
    }

    /// Whether this host points its pods at an MDS (it has the keys).
    pub fn has_mds(&self) -> bool {
        self.mds.is_some()
    }

    /// Annotations (name, value) the MDS gives `pod` from its next start,
    /// e.g. a build's parameters.
    pub fn annotate(&self, pod: &Pod, annotations: Vec<(String, String)>) {
        self.annotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pod.row.id.to_string(), annotations);
    }

    /// Whether the MDS signed `content` for `pod` as `signature` (base64
    /// or hex). None when this host runs no MDS, so there is no key.
    pub fn pod_signature_is(&self, pod: &Pod, content: &[u8], signature: &str) -> Option<bool> {
        let link = self.mds.as_ref()?;
        let uuid = uuid::Uuid::parse_str(pod.row.id.as_str()).ok()?;
        Some(link.keys.signature_is(&uuid, content, signature))
    }

    /// A pod as the MDS describes it: an appc pod manifest with one app,
    /// the pod's command on its base, and the pod's annotations.
    pub(super) fn mds_record(&self, pod: &Pod) -> Option<PodRecord> {
        let extra = self
            .annotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pod.row.id.as_str())
            .cloned()
            .unwrap_or_default();
        mds_record(pod, extra)
    }

    /// Tells the MDS, if one runs, what changed. A host without an MDS
    /// runs pods all the same: they get no AC_METADATA_URL then.
    pub(super) fn tell_mds(&self, request: Request) {
        let Some(link) = &self.mds else {
            return;
        };
        if let Err(e) = control::send(&link.socket, &request) {
            tracing::debug!("MDS not told: {e}");
        }
    }

    /// The AC_METADATA_URL of `pod`'s processes: the MDS's address and the
    /// pod's token. None without an MDS.
    pub(super) fn metadata_url(&self, pod: &Pod) -> Option<String> {
        let link = self.mds.as_ref()?;
        let uuid = uuid::Uuid::parse_str(pod.row.id.as_str()).ok()?;
        Some(format!("{}/~{}", link.url, link.keys.token(&uuid)))
    }
}

/// Where the MDS's control socket is.
pub fn mds_socket(config: &Config) -> PathBuf {
    config.data_dir.join("mds.sock")
}

/// A pod as the MDS describes it, with `extra` annotations.
fn mds_record(pod: &Pod, extra: Vec<(String, String)>) -> Option<PodRecord> {
    let address = pod.row.address?;
    let uuid = uuid::Uuid::parse_str(pod.row.id.as_str()).ok()?;
    let image = serde_json::json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": pod.base_name,
        "labels": [{"name": "os", "value": std::env::consts::OS}],
    });
    let mut annotations: Vec<serde_json::Value> = Vec::new();
    if let Some(n) = &pod.row.name {
        annotations.push(serde_json::json!({"name": "jetpack/name", "value": n.to_string()}));
    }
    for (name, value) in extra {
        annotations.push(serde_json::json!({"name": name, "value": value}));
    }
    let annotations = serde_json::Value::Array(annotations);
    let app = crate::mds::AppRecord {
        name: "main".into(),
        image_id: pod.row.base_id.to_string(),
        image_manifest: image.clone(),
        annotations: serde_json::json!([]),
    };
    let manifest = serde_json::json!({
        "acKind": "PodManifest",
        "acVersion": "0.8.11",
        "apps": [{
            "name": app.name,
            "image": {"name": pod.base_name, "id": app.image_id},
            "app": {"exec": pod.row.command},
        }],
        "annotations": annotations,
    });
    Some(PodRecord {
        uuid,
        address,
        manifest,
        annotations,
        apps: vec![app],
    })
}
