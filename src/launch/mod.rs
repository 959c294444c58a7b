//! Launched instances (issue 15): an image run under a hypervisor, each in
//! a pod of its own cloned from the hypervisor base. This layer owns the
//! launch record (`record`), the making of an instance pod (`create`), its
//! supervisor, the process that runs the hypervisor and restarts it by
//! policy (`supervise`), the bounded console log (`console`), and the verbs
//! that stop, start, restart and remove a launched instance (`control`).
//!
//! It knows nothing of HTTP, and the hangar's fleet knows nothing of it:
//! the API puts the two together (an instance is launched here, then it
//! docks there like any other).

pub mod console;
pub mod control;
pub mod create;
pub mod queue;
pub mod record;
pub mod service;
pub mod supervise;

use std::path::PathBuf;

use crate::hypervisor::{BootError, HypervisorError, HypervisorKind, SpecError};
use crate::runtime::RuntimeError;
use crate::store::StoreError;

pub use create::{launch, BootSource, LaunchOrder};
pub use record::LaunchRecord;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Hypervisor(#[from] HypervisorError),
    #[error("{0} is not available on this host (it has {known})", known = HypervisorKind::host_default())]
    HypervisorUnavailable(HypervisorKind),
    #[error(
        "the hypervisor base {base:?} is missing: make it with {script} and import it \
         (`jetpack base import --name {base} FILE`)"
    )]
    NoHypervisorBase { base: String, script: &'static str },
    #[error("the hypervisor base {base:?} has no chainloader at {path}, which ELF64 images need")]
    NoChainloader { base: String, path: PathBuf },
    #[error("bad instance network: {0}")]
    Net(String),
    #[error(transparent)]
    Publish(#[from] crate::net::publish::PublishError),
    #[error("instance {0} was not launched by jetpack")]
    NotLaunched(String),
    #[error("the launch record of instance {id} is unreadable: {why}")]
    BadRecord { id: String, why: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A host tool failed (devfs, making bhyve's ruleset).
    #[error(transparent)]
    Tool(#[from] crate::runtime::tool::ToolError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |source| LaunchError::Io { what, source }
}
