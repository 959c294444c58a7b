//! `isos`, `push-iso`, `delete-iso`, the same for `microkernels`, and
//! `osimages`, `add-osimage`, `delete-osimage`: the boot files on the
//! server (issue 19). Uploads show a progress bar; `add-osimage --wait`
//! follows the job's log and fails when the OS image did.

use std::path::PathBuf;

use ureq::http::Method;

use super::jobs::follow_job;
use super::print::*;
use super::progress::Progress;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Answer, Client};
use crate::model::bootfiles::{
    OsImage, OsImageAccepted, OsImageRequest, OsImageSource, StoredFile,
};

/// A store's collection and its word in messages.
fn store(microkernel: bool) -> (&'static str, &'static str) {
    if microkernel {
        ("microkernels", "microkernel")
    } else {
        ("isos", "ISO")
    }
}

/// What a command answers with: the JSON, or the name (table, id).
fn answer(format: Format, a: &Answer, name: &str) {
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => println!("{name}"),
    }
}

/// `isos`, `microkernels`: the table.
pub fn table(c: &Client, microkernel: bool, format: Format) -> Result<(), CliError> {
    let (collection, _) = store(microkernel);
    let a = c.get(&format!("/v1/{collection}"))?;
    list_of(
        format,
        &a,
        &["NAME", "SIZE", "SHA256", "CREATED"],
        |f: &StoredFile| {
            vec![
                text(Some(&f.name)),
                output::bytes(f.size),
                short(&f.sha256),
                ago_at(Some(&f.created)),
            ]
        },
        |f| f.name.clone(),
    )
}

/// `push-iso`, `push-microkernel`: an upload with a progress bar.
pub fn push(
    c: &Client,
    microkernel: bool,
    file: PathBuf,
    name: String,
    format: Format,
) -> Result<(), CliError> {
    let (collection, word) = store(microkernel);
    let path = format!("/v1/{collection}?name={}", enc(&name));
    let mut bar = Progress::new(format!("pushing {}", file.display()));
    let sent = c.upload_file(&file, &path, &mut |d, t| bar.update(d, t));
    bar.finish();
    let a = sent?;
    let f: StoredFile = a.decode()?;
    eprintln!("pushed {word} {} ({})", f.name, output::bytes(f.size));
    answer(format, &a, &f.name);
    Ok(())
}

/// `delete-iso`, `delete-microkernel`.
pub fn delete(c: &Client, microkernel: bool, name: String, format: Format) -> Result<(), CliError> {
    let (collection, word) = store(microkernel);
    let a = c.delete(&format!("/v1/{collection}/{}", enc(&name)))?;
    let f: StoredFile = a.decode()?;
    if format == Format::Table {
        eprintln!("deleted {word} {}", f.name);
    }
    answer(format, &a, &f.name);
    Ok(())
}

/// `osimages`: the table.
pub fn osimages(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/osimages")?;
    list_of(
        format,
        &a,
        &["NAME", "VERSION", "STATE", "PROGRESS", "SOURCE", "REASON"],
        |o: &OsImage| {
            vec![
                text(Some(&o.name)),
                text(Some(&o.version)),
                text(Some(&o.state)),
                format!("{:.0}%", o.progress * 100.0),
                format!("{} {}", o.source_kind, o.source).trim().to_string(),
                text(o.reason.as_deref()),
            ]
        },
        |o| format!("{}/{}", o.name, o.version),
    )
}

/// Where `add-osimage` takes the ISO from (exactly one, clap sees to it).
pub struct From {
    pub iso: Option<String>,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub file: Option<PathBuf>,
    pub path: Option<String>,
}

/// `add-osimage NAME VERSION --iso N | --url U [--sha256 H] | --file F |
/// --path P [--wait]`.
pub fn add(
    c: &Client,
    name: String,
    version: String,
    from: From,
    wait: bool,
    format: Format,
) -> Result<i32, CliError> {
    let a = if let Some(file) = from.file {
        let path = format!(
            "/v1/osimages/upload?name={}&version={}",
            enc(&name),
            enc(&version)
        );
        let mut bar = Progress::new(format!("pushing {}", file.display()));
        let sent = c.upload_file(&file, &path, &mut |d, t| bar.update(d, t));
        bar.finish();
        sent?
    } else {
        let source = match (from.iso, from.url, from.path) {
            (Some(iso), _, _) => OsImageSource::Iso { iso },
            (_, Some(url), _) => OsImageSource::Url {
                url,
                sha256: from.sha256,
            },
            (_, _, Some(path)) => OsImageSource::Path { path },
            _ => {
                return Err(CliError::Usage(
                    "give one of --iso, --url, --file or --path".into(),
                ))
            }
        };
        let body = OsImageRequest {
            name: name.clone(),
            version: version.clone(),
            source,
        };
        c.send(Method::POST, "/v1/osimages", &body)?
    };
    let accepted: OsImageAccepted = a.decode()?;
    if !wait {
        answer(format, &a, &format!("{name}/{version}"));
        return Ok(0);
    }
    follow_job(c, &accepted.job.id, &mut std::io::stderr())?;
    let path = format!("/v1/osimages/{}/{}", enc(&name), enc(&version));
    let done = c.get(&path)?;
    let image: OsImage = done.decode()?;
    answer(format, &done, &format!("{name}/{version}"));
    if image.state == "ready" {
        Ok(0)
    } else {
        Err(CliError::Failed(format!(
            "OS image {name} {version} {}: {}",
            image.state,
            image.reason.as_deref().unwrap_or("see its job's log")
        )))
    }
}

/// `delete-osimage NAME VERSION`.
pub fn delete_osimage(
    c: &Client,
    name: String,
    version: String,
    format: Format,
) -> Result<(), CliError> {
    let a = c.delete(&format!("/v1/osimages/{}/{}", enc(&name), enc(&version)))?;
    if format == Format::Table {
        eprintln!("deleted OS image {name} {version}");
    }
    answer(format, &a, &format!("{name}/{version}"));
    Ok(())
}
