//! The command line: parsing (clap), dispatch to the host runtime or to
//! an API server (`remote`), and the one place where errors become a
//! message and an exit code.

mod nacl;
pub mod output;
mod remote;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::client::ClientError;
use crate::config::{self, Config, ConfigError};
use crate::runtime::{Attach, Host, HostEnv, Pod, RuntimeError};
use output::Format;

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
    config: Option<PathBuf>,

    /// Output format (table, json, id) or a configuration override (key=value); repeatable
    #[arg(short = 'o', global = true, value_name = "FORMAT|KEY=VALUE")]
    options: Vec<String>,

    #[command(flatten)]
    server: remote::ServerFlags,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// The holder of a Linux pod cell (internal)
    #[command(name = "__cell-init", hide = true)]
    CellInit { name: String },
    #[command(flatten)]
    Remote(remote::RemoteCommand),
}

#[derive(Debug, Subcommand)]
enum MdsCommand {
    /// Whether the MDS is up: its version, user and address
    Check,
}

/// Mothership's server options; each overrides its jetpack.conf key.
#[derive(Debug, clap::Args)]
#[command(rename_all = "lowercase")]
struct ServeArgs {
    /// Server name shown by /v1/info [server.name]
    #[arg(long)]
    name: Option<String>,
    /// API port [server.port]
    #[arg(long)]
    serverport: Option<u16>,
    /// Hangar port [uplink.port]
    #[arg(long)]
    uplinkport: Option<u16>,
    /// TLS certificate chain, PEM [server.certfile]
    #[arg(long, value_name = "FILE")]
    certfile: Option<PathBuf>,
    /// TLS private key, PEM [server.keyfile]
    #[arg(long, value_name = "FILE")]
    keyfile: Option<PathBuf>,
    /// Serve the API over plain HTTP [server.tls = off]
    #[arg(long)]
    noservertls: bool,
    /// Plain http/ws for the hangar [uplink.tls = off]
    #[arg(long)]
    nouplinktls: bool,
    /// basic or none [server.auth]
    #[arg(long, value_parser = ["basic", "none"])]
    serverauth: Option<String>,
    /// Erase every pod, base, image, NaCl, uplink and job first (needs --yes)
    #[arg(long)]
    clean: bool,
    /// Confirm --clean
    #[arg(long, requires = "clean")]
    yes: bool,
    /// Debug logging [server.verboselogging]
    #[arg(long)]
    verboselogging: bool,
}

