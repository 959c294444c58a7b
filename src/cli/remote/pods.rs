//! `pod` when `--host` sends it to a server: create, run (detached), list,
//! show, kill, rm; what needs the pod's terminal is refused before asking.

use serde_json::{json, Value};
use ureq::http::Method;

use super::args::ServerFlags;
use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::cli::PodCommand;
use crate::client::enc;
use crate::model::pods::Pod;

/// What cannot be done through the API, said once, the same way.
fn on_the_host(what: &str) -> CliError {
    CliError::Usage(format!(
        "{what} needs the pod's terminal, which the API does not carry: run it on the server's host (without --host){}",
        if what.starts_with("pod run") { ", or use `pod run -d`" } else { "" }
    ))
}

fn pod_label(p: &Pod) -> String {
    p.name.clone().unwrap_or_else(|| short(&text(Some(&p.id))))
}

/// `pod` over the API.
pub fn pod(flags: &ServerFlags, cmd: PodCommand, format: Format) -> Result<i32, CliError> {
    // Refuse what cannot work before asking the server anything.
    match &cmd {
        PodCommand::Run { detach: false, .. } => return Err(on_the_host("pod run (attached)")),
        PodCommand::Console { .. } => return Err(on_the_host("pod console")),
        PodCommand::Exec { .. } => return Err(on_the_host("pod exec")),
        PodCommand::Supervise { .. } => {
            return Err(CliError::Usage("__supervise is internal to a host".into()))
        }
        _ => {}
    }
    let c = flags.connect()?;
    match cmd {
        PodCommand::Create {
            base,
            name,
            command,
        } => {
            let a = c.send(
                Method::POST,
                "/v1/pods",
                &pod_request(&base, name, command, false),
            )?;
            made(format, &a)?;
        }
        PodCommand::Run {
            name,
            target,
            command,
            ..
        } => {
            let a = match c.get(&format!("/v1/pods/{}", enc(&target))) {
                Ok(_) if name.is_some() => {
                    return Err(CliError::Usage(format!(
                        "{target} is a pod; --name is for creating one from a base"
                    )))
                }
                Ok(_) if !command.is_empty() => {
                    return Err(CliError::Usage(format!(
                        "{target} is a pod: over the API it runs its own command (give a command when creating it)"
                    )))
                }
                Ok(_) => c.send(
                    Method::PATCH,
                    &format!("/v1/pods/{}", enc(&target)),
                    &json!({"state": "running"}),
                )?,
                Err(e) if e.status() == Some(404) => {
                    match c.send(Method::POST, "/v1/pods", &pod_request(&target, name, command, true)) {
                        Err(e) if e.status() == Some(404) => {
                            return Err(CliError::Usage(format!("no pod or base {target:?}")))
                        }
                        other => other?,
                    }
                }
                Err(e) => return Err(e.into()),
            };
            let p: Pod = a.decode()?;
            eprintln!("pod {} {}", pod_label(&p), text(Some(&p.state)));
            made(format, &a)?;
        }
        PodCommand::List => {
            let a = c.get("/v1/pods")?;
            list_of(
                format,
                &a,
                &[
                    "ID", "NAME", "BASE", "STATE", "ADDRESS", "CREATED", "COMMAND",
                ],
                |p: &Pod| {
                    let state = match (text(Some(&p.state)).as_str(), p.exit_code) {
                        ("exited", Some(code)) => format!("exited ({code})"),
                        (state, _) => state.to_string(),
                    };
                    vec![
                        short(&text(Some(&p.id))),
                        text(p.name.as_deref()),
                        text(Some(&p.base_name)),
                        state,
                        text(p.address.as_deref()),
                        ago_at(Some(&p.created)),
                        texts(&p.command).replace(", ", " "),
                    ]
                },
                |p| text(Some(&p.id)),
            )?;
        }
        PodCommand::Show { pod } => {
            let a = c.get(&format!("/v1/pods/{}", enc(&pod)))?;
            let p: Pod = a.decode()?;
            let fields = vec![
                ("id", text(Some(&p.id))),
                ("name", text(p.name.as_deref())),
                ("base", text(Some(&p.base_name))),
                ("state", text(Some(&p.state))),
                ("address", text(p.address.as_deref())),
                ("command", texts(&p.command).replace(", ", " ")),
                (
                    "exit code",
                    p.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
                ),
                ("created", text(Some(&p.created))),
                ("started", text(p.started.as_deref())),
                ("finished", text(p.finished.as_deref())),
            ];
            one(format, &a, fields, text(Some(&p.id)))?;
        }
        PodCommand::Kill { pod } => {
            let a = c.send(
                Method::PATCH,
                &format!("/v1/pods/{}", enc(&pod)),
                &json!({"state": "exited"}),
            )?;
            eprintln!("killed pod {}", pod_label(&a.decode()?));
            if format != Format::Table {
                made(format, &a)?;
            }
        }
        PodCommand::Rm { force, pod } => {
            let mut path = format!("/v1/pods/{}", enc(&pod));
            if force {
                path.push_str("?force=true");
            }
            let a = c.delete(&path)?;
            eprintln!("removed pod {}", pod_label(&a.decode()?));
            if format != Format::Table {
                made(format, &a)?;
            }
        }
        PodCommand::Console { .. } | PodCommand::Exec { .. } | PodCommand::Supervise { .. } => {
            unreachable!("refused above")
        }
    }
    Ok(0)
}

fn pod_request(base: &str, name: Option<String>, command: Vec<String>, running: bool) -> Value {
    let mut body = json!({ "base": base });
    if let Some(n) = name {
        body["name"] = json!(n);
    }
    if !command.is_empty() {
        body["command"] = json!(command);
    }
    if running {
        body["state"] = json!("running");
    }
    body
}
