//! `builders`, `inspect-builder`, `delete-builder`, `build` (a job that
//! makes an image) and `bob` (providers, their bobs, preparing one into a
//! builder).

use std::path::PathBuf;

use serde_json::{json, Value};
use ureq::http::Method;

use super::args::BobCommand;
use super::jobs::finished_job;
use super::nacls::read_nacl;
use super::print::*;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Answer, Client};

/// `builders`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/builders")?;
    list(
        format,
        &a,
        &["ID", "NAME", "VERSION", "SERVICES", "PROVIDER", "CREATED"],
        |b| {
            vec![
                s(b, "id"),
                s(b, "name"),
                s(b, "version"),
                strings(&b["services"]),
                s(b, "providerId"),
                ago(b, "created"),
            ]
        },
    )?;
    Ok(())
}

/// `inspect-builder`.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/builders/{}", enc(&id)))?;
    let b = &a.value;
    let fields = [
        "id",
        "name",
        "version",
        "vcsRef",
        "buildDate",
        "vendor",
        "services",
        "providerId",
        "digest",
        "baseId",
        "created",
    ]
    .into_iter()
    .map(|k| match k {
        "services" => (k, strings(&b[k])),
        _ => (k, s(b, k)),
    })
    .collect();
    one(format, &a, fields, s(b, "id"))?;
    Ok(())
}

/// `delete-builder`.
pub fn delete(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.delete(&format!("/v1/builders/{}", enc(&id)))?;
    deleted(format, "builder", &a)?;
    Ok(())
}

/// `build`: a job, followed and its image printed with --waitAndPrint.
pub fn build(
    c: &Client,
    (service, builder): (String, String),
    (nacl, nacl_file): (Option<String>, Option<PathBuf>),
    (uplink, tag, name): (Option<String>, Option<String>, Option<String>),
    wait_and_print: bool,
    format: Format,
) -> Result<i32, CliError> {
    let mut body = json!({});
    match (nacl, nacl_file) {
        (Some(id), _) => body["naclId"] = json!(id),
        (None, Some(file)) => body["nacl"] = json!(read_nacl(&file)?),
        (None, None) => {
            return Err(CliError::Usage(
                "give the NaCl: --nacl ID or --nacl-file FILE".into(),
            ))
        }
    }
    for (key, value) in [("uplinkId", uplink), ("tag", tag), ("name", name)] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    let a = c.send(
        Method::POST,
        &format!(
            "/v1/images/build/services/{}/builders/{}",
            enc(&service),
            enc(&builder)
        ),
        &body,
    )?;
    if !wait_and_print {
        made(format, &a)?;
        return Ok(0);
    }
    // What the build made (the image), as the server wrote it.
    let image = finished_job(c, &a, &format!("building {service} with {builder}"))?
        .result
        .unwrap_or_default();
    match format {
        Format::Json => println!("{}", pretty(&image.to_string())),
        Format::Table | Format::Id => println!("{}", s(&image, "id")),
    }
    Ok(0)
}

/// `bob` commands.
pub fn bob(c: &Client, cmd: BobCommand, format: Format) -> Result<i32, CliError> {
    let providers = |only: Option<String>| -> Result<Vec<String>, CliError> {
        Ok(match only {
            Some(p) => vec![p],
            None => items(&c.get("/v1/bobproviders")?)?
                .iter()
                .map(|p| s(p, "id"))
                .collect(),
        })
    };
    let bob_table = |format: Format, bobs: Vec<Value>, text: String| {
        let answer = Answer {
            status: 200,
            url: String::new(),
            value: Value::Array(bobs),
            text,
        };
        list(
            format,
            &answer,
            &[
                "PROVIDER", "ID", "NAME", "VERSION", "SERVICES", "SIZE", "BUILT",
            ],
            |b| {
                vec![
                    s(b, "providerId"),
                    s(b, "id"),
                    s(b, "name"),
                    s(b, "version"),
                    strings(&b["services"]),
                    output::bytes(b["size"].as_u64().unwrap_or(0)),
                    s(b, "buildDate"),
                ]
            },
        )
    };
    match cmd {
        BobCommand::Providers => {
            let a = c.get("/v1/bobproviders")?;
            list(format, &a, &["ID", "KIND", "URL", "UPDATED"], |p| {
                vec![s(p, "id"), s(p, "kind"), s(p, "url"), ago(p, "updated")]
            })?;
        }
        BobCommand::Update { provider } => {
            let mut all = Vec::new();
            for p in providers(provider)? {
                let a = c.send(
                    Method::POST,
                    &format!("/v1/bobproviders/{}/update", enc(&p)),
                    &json!({}),
                )?;
                let bobs = items(&a)?.clone();
                eprintln!("provider {p}: {} bob(s)", bobs.len());
                all.extend(bobs);
            }
            let text = Value::Array(all.clone()).to_string();
            bob_table(format, all, text)?;
        }
        BobCommand::List { provider } => {
            let mut all = Vec::new();
            for p in providers(provider)? {
                all.extend(items(&c.get(&format!("/v1/bobproviders/{}/bobs", enc(&p)))?)?.clone());
            }
            let text = Value::Array(all.clone()).to_string();
            bob_table(format, all, text)?;
        }
        BobCommand::Prepare {
            wait,
            provider,
            bob,
        } => {
            let a = c.send(
                Method::POST,
                &format!(
                    "/v1/bobproviders/{}/prepare/bobs/{}",
                    enc(&provider),
                    enc(&bob)
                ),
                &json!({}),
            )?;
            if !wait {
                made(format, &a)?;
                return Ok(0);
            }
            let job = finished_job(c, &a, &format!("preparing {provider}/{bob}"))?;
            let builder = &job.result.unwrap_or_default();
            if builder["existed"].as_bool() == Some(true) {
                eprintln!("bob {bob} is builder {} already", s(builder, "id"));
            } else {
                eprintln!(
                    "builder {} ready ({})",
                    s(builder, "id"),
                    s(builder, "version")
                );
            }
            match format {
                Format::Json => println!("{}", pretty(&builder.to_string())),
                Format::Table | Format::Id => println!("{}", s(builder, "id")),
            }
        }
    }
    Ok(0)
}
