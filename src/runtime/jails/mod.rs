//! Jails: the isolation backend pods run in, behind one small trait with a
//! driver per platform: `jail` (FreeBSD jails through jail(2)) and `linux`
//! (namespaces with a holder init, pivot_root into the pod's clone, a veth
//! on the pod bridge).
//!
//! A *cell* is a running jail: it exists from `create` until `destroy` and
//! holds the pod's isolation (root, hostname, address) whether or not any
//! process runs in it, like a persistent jail or Kubernetes' pause process.
//! Processes enter it through `command`. Cells outlive the jetpack process
//! that made them; `list` finds them again.

#[cfg(target_os = "freebsd")]
mod freebsd;
pub mod instance_net;
pub mod jail_params;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod vnet;
pub mod volume_mounts;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[cfg(target_os = "freebsd")]
pub use freebsd::FreeBsdJails;
#[cfg(target_os = "linux")]
pub use linux::LinuxJails;

use crate::config::{Config, Ipv4Net, JailsDriver};
use crate::runtime::tool::ToolError;

#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("jails driver {0} is not available on this platform")]
    Unavailable(&'static str),
    #[error("cannot start pod cell {name}: {why}")]
    Create { name: String, why: String },
    #[error("pod cell {0} is not running")]
    NotRunning(String),
    #[error("pod network: {0}")]
    Network(#[from] ToolError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: std::io::Error,
    },
    #[error("bad cell handle {0:?}")]
    BadHandle(String),
    #[error("instance network: {0}")]
    InstanceNet(#[from] instance_net::InstanceNetError),
    #[error("pod cell {name}: {source}")]
    Limits {
        name: String,
        source: crate::runtime::limits::LimitsError,
    },
}

pub(crate) fn sys_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> JailError {
    let what = what.into();
    move |source| JailError::Sys { what, source }
}

/// What a cell is made of.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CellSpec {
    /// The jail name: `jail.namePrefix` + the pod's uuid.
    pub name: String,
    pub hostname: String,
    /// The pod's root: the mountpoint of its clone.
    pub root: PathBuf,
    pub address: Ipv4Addr,
    pub network: Ipv4Net,
    pub interface: String,
    pub securelevel: i32,
    pub devfs_ruleset: u32,
    /// Whether the root's programs are Linux ones (a Debian base, an OCI
    /// image such as `includeos/builder`): on FreeBSD the jail then gets
    /// the Linux ABI's file systems (`jail_params::cell_mounts`). Linux
    /// runs them natively.
    #[serde(default)]
    pub linux_abi: bool,
    /// Extra jail(2) parameters from `jail.param.*`.
    pub params: Vec<crate::names::JailParam>,
    /// Host devices the cell is given beyond the usual few (an instance
    /// pod's /dev/kvm and /dev/net/tun). Linux makes the nodes in the
    /// cell's /dev; FreeBSD unhides them through `devfs_ruleset`.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Host directories mounted in the cell's root (the pod's volumes),
    /// never through a symlink (`volume_mounts`).
    #[serde(default)]
    pub volumes: Vec<volume_mounts::Bind>,
    /// Memory, cpus and processes (`runtime::limits`): the driver makes
    /// them before the cell's first process and removes them with it.
    #[serde(default)]
    pub limits: crate::runtime::limits::Limits,
    /// A network stack of its own on FreeBSD (VNET: an epair, the pod's
    /// end in the jail) instead of an address on the shared interface.
    /// Linux cells always have their own (a network namespace).
    #[serde(default)]
    pub vnet: bool,
}

/// A host device a cell may be given: a closed set, so that no request
/// can name an arbitrary node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Device {
    /// Hardware virtualisation: /dev/kvm on Linux; on FreeBSD vmm(4),
    /// `allow.vmm` and the vmm nodes of the cell's ruleset.
    Kvm,
    /// The tun/tap clone device, to attach to a tap made for the cell.
    Tun,
    /// vhost-net, the in-kernel virtio-net backend (Linux).
    VhostNet,
}

impl Device {
    /// The node's path under /dev, its major and minor (Linux).
    pub fn linux_node(self) -> (&'static str, u64, u64) {
        match self {
            Device::Kvm => ("kvm", 10, 232),
            Device::Tun => ("net/tun", 10, 200),
            Device::VhostNet => ("vhost-net", 10, 238),
        }
    }
}

