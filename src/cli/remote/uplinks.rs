//! `uplinks`, `push-uplink`, `inspect-uplink`, `delete-uplink`: the
//! uplink documents on the server.

use std::path::Path;

use serde_json::Value;
use ureq::http::Method;

use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::{enc, Client, ClientError};
use crate::model::uplinks::Uplink;

/// `uplinks`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/uplinks")?;
    list_of(
        format,
        &a,
        &["ID", "NAME", "URL", "TAG", "UPDATED"],
        |u: &Uplink| {
            vec![
                short(&text(Some(&u.id))),
                text(Some(&u.name)),
                text(Some(&u.url)),
                text(u.tag.as_deref()),
                ago_at(Some(&u.updated)),
            ]
        },
        |u| text(Some(&u.id)),
    )?;
    Ok(())
}

/// `inspect-uplink`: every field.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/uplinks/{}", enc(&id)))?;
    let u: Uplink = a.decode()?;
    let fields = vec![
        ("id", text(Some(&u.id))),
        ("name", text(Some(&u.name))),
        ("url", text(Some(&u.url))),
        ("token", text(Some(&u.token))),
        ("tag", text(u.tag.as_deref())),
        ("index", value_text(u.index.as_ref())),
        ("verify", u.verify.to_string()),
        ("reboot", u.reboot.to_string()),
        ("ws_logging", u.ws_logging.to_string()),
        ("serialize_ct", u.serialize_ct.to_string()),
        ("send_stats", u.send_stats.to_string()),
        ("created", text(Some(&u.created))),
        ("updated", text(Some(&u.updated))),
    ];
    one(format, &a, fields, text(Some(&u.id)))?;
    Ok(())
}

/// The fields the server makes itself: a file saved from `inspect-uplink
/// -o json` pushes back without them.
const SERVER_MADE: &[&str] = &["id", "created", "updated"];

pub(super) fn push_uplink(c: &Client, file: &Path, format: Format) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| ClientError::Io {
        what: file.display().to_string(),
        source: e,
    })?;
    let mut body: serde_json::Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: not a JSON object: {e}", file.display())))?;
    for k in SERVER_MADE {
        body.remove(*k);
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::Usage(format!("{}: an uplink needs a \"name\"", file.display()))
        })?;
    let a = match c.send(Method::POST, "/v1/uplinks", &body) {
        Err(e) if e.status() == Some(409) => {
            let a = c.send(Method::PUT, &format!("/v1/uplinks/{}", enc(&name)), &body)?;
            eprintln!("updated uplink {name}");
            a
        }
        other => {
            let a = other?;
            eprintln!("created uplink {name}");
            a
        }
    };
    made::<Uplink>(format, &a)
}
