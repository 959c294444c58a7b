//! `nacls`, `push-nacl` (checked by a builder first if asked, and by the
//! server), `pull-nacl`, `inspect-nacl`, `delete-nacl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use ureq::http::Method;

use super::print::*;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Answer, Client, ClientError};
use crate::model::documents::Document;

/// `nacls`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/nacls")?;
    list_of(
        format,
        &a,
        &["ID", "NAME", "SIZE", "UPDATED"],
        |n: &Document| {
            vec![
                short(&text(Some(&n.id))),
                text(Some(&n.name)),
                output::bytes(n.content.len() as u64),
                ago_at(Some(&n.updated)),
            ]
        },
        |n| text(Some(&n.id)),
    )?;
    Ok(())
}

/// `pull-nacl`: to a file, or stdout.
pub fn pull(c: &Client, id: String, file: Option<PathBuf>) -> Result<(), CliError> {
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
    Ok(())
}

/// `inspect-nacl`.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/nacls/{}", enc(&id)))?;
    let n: Document = a.decode()?;
    let fields = vec![
        ("id", text(Some(&n.id))),
        ("name", text(Some(&n.name))),
        ("size", output::bytes(n.content.len() as u64)),
        ("created", text(Some(&n.created))),
        ("updated", text(Some(&n.updated))),
    ];
    one(format, &a, fields, text(Some(&n.id)))?;
    Ok(())
}

pub(super) fn read_nacl(file: &Path) -> Result<String, CliError> {
    let content = std::fs::read(file).map_err(|e| ClientError::Io {
        what: file.display().to_string(),
        source: e,
    })?;
    String::from_utf8(content)
        .map_err(|_| CliError::Usage(format!("{}: a NaCl is UTF-8 text", file.display())))
}

pub(super) fn push_nacl(
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
    // Warnings never refuse a save: shown, and the push succeeds.
    if let Ok(doc) = a.decode::<Document>() {
        for w in &doc.warnings {
            eprintln!(
                "{}: line {}:{} warning: {}",
                file.display(),
                w.line,
                w.column,
                w.message
            );
        }
    }
    made::<Document>(format, &a)
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
