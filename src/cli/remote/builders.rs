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
use crate::model::builders::{BobModel, BobProvider, BuilderModel};

/// `builders`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/builders")?;
    list_of(
        format,
        &a,
        &["ID", "NAME", "VERSION", "SERVICES", "PROVIDER", "CREATED"],
        |b: &BuilderModel| {
            vec![
                text(Some(&b.id)),
                text(Some(&b.name)),
                text(Some(&b.version)),
                texts(&b.services),
                text(Some(&b.provider_id)),
                ago_at(Some(&b.created)),
            ]
        },
        |b| text(Some(&b.id)),
    )?;
    Ok(())
}

/// `inspect-builder`.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/builders/{}", enc(&id)))?;
    let b: BuilderModel = a.decode()?;
    let fields = vec![
        ("id", text(Some(&b.id))),
        ("name", text(Some(&b.name))),
        ("version", text(Some(&b.version))),
        ("vcsRef", text(Some(&b.vcs_ref))),
        ("buildDate", text(Some(&b.build_date))),
        ("vendor", text(Some(&b.vendor))),
        ("services", texts(&b.services)),
        ("providerId", text(Some(&b.provider_id))),
        ("digest", text(Some(&b.digest))),
        ("baseId", text(Some(&b.base_id))),
        ("created", text(Some(&b.created))),
    ];
    one(format, &a, fields, text(Some(&b.id)))?;
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
            None => c
                .get("/v1/bobproviders")?
                .decode::<Vec<BobProvider>>()?
                .into_iter()
                .map(|p| text(Some(&p.id)))
                .collect(),
        })
    };
    let bob_table = |format: Format, bobs: Vec<Value>, json_text: String| {
        let answer = Answer {
            status: 200,
            url: String::new(),
            value: Value::Array(bobs),
            text: json_text,
        };
        list_of(
            format,
            &answer,
            &[
                "PROVIDER", "ID", "NAME", "VERSION", "SERVICES", "SIZE", "BUILT",
            ],
            |b: &BobModel| {
                vec![
                    text(Some(&b.provider_id)),
                    text(Some(&b.id)),
                    text(Some(&b.name)),
                    text(Some(&b.version)),
                    texts(&b.services),
                    output::bytes(b.size),
                    text(Some(&b.build_date)),
                ]
            },
            |b| text(Some(&b.id)),
        )
    };
    match cmd {
        BobCommand::Providers => {
            let a = c.get("/v1/bobproviders")?;
            list_of(
                format,
                &a,
                &["ID", "KIND", "URL", "UPDATED"],
                |p: &BobProvider| {
                    vec![
                        text(Some(&p.id)),
                        text(Some(&p.kind)),
                        text(Some(&p.url)),
                        ago_at(p.updated.as_deref()),
                    ]
                },
                |p| text(Some(&p.id)),
            )?;
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