impl ServeArgs {
    /// The flags as configuration overrides (`-o key=value`).
    fn overrides(&self) -> Vec<String> {
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
enum UserCommand {
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
enum BaseCommand {
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
}

#[derive(Debug, Subcommand)]
enum PodCommand {
    /// Clone a base into a new pod (not started)
    Create {
        base: String,
        #[arg(long)]
        name: Option<String>,
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
    /// Run a detached pod's command and record its exit (internal)
    #[command(name = "__supervise", hide = true)]
    Supervise {
        pod: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("unknown configuration key {0:?}")]
    UnknownKey(String),
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    #[error(transparent)]
    Users(#[from] crate::access::users::UsersError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
    /// A remote operation that ran and failed (a job).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Mds(#[from] crate::mds::daemon::MdsError),
    #[error(transparent)]
    MdsControl(#[from] crate::mds::control::ControlError),
}

/// `jetpack mds check`: asks the MDS on its control socket.
fn mds_check(config: &Config, format: Format) -> Result<i32, CliError> {
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

/// Takes every `-o VALUE` (and `-oVALUE`) before a `--` out of `args`.
/// clap keeps only the values of the innermost level for a global option;
/// `jetpack -o k=v pod list -o json` must keep both.
fn take_options(args: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
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

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let (args, options) = take_options(std::env::args_os().collect());
    let mut cli = Cli::parse_from(args);
    cli.options = options;
    if let Command::CellInit { name } = &cli.command {
        return run_cell_init(name);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jetpack: {e}");
            1
        }
    }
}

#[cfg(target_os = "linux")]
fn run_cell_init(name: &str) -> i32 {
    crate::runtime::jails::linux::cell_init_main(name)
}

#[cfg(not(target_os = "linux"))]
fn run_cell_init(_name: &str) -> i32 {
    eprintln!("jetpack: __cell-init is for the linux jails driver");
    2
}

fn run(cli: Cli) -> Result<i32, CliError> {
    let mut format = Format::default();
    let mut overrides = Vec::new();
    for o in &cli.options {
        if o.contains('=') {
            overrides.push(o.clone());
        } else {
            format = Format::parse(o).ok_or_else(|| {
                CliError::Usage(format!("-o {o}: expected table, json, id or key=value"))
            })?;
        }
    }
    // Client commands, and `base`/`pod` given a server, need no local
    // configuration: a client machine may have none.
    let remote = cli.server.host.is_some();
    let command = match cli.command {
        Command::Remote(cmd) => return remote::run(&cli.server, cmd, format),
        Command::Sim(args) => return Ok(crate::sim::run(args)?),
        Command::Nacl(cmd) => return nacl::run(cmd, format),
        Command::Base(cmd) if remote => return remote::base(&cli.server, cmd, format),
        Command::Pod(cmd) if remote && !matches!(cmd, PodCommand::Supervise { .. }) => {
            return remote::pod(&cli.server, cmd, format)
        }
        other => other,
    };
    if let Command::Serve(args) = &command {
        overrides.extend(args.overrides());
    }
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    let mut config_args: Vec<OsString> = Vec::new();
    if let Some(c) = &cli.config {
        config_args.push("--config".into());
        config_args.push(c.into());
    }
    for o in &overrides {
        config_args.push("-o".into());
        config_args.push(o.into());
    }
    let env = HostEnv {
        exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
        config_args,
    };
    match command {
        Command::CellInit { .. } => unreachable!("handled before configuration is read"),
        Command::Remote(_) | Command::Sim(_) | Command::Nacl(_) => {
            unreachable!("handled before configuration is read")
        }
        Command::Config { keys, sample } => {
            if sample {
                print!("{}", config::sample());
                return Ok(0);
            }
            show_config(&config, &keys, format)?;
            Ok(0)
        }
        Command::Init => {
            let host = Host::init(config, env)?;
            eprintln!(
                "initialised {} (datasets: {}, jails: {})",
                host.config().data_dir.display(),
                host.datasets().driver(),
                host.jails().driver()
            );
            Ok(0)
        }
        Command::Serve(args) => {
            crate::server::serve(config, env, args.clean, args.yes)?;
            Ok(0)
        }
        Command::User(cmd) => user(&config, cmd, cli.server.password, format),
        Command::Mds { cmd: None } => {
            let file = cli.config.clone().or_else(|| {
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
        Command::Mds {
            cmd: Some(MdsCommand::Check),
        } => mds_check(&config, format),
        Command::Base(cmd) => base(Host::open(config, env)?, cmd, format),
        Command::Pod(cmd) => pod(Host::open(config, env)?, cmd, format),
    }
}

fn user(
    config: &Config,
    cmd: UserCommand,
    password: Option<String>,
    format: Format,
) -> Result<i32, CliError> {
    use crate::access::users::Htpasswd;
    let path = &config.server.htpasswd;
    let mut file = Htpasswd::load(path)?;
    match cmd {
        UserCommand::List => {
            let users: Vec<&str> = file.users().collect();
            output::list(
                format,
                &users,
                &["USER"],
                |u| vec![u.to_string()],
                |u| u.to_string(),
            );
        }
        UserCommand::Add { name } => {
            let password = match password {
                Some(p) => p,
                None => {
                    if std::io::stdin().is_terminal() {
                        eprint!("password for {name}: ");
                    }
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| CliError::Usage(format!("reading the password: {e}")))?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                return Err(CliError::Usage("the password is empty".into()));
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| CliError::Usage(format!("creating {}: {e}", dir.display())))?;
            }
            file.set(&name, &password)?;
            file.save(path)?;
            eprintln!(
                "user {name} saved in {} (a running server sees it within a second)",
                path.display()
            );
        }
        UserCommand::Rm { name } => {
            file.remove(&name)?;
            file.save(path)?;
            eprintln!("user {name} removed from {}", path.display());
        }
    }
    Ok(0)
}

fn show_config(config: &Config, keys: &[String], format: Format) -> Result<(), CliError> {
    let entries: Vec<(String, String)> = if keys.is_empty() {
        config
            .entries()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    } else {
        keys.iter()
            .map(|k| {
                config
                    .get(k)
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| CliError::UnknownKey(k.clone()))
            })
            .collect::<Result<_, _>>()?
    };
    match format {
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = entries
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            println!("{}", serde_json::Value::Object(map));
        }
        _ if keys.len() == 1 => println!("{}", entries[0].1),
        _ => entries.iter().for_each(|(k, v)| println!("{k} = {v}")),
    }
    Ok(())
}

fn base(host: Host, cmd: BaseCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        BaseCommand::Import {
            source,
            name,
            sha256,
        } => {
            let interactive = std::io::stderr().is_terminal();
            let mut progress = |n: u64| {
                if interactive {
                    eprint!("\rfetching {source}: {}   ", output::bytes(n));
                }
                std::ops::ControlFlow::Continue(())
            };
            let imported =
                host.import_base(&source, name.as_deref(), sha256.as_deref(), &mut progress);
            if interactive {
                eprintln!();
            }
            let imported = imported?;
            let b = &imported.base;
            if imported.existed {
                eprintln!("already imported as base {} ({})", b.name, b.id.short());
            }
            match format {
                Format::Table => println!("{}", b.id),
                _ => output::one(format, b, vec![], b.id.to_string()),
            }
        }
        BaseCommand::List => {
            let bases = host.bases()?;
            output::list(
                format,
                &bases,
                &["ID", "NAME", "SIZE", "STATE", "CREATED"],
                |b| {
                    vec![
                        b.id.short().to_string(),
                        b.name.to_string(),
                        output::bytes(b.size),
                        format!("{:?}", b.state).to_lowercase(),
                        output::time(Some(b.created_at)),
                    ]
                },
                |b| b.id.to_string(),
            );
        }
        BaseCommand::Show { base } => {
            let b = host.base(&base)?;
            output::one(
                format,
                &b,
                vec![
                    ("id", b.id.to_string()),
                    ("name", b.name.to_string()),
                    ("source", b.source.clone()),
                    ("sha256", b.id.to_string()),
                    ("size", output::bytes(b.size)),
                    ("state", format!("{:?}", b.state).to_lowercase()),
                    ("created", output::time(Some(b.created_at))),
                ],
                b.id.to_string(),
            );
        }
        BaseCommand::Rm { base } => {
            let b = host.remove_base_with(&base, false, &crate::build::BuilderHolds)?;
            eprintln!("removed base {} ({})", b.name, b.id.short());
        }
    }
    Ok(0)
}

fn pod_fields(p: &Pod) -> Vec<(&'static str, String)> {
    let r = &p.row;
    vec![
        ("id", r.id.to_string()),
        (
            "name",
            r.name
                .as_ref()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("base", p.base_name.clone()),
        ("state", r.state.to_string()),
        (
            "address",
            r.address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("command", r.command.join(" ")),
        (
            "exit code",
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("root", p.root.display().to_string()),
        ("created", output::time(Some(r.created_at))),
        ("started", output::time(r.started_at)),
        ("finished", output::time(r.finished_at)),
    ]
}

fn pod(host: Host, cmd: PodCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        PodCommand::Create {
            base,
            name,
            command,
        } => {
            let p = host.create_pod(&base, name.as_deref(), command)?;
            println!("{}", p.row.id);
        }
        PodCommand::Run {
            tty,
            detach,
            rm,
            name,
            target,
            command,
        } => {
            // TARGET names a pod if one matches, else a base to create one from.
            let (pod, created) = match host.pod(&target) {
                Ok(p) if name.is_none() => (p, false),
                Ok(_) => {
                    return Err(CliError::Usage(format!(
                        "{target} is a pod; --name is for creating one from a base"
                    )))
                }
                Err(RuntimeError::NoSuchPod(_)) => {
                    match host.create_pod(&target, name.as_deref(), command.clone()) {
                        Ok(p) => (p, true),
                        Err(RuntimeError::NoSuchBase(_)) => {
                            return Err(CliError::Usage(format!("no pod or base {target:?}")))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            let argv = (!command.is_empty()).then_some(command);
            if detach {
                let ran = host.run_pod_detached(&pod, argv);
                if ran.is_err() && created {
                    let _ = host.remove_pod(&pod, true);
                }
                let log = ran?;
                println!("{}", pod.row.id);
                eprintln!("pod {} running; output in {}", pod.label(), log.display());
                return Ok(0);
            }
            let attach = if tty {
                Attach::Terminal
            } else {
                Attach::Inherit
            };
            let ran = host.run_pod(&pod, argv, attach);
            // A run that never started leaves no pod it created behind.
            let never_started = matches!(
                ran,
                Err(RuntimeError::CommandNotFound { .. } | RuntimeError::Jail(_))
            );
            if rm || (created && never_started) {
                let fresh = host.pod(pod.row.id.as_str())?;
                host.remove_pod(&fresh, true)?;
            }
            return Ok(ran?);
        }
        PodCommand::List => {
            let pods = host.pods()?;
            output::list(
                format,
                &pods,
                &[
                    "ID", "NAME", "BASE", "STATE", "ADDRESS", "CREATED", "COMMAND",
                ],
                |p| {
                    vec![
                        p.row.id.short().to_string(),
                        p.row
                            .name
                            .as_ref()
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "-".into()),
                        p.base_name.clone(),
                        match (p.row.state, p.row.exit_code) {
                            (s @ crate::store::PodState::Exited, Some(c)) => format!("{s} ({c})"),
                            (s, _) => s.to_string(),
                        },
                        p.row
                            .address
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| "-".into()),
                        output::time(Some(p.row.created_at)),
                        p.row.command.join(" "),
                    ]
                },
                |p| p.row.id.to_string(),
            );
            if format == Format::Table {
                for orphan in host.orphan_cells()? {
                    eprintln!("warning: cell {orphan} runs but no pod owns it");
                }
            }
        }
        PodCommand::Show { pod } => {
            let p = host.pod(&pod)?;
            output::one(format, &p, pod_fields(&p), p.row.id.to_string());
        }
        PodCommand::Console { pod, shell } => {
            let p = host.pod(&pod)?;
            return Ok(host.exec(&p, vec![shell], Attach::Terminal)?);
        }
        PodCommand::Exec { tty, pod, command } => {
            let p = host.pod(&pod)?;
            let attach = if tty {
                Attach::Terminal
            } else {
                Attach::Inherit
            };
            return Ok(host.exec(&p, command, attach)?);
        }
        PodCommand::Kill { pod } => {
            let p = host.pod(&pod)?;
            host.kill_pod(&p)?;
            eprintln!("killed pod {}", p.label());
        }
        PodCommand::Rm { force, pod } => {
            let p = host.pod(&pod)?;
            host.remove_pod(&p, force)?;
            eprintln!("removed pod {}", p.label());
        }
        PodCommand::Supervise { pod, command } => {
            let p = host.pod(&pod)?;
            let log = host
                .config()
                .data_dir
                .join("logs")
                .join(format!("{}.log", p.row.id));
            let ran = host.supervise(&p, command, Attach::Log(log.clone()));
            if let Err(e) = &ran {
                // Nobody watches a detached supervisor's stderr: its own
                // failure goes to the pod's log, beside the pod's output.
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                {
                    let _ = writeln!(f, "jetpack: {e}");
                }
            }
            return Ok(ran?);
        }
    }
    Ok(0)
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
