//! The command line: dispatch to the host runtime or to an API server
//! (`remote`), and the one place where errors become a message and an exit
//! code. The clap definitions are in `args.rs`; each local command (init,
//! config, user, base, pod, mds, nacl) has its own file.

mod args;
mod base;
mod conf;
mod docs;
mod init;
mod mds;
mod nacl;
pub mod output;
mod pipe;
mod pod;
mod remote;
mod user;
mod volume;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

use crate::client::ClientError;
use crate::config::{Config, ConfigError};
use crate::runtime::{Host, HostEnv, RuntimeError};
pub use args::Cli;
use args::PodCommand;
use args::{take_options, Command, MdsCommand};
use output::Format;

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
    #[error(transparent)]
    Launch(#[from] crate::launch::LaunchError),
    /// A remote operation that ran and failed (a job).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Mds(#[from] crate::mds::daemon::MdsError),
    #[error(transparent)]
    MdsControl(#[from] crate::mds::control::ControlError),
    /// A record that would not encode as JSON (for `-o json`).
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    // A Linux cell's holder lives as long as its cell: it skips clap, whose
    // command tree would stay on its heap for nothing.
    if let [_, command, name] = args.as_slice() {
        if command == "__cell-init" {
            return run_cell_init(&name.to_string_lossy());
        }
    }
    let (args, options) = take_options(args);
    let mut cli = Cli::parse_from(args);
    cli.options = options;
    if let Command::CellInit { name } = &cli.command {
        return run_cell_init(name);
    }
    let policy = pipe_policy(&cli);
    pipe::run(policy, || match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jetpack: {e}");
            1
        }
    })
}

/// How a command takes a closed standard output (see `pipe`).
fn pipe_policy(cli: &Cli) -> pipe::PipePolicy {
    use pipe::PipePolicy::{Client, Daemon, Host};
    let remote = cli.server.host.is_some();
    match &cli.command {
        Command::Serve(_)
        | Command::Mds { cmd: None }
        | Command::SuperviseInstance { .. }
        | Command::CellInit { .. }
        | Command::Sim(_)
        | Command::Pod(PodCommand::Supervise { .. }) => Daemon,
        Command::Remote(_)
        | Command::Nacl(_)
        | Command::Config { .. }
        | Command::Man { .. }
        | Command::Completions { .. }
        | Command::User(_)
        | Command::Mds { cmd: Some(_) } => Client,
        Command::Base(_) | Command::Pod(_) | Command::Volume(_) if remote => Client,
        Command::Init | Command::Base(_) | Command::Pod(_) | Command::Volume(_) => Host,
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
        Command::Man { dir } => {
            let pages = docs::man(&dir)?;
            eprintln!("wrote {} manual pages into {}", pages.len(), dir.display());
            return Ok(0);
        }
        Command::Completions { shell } => {
            docs::completions(shell);
            return Ok(0);
        }
        Command::Base(cmd) if remote => return remote::base(&cli.server, cmd, format),
        Command::Volume(cmd) if remote => return remote::volume(&cli.server, cmd, format),
        Command::Pod(cmd)
            if remote
                && !matches!(
                    cmd,
                    PodCommand::Supervise { .. } | PodCommand::Autostart { .. }
                ) =>
        {
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
        Command::Remote(_)
        | Command::Sim(_)
        | Command::Nacl(_)
        | Command::Man { .. }
        | Command::Completions { .. } => {
            unreachable!("handled before configuration is read")
        }
        Command::Config { keys, sample } => conf::config(&config, &keys, sample, format),
        Command::Init => init::init(config, env),
        Command::Serve(args) => {
            crate::server::serve(config, env, args.clean, args.yes)?;
            Ok(0)
        }
        Command::User(cmd) => user::user(&config, cmd, cli.server.password, format),
        Command::Mds { cmd: None } => mds::run(cli.config.clone(), config, env),
        Command::Mds {
            cmd: Some(MdsCommand::Check),
        } => mds::check(&config, format),
        Command::Base(cmd) => base::base(&Host::open(config, env)?, cmd, format),
        Command::Pod(cmd) => pod::pod(&Host::open(config, env)?, cmd, format),
        Command::Volume(cmd) => volume::volume(&Host::open(config, env)?, cmd, format),
        Command::SuperviseInstance { id } => {
            let host = Host::open(config, env)?;
            Ok(crate::launch::supervise::main(&host, &id))
        }
    }
}
