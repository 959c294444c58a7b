//! The command line's clap definitions: `Cli` (the global flags), the
//! commands and their subcommands, and `take_options` (every `-o` collected
//! before clap sees them). Dispatch is in `cli/mod.rs`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::{nacl, remote};

#[derive(Debug, Parser)]
#[command(
    name = "jetpack",
    version,
    about = "IncludeOS unikernels and pods on FreeBSD jails and ZFS clones"
)]
pub struct Cli {
    /// Configuration file [default: /usr/local/etc/jetpack.conf]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "JETPACK_CONF",
        value_name = "FILE"
    )]
    pub(super) config: Option<PathBuf>,

    /// Output format (table, json, id) or a configuration override (key=value); repeatable
    #[arg(short = 'o', global = true, value_name = "FORMAT|KEY=VALUE")]
    pub(super) options: Vec<String>,

    #[command(flatten)]
    pub(super) server: remote::ServerFlags,

    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Create the root dataset, its children and the state database (idempotent)
    Init,
    /// Print the effective configuration (all keys, or the ones named)
    Config {
        keys: Vec<String>,
        /// Print jetpack.conf.sample instead
        #[arg(long)]
        sample: bool,
    },
    /// Read-only root file systems that pods are cloned from
    #[command(subcommand)]
    Base(BaseCommand),
    /// Jails (or namespace cells) on clones of a base
    #[command(subcommand)]
    Pod(PodCommand),
    /// Named volumes: datasets pods mount with --volume NAME:/path
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Write the server's catalog (store, blobs, users) to FILE (`-`: stdout); safe while it runs
    Backup { file: String },
    /// Put a backup from FILE (`-`: stdin) in place here (refused while a server runs)
    Restore { file: String },
    /// Serve the REST API v1 and the hangar until SIGTERM
    Serve(ServeArgs),
    /// Users of the API (the htpasswd file, bcrypt)
    #[command(subcommand)]
    User(UserCommand),
    /// Simulated IncludeOS instances docking to a hangar (tests, load tests)
    Sim(crate::sim::SimArgs),
    /// NaCl files, checked here by jetpack's own parser and checker
    #[command(subcommand)]
    Nacl(nacl::NaclCommand),
    /// The metadata service for pods (runs it; `check` asks a running one)
    Mds {
        #[command(subcommand)]
        cmd: Option<MdsCommand>,
    },
    /// Write the manual pages (jetpack.1, jetpack-pod.1, ...) into DIR; read one with `man -l`
    Man { dir: PathBuf },
    /// Print a completion script: `source <(jetpack completions bash)`
    Completions { shell: clap_complete::Shell },
    /// The supervisor of a launched instance (internal)
    #[command(name = "__supervise-instance", hide = true)]
    SuperviseInstance { id: String },
    /// The holder of a Linux pod cell (internal)
    #[command(name = "__cell-init", hide = true)]
    CellInit { name: String },
    #[command(flatten)]
    Remote(remote::RemoteCommand),
}

#[derive(Debug, Subcommand)]
pub(super) enum MdsCommand {
    /// Whether the MDS is up: its version, user and address
    Check,
}

/// Mothership's server options; each overrides its jetpack.conf key.
#[derive(Debug, clap::Args)]
#[command(rename_all = "lowercase")]
pub(super) struct ServeArgs {
    /// Server name shown by /v1/info [server.name]
    #[arg(long)]
    pub(super) name: Option<String>,
    /// API port [server.port]
    #[arg(long)]
    pub(super) serverport: Option<u16>,
    /// Hangar port [uplink.port]
    #[arg(long)]
    pub(super) uplinkport: Option<u16>,
    /// TLS certificate chain, PEM [server.certfile]
    #[arg(long, value_name = "FILE")]
    pub(super) certfile: Option<PathBuf>,
    /// TLS private key, PEM [server.keyfile]
    #[arg(long, value_name = "FILE")]
    pub(super) keyfile: Option<PathBuf>,
    /// Serve the API over plain HTTP [server.tls = off]
    #[arg(long)]
    pub(super) noservertls: bool,
    /// Plain http/ws for the hangar [uplink.tls = off]
    #[arg(long)]
    pub(super) nouplinktls: bool,
    /// basic or none [server.auth]
    #[arg(long, value_parser = ["basic", "none"])]
    pub(super) serverauth: Option<String>,
    /// Push figures and STATS to: influxdb (INFLUXDB_ADDR ...) or none [metrics.reporter]
    #[arg(long, value_parser = ["influxdb", "none"])]
    pub(super) metricsreporter: Option<String>,
    /// Erase every pod, base, image, NaCl, uplink and job first (needs --yes)
    #[arg(long)]
    pub(super) clean: bool,
    /// Confirm --clean
    #[arg(long, requires = "clean")]
    pub(super) yes: bool,
    /// Debug logging [server.verboselogging]
    #[arg(long)]
    pub(super) verboselogging: bool,
}

