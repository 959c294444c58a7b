//! The fleet seen from the CLI: `instances`, `search`, `inspect-instance`,
//! `instance-alias`, `delete-instance`, logs and panics, and the two jobs
//! that change an instance's image, `deploy` and `upgrade`.

use std::io::Write;

use ureq::http::Method;

use super::jobs::finished_job;
use super::print::*;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Client};
use crate::model::instances::{
    DeployRequest, Instance, InstancePanic, InstancePatch, UpgradeRequest,
};
use crate::model::jobs::Job;

/// `instances`, all or of one status.
pub fn table(c: &Client, status: Option<String>, format: Format) -> Result<(), CliError> {
    let path = match status {
        Some(st) => format!("/v1/instances?status={}", enc(&st)),
        None => "/v1/instances".to_string(),
    };
    instance_list(c, &path, format)?;
    Ok(())
}

/// `search`.
pub fn search(c: &Client, term: String, format: Format) -> Result<(), CliError> {
    instance_list(c, &format!("/v1/instances?q={}", enc(&term)), format)?;
    Ok(())
}

/// `inspect-instance`: the server's JSON.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/instances/{}", enc(&id)))?;
    match format {
        Format::Id => println!("{}", text(Some(&a.decode::<Instance>()?.id))),
        Format::Table | Format::Json => print_json(&a.text),
    }
    Ok(())
}

/// `instance-alias`: set or clear alias and description.
pub fn alias(
    c: &Client,
    id: String,
    alias: String,
    description: Option<String>,
    format: Format,
) -> Result<(), CliError> {
    // An empty text clears the field (null); a description not given is kept.
    let text_or_null = |t: String| (!t.is_empty()).then_some(t);
    let body = InstancePatch {
        alias: Some(text_or_null(alias)),
        description: description.map(text_or_null),
    };
    let a = c.send(Method::PATCH, &format!("/v1/instances/{}", enc(&id)), &body)?;
    let i: Instance = a.decode()?;
    let id = short_instance(&text(Some(&i.id)));
    match i.alias {
        Some(alias) => eprintln!("instance {id} is {alias}"),
        None => eprintln!("instance {id} has no alias"),
    }
    made::<Instance>(format, &a)?;
    Ok(())
}

/// `delete-instance`: one or several.
pub fn delete(c: &Client, ids: Vec<String>, format: Format) -> Result<(), CliError> {
    let a = match ids.as_slice() {
        [one] => c.delete(&format!("/v1/instances/{}", enc(one)))?,
        several => {
            let list: Vec<String> = several.iter().map(|i| enc(i)).collect();
            c.delete(&format!("/v1/instances?ids={}", list.join(",")))?
        }
    };
    // One id answers with the instance, several with the list of them.
    let gone: Vec<Instance> = match a.value.is_array() {
        true => a.decode()?,
        false => vec![a.decode()?],
    };
    match format {
        Format::Json => print_json(&a.text),
        Format::Id => gone.iter().for_each(|i| println!("{}", text(Some(&i.id)))),
        Format::Table => gone
            .iter()
            .for_each(|i| eprintln!("deleted instance {}", instance_label(i))),
    }
    Ok(())
}

/// `instance-logs`.
pub fn logs(c: &Client, id: String, follow: bool, tail: Option<usize>) -> Result<(), CliError> {
    let mut path = format!("/v1/instances/{}/logs?follow={follow}", enc(&id));
    if let Some(n) = tail {
        path.push_str(&format!("&tail={n}"));
    }
    c.stream_text(&path, &mut std::io::stdout().lock())?;
    Ok(())
}

/// `instance-panics`: the table.
pub fn panics(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/instances/{}/panics", enc(&id)))?;
    list_of(
        format,
        &a,
        &["ID", "CREATED", "SIZE"],
        |p: &InstancePanic| {
            vec![
                text(Some(&p.id)),
                ago_at(Some(&p.created)),
                output::bytes(p.size as u64),
            ]
        },
        |p| text(Some(&p.id)),
    )?;
    Ok(())
}

/// `instance-panic`: one panic's text.
pub fn panic_text(c: &Client, id: String, panic_id: String) -> Result<(), CliError> {
    let text = c.get_text(&format!(
        "/v1/instances/{}/panics/{}",
        enc(&id),
        enc(&panic_id)
    ))?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;
    Ok(())
}

/// `deploy`: a job, followed with --wait.
pub fn deploy(
    c: &Client,
    (wait, force, timeout): (bool, bool, Option<u64>),
    instance: String,
    image: String,
    format: Format,
) -> Result<i32, CliError> {
    let body = DeployRequest {
        force: Some(force),
        timeout,
    };
    let a = c.send(
        Method::POST,
        &format!("/v1/instances/{}/deploy/{}", enc(&instance), enc(&image)),
        &body,
    )?;
    made::<Job>(format, &a)?;
    if !wait {
        return Ok(0);
    }
    finished_job(c, &a, &format!("deploying {image} to {instance}"))?;
    Ok(0)
}

/// `upgrade`: rebuild and deploy, one job.
pub fn upgrade(
    c: &Client,
    instance: String,
    (builder, nacl, service): (String, Option<String>, Option<String>),
    (force, wait): (bool, bool),
    format: Format,
) -> Result<(), CliError> {
    let body = UpgradeRequest {
        builder_id: builder,
        nacl_id: nacl,
        service,
        force: Some(force),
        timeout: None,
    };
    let a = c.send(
        Method::POST,
        &format!("/v1/instances/{}/upgrade", enc(&instance)),
        &body,
    )?;
    made::<Job>(format, &a)?;
    if wait {
        finished_job(c, &a, &format!("upgrading {instance}"))?;
    }
    Ok(())
}

/// An instance list (all, filtered or searched) as a table.
fn instance_list(c: &Client, path: &str, format: Format) -> Result<(), CliError> {
    let a = c.get(path)?;
    list_of(
        format,
        &a,
        &[
            "ID",
            "ALIAS",
            "STATUS",
            "VERSION",
            "SERVICE",
            "TAG",
            "IMAGE",
            "ADDRESSES",
            "LAST SEEN",
        ],
        |i: &Instance| {
            let mut status = i.status.as_str().to_string();
            if i.panicked {
                status.push_str(", panicked");
            }
            vec![
                short_instance(&text(Some(&i.id))),
                text(i.alias.as_deref()),
                status,
                text(i.version.as_deref()),
                text(i.service.as_deref()),
                text(i.tag.as_deref()),
                short(&text(i.image_id.as_deref())),
                texts(&i.addresses),
                ago_at(Some(&i.last_seen)),
            ]
        },
        |i| text(Some(&i.id)),
    )
}

/// An instance id as tables show it: a MAC (old instances) whole, a UUID
/// shortened like other ids.
fn short_instance(id: &str) -> String {
    if id.contains(':') {
        id.to_string()
    } else {
        short(id)
    }
}

/// "alias (short id)", or the short id.
fn instance_label(i: &Instance) -> String {
    let id = short_instance(&text(Some(&i.id)));
    match i.alias.as_deref() {
        Some(alias) => format!("{alias} ({id})"),
        None => id,
    }
}
