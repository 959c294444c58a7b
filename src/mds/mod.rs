//! The metadata service (spec/mds.md): what each pod may learn about
//! itself and have signed, served on the pod network's host address to
//! that pod's own address only. This module owns the pods' records as the
//! MDS knows them (an in-memory index by address, kept current by the
//! server, never read from files per request) and the service over them;
//! `keys` owns the tokens and signatures; `lifeline` ties an MDS a server
//! starts to that server.

pub mod control;
pub mod counts;
pub mod daemon;
pub mod keys;
pub mod lifeline;
mod service;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use keys::{KeyError, Keys};
pub use service::{router, MAX_BODY};

/// One app of a pod, as appc describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub name: String,
    #[serde(rename = "imageId")]
    pub image_id: String,
    #[serde(rename = "imageManifest")]
    pub image_manifest: serde_json::Value,
    pub annotations: serde_json::Value,
}

/// What the MDS knows of one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub uuid: Uuid,
    pub address: Ipv4Addr,
    pub manifest: serde_json::Value,
    /// appc annotations: `[{name, value}]`.
    pub annotations: serde_json::Value,
    pub apps: Vec<AppRecord>,
}

/// The pods by address. Readers (every request) take a read lock for a
/// hash lookup; the server's updates are rare.
#[derive(Default, Clone)]
pub struct Index {
    pods: Arc<RwLock<HashMap<Ipv4Addr, Arc<PodRecord>>>>,
}

impl Index {
    pub fn get(&self, address: Ipv4Addr) -> Option<Arc<PodRecord>> {
        self.pods
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&address)
            .cloned()
    }

    /// A pod started (or changed): it replaces whatever had its address.
    pub fn insert(&self, pod: PodRecord) {
        self.pods
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pod.address, Arc::new(pod));
    }

    /// A pod stopped: its address (and so its token) serves nothing more.
    pub fn remove(&self, address: Ipv4Addr) {
        self.pods
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&address);
    }

    /// All pods at once (the server's view after a restart).
    pub fn replace(&self, pods: Vec<PodRecord>) {
        let map = pods.into_iter().map(|p| (p.address, Arc::new(p))).collect();
        *self.pods.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    pub fn len(&self) -> usize {
        self.pods.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