impl ServeArgs {
    /// The flags as configuration overrides (`-o key=value`).
    pub(super) fn overrides(&self) -> Vec<String> {
        let mut o = Vec::new();
        let mut set = |k: &str, v: String| o.push(format!("{k}={v}"));
        if let Some(v) = &self.name {
            set("server.name", v.clone());
        }
        if let Some(v) = self.serverport {
            set("server.port", v.to_string());
        }
        if let Some(v) = self.uplinkport {
            set("uplink.port", v.to_string());
        }
        if let Some(v) = &self.certfile {
            set("server.certfile", absolute(v));
        }
        if let Some(v) = &self.keyfile {
            set("server.keyfile", absolute(v));
        }
        if self.noservertls {
            set("server.tls", "off".into());
        }
        if self.nouplinktls {
            set("uplink.tls", "off".into());
        }
        if let Some(v) = &self.serverauth {
            set("server.auth", v.clone());
        }
        if let Some(v) = &self.metricsreporter {
            set("metrics.reporter", v.clone());
        }
        if self.verboselogging {
            set("server.verboselogging", "on".into());
        }
        o
    }
}

fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Add a user or change its password (read from stdin unless --password)
    // `--password` is the global flag (it cannot be declared twice).
    Add { name: String },
    /// Remove a user
    Rm { name: String },
    /// List users
    #[command(alias = "ls")]
    List,
}

#[derive(Debug, Subcommand)]
pub(super) enum BaseCommand {
    /// Import a root file system tarball (gzip, xz, zstd or plain) from a file or URL
    Import {
        source: String,
        #[arg(long)]
        name: Option<String>,
        /// Refuse the archive unless its sha256 is this
        #[arg(long)]
        sha256: Option<String>,
    },
    /// List bases
    #[command(alias = "ls")]
    List,
    /// Show one base
    Show { base: String },
    /// Remove a base (refused while pods use it)
    Rm { base: String },
    #[command(flatten)]
    Move(BaseMoveCommand),
}

/// `jetpack base export` (this host only; `base import` reads what it writes).
#[derive(Debug, Subcommand)]
pub(super) enum BaseMoveCommand {
    /// Write a base to FILE (`-`: stdout) for `base import` on another host
    Export { base: String, file: String },
}

/// A pod's snapshots and clones (this host only).
#[derive(Debug, Subcommand)]
pub(super) enum PodKeepCommand {
    /// Keep the pod's files as they are now as snapshot NAME
    Snapshot { pod: String, name: String },
    /// Put a stopped pod's files back as they were at snapshot NAME
    Rollback { pod: String, name: String },
    /// List a pod's snapshots
    Snapshots { pod: String },
    /// A new pod (not started) from the pod's files now, or from one of its snapshots
    Clone {
        pod: String,
        new_name: String,
        /// Clone this snapshot instead of the pod's current files
        #[arg(long)]
        snapshot: Option<String>,
    },
}

/// What a new pod is given besides its base, name and command.
#[derive(Debug, Default, clap::Args)]
pub(super) struct PodSetup {
    /// An environment variable of the pod, KEY=VALUE (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub(super) env: Vec<String>,
    /// A file of KEY=VALUE lines (# comments, blank lines skipped), read here
    #[arg(long = "env-file", value_name = "FILE")]
    pub(super) env_files: Vec<std::path::PathBuf>,
    /// A volume: a host directory or a named volume seen at TARGET in the pod (repeatable)
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:TARGET[:ro]")]
    pub(super) volumes: Vec<String>,
    #[command(flatten)]
    pub(super) limits: LimitArgs,
    /// When a detached run's command ends: no, on-failure or always (backoff 1 s to 30 s)
    #[arg(long, value_name = "POLICY")]
    pub(super) restart: Option<String>,
    /// Start the pod when the host boots and when `jetpack serve` starts
    #[arg(long)]
    pub(super) autostart: bool,
    /// Forward a host port to the pod while it runs detached (repeatable)
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[ADDR:]HOSTPORT:PORT[/tcp|udp]"
    )]
    pub(super) publish: Vec<String>,
    /// Give the pod its own network stack (FreeBSD VNET: an epair); Linux cells always have one
    #[arg(long)]
    pub(super) vnet: bool,
}

