//! `jetpack pod` on this host (the runtime's `Host`): create, run
//! (attached or detached), list, show, console, exec, kill, rm, and the
//! internal supervisor of a detached pod; `remote/pods.rs` is the same
//! command sent to a server with `--host`.

use super::args::PodCommand;
use super::output::{self, Format};
use super::CliError;
use crate::runtime::{Attach, Host, Pod, RuntimeError};

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

pub(super) fn pod(host: Host, cmd: PodCommand, format: Format) -> Result<i32, CliError> {
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
