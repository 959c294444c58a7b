//! `jetpack pod`, once for both places it runs: this host (the runtime's
//! `Host`, the `Pods` side below) or a server given with `--host` (the side
//! in `remote/pods.rs`). The flow, the tables, the messages and what goes
//! to stdout are here; a side only fetches and acts, and answers in the
//! API's types (`model::pods::Pod`). What needs the pod's terminal or its
//! processes (an attached run, console, exec, the supervisor) needs this
//! host's runtime, which a server's side refuses to give.

use std::path::PathBuf;

use super::args::{PodCommand, PodSetup};
use super::output::{ago_at, short, text, Format, Shown};
use super::CliError;
use crate::model::pods::Pod;
use crate::runtime::env as runtime_env;
use crate::runtime::limits::{show_size, LimitWords, Limits};
use crate::runtime::{Attach, Host, Pod as RuntimePod, PodOptions, RuntimeError};
use crate::store::PodPolicy;

/// Where the pods are: what `jetpack pod` asks of this host or a server.
pub(super) trait Pods {
    /// This host's runtime, for `what` (a command that needs the pod's
    /// terminal); a server's side refuses, saying so.
    fn host(&self, what: &str) -> Result<&Host, CliError>;
    /// Clones `base` into a new pod, not started.
    fn create(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Shown<Pod>, CliError>;
    /// The pod `target` names (id, name or id prefix), if there is one.
    fn find(&self, target: &str) -> Result<Option<Shown<Pod>>, CliError>;
    /// Starts the pod `target` detached, with `argv` instead of its own
    /// command if given.
    fn start(&self, target: &str, argv: Option<Vec<String>>) -> Result<Started, CliError>;
    /// Creates a pod from `base` and starts it detached; none is left
    /// behind if it cannot start. `None`: there is no such base.
    fn create_started(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Option<Started>, CliError>;
    fn list(&self) -> Result<Shown<Vec<Pod>>, CliError>;
    /// Cells that run without a pod owning them (warned of under the table).
    fn orphans(&self) -> Result<Vec<String>, CliError>;
    fn show(&self, pod: &str) -> Result<Shown<Pod>, CliError>;
    /// Stops it; the pod as it is then.
    fn kill(&self, pod: &str) -> Result<Shown<Pod>, CliError>;
    /// Removes it (killing it first with `force`); the pod as it was.
    fn remove(&self, pod: &str, force: bool) -> Result<Shown<Pod>, CliError>;
}

/// A pod started detached.
pub(super) struct Started {
    pub pod: Shown<Pod>,
    /// Where its output goes, when this side can tell.
    pub log: Option<PathBuf>,
}

/// How people refer to a pod: its name, else its short id.
fn label(p: &Pod) -> String {
    p.name.clone().unwrap_or_else(|| short(&p.id))
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn command_line(p: &Pod) -> String {
    text(Some(&p.command.join(" ")))
}

pub(super) fn pod(side: &impl Pods, cmd: PodCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        PodCommand::Create {
            base,
            name,
            setup,
            command,
        } => {
            let p = side.create(&base, name.as_deref(), command, &options(&setup)?)?;
            p.print_made(format, &p.item.id);
        }
        PodCommand::Run {
            detach: true,
            name,
            setup,
            target,
            command,
            ..
        } => {
            let options = options(&setup)?;
            // TARGET names a pod if one matches, else a base to create one from.
            let started = match side.find(&target)? {
                Some(_) if name.is_some() || !setup.is_empty() => {
                    return Err(for_new_pods(&target))
                }
                Some(_) => side.start(&target, (!command.is_empty()).then_some(command))?,
                None => side
                    .create_started(&target, name.as_deref(), command, &options)?
                    .ok_or_else(|| CliError::Usage(format!("no pod or base {target:?}")))?,
            };
            let p = &started.pod.item;
            match &started.log {
                Some(log) => eprintln!("pod {} {}; output in {}", label(p), p.state, log.display()),
                None => eprintln!("pod {} {}", label(p), text(Some(&p.state))),
            }
            started.pod.print_made(format, &p.id);
        }
        PodCommand::Run {
            tty,
            rm,
            name,
            setup,
            target,
            command,
            ..
        } => {
            let host = side.host("pod run (attached)")?;
            let new = (name, options(&setup)?);
            return run_attached(host, (tty, rm), new, &target, command);
        }
        PodCommand::List => {
            side.list()?.print_list(
                format,
                &[
                    "ID", "NAME", "BASE", "STATE", "ADDRESS", "CREATED", "COMMAND",
                ],
                |p| {
                    let state = match (p.state.as_str(), p.exit_code) {
                        ("exited", Some(code)) => match &p.exit_reason {
                            Some(r) if r.contains("out of memory") => {
                                format!("exited ({code}, out of memory)")
                            }
                            _ => format!("exited ({code})"),
                        },
                        (state, _) => text(Some(state)),
                    };
                    vec![
                        short(&p.id),
                        text(p.name.as_deref()),
                        text(Some(&p.base_name)),
                        state,
                        text(p.address.as_deref()),
                        ago_at(Some(&p.created)),
                        command_line(p),
                    ]
                },
                |p| p.id.clone(),
            );
            if format == Format::Table {
                for orphan in side.orphans()? {
                    eprintln!("warning: cell {orphan} runs but no pod owns it");
                }
            }
        }
        PodCommand::Show { pod } => {
            let shown = side.show(&pod)?;
            let p = &shown.item;
            let fields = vec![
                ("id", p.id.clone()),
                ("name", text(p.name.as_deref())),
                ("base", text(Some(&p.base_name))),
                ("state", text(Some(&p.state))),
                ("address", text(p.address.as_deref())),
                ("command", command_line(p)),
                ("env", env_line(p)),
                ("volumes", volumes_line(p)),
                ("limits", limits_line(p)),
                ("usage", usage_line(p)),
                ("publish", text(Some(&p.publish.join(" ")))),
                ("restart", restart_line(p)),
                (
                    "autostart",
                    (if p.autostart { "yes" } else { "no" }).to_string(),
                ),
                ("exit code", or_dash(p.exit_code)),
                ("exit reason", text(p.exit_reason.as_deref())),
                ("created", ago_at(Some(&p.created))),
                ("started", ago_at(p.started.as_deref())),
                ("finished", ago_at(p.finished.as_deref())),
            ];
            shown.print_one(format, fields, "created", &p.id);
        }
        PodCommand::Console { pod, shell } => {
            let host = side.host("pod console")?;
            let p = host.pod(&pod)?;
            return Ok(host.exec(&p, vec![shell], Attach::Terminal)?);
        }
        PodCommand::Exec { tty, pod, command } => {
            let host = side.host("pod exec")?;
            let p = host.pod(&pod)?;
            return Ok(host.exec(&p, command, attach(tty))?);
        }
        PodCommand::Kill { pod } => {
            let p = side.kill(&pod)?;
            eprintln!("killed pod {}", label(&p.item));
            if format != Format::Table {
                p.print_made(format, &p.item.id);
            }
        }
        PodCommand::Rm { force, pod } => {
            let p = side.remove(&pod, force)?;
            eprintln!("removed pod {}", label(&p.item));
            if format != Format::Table {
                p.print_made(format, &p.item.id);
            }
        }
        PodCommand::Keep(cmd) => return super::keep::pod(side.host("pod snapshots")?, cmd, format),
        PodCommand::Autostart { stop } => {
            return autostart(side.host("pod autostart")?, stop, format)
        }
        PodCommand::Supervise { pod, command } => {
            return supervise(side.host("__supervise")?, &pod, command)
        }
    }
    Ok(0)
}

fn for_new_pods(target: &str) -> CliError {
    CliError::Usage(format!(
        "{target} is a pod; --name, --env, --env-file, --volume, --restart, --autostart, --publish, --vnet and the limits are for creating one from a base"
    ))
}

/// The pod's environment and volumes from the command line: env files in
/// order, then `--env` words (a later key wins); each checked here, so a
/// bad line is named before anything is asked of a host or a server.
fn options(setup: &PodSetup) -> Result<PodOptions, CliError> {
    let mut env = std::collections::BTreeMap::new();
    for file in &setup.env_files {
        let shown = file.display().to_string();
        let size = std::fs::metadata(file)
            .map_err(|e| CliError::Usage(format!("--env-file {shown}: {e}")))?
            .len();
        if size > runtime_env::MAX_FILE {
            return Err(CliError::Usage(format!(
                "--env-file {shown}: larger than {} bytes",
                runtime_env::MAX_FILE
            )));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Usage(format!("--env-file {shown}: {e}")))?;
        let pairs =
            runtime_env::parse_file(&shown, &text).map_err(|e| CliError::Usage(e.to_string()))?;
        env.extend(pairs);
    }
    for word in &setup.env {
        let (k, v) = runtime_env::parse_pair(word).map_err(|e| CliError::Usage(e.to_string()))?;
        env.insert(k, v);
    }
    runtime_env::check(&env).map_err(|e| CliError::Usage(e.to_string()))?;
    let l = &setup.limits;
    let limits = Limits::parse(&LimitWords {
        memory: l.memory.clone(),
        cpus: l.cpus.clone(),
        pids: l.pids,
        disk: l.disk.clone(),
        maxproc: l.maxproc,
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let policy = PodPolicy::parse(
        setup.restart.as_deref(),
        setup.autostart,
        &setup.publish,
        setup.vnet,
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(PodOptions {
        env,
        volumes: setup.volumes.clone(),
        limits,
        policy,
    })
}

fn env_line(p: &Pod) -> String {
    let pairs: Vec<String> = p.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    text(Some(&pairs.join(" ")))
}

fn volumes_line(p: &Pod) -> String {
    let vols: Vec<String> = p
        .volumes
        .iter()
        .map(|v| {
            let ro = if v.read_only { ":ro" } else { "" };
            format!("{}:{}{ro}", v.source, v.target)
        })
        .collect();
    text(Some(&vols.join(" ")))
}

fn limits_line(p: &Pod) -> String {
    let l = &p.limits;
    let mut parts = Vec::new();
    if let Some(m) = l.memory {
        parts.push(format!("memory {}", show_size(m)));
    }
    if let Some(c) = l.cpus {
        parts.push(format!("cpus {c}"));
    }
    if let Some(n) = l.pids {
        parts.push(format!("pids {n}"));
    }
    if let Some(n) = l.maxproc {
        parts.push(format!("maxproc {n}"));
    }
    if let Some(d) = l.disk {
        parts.push(format!("disk {}", show_size(d)));
    }
    text(Some(&parts.join(", ")))
}

/// What the pod uses against its limits: `memory 3.1 MiB / 64 MiB, ...`.
fn usage_line(p: &Pod) -> String {
    let Some(u) = &p.usage else {
        return text(None);
    };
    let of = |max: Option<String>| max.map_or_else(String::new, |m| format!(" / {m}"));
    let mut parts = Vec::new();
    if let Some(m) = u.memory_current {
        parts.push(format!(
            "memory {}{}",
            show_size(m),
            of(u.memory_max.map(show_size))
        ));
    }
    if let Some(n) = u.pids_current {
        parts.push(format!("pids {n}{}", of(u.pids_max.map(|n| n.to_string()))));
    }
    if let Some(s) = u.cpu_seconds {
        let max = u.cpus_max.map(|c| format!(" (limit {c} cpus)"));
        parts.push(format!("cpu {s:.2}s{}", max.unwrap_or_default()));
    }
    if u.oom_kills > 0 {
        parts.push(format!("{} killed for memory", u.oom_kills));
    }
    if let Some(d) = u.disk_used {
        parts.push(format!(
            "disk {}{}",
            show_size(d),
            of(u.disk_quota.map(show_size))
        ));
    }
    text(Some(&parts.join(", ")))
}

fn restart_line(p: &Pod) -> String {
    match p.restarts {
        0 => p.restart.clone(),
        n => format!(
            "{} ({n} restart{} since it started)",
            p.restart,
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// `pod autostart [--stop]`: every marked pod's outcome; fails when one
/// failed, after trying them all.
fn autostart(host: &Host, stop: bool, format: Format) -> Result<i32, CliError> {
    let outcomes = if stop {
        host.autostop_pods()?
    } else {
        host.autostart_pods()?
    };
    let verb = if stop { "stopped" } else { "started" };
    let mut failed = 0;
    let mut shown = Vec::new();
    for (pod, ran) in &outcomes {
        let error = ran.as_ref().err().map(|e| e.to_string());
        match &error {
            None => eprintln!("{verb} pod {}", pod.label()),
            Some(e) => {
                failed += 1;
                eprintln!("pod {}: {e}", pod.label());
            }
        }
        shown.push(serde_json::json!({
            "id": pod.row.id.to_string(),
            "name": pod.row.name.as_ref().map(|n| n.to_string()),
            "error": error,
        }));
    }
    // People read the lines above; scripts get the outcomes.
    if format != Format::Table {
        super::output::list(
            format,
            &shown,
            &[],
            |_| vec![],
            |v| v["id"].as_str().unwrap_or_default().to_string(),
        );
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn attach(tty: bool) -> Attach {
    if tty {
        Attach::Terminal
    } else {
        Attach::Inherit
    }
}

/// `pod run` attached to this terminal: the pod TARGET, or a new one from
/// the base TARGET; `rm` removes it when the command ends.
fn run_attached(
    host: &Host,
    (tty, rm): (bool, bool),
    (name, options): (Option<String>, PodOptions),
    target: &str,
    command: Vec<String>,
) -> Result<i32, CliError> {
    let fresh = name.is_none() && options.is_empty();
    let (pod, created) = match host.pod(target) {
        Ok(p) if fresh => (p, false),
        Ok(_) => return Err(for_new_pods(target)),
        Err(RuntimeError::NoSuchPod(_)) => {
            match host.create_pod_with(target, name.as_deref(), command.clone(), &options) {
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
    let ran = host.run_pod(&pod, argv, attach(tty));
    // A run that never started leaves no pod it created behind.
    let never_started = matches!(
        ran,
        Err(RuntimeError::CommandNotFound { .. } | RuntimeError::Jail(_))
    );
    if rm || (created && never_started) {
        let fresh = host.pod(pod.row.id.as_str())?;
        host.remove_pod(&fresh, true)?;
    }
    Ok(ran?)
}

/// The internal supervisor of a detached pod (`__supervise`).
fn supervise(host: &Host, pod: &str, command: Vec<String>) -> Result<i32, CliError> {
    let p = host.pod(pod)?;
    let log = host.pod_log_path(&p);
    let ran = host.supervise_detached(&p, command, log.clone());
    if let Err(e) = &ran {
        // Nobody watches a detached supervisor's stderr: its own
        // failure goes to the pod's log, beside the pod's output.
        crate::runtime::note_in_log(&log, &e.to_string());
    }
    Ok(ran?)
}

/// A pod of this host as the runtime writes it (`-o json`, with its root),
/// read through the API's own conversion.
fn local(p: RuntimePod) -> Result<Shown<Pod>, CliError> {
    let root = ("root", p.root.display().to_string());
    let mut shown = Shown::local(p, Pod::from)?;
    shown.extra.push(root);
    Ok(shown)
}

/// This host.
impl Pods for Host {
    fn host(&self, _what: &str) -> Result<&Host, CliError> {
        Ok(self)
    }

    fn create(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Shown<Pod>, CliError> {
        local(self.create_pod_with(base, name, command, options)?)
    }

    fn find(&self, target: &str) -> Result<Option<Shown<Pod>>, CliError> {
        match self.pod(target) {
            Ok(p) => Ok(Some(local(p)?)),
            Err(RuntimeError::NoSuchPod(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn start(&self, target: &str, argv: Option<Vec<String>>) -> Result<Started, CliError> {
        let pod = self.pod(target)?;
        let log = self.run_pod_detached(&pod, argv)?;
        Ok(Started {
            pod: local(self.pod(pod.row.id.as_str())?)?,
            log: Some(log),
        })
    }

    fn create_started(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
        options: &PodOptions,
    ) -> Result<Option<Started>, CliError> {
        let pod = match self.create_pod_with(base, name, command, options) {
            Ok(p) => p,
            Err(RuntimeError::NoSuchBase(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // The pod was made to run: one that cannot start is not left behind.
        let log = self.run_pod_detached(&pod, None).inspect_err(|_| {
            let _ = self.remove_pod(&pod, true);
        })?;
        Ok(Some(Started {
            pod: local(self.pod(pod.row.id.as_str())?)?,
            log: Some(log),
        }))
    }

    fn list(&self) -> Result<Shown<Vec<Pod>>, CliError> {
        Shown::local(self.pods()?, |pods| {
            pods.into_iter().map(Pod::from).collect()
        })
    }

    fn orphans(&self) -> Result<Vec<String>, CliError> {
        Ok(self.orphan_cells()?)
    }

    fn show(&self, pod: &str) -> Result<Shown<Pod>, CliError> {
        local(self.with_usage(self.pod(pod)?))
    }

    fn kill(&self, pod: &str) -> Result<Shown<Pod>, CliError> {
        let p = self.pod(pod)?;
        self.kill_pod(&p)?;
        local(self.pod(p.row.id.as_str())?)
    }

    fn remove(&self, pod: &str, force: bool) -> Result<Shown<Pod>, CliError> {
        let p = self.pod(pod)?;
        self.remove_pod(&p, force)?;
        local(p)
    }
}
