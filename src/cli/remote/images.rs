//! `images`, `push-image`, `pull-image`, `inspect-image`,
//! `delete-image`: the image blobs on the server.

use std::path::PathBuf;

use super::print::*;
use super::progress::Progress;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Client};

/// `images`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
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
    Ok(())
}

/// `push-image`: an upload with a progress bar.
pub fn push(
    c: &Client,
    file: PathBuf,
    name: String,
    tag: Option<String>,
    format: Format,
) -> Result<(), CliError> {
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
    Ok(())
}

/// `pull-image`: a download with a progress bar.
pub fn pull(c: &Client, id: String, file: PathBuf) -> Result<(), CliError> {
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
    Ok(())
}

/// `inspect-image`.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
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
    Ok(())
}

/// `delete-image`.
pub fn delete(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.delete(&format!("/v1/images/{}", enc(&id)))?;
    deleted(format, "image", &a)?;
    Ok(())
}
