//! `jetpack init`: the root dataset, its children and the state database
//! (idempotent: the runtime's `Host::init`).

use super::CliError;
use crate::config::Config;
use crate::runtime::{Host, HostEnv};

pub(super) fn init(config: Config, env: HostEnv) -> Result<i32, CliError> {
    let host = Host::init(config, env)?;
    eprintln!(
        "initialised {} (datasets: {}, jails: {})",
        host.config().data_dir.display(),
        host.datasets().driver(),
        host.jails().driver()
    );
    Ok(0)
}
