//! The build layer: bob providers, builders and the work done with them.
//! A builder is a sealed base carrying a manifest (`manifest`); preparing
//! a bob fetches it from its provider (`providers`), checks its digest,
//! imports it and registers it. Every build and every builder validation
//! runs in a fresh pod cloned from the builder, given its inputs and
//! destroyed afterwards whatever happened (`workspace` owns the files).
//! It knows nothing of HTTP; the API and the jobs call it.
//!
//! This file owns what the verbs share: `BuildError`, `Builder`, the
//! `Builders` service and the guard that removes a work pod. The verbs are
//! one file each: `prepare` (providers, update, prepare: fetch, verify,
//! import, register), `registry` (list, inspect and delete builders; the
//! holds that keep a builder in use), `build_job` (plan and run a build in
//! its slot) and `validate` (a NaCl checked by a builder).

pub mod adopt;
mod build_job;
mod holds;
pub mod manifest;
mod prepare;
pub mod providers;
pub mod queue;
mod registry;
mod validate;
mod workspace;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{Catalog, CatalogError};
use crate::config::{BobProviderConfig, Config};
use crate::jobs::Slots;
use crate::runtime::archive::ArchiveError;
use crate::runtime::{Host, Pod, RuntimeError};
use crate::store::builders::BuilderRow;
use crate::store::StoreError;
pub use build_job::{config_json, BuildPlan, BuildRequest, Built, NaclInput};
pub use holds::BuilderHolds;
pub use manifest::Manifest;
pub use prepare::ProviderInfo;
pub use registry::Hold;
use registry::Holds;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("queueing the build: {0}")]
    Queue(String),
    #[error(transparent)]
    Jobs(#[from] crate::jobs::JobError),
    #[error(
        "no bob provider {0:?}: jetpack.conf declares them as bob.provider.NAME = KIND LOCATION"
    )]
    NoProvider(String),
    #[error("provider {provider} has no bob {id:?} (as of its last update; `jetpack bob update {provider}` refreshes it)")]
    NoBob { provider: String, id: String },
    #[error("no builder {0:?}")]
    NoBuilder(String),
    #[error("builder {reference:?} is ambiguous: it matches {count}; give more of the id")]
    AmbiguousBuilder { reference: String, count: usize },
    #[error("builder manifest {origin}: {why}")]
    Manifest { origin: String, why: String },
    #[error("fetching {what}: {why}")]
    Fetch { what: String, why: String },
    #[error("{what}: sha256 is {actual}, expected {expected}; refused before import")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("builder {builder} does not build {service:?}; it builds {offered}")]
    ServiceNotOffered {
        builder: String,
        service: String,
        offered: String,
    },
    #[error(
        "builder {0} is in use by {1} build(s) or validation(s); wait for them or cancel them"
    )]
    BuilderInUse(String, usize),
    #[error("a builder {id} exists already, prepared from {digest}; delete it first")]
    BuilderTaken { id: String, digest: String },
    #[error("the build failed: {0}")]
    Failed(String),
    #[error("ran out of time ({0} s) and was killed")]
    TimedOut(u64),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl From<crate::store::blobs::BlobError> for BuildError {
    fn from(e: crate::store::blobs::BlobError) -> Self {
        BuildError::Catalog(e.into())
    }
}

/// A registered builder: its row and its manifest.
#[derive(Debug, Clone)]
pub struct Builder {
    pub row: BuilderRow,
    pub manifest: Manifest,
}

impl Builder {
    fn from_row(row: BuilderRow) -> Result<Builder, BuildError> {
        let manifest = Manifest::parse(row.manifest.as_bytes(), &format!("of builder {}", row.id))?;
        Ok(Builder { row, manifest })
    }
}

/// Removes a build pod (killing it if need be) whatever happened.
struct PodGuard<'a> {
    host: &'a Host,
    pod: Pod,
}

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        // The row may say running when the run failed half-way: look again.
        let pod = self
            .host
            .pod(self.pod.row.id.as_str())
            .unwrap_or_else(|_| self.pod.clone());
        if let Err(e) = self.host.remove_pod(&pod, true) {
            tracing::error!("removing build pod {}: {e}", self.pod.row.id);
        }
    }
}

pub struct Builders {
    host: Arc<Host>,
    catalog: Arc<Catalog>,
    providers: Vec<BobProviderConfig>,
    builds: Arc<Slots>,
    validations: Slots,
    build_timeout: Duration,
    validate_timeout: Duration,
    staging: PathBuf,
    holds: Arc<Holds>,
}

impl Builders {
    pub fn new(host: Arc<Host>, catalog: Arc<Catalog>, config: &Config) -> Builders {
        Builders {
            providers: providers::with_default(&config.bob_providers, config.builders_dockerhub),
            builds: Arc::new(Slots::new(config.build_concurrency)),
            validations: Slots::new(config.build_concurrency),
            build_timeout: Duration::from_secs(config.build_timeout),
            validate_timeout: Duration::from_secs(config.build_validate_timeout),
            staging: config.data_dir.join("tmp"),
            host,
            catalog,
            holds: Arc::default(),
        }
    }

    /// The limit builds share: build jobs are submitted with it.
    pub fn build_slots(&self) -> Arc<Slots> {
        self.builds.clone()
    }
}
