//! `jetpack mds`: runs the metadata service (after the checks it needs
//! from this host: its configuration file, keys, the pod network and the
//! pods it serves), and `mds check`, which asks a running one.

use std::path::PathBuf;

use super::output::Format;
use super::CliError;
use crate::config::{self, Config};
use crate::runtime::{Host, HostEnv};

/// `mds`: the daemon, until it is stopped. `file` is the `--config` given.
pub(super) fn run(file: Option<PathBuf>, config: Config, env: HostEnv) -> Result<i32, CliError> {
    let file = file.or_else(|| {
        let default = PathBuf::from(config::DEFAULT_PATH);
        default.exists().then_some(default)
    });
    crate::mds::daemon::check_conf(file.as_deref())?;
    let keys = crate::mds::Keys::new(&config.mds_token_key, &config.mds_signing_key)
        .map_err(crate::mds::daemon::MdsError::from)?;
    let (port, user, socket) = (
        config.mds_port,
        config.mds_user.clone(),
        crate::runtime::mds_socket(&config),
    );
    let host = Host::open(config, env)?;
    let address = host.prepare_pod_network()?;
    let pods = host.mds_records()?;
    drop(host);
    crate::mds::daemon::run(crate::mds::daemon::Daemon {
        keys,
        address: std::net::SocketAddr::new(address.into(), port),
        user,
        socket,
        pods,
    })?;
    Ok(0)
}

/// `jetpack mds check`: asks the MDS on its control socket.
pub(super) fn check(config: &Config, format: Format) -> Result<i32, CliError> {
    use crate::mds::control::{send, Answer, ControlError, Request};
    let status = match send(&crate::runtime::mds_socket(config), &Request::Status)? {
        Answer::Status(s) => s,
        other => return Err(ControlError::Protocol(format!("{other:?}")).into()),
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&status).map_err(|e| CliError::Failed(e.to_string()))?
        ),
        Format::Table | Format::Id => println!(
            "MDS {} up at http://{} as {} (uid {}), {} pod(s)",
            status.version, status.address, status.user, status.uid, status.pods
        ),
    }
    Ok(0)
}
