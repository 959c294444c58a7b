//! `builders`, `inspect-builder`, `delete-builder`, `build` (a job that
//! makes an image) and `bob` (providers, their bobs, preparing one into a
//! builder).

use std::path::PathBuf;

use ureq::http::Method;

use super::args::BobCommand;
use super::jobs::finished_job;
use super::nacls::read_nacl;
use super::print::*;
use super::CliError;
use crate::cli::output::{self, Format, Shown};
use crate::client::{enc, Client};
use crate::model::builders::{BobModel, BobProvider, BuildBody, BuildResult, BuilderModel};
use crate::model::jobs::Job;

/// The body of the POSTs that take none (update, prepare): `{}`.
#[derive(serde::Serialize)]
struct Empty {}

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

/// `build`: a job, followed and its image printed with --waitAndPrint.
pub fn build(
    c: &Client,
    (service, builder): (String, String),
    (nacl, nacl_file): (Option<String>, Option<PathBuf>),
    (uplink, tag, name, host): (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    then: Then,
    format: Format,
) -> Result<i32, CliError> {
    // An image meant to run here docks through the pod network's address.
    let uplink = match then {
        Then::Launch => uplink.or_else(|| Some(crate::catalog::LAUNCH_UPLINK.to_string())),
        _ => uplink,
    };
    let mut body = BuildBody {
        uplink_id: uplink,
        tag,
        name,
        host,
        ..BuildBody::default()
    };
    match (nacl, nacl_file) {
        (Some(id), _) => body.nacl_id = Some(id),
        (None, Some(file)) => body.nacl = Some(read_nacl(&file)?),
        (None, None) => {
            return Err(CliError::Usage(
                "give the NaCl: --nacl ID or --nacl-file FILE".into(),
            ))
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
    if then == Then::Print {
        made::<Job>(format, &a)?;
        return Ok(0);
    }
    // What the build made (the image), as the server wrote it.
    let job = finished_job(c, &a, &format!("building {service} with {builder}"))?;
    let (built, image): (BuildResult, _) = job_result(c, job)?;
    if then == Then::Launch {
        let req = crate::model::instances::LaunchRequest::default();
        super::launch::launch(c, req, Some(built.image.id), false, format)?;
        return Ok(0);
    }
    match format {
        Format::Json => println!("{}", pretty(&image.to_string())),
        Format::Table | Format::Id => println!("{}", built.image.id),
    }
    Ok(0)
}

/// What `build` does once the build is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Print the build job.
    Print,
    /// Follow the build and print the image's id.
    WaitAndPrint,
    /// Follow the build, launch the image and print the instance's id.
    Launch,
}

impl Then {
    pub fn of(wait_and_print: bool, launch: bool) -> Then {
        match (wait_and_print, launch) {
            (_, true) => Then::Launch,
            (true, false) => Then::WaitAndPrint,
            (false, false) => Then::Print,
        }
    }
}

/// What preparing a bob made: the builder, and whether it was one already.
#[derive(serde::Deserialize)]
struct Prepared {
    #[serde(flatten)]
    builder: BuilderModel,
    #[serde(default)]
    existed: bool,
}

/// Bobs of one or more providers, in one list; `-o json` shows them as
/// the server's JSON values re-joined (keys in serde_json's order).
fn bob_table(format: Format, bobs: Vec<BobModel>) -> Result<(), CliError> {
    let shown = Shown {
        json: pretty(&serde_json::to_value(&bobs)?.to_string()),
        item: bobs,
        extra: Vec::new(),
    };
    shown.print_list(
        format,
        &[
            "PROVIDER", "ID", "NAME", "VERSION", "SERVICES", "SIZE", "BUILT",
        ],
        |b| {
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
    );
    Ok(())
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
            // Updating every provider, one that cannot be reached (the
            // default DockerHub on a host without Internet) is said and
            // the others are still updated; the command fails at the end.
            let one = provider.is_some();
            let mut all = Vec::new();
            let mut failed = Vec::new();
            for p in providers(provider)? {
                let bobs = c
                    .send(
                        Method::POST,
                        &format!("/v1/bobproviders/{}/update", enc(&p)),
                        &Empty {},
                    )
                    .and_then(|a| a.decode::<Vec<BobModel>>());
                match bobs {
                    Ok(bobs) => {
                        eprintln!("provider {p}: {} bob(s)", bobs.len());
                        all.extend(bobs);
                    }
                    Err(e) if one => return Err(e.into()),
                    Err(e) => {
                        eprintln!("provider {p}: {e}");
                        failed.push(p);
                    }
                }
            }
            bob_table(format, all)?;
            if !failed.is_empty() {
                return Err(CliError::Failed(format!(
                    "could not update provider(s) {}",
                    failed.join(", ")
                )));
            }
        }
        BobCommand::List { provider } => {
            let mut all = Vec::new();
            for p in providers(provider)? {
                let bobs: Vec<BobModel> =
                    c.get_json(&format!("/v1/bobproviders/{}/bobs", enc(&p)))?;
                all.extend(bobs);
            }
            bob_table(format, all)?;
        }
        BobCommand::Prepare {
            wait,
            host_affinity,
            provider,
            bob,
        } => {
            let pin = host_affinity.map_or(String::new(), |h| format!("?host={}", enc(&h)));
            let a = c.send(
                Method::POST,
                &format!(
                    "/v1/bobproviders/{}/prepare/bobs/{}{pin}",
                    enc(&provider),
                    enc(&bob)
                ),
                &Empty {},
            )?;
            if !wait {
                made::<Job>(format, &a)?;
                return Ok(0);
            }
            let job = finished_job(c, &a, &format!("preparing {provider}/{bob}"))?;
            let (prepared, builder): (Prepared, _) = job_result(c, job)?;
            let id = text(Some(&prepared.builder.id));
            if prepared.existed {
                eprintln!("bob {bob} is builder {id} already");
            } else {
                eprintln!(
                    "builder {id} ready ({})",
                    text(Some(&prepared.builder.version))
                );
            }
            match format {
                Format::Json => println!("{}", pretty(&builder.to_string())),
                Format::Table | Format::Id => println!("{id}"),
            }
        }
    }
    Ok(0)
}
