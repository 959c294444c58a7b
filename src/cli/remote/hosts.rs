//! `hosts`, `host show|drain|rm NAME`: the fleet's jetpack hosts.

use ureq::http::Method;

use super::args::HostCommand;
use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::{enc, Client};
use crate::model::hosts::Host;

fn seconds(s: f64) -> String {
    format!("{s:.0}s")
}

pub fn list(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/hosts")?;
    list_of(
        format,
        &a,
        &[
            "NAME",
            "STATUS",
            "INSTANCES",
            "PODS",
            "CAPACITY",
            "SILENT",
            "API",
            "HANGAR",
        ],
        |h: &Host| {
            let name = if h.is_self {
                format!("{} (this)", h.name)
            } else {
                h.name.clone()
            };
            vec![
                name,
                h.status.clone(),
                h.instances.to_string(),
                h.pods.to_string(),
                h.capacity.to_string(),
                seconds(h.silent_seconds),
                h.api_url.clone(),
                h.hangar_url.clone(),
            ]
        },
        |h| h.name.clone(),
    )
}

pub fn host(c: &Client, cmd: HostCommand, format: Format) -> Result<(), CliError> {
    let a = match &cmd {
        HostCommand::Show { name } => c.get(&format!("/v1/hosts/{}", enc(name)))?,
        HostCommand::Drain { name, undo } => c.send(
            Method::POST,
            &format!("/v1/hosts/{}/drain?undo={undo}", enc(name)),
            &serde_json::json!({}),
        )?,
        HostCommand::Rm { name } => c.delete(&format!("/v1/hosts/{}", enc(name)))?,
    };
    let h: Host = a.decode()?;
    if let HostCommand::Show { .. } = cmd {
        let fields = vec![
            ("name", h.name.clone()),
            ("status", h.status.clone()),
            ("api", h.api_url.clone()),
            ("hangar", h.hangar_url.clone()),
            ("pool", h.pool.clone()),
            ("capacity", h.capacity.to_string()),
            ("instances", h.instances.to_string()),
            ("pods", h.pods.to_string()),
            ("launch", h.launch.join(",")),
            ("launched", h.launched.to_string()),
            ("memory", format!("{} MiB", h.memory_mib)),
            ("cpus", h.cpus.to_string()),
            ("version", h.version.clone()),
            ("started", h.started.clone()),
            ("silent", seconds(h.silent_seconds)),
        ];
        return one(format, &a, fields, h.name);
    }
    if format == Format::Table {
        let what = match cmd {
            HostCommand::Rm { .. } => "forgotten".to_string(),
            _ => format!("now {}", h.status),
        };
        eprintln!("host {} {what}", h.name);
    }
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => println!("{}", h.name),
    }
    Ok(())
}
