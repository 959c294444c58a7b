//! `base` when `--host` sends it to a server: import (a URL the server
//! fetches, or a file uploaded), list, show, rm.

use std::path::PathBuf;

use serde_json::json;
use ureq::http::Method;

use super::args::ServerFlags;
use super::jobs::follow_job;
use super::print::*;
use super::progress::Progress;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::cli::BaseCommand;
use crate::client::enc;
use crate::model::bases::Base;
use crate::model::jobs::Job;

/// `base` over the API.
pub fn base(flags: &ServerFlags, cmd: BaseCommand, format: Format) -> Result<i32, CliError> {
    let c = flags.connect()?;
    match cmd {
        BaseCommand::Import {
            source,
            name,
            sha256,
        } => {
            let job = if source.starts_with("http://") || source.starts_with("https://") {
                let mut body = json!({ "url": source });
                if let Some(n) = &name {
                    body["name"] = json!(n);
                }
                if let Some(d) = &sha256 {
                    body["sha256"] = json!(d);
                }
                c.send(Method::POST, "/v1/bases", &body)?
            } else {
                let file = PathBuf::from(&source);
                let name =
                    name.unwrap_or_else(|| crate::runtime::archive::name_from_source(&source));
                let mut path = format!("/v1/bases?name={}", enc(&name));
                if let Some(d) = &sha256 {
                    path.push_str(&format!("&sha256={}", enc(d)));
                }
                let mut bar = Progress::new(format!("uploading {source}"));
                let sent = c.upload_file(&file, &path, &mut |d, t| bar.update(d, t));
                bar.finish();
                sent?
            };
            let id = job.decode::<Job>()?.id;
            // The job's log is commentary: stderr, so stdout stays the base.
            let done = follow_job(&c, &id, &mut std::io::stderr())?;
            if done.state != "succeeded" {
                return Err(CliError::Failed(format!(
                    "importing {source} {}: {}",
                    text(Some(&done.state)),
                    done.error
                        .as_deref()
                        .unwrap_or("see `jetpack job` for its log")
                )));
            }
            let base_id = s(&done.result.unwrap_or_default(), "id");
            let a = c.get(&format!("/v1/bases/{}", enc(&base_id)))?;
            match format {
                Format::Table | Format::Id => println!("{base_id}"),
                Format::Json => print_json(&a.text),
            }
        }
        BaseCommand::List => {
            let a = c.get("/v1/bases")?;
            list_of(
                format,
                &a,
                &["ID", "NAME", "SIZE", "STATE", "CREATED"],
                |b: &Base| {
                    vec![
                        short(&text(Some(&b.id))),
                        text(Some(&b.name)),
                        output::bytes(b.size),
                        text(Some(&b.state)),
                        ago_at(Some(&b.created)),
                    ]
                },
                |b| text(Some(&b.id)),
            )?;
        }
        BaseCommand::Show { base } => {
            let a = c.get(&format!("/v1/bases/{}", enc(&base)))?;
            let b: Base = a.decode()?;
            let fields = vec![
                ("id", text(Some(&b.id))),
                ("name", text(Some(&b.name))),
                ("source", text(Some(&b.source))),
                ("size", output::bytes(b.size)),
                ("state", text(Some(&b.state))),
                ("created", text(Some(&b.created))),
            ];
            one(format, &a, fields, text(Some(&b.id)))?;
        }
        BaseCommand::Rm { base } => {
            let a = c.delete(&format!("/v1/bases/{}", enc(&base)))?;
            deleted(format, "base", &a)?;
        }
    }
    Ok(0)
}