/// A running cell, as the driver that made it can find it again; stored
/// opaquely by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell(pub String);

/// A process to run in a cell.
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Give the process a new session with its stdin as controlling
    /// terminal (for `-t` and the console).
    pub terminal: bool,
}

/// Both ends of a pseudo-terminal.
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub slave: std::os::fd::OwnedFd,
}

pub trait Jails: Send + Sync {
    fn driver(&self) -> &'static str;

    /// Starts a cell; nothing runs in it yet but what holds it.
    fn create(&self, spec: &CellSpec) -> Result<Cell, JailError>;

    /// Makes the pod network's host side exist (the bridge or interface
    /// with the range's host address), as `create` does; the MDS binds
    /// that address before any pod may exist.
    fn prepare_network(&self, interface: &str, network: Ipv4Net) -> Result<(), JailError>;

    /// A command that runs `process` inside `cell`; the caller sets stdio,
    /// spawns and waits. A missing program is the spawn's NotFound error.
    fn command(&self, cell: &Cell, process: &Process) -> Result<Command, JailError>;

    /// A pseudo-terminal whose slave the cell's processes can name (for
    /// `-t` and the console). By default one of the host's.
    fn open_pty(&self, cell: &Cell) -> Result<Pty, JailError> {
        let _ = cell;
        let pty = nix::pty::openpty(None, None).map_err(|e| JailError::Sys {
            what: "opening a pseudo-terminal".into(),
            source: e.into(),
        })?;
        Ok(Pty {
            master: pty.master,
            slave: pty.slave,
        })
    }

    fn is_running(&self, cell: &Cell) -> bool;

    /// What a running cell uses (`runtime::limits`); `None` when it has
    /// no limits or the driver cannot tell.
    fn usage(&self, cell: &Cell) -> Option<crate::runtime::limits::Usage> {
        let _ = cell;
        None
    }

    /// Ends every process in the cell (SIGTERM, then SIGKILL after `grace`)
    /// and removes the cell with its network. Idempotent.
    fn destroy(&self, cell: &Cell, grace: Duration) -> Result<(), JailError>;

    /// Gives a running cell the network of a launched instance
    /// (`instance_net`): a tap named `net.tap` inside the cell with the
    /// gateway address, forwarding, NAT of the guest's network out of the
    /// pod's address (`spec.address`, the pod network `spec.network`),
    /// and DNAT of `net.forwards` from that address to the guest. Call it
    /// after `create` and before the hypervisor starts in the cell; it is
    /// idempotent (a repeat keeps the tap and replaces the rules). The
    /// cell's destroy takes it all away with the cell's network.
    fn attach_instance_net(
        &self,
        cell: &Cell,
        spec: &CellSpec,
        net: &instance_net::InstanceNet,
    ) -> Result<(), JailError>;

    /// Running cells whose names start with `prefix`, with their names.
    fn list(&self, prefix: &str) -> Result<Vec<(String, Cell)>, JailError>;
}

/// The driver jetpack.conf asks for. `helper` is the jetpack executable,
/// which the Linux driver runs as the cell's holder init.
pub fn open(config: &Config, helper: PathBuf) -> Result<Box<dyn Jails>, JailError> {
    match config.jails_driver {
        #[cfg(target_os = "linux")]
        JailsDriver::Linux => Ok(Box::new(LinuxJails::new(helper))),
        #[cfg(target_os = "freebsd")]
        JailsDriver::Jail => {
            let _ = helper;
            Ok(Box::new(FreeBsdJails::new()))
        }
        #[allow(unreachable_patterns)]
        other => {
            let _ = helper;
            Err(JailError::Unavailable(match other {
                JailsDriver::Jail => "jail",
                JailsDriver::Linux => "linux",
            }))
        }
    }
}

/// The environment every pod process starts with, before its own.
pub fn base_env(hostname: &str) -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), hostname.into()),
    ]
}

/// How long to wait between polls for a process or jail to go away.
pub(crate) const POLL: Duration = Duration::from_millis(2);