impl PodSetup {
    pub(super) fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.env_files.is_empty()
            && self.volumes.is_empty()
            && self.limits == LimitArgs::default()
            && self.restart.is_none()
            && !self.autostart
            && self.publish.is_empty()
            && !self.vnet
    }
}

/// A new pod's resource limits (`runtime::limits`).
#[derive(Debug, Default, PartialEq, Eq, clap::Args)]
pub(super) struct LimitArgs {
    /// Memory limit (512K, 64M, 1G; at least 4M): past it the kernel kills the pod's process
    #[arg(long, value_name = "SIZE")]
    pub(super) memory: Option<String>,
    /// CPU time limit in cpus (0.5, 2)
    #[arg(long, value_name = "N")]
    pub(super) cpus: Option<String>,
    /// Most processes at once
    #[arg(long, value_name = "N")]
    pub(super) pids: Option<u64>,
    /// Disk limit of the pod's clone (a ZFS quota; not on the dir driver)
    #[arg(long, value_name = "SIZE")]
    pub(super) disk: Option<String>,
    /// Most processes at once, rctl's name (on Linux the same as --pids; the lower wins)
    #[arg(long, value_name = "N")]
    pub(super) maxproc: Option<u64>,
}

/// `jetpack volume`: named volumes.
#[derive(Debug, Subcommand)]
pub(super) enum VolumeCommand {
    /// Make a named volume (a dataset that outlives pods)
    Create { name: String },
    /// List named volumes
    #[command(alias = "ls")]
    List,
    /// Remove a named volume and its data (refused while a pod names it)
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub(super) enum PodCommand {
    /// Clone a base into a new pod (not started)
    Create {
        base: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        setup: PodSetup,
        /// The pod's command [default: /bin/sh]
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run a pod (or a new pod from a base) attached, or detached with -d
    Run {
        /// Run on a pseudo-terminal (interactive)
        #[arg(short = 't', long)]
        tty: bool,
        /// Start in the background; the command's output goes to a log
        #[arg(short = 'd', long, conflicts_with_all = ["tty", "rm"])]
        detach: bool,
        /// Remove the pod when the command ends
        #[arg(long)]
        rm: bool,
        /// Name of the pod created when TARGET is a base
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        setup: PodSetup,
        /// A pod, or a base to create a pod from
        target: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// List pods
    #[command(alias = "ls")]
    List,
    /// Show one pod
    Show { pod: String },
    /// An interactive shell in a running pod
    Console {
        pod: String,
        #[arg(long, default_value = "/bin/sh")]
        shell: String,
    },
    /// Run a command in a running pod
    Exec {
        #[arg(short = 't', long)]
        tty: bool,
        pod: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Stop a running pod (SIGTERM, then SIGKILL after jail.stop.timeout)
    Kill { pod: String },
    /// Remove a pod and its clone
    Rm {
        /// Kill it first if it is running
        #[arg(short = 'f', long)]
        force: bool,
        pod: String,
    },
    #[command(flatten)]
    Keep(PodKeepCommand),
    /// Start the pods marked --autostart that are not running (at boot: rc.d/jetpack_pods)
    Autostart {
        /// Stop the running ones instead (at shutdown)
        #[arg(long)]
        stop: bool,
    },
    /// Run a detached pod's command and record its exit (internal)
    #[command(name = "__supervise", hide = true)]
    Supervise {
        pod: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
}

/// Takes every `-o VALUE` (and `-oVALUE`) before a `--` out of `args`.
/// clap keeps only the values of the innermost level for a global option;
/// `jetpack -o k=v pod list -o json` must keep both.
pub(super) fn take_options(args: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let mut rest = Vec::with_capacity(args.len());
    let mut options = Vec::new();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        match arg.to_str() {
            Some("--") => {
                rest.push(arg);
                rest.extend(iter.by_ref());
            }
            Some("-o") => match iter.next() {
                Some(v) => options.push(v.to_string_lossy().into_owned()),
                None => rest.push(arg),
            },
            Some(s) if s.starts_with("-o") && s.len() > 2 => options.push(s[2..].to_string()),
            _ => rest.push(arg),
        }
    }
    (rest, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_collected_from_every_level_but_not_after_dashdash() {
        let args: Vec<OsString> = [
            "jetpack", "-o", "a=b", "pod", "run", "-ojson", "x", "--", "ls", "-o", "x",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let (rest, options) = take_options(args);
        assert_eq!(options, vec!["a=b", "json"]);
        assert_eq!(
            rest,
            ["jetpack", "pod", "run", "x", "--", "ls", "-o", "x"].map(OsString::from)
        );
    }
}
