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

/// What cannot be done through the API, said once, the same way.
fn on_the_host(what: &str) -> CliError {
    CliError::Usage(format!(
        "{what} needs the pod's terminal, which the API does not carry: run it on the server's host (without --host){}",
        if what.starts_with("pod run") { ", or use `pod run -d`" } else { "" }
    ))
}

fn pod_label(p: &Value) -> String {
    p["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| short(&s(p, "id")))
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
            eprintln!("pod {} {}", pod_label(&a.value), s(&a.value, "state"));
            made(format, &a)?;
        }
        PodCommand::List => {
            let a = c.get("/v1/pods")?;
            list(
                format,
                &a,
                &[
                    "ID", "NAME", "BASE", "STATE", "ADDRESS", "CREATED", "COMMAND",
                ],
                |p| {
                    let state = match (s(p, "state").as_str(), p["exitCode"].as_i64()) {
                        ("exited", Some(code)) => format!("exited ({code})"),
                        (state, _) => state.to_string(),
                    };
                    vec![
                        short(&s(p, "id")),
                        s(p, "name"),
                        s(p, "baseName"),
                        state,
                        s(p, "address"),
                        ago(p, "created"),
                        strings(&p["command"]).replace(", ", " "),
                    ]
                },
            )?;
        }
        PodCommand::Show { pod } => {
            let a = c.get(&format!("/v1/pods/{}", enc(&pod)))?;
            let p = &a.value;
            let fields = vec![
                ("id", s(p, "id")),
                ("name", s(p, "name")),
                ("base", s(p, "baseName")),
                ("state", s(p, "state")),
                ("address", s(p, "address")),
                ("command", strings(&p["command"]).replace(", ", " ")),
                ("exit code", s(p, "exitCode")),
                ("created", s(p, "created")),
                ("started", s(p, "started")),
                ("finished", s(p, "finished")),
            ];
            one(format, &a, fields, s(p, "id"))?;
        }
        PodCommand::Kill { pod } => {
            let a = c.send(
                Method::PATCH,
                &format!("/v1/pods/{}", enc(&pod)),
                &json!({"state": "exited"}),
            )?;
            eprintln!("killed pod {}", pod_label(&a.value));
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
            eprintln!("removed pod {}", pod_label(&a.value));
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
