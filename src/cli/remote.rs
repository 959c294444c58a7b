//! The commands that are clients of `jetpack serve` (Mothership's CLI
//! habits): the server flags, `login`, the uplink, NaCl, image, instance,
//! deploy and job commands, and `base`/`pod` when `--host` sends them to a
//! server. Each prints the server's own JSON for `-o json`, ids for `-o id`,
//! and tables (through `output`) otherwise; progress goes to stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{json, Value};
use ureq::http::Method;

use super::output::{self, Format};
use super::{BaseCommand, CliError, PodCommand};
use crate::client::{enc, login, Answer, Client, ClientError, Login};

/// Where the API server is and who we are to it. Global: they may be given
/// anywhere on the command line.
#[derive(Debug, Default, clap::Args)]
pub struct ServerFlags {
    /// API server; with it, `base` and `pod` go to that server [default: the stored login, else localhost]
    #[arg(long, global = true, env = "JETPACK_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// API port [default: the stored login, else 8080]
    #[arg(long, global = true, value_name = "PORT")]
    pub port: Option<u16>,
    /// API user [default: the stored login]
    #[arg(long, global = true, env = "JETPACK_USERNAME", value_name = "USER")]
    pub username: Option<String>,
    /// API password (or JETPACK_PASSWORD); for `user add`, the new user's password
    #[arg(long, global = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Talk plain HTTP to the API server
    #[arg(long, global = true)]
    pub notls: bool,
    /// Do not verify the API server's TLS certificate
    #[arg(long = "tlsInsecureSkipVerify", global = true)]
    pub tls_insecure_skip_verify: bool,
    /// Trust this PEM certificate (the server's <conf dir>/jetpack/cert.pem) instead of the usual roots
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

impl ServerFlags {
    /// The flags, with JETPACK_PASSWORD read here rather than by clap: the
    /// global `--password` is also `user add`'s, and an API password in the
    /// environment must not silently become a new user's password.
    fn overrides(&self) -> login::Overrides {
        login::Overrides {
            host: self.host.clone(),
            port: self.port,
            username: self.username.clone(),
            password: self.password.clone().or_else(|| {
                std::env::var("JETPACK_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty())
            }),
            notls: self.notls,
            insecure: self.tls_insecure_skip_verify,
            cacert: self.cacert.clone(),
        }
    }

    /// The login to use: these flags over the stored one.
    fn login(&self) -> Result<Login, ClientError> {
        let stored = login::load(&login::path()?)?;
        Ok(Login::resolve(&self.overrides(), stored))
    }

    fn connect(&self) -> Result<Client, ClientError> {
        Client::new(&self.login()?)
    }
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Check credentials with the API server and store them for later commands
    Login,
    /// The API server's name, version, uptime and features
    #[command(alias = "serverinfo")]
    Info,
    /// List uplinks
    Uplinks,
    /// Create an uplink from a JSON file, or replace the one with its name
    PushUplink {
        /// `{name, url, token?, tag?, verify?, ...}` (an inspect-uplink -o json file will do)
        file: PathBuf,
    },
    /// Show an uplink
    InspectUplink {
        /// Id, name or id prefix
        id: String,
    },
    /// Delete an uplink
    DeleteUplink {
        /// Id, name or id prefix
        id: String,
    },
    /// List NaCls
    Nacls,
    /// Store a NaCl file under a name (replacing that NaCl's content if it
    /// exists); with BUILDER, only once that builder's own tool finds it valid
    PushNacl {
        /// The NaCl text (UTF-8)
        file: PathBuf,
        /// Validate with this builder first (id or prefix)
        builder: Option<String>,
        /// The NaCl's name
        #[arg(long)]
        name: String,
        /// Store it even if jetpack's checker finds errors in it
        #[arg(long)]
        force: bool,
    },
    /// A NaCl's text, to stdout or a file
    PullNacl {
        /// Id, name or id prefix
        id: String,
        /// Write it here instead of stdout
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Show a NaCl's metadata
    InspectNacl {
        /// Id, name or id prefix
        id: String,
    },
    /// Delete a NaCl
    DeleteNacl {
        /// Id, name or id prefix
        id: String,
    },
    /// List images
    Images,
    /// Upload an image (an IncludeOS ELF binary)
    PushImage {
        /// The ELF binary
        file: PathBuf,
        /// The image's name
        #[arg(long)]
        name: String,
        /// The image's tag
        #[arg(long)]
        tag: Option<String>,
    },
    /// Download an image's binary into FILE
    PullImage {
        /// Image id (SHA-1) or a prefix of it
        id: String,
        /// Where to write it (replaced only once the download is complete)
        file: PathBuf,
    },
    /// Show an image's metadata
    InspectImage {
        /// Image id (SHA-1) or a prefix of it
        id: String,
    },
    /// Delete an image
    DeleteImage {
        /// Image id (SHA-1) or a prefix of it
        id: String,
    },
    /// List instances: the IncludeOS unikernels known through the hangar
    Instances {
        /// Only those with this status: connected, disconnected, connecting or unknown
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
    },
    /// Instances whose id, alias, description, tag, version, service, image, addresses or devices contain TERM
    Search {
        /// Case-insensitive
        term: String,
    },
    /// Show an instance in full (JSON): with its last IDENT, UPLINK echo and STATS
    InspectInstance {
        /// Id, alias or id prefix
        id: String,
    },
    /// Set an instance's alias (and description)
    InstanceAlias {
        /// Id, alias or id prefix
        id: String,
        /// The new alias; "" clears it
        alias: String,
        /// Also set its description ("" clears it)
        #[arg(long)]
        description: Option<String>,
    },
    /// Forget instances and what is stored of them (none unless all exist)
    DeleteInstance {
        /// Ids, aliases or id prefixes
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// An instance's recent log output, as it sent it
    InstanceLogs {
        /// Id, alias or id prefix
        id: String,
        /// Keep printing new output until interrupted (or the instance is deleted)
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N lines
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// List the panics an instance reported
    InstancePanics {
        /// Id, alias or id prefix
        id: String,
    },
    /// The text of one of an instance's panics
    InstancePanic {
        /// Id, alias or id prefix
        id: String,
        /// As instance-panics lists it
        panic_id: String,
    },
    /// Live-update an instance with an image (a job); prints the job's id
    Deploy {
        /// Follow the job's log until it ends; exit 1 if it failed
        #[arg(long)]
        wait: bool,
        /// Deploy even when the image's uplink URL differs from the instance's or is unknown
        #[arg(long)]
        force: bool,
        /// Seconds for the instance to come back with the image [default: 120]
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// Id, alias or id prefix
        instance: String,
        /// Image id (SHA-1) or a prefix of it
        image: String,
    },
    /// Bob providers and their bobs: the candidate builders
    Bob {
        #[command(subcommand)]
        cmd: BobCommand,
    },
    /// List builders
    Builders,
    /// Show a builder
    InspectBuilder {
        /// Builder id or a prefix of it
        id: String,
    },
    /// Delete a builder and its base (refused while a build uses it)
    DeleteBuilder {
        /// Builder id or a prefix of it
        id: String,
    },
    /// Build an image of SERVICE with BUILDER (a job); prints the job's id,
    /// or with --waitAndPrint the image's
    Build {
        /// The service, e.g. Starbase
        service: String,
        /// Builder id or a prefix of it
        builder: String,
        /// NaCl id, name or id prefix
        #[arg(long)]
        nacl: Option<String>,
        /// Or a NaCl file, sent with the request
        #[arg(long = "nacl-file", value_name = "FILE", conflicts_with = "nacl")]
        nacl_file: Option<PathBuf>,
        /// Uplink id, name or id prefix [default: the default uplink]
        #[arg(long)]
        uplink: Option<String>,
        /// Image tag [default: the uplink's]
        #[arg(long)]
        tag: Option<String>,
        /// Image name [default: the NaCl's name]
        #[arg(long)]
        name: Option<String>,
        /// Follow the build's log (to stderr) and print the image id; exit 1 if it failed
        #[arg(long = "waitAndPrint")]
        wait_and_print: bool,
    },
    /// Rebuild an instance's image with a builder (its own uplink and tag)
    /// and live-update it: one job
    Upgrade {
        /// Id, alias or id prefix
        instance: String,
        /// Builder id or a prefix of it
        #[arg(long)]
        builder: String,
        /// NaCl [default: the one of the image it runs]
        #[arg(long)]
        nacl: Option<String>,
        /// Service [default: the one it reports]
        #[arg(long)]
        service: Option<String>,
        /// Deploy even when the deploy check warns
        #[arg(long)]
        force: bool,
        /// Follow the job's log until it ends; exit 1 if it failed
        #[arg(long)]
        wait: bool,
    },
    /// List jobs (newest first)
    Jobs,
    /// Show a job, or follow its log until it ends (exit 0 if it succeeded)
    Job {
        /// Job id or a prefix of it
        id: String,
        /// Print its log as it grows until the job ends
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BobCommand {
    /// Refresh a provider's list of bobs (every provider's without PROVIDER)
    Update { provider: Option<String> },
    /// List the bobs of a provider (of every provider without PROVIDER)
    List { provider: Option<String> },
    /// Fetch, verify and import a bob as a builder (a job); prints the job's id
    Prepare {
        /// Follow the job's log until it ends; exit 1 if it failed
        #[arg(long)]
        wait: bool,
        provider: String,
        /// Bob id, as `bob list` shows it
        bob: String,
    },
    /// List bob providers
    Providers,
}

/// Runs one of the client commands.
pub fn run(flags: &ServerFlags, cmd: RemoteCommand, format: Format) -> Result<i32, CliError> {
    if let RemoteCommand::Login = cmd {
        return login_command(flags, format);
    }
    let c = flags.connect()?;
    match cmd {
        RemoteCommand::Login => unreachable!("handled above"),
        RemoteCommand::Info => {
            let a = c.get("/v1/info")?;
            let v = &a.value;
            let fields = vec![
                ("name", s(v, "name")),
                ("version", s(v, "version")),
                ("api version", s(v, "apiVersion")),
                ("uptime", uptime(v["uptime"].as_u64())),
                ("started", s(v, "started")),
                ("tls", s(v, "tls")),
                ("auth", s(v, "auth")),
                ("hangar", s(&v["hangar"], "url")),
                ("features", strings(&v["features"])),
                ("server", c.base().to_string()),
            ];
            one(format, &a, fields, s(v, "name"))?;
        }
        RemoteCommand::Uplinks => {
            let a = c.get("/v1/uplinks")?;
            list(format, &a, &["ID", "NAME", "URL", "TAG", "UPDATED"], |u| {
                vec![
                    short(&s(u, "id")),
                    s(u, "name"),
                    s(u, "url"),
                    s(u, "tag"),
                    ago(u, "updated"),
                ]
            })?;
        }
        RemoteCommand::PushUplink { file } => push_uplink(&c, &file, format)?,
        RemoteCommand::InspectUplink { id } => {
            let a = c.get(&format!("/v1/uplinks/{}", enc(&id)))?;
            let u = &a.value;
            let fields = [
                "id",
                "name",
                "url",
                "token",
                "tag",
                "index",
                "verify",
                "reboot",
                "ws_logging",
                "serialize_ct",
                "send_stats",
                "created",
                "updated",
            ]
            .into_iter()
            .map(|k| (k, s(u, k)))
            .collect();
            one(format, &a, fields, s(u, "id"))?;
        }
        RemoteCommand::DeleteUplink { id } => {
            let a = c.delete(&format!("/v1/uplinks/{}", enc(&id)))?;
            deleted(format, "uplink", &a)?;
        }
        RemoteCommand::Nacls => {
            let a = c.get("/v1/nacls")?;
            list(format, &a, &["ID", "NAME", "SIZE", "UPDATED"], |n| {
                vec![
                    short(&s(n, "id")),
                    s(n, "name"),
                    output::bytes(n["content"].as_str().map_or(0, |t| t.len() as u64)),
                    ago(n, "updated"),
                ]
            })?;
        }
        RemoteCommand::PushNacl {
            file,
            builder,
            name,
            force,
        } => push_nacl(&c, &file, builder.as_deref(), (&name, force), format)?,
        RemoteCommand::PullNacl { id, file } => {
            let path = format!("/v1/nacls/{}", enc(&id));
            match file {
                Some(target) => {
                    let n = c.download_to(&target, &path, "text/plain", &mut |_, _| {})?;
                    eprintln!("wrote {} ({})", target.display(), output::bytes(n));
                }
                None => {
                    let text = c.get_text(&path)?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .map_err(stdout_error)?;
                }
            }
        }
        RemoteCommand::InspectNacl { id } => {
            let a = c.get(&format!("/v1/nacls/{}", enc(&id)))?;
            let n = &a.value;
            let size = n["content"].as_str().map_or(0, |t| t.len() as u64);
            let fields = vec![
                ("id", s(n, "id")),
                ("name", s(n, "name")),
                ("size", output::bytes(size)),
                ("created", s(n, "created")),
                ("updated", s(n, "updated")),
            ];
            one(format, &a, fields, s(n, "id"))?;
        }
        RemoteCommand::DeleteNacl { id } => {
            let a = c.delete(&format!("/v1/nacls/{}", enc(&id)))?;
            deleted(format, "NaCl", &a)?;
        }
        RemoteCommand::Images => {
            let a = c.get("/v1/images")?;
            list(format, &a, &["ID", "NAME", "TAG", "SIZE", "CREATED"], |i| {
                vec![
                    short(&s(i, "id")),
                    s(i, "name"),
                    s(i, "tag"),
                    output::bytes(i["size"].as_u64().unwrap_or(0)),
                    ago(i, "created"),
                ]
            })?;
        }
        RemoteCommand::PushImage { file, name, tag } => {
            let mut path = format!("/v1/images?name={}", enc(&name));
            if let Some(t) = &tag {
                path.push_str(&format!("&tag={}", enc(t)));
            }
            let mut bar = Progress::new(format!("pushing {}", file.display()));
            let sent = c.upload_file(&file, &path, &mut |d, t| bar.update(d, t));
            bar.finish();
            let a = sent?;
            let id = s(&a.value, "id");
            if a.status == 200 {
                eprintln!("image {} was stored already", short(&id));
            } else {
                eprintln!("pushed image {name} ({})", short(&id));
            }
            made(format, &a)?;
        }
        RemoteCommand::PullImage { id, file } => {
            let mut bar = Progress::new(format!("pulling {id}"));
            let got = c.download_to(
                &file,
                &format!("/v1/images/{}", enc(&id)),
                "application/octet-stream",
                &mut |d, t| bar.update(d, t),
            );
            bar.finish();
            let n = got?;
            eprintln!("wrote {} ({})", file.display(), output::bytes(n));
        }
        RemoteCommand::InspectImage { id } => {
            let a = c.get(&format!("/v1/images/{}", enc(&id)))?;
            let i = &a.value;
            let fields = [
                "id",
                "name",
                "tag",
                "size",
                "sha256",
                "builderId",
                "naclId",
                "uplinkId",
                "uplinkUrl",
                "includeosVersion",
                "created",
            ]
            .into_iter()
            .map(|k| match k {
                "size" => (k, output::bytes(i["size"].as_u64().unwrap_or(0))),
                _ => (k, s(i, k)),
            })
            .collect();
            one(format, &a, fields, s(i, "id"))?;
        }
        RemoteCommand::DeleteImage { id } => {
            let a = c.delete(&format!("/v1/images/{}", enc(&id)))?;
            deleted(format, "image", &a)?;
        }
        RemoteCommand::Instances { status } => {
            let path = match status {
                Some(st) => format!("/v1/instances?status={}", enc(&st)),
                None => "/v1/instances".to_string(),
            };
            instance_list(&c, &path, format)?;
        }
        RemoteCommand::Search { term } => {
            instance_list(&c, &format!("/v1/instances?q={}", enc(&term)), format)?;
        }
        RemoteCommand::InspectInstance { id } => {
            let a = c.get(&format!("/v1/instances/{}", enc(&id)))?;
            match format {
                Format::Id => println!("{}", s(&a.value, "id")),
                Format::Table | Format::Json => print_json(&a.text),
            }
        }
        RemoteCommand::InstanceAlias {
            id,
            alias,
            description,
        } => {
            let text_or_null = |t: String| if t.is_empty() { Value::Null } else { json!(t) };
            let mut body = json!({ "alias": text_or_null(alias) });
            if let Some(d) = description {
                body["description"] = text_or_null(d);
            }
            let a = c.send(Method::PATCH, &format!("/v1/instances/{}", enc(&id)), &body)?;
            let i = &a.value;
            match i["alias"].as_str() {
                Some(alias) => eprintln!("instance {} is {alias}", short_instance(&s(i, "id"))),
                None => eprintln!("instance {} has no alias", short_instance(&s(i, "id"))),
            }
            made(format, &a)?;
        }
        RemoteCommand::DeleteInstance { ids } => {
            let a = match ids.as_slice() {
                [one] => c.delete(&format!("/v1/instances/{}", enc(one)))?,
                several => {
                    let list: Vec<String> = several.iter().map(|i| enc(i)).collect();
                    c.delete(&format!("/v1/instances?ids={}", list.join(",")))?
                }
            };
            let gone = match a.value.as_array() {
                Some(items) => items.clone(),
                None => vec![a.value.clone()],
            };
            match format {
                Format::Json => print_json(&a.text),
                Format::Id => gone.iter().for_each(|i| println!("{}", s(i, "id"))),
                Format::Table => gone
                    .iter()
                    .for_each(|i| eprintln!("deleted instance {}", instance_label(i))),
            }
        }
        RemoteCommand::InstanceLogs { id, follow, tail } => {
            let mut path = format!("/v1/instances/{}/logs?follow={follow}", enc(&id));
            if let Some(n) = tail {
                path.push_str(&format!("&tail={n}"));
            }
            c.stream_text(&path, &mut std::io::stdout().lock())?;
        }
        RemoteCommand::InstancePanics { id } => {
            let a = c.get(&format!("/v1/instances/{}/panics", enc(&id)))?;
            list(format, &a, &["ID", "CREATED", "SIZE"], |p| {
                vec![
                    s(p, "id"),
                    ago(p, "created"),
                    output::bytes(p["size"].as_u64().unwrap_or(0)),
                ]
            })?;
        }
        RemoteCommand::InstancePanic { id, panic_id } => {
            let text = c.get_text(&format!(
                "/v1/instances/{}/panics/{}",
                enc(&id),
                enc(&panic_id)
            ))?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(stdout_error)?;
        }
        RemoteCommand::Deploy {
            wait,
            force,
            timeout,
            instance,
            image,
        } => {
            let mut body = json!({ "force": force });
            if let Some(t) = timeout {
                body["timeout"] = json!(t);
            }
            let a = c.send(
                Method::POST,
                &format!("/v1/instances/{}/deploy/{}", enc(&instance), enc(&image)),
                &body,
            )?;
            made(format, &a)?;
            if !wait {
                return Ok(0);
            }
            finished_job(&c, &a, &format!("deploying {image} to {instance}"))?;
        }
        RemoteCommand::Bob { cmd } => return bob(&c, cmd, format),
        RemoteCommand::Builders => {
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
        }
        RemoteCommand::InspectBuilder { id } => {
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
        }
        RemoteCommand::DeleteBuilder { id } => {
            let a = c.delete(&format!("/v1/builders/{}", enc(&id)))?;
            deleted(format, "builder", &a)?;
        }
        RemoteCommand::Build {
            service,
            builder,
            nacl,
            nacl_file,
            uplink,
            tag,
            name,
            wait_and_print,
        } => {
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
            let job = finished_job(&c, &a, &format!("building {service} with {builder}"))?;
            match format {
                Format::Json => println!("{}", pretty(&job["result"].to_string())),
                Format::Table | Format::Id => println!("{}", s(&job["result"], "id")),
            }
        }
        RemoteCommand::Upgrade {
            instance,
            builder,
            nacl,
            service,
            force,
            wait,
        } => {
            let mut body = json!({ "builderId": builder, "force": force });
            for (key, value) in [("naclId", nacl), ("service", service)] {
                if let Some(v) = value {
                    body[key] = json!(v);
                }
            }
            let a = c.send(
                Method::POST,
                &format!("/v1/instances/{}/upgrade", enc(&instance)),
                &body,
            )?;
            made(format, &a)?;
            if wait {
                finished_job(&c, &a, &format!("upgrading {instance}"))?;
            }
        }
        RemoteCommand::Jobs => {
            let a = c.get("/v1/jobs")?;
            list(
                format,
                &a,
                &["ID", "KIND", "TARGET", "STATE", "PROGRESS", "CREATED"],
                |j| {
                    vec![
                        short(&s(j, "id")),
                        s(j, "kind"),
                        s(j, "target"),
                        s(j, "state"),
                        format!("{:.0}%", j["progress"].as_f64().unwrap_or(0.0) * 100.0),
                        ago(j, "created"),
                    ]
                },
            )?;
        }
        RemoteCommand::Job { id, follow } => {
            if !follow {
                let a = c.get(&format!("/v1/jobs/{}", enc(&id)))?;
                let j = &a.value;
                let fields = [
                    "id", "kind", "target", "state", "progress", "error", "created", "started",
                    "finished",
                ]
                .into_iter()
                .map(|k| (k, s(j, k)))
                .collect();
                one(format, &a, fields, s(j, "id"))?;
                return Ok(0);
            }
            let job = follow_job(&c, &id, &mut std::io::stdout())?;
            let state = s(&job, "state");
            match job["error"].as_str() {
                Some(e) => eprintln!("job {} {state}: {e}", short(&s(&job, "id"))),
                None => eprintln!("job {} {state}", short(&s(&job, "id"))),
            }
            return Ok(if state == "succeeded" { 0 } else { 1 });
        }
    }
    Ok(0)
}

fn login_command(flags: &ServerFlags, format: Format) -> Result<i32, CliError> {
    let path = login::path().map_err(ClientError::from)?;
    // A damaged file is what `login` repairs: start from the flags then.
    let stored = match login::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    };
    let mut l = Login::resolve(&flags.overrides(), stored);
    if l.username.is_none() && std::io::stdin().is_terminal() {
        l.username = read_line("username: ", false)?;
    }
    if l.username.is_some() && l.password.is_none() {
        l.password = read_line("password: ", true)?;
    }
    let c = Client::new(&l)?;
    let info = match c.get("/v1/info") {
        Ok(a) => a,
        Err(ClientError::Http {
            status: status @ (401 | 403),
            message,
            ..
        }) => {
            return Err(ClientError::from(login::LoginError::Refused {
                url: c.base().to_string(),
                message: format!("{message} ({status})"),
            })
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    login::save(&path, &l).map_err(ClientError::from)?;
    let v = &info.value;
    eprintln!(
        "logged in to {} as {}: {} (jetpack {}); saved in {}",
        c.base(),
        l.username.as_deref().unwrap_or("nobody (auth is off)"),
        s(v, "name"),
        s(v, "version"),
        path.display()
    );
    if format == Format::Json {
        print_json(&info.text);
    }
    Ok(0)
}

/// A line from the terminal (without echo for secrets) or from stdin when
/// it is not one; `None` when nothing was given.
fn read_line(prompt: &str, secret: bool) -> Result<Option<String>, CliError> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}");
    }
    let saved = if terminal && secret {
        use nix::sys::termios;
        termios::tcgetattr(&stdin).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_flags.remove(termios::LocalFlags::ECHO);
            let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &quiet);
        })
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read.map_err(|e| {
        CliError::Usage(format!(
            "reading {}: {e}",
            prompt.trim_end_matches([':', ' '])
        ))
    })?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    Ok((!line.is_empty()).then_some(line))
}

/// The fields the server makes itself: a file saved from `inspect-uplink
/// -o json` pushes back without them.
const SERVER_MADE: &[&str] = &["id", "created", "updated"];

fn push_uplink(c: &Client, file: &Path, format: Format) -> Result<(), CliError> {
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
    made(format, &a)
}

fn read_nacl(file: &Path) -> Result<String, CliError> {
    let content = std::fs::read(file).map_err(|e| ClientError::Io {
        what: file.display().to_string(),
        source: e,
    })?;
    String::from_utf8(content)
        .map_err(|_| CliError::Usage(format!("{}: a NaCl is UTF-8 text", file.display())))
}

fn push_nacl(
    c: &Client,
    file: &Path,
    builder: Option<&str>,
    (name, force): (&str, bool),
    format: Format,
) -> Result<(), CliError> {
    let content = read_nacl(file)?;
    if let Some(builder) = builder {
        let checked = c.send(
            Method::POST,
            &format!("/v1/nacls/validate/builders/{}", enc(builder)),
            &json!({ "content": content }),
        );
        refused_nacl(checked, file, &format!("builder {builder}"))?;
        eprintln!("builder {builder} finds {} valid", file.display());
    }
    let query = if force { "?force=true" } else { "" };
    let created = c.send(
        Method::POST,
        &format!("/v1/nacls{query}"),
        &json!({"name": name, "content": content}),
    );
    let a = match created {
        Err(e) if e.status() == Some(409) => {
            let updated = c.send(
                Method::PUT,
                &format!("/v1/nacls/{}{query}", enc(name)),
                &json!({"content": content}),
            );
            let a = refused_nacl(updated, file, "jetpack")?;
            eprintln!("updated NaCl {name}");
            a
        }
        other => {
            let a = refused_nacl(other, file, "jetpack")?;
            eprintln!("created NaCl {name}");
            a
        }
    };
    made(format, &a)
}

/// A request's answer, or, if `who` found the NaCl invalid (422 with
/// errors), each error as `FILE: line L:C message`.
fn refused_nacl(
    answer: Result<Answer, ClientError>,
    file: &Path,
    who: &str,
) -> Result<Answer, CliError> {
    if let Err(ClientError::Http { errors, .. }) = &answer {
        if !errors.is_empty() {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: line {}:{} {}",
                        file.display(),
                        e["line"],
                        e["column"],
                        s(e, "message")
                    )
                })
                .collect();
            return Err(CliError::Failed(format!(
                "{who} finds the NaCl invalid; not pushed (--force stores it anyway):\n{}",
                lines.join("\n")
            )));
        }
    }
    Ok(answer?)
}

/// An instance list (all, filtered or searched) as a table.
fn instance_list(c: &Client, path: &str, format: Format) -> Result<(), CliError> {
    let a = c.get(path)?;
    list(
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
        |i| {
            let mut status = s(i, "status");
            if i["panicked"].as_bool() == Some(true) {
                status.push_str(", panicked");
            }
            vec![
                short_instance(&s(i, "id")),
                s(i, "alias"),
                status,
                s(i, "version"),
                s(i, "service"),
                s(i, "tag"),
                short(&s(i, "imageId")),
                strings(&i["addresses"]),
                ago(i, "lastSeen"),
            ]
        },
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
fn instance_label(i: &Value) -> String {
    let id = short_instance(&s(i, "id"));
    match i["alias"].as_str() {
        Some(alias) => format!("{alias} ({id})"),
        None => id,
    }
}

fn is_finished(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

/// Follows the job `a` answers with (its log to stderr, so that stdout
/// stays the command's answer) and returns it once it succeeded; `doing`
/// names the work in the error when it did not.
fn finished_job(c: &Client, a: &Answer, doing: &str) -> Result<Value, CliError> {
    let job = follow_job(c, &s(&a.value, "id"), &mut std::io::stderr())?;
    if s(&job, "state") != "succeeded" {
        return Err(CliError::Failed(format!(
            "{doing} {}: {}",
            s(&job, "state"),
            job["error"]
                .as_str()
                .unwrap_or("see `jetpack job` for its log")
        )));
    }
    Ok(job)
}

/// `bob` commands.
fn bob(c: &Client, cmd: BobCommand, format: Format) -> Result<i32, CliError> {
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
            let builder = &job["result"];
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

/// Copies a job's log to `out` while it runs, then returns the finished job.
fn follow_job(c: &Client, id: &str, out: &mut dyn Write) -> Result<Value, CliError> {
    let path = format!("/v1/jobs/{}", enc(id));
    c.stream_text(&format!("{path}/log"), out)?;
    // The log ends when the job has finished; should the stream end early
    // (a proxy, a restart), wait for the state instead.
    loop {
        let job: Value = c.get_json(&path)?;
        if is_finished(job["state"].as_str().unwrap_or("")) {
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

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
            let id = s(&job.value, "id");
            // The job's log is commentary: stderr, so stdout stays the base.
            let done = follow_job(&c, &id, &mut std::io::stderr())?;
            if s(&done, "state") != "succeeded" {
                return Err(CliError::Failed(format!(
                    "importing {source} {}: {}",
                    s(&done, "state"),
                    done["error"]
                        .as_str()
                        .unwrap_or("see `jetpack job` for its log")
                )));
            }
            let base_id = s(&done["result"], "id");
            let a = c.get(&format!("/v1/bases/{}", enc(&base_id)))?;
            match format {
                Format::Table | Format::Id => println!("{base_id}"),
                Format::Json => print_json(&a.text),
            }
        }
        BaseCommand::List => {
            let a = c.get("/v1/bases")?;
            list(
                format,
                &a,
                &["ID", "NAME", "SIZE", "STATE", "CREATED"],
                |b| {
                    vec![
                        short(&s(b, "id")),
                        s(b, "name"),
                        output::bytes(b["size"].as_u64().unwrap_or(0)),
                        s(b, "state"),
                        ago(b, "created"),
                    ]
                },
            )?;
        }
        BaseCommand::Show { base } => {
            let a = c.get(&format!("/v1/bases/{}", enc(&base)))?;
            let b = &a.value;
            let fields = vec![
                ("id", s(b, "id")),
                ("name", s(b, "name")),
                ("source", s(b, "source")),
                ("size", output::bytes(b["size"].as_u64().unwrap_or(0))),
                ("state", s(b, "state")),
                ("created", s(b, "created")),
            ];
            one(format, &a, fields, s(b, "id"))?;
        }
        BaseCommand::Rm { base } => {
            let a = c.delete(&format!("/v1/bases/{}", enc(&base)))?;
            deleted(format, "base", &a)?;
        }
    }
    Ok(0)
}

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

// ---- printing --------------------------------------------------------

/// A field as text: strings as they are, null or absent as `-`, other
/// values as JSON.
fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(t)) if t.is_empty() => "-".into(),
        Some(Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
    }
}

fn strings(v: &Value) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}

/// A uuid's first block, or the first 12 characters of a digest.
fn short(id: &str) -> String {
    let n = if id.len() == 36 && id.as_bytes().get(8) == Some(&b'-') {
        8
    } else {
        12
    };
    id.chars().take(n).collect()
}

/// "5m ago" from an RFC 3339 time field.
fn ago(v: &Value, key: &str) -> String {
    let Some(t) = v.get(key).and_then(Value::as_str) else {
        return "-".into();
    };
    match humantime::parse_rfc3339_weak(t) {
        Ok(time) => {
            let secs = time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            output::time(Some(secs))
        }
        Err(_) => t.to_string(),
    }
}

fn uptime(secs: Option<u64>) -> String {
    secs.map(|s| humantime::format_duration(Duration::from_secs(s)).to_string())
        .unwrap_or_else(|| "-".into())
}

fn stdout_error(e: std::io::Error) -> ClientError {
    ClientError::Io {
        what: "standard output".into(),
        source: e,
    }
}

fn print_json(text: &str) {
    println!("{}", pretty(text));
}

fn items(a: &Answer) -> Result<&Vec<Value>, CliError> {
    a.value.as_array().ok_or_else(|| {
        ClientError::BadResponse {
            url: a.url.clone(),
            reason: "expected a JSON array".into(),
        }
        .into()
    })
}

fn list(
    format: Format,
    a: &Answer,
    headers: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) -> Result<(), CliError> {
    if format == Format::Json {
        print_json(&a.text);
        return Ok(());
    }
    output::list(format, items(a)?, headers, row, |v| s(v, "id"));
    Ok(())
}

fn one(
    format: Format,
    a: &Answer,
    fields: Vec<(&str, String)>,
    id: String,
) -> Result<(), CliError> {
    if format == Format::Json {
        print_json(&a.text);
    } else {
        output::one(format, &a.value, fields, id);
    }
    Ok(())
}

/// What a create or update made: its id (table, id) or its JSON.
fn made(format: Format, a: &Answer) -> Result<(), CliError> {
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => println!("{}", s(&a.value, "id")),
    }
    Ok(())
}

fn deleted(format: Format, kind: &str, a: &Answer) -> Result<(), CliError> {
    let v = &a.value;
    match format {
        Format::Table => eprintln!("deleted {kind} {} ({})", s(v, "name"), short(&s(v, "id"))),
        Format::Json => print_json(&a.text),
        Format::Id => println!("{}", s(v, "id")),
    }
    Ok(())
}

/// Indents compact JSON text the way serde_json's pretty printer does,
/// keeping everything else (key order, number spelling) as the server
/// wrote it: `-o json` shows the server's document, not our reading of it.
pub fn pretty(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(ch) = chars.next() {
        if in_string {
            out.push(ch);
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => {
                in_string = true;
                out.push(ch);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if ch == '{' { '}' } else { ']' };
                out.push(ch);
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(ch);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

// ---- progress --------------------------------------------------------

/// A one-line progress bar on stderr, drawn only when stderr is a
/// terminal (scripts and logs get no carriage returns), at most ten times
/// a second.
pub struct Progress {
    label: String,
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(label: String) -> Progress {
        Progress {
            label,
            enabled: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last: None,
        }
    }

    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let complete = total == Some(done);
        if !complete
            && self
                .last
                .is_some_and(|l| now.duration_since(l) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        eprint!(
            "\r{}\x1b[K",
            progress_line(&self.label, done, total, now.duration_since(self.start))
        );
    }

    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            eprintln!();
        }
    }
}

fn progress_line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        format!("{}/s", output::bytes((done as f64 / secs) as u64))
    } else {
        "-".into()
    };
    match total {
        Some(t) if t > 0 => {
            let pct = (done as f64 * 100.0 / t as f64).min(100.0);
            let width = 24usize;
            let filled = ((pct / 100.0) * width as f64) as usize;
            format!(
                "{label} [{}{}] {} / {} {pct:3.0}% {rate}",
                "#".repeat(filled),
                " ".repeat(width - filled),
                output::bytes(done),
                output::bytes(t),
            )
        }
        _ => format!("{label} {} {rate}", output::bytes(done)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_matches_serde_and_keeps_the_order() {
        let text =
            r#"{"z":1,"a":[],"m":{},"s":"a,b:{[\"]}","n":[1.0,{"x":null}],"e":{"k":[true]}}"#;
        let p = pretty(text);
        let sorted =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(text).unwrap()).unwrap();
        // The same document, the same layout, only in the server's order.
        assert_eq!(
            serde_json::from_str::<Value>(&p).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(p.lines().count(), sorted.lines().count());
        assert!(
            p.starts_with(
                "{\n  \"z\": 1,\n  \"a\": [],\n  \"m\": {},\n  \"s\": \"a,b:{[\\\"]}\",\n"
            ),
            "{p}"
        );
        assert!(
            p.contains("\"n\": [\n    1.0,\n    {\n      \"x\": null\n    }\n  ],"),
            "{p}"
        );
        assert_eq!(pretty("[]"), "[]");
        assert_eq!(pretty("[ ]"), "[]");
    }

    #[test]
    fn fields_and_ids() {
        let v = json!({"a": "x", "b": null, "c": 3, "d": "", "f": ["p", "q"]});
        assert_eq!(s(&v, "a"), "x");
        assert_eq!(s(&v, "b"), "-");
        assert_eq!(s(&v, "c"), "3");
        assert_eq!(s(&v, "d"), "-");
        assert_eq!(s(&v, "missing"), "-");
        assert_eq!(strings(&v["f"]), "p, q");
        assert_eq!(short("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short("6f1c0e1a-1111-4222-8333-944445555666"), "6f1c0e1a");
    }

    #[test]
    fn progress_lines() {
        let l = progress_line("pushing f", 512, Some(1024), Duration::from_secs(1));
        assert!(l.contains("512 B / 1.0 KiB"), "{l}");
        assert!(l.contains(" 50%"), "{l}");
        assert!(l.contains("512 B/s"), "{l}");
        let l = progress_line("pulling", 2048, None, Duration::from_secs(2));
        assert_eq!(l, "pulling 2.0 KiB 1.0 KiB/s");
    }
}
