//! `images`, `push-image`, `pull-image`, `inspect-image`,
//! `delete-image`: the image blobs on the server.

use std::path::PathBuf;

use super::print::*;
use super::progress::Progress;
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Client};
use crate::model::images::Image;

/// `images`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/images")?;
    let headers = ["ID", "NAME", "TAG", "SIZE", "CREATED"];
    list_of(
        format,
        &a,
        &headers,
        |i: &Image| {
            vec![
                short(&text(Some(&i.id))),
                text(Some(&i.name)),
                text(i.tag.as_deref()),
                output::bytes(i.size),
                ago_at(Some(&i.created)),
            ]
        },
        |i| text(Some(&i.id)),
    )?;
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
    let id = text(Some(&a.decode::<Image>()?.id));
    if a.status == 200 {
        eprintln!("image {} was stored already", short(&id));
    } else {
        eprintln!("pushed image {name} ({})", short(&id));
    }
    made::<Image>(format, &a)?;
    Ok(())
}

/// `pull-image`: a download with a progress bar; with `--disk FORMAT`,
/// the image made into a bootable disk by the server (its first request
/// takes a second or two before bytes flow).
pub fn pull(
    c: &Client,
    id: String,
    file: Option<PathBuf>,
    disk: Option<String>,
) -> Result<(), CliError> {
    let (path, accept, file) = match disk {
        None => {
            let file = file.ok_or_else(|| CliError::Usage("pull-image needs a FILE".into()))?;
            (
                format!("/v1/images/{}", enc(&id)),
                "application/octet-stream",
                file,
            )
        }
        Some(format) => {
            // Refused here with the server's own words before any request.
            let format = crate::disks::DiskFormat::parse(&format)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let file = match file {
                Some(f) => f,
                None => {
                    let i: Image = c.get(&format!("/v1/images/{}", enc(&id)))?.decode()?;
                    PathBuf::from(crate::disks::file_name(
                        &i.name,
                        i.tag.as_deref(),
                        i.includeos_version.as_deref(),
                        format,
                    ))
                }
            };
            let accept = if format == crate::disks::DiskFormat::Iso {
                "application/x-iso9660-image"
            } else {
                "application/octet-stream"
            };
            eprintln!("the server makes the {format} disk of {id} (once, then it is cached)");
            (
                format!("/v1/images/{}/disk?format={format}", enc(&id)),
                accept,
                file,
            )
        }
    };
    let mut bar = Progress::new(format!("pulling {id}"));
    let got = c.download_to(&file, &path, accept, &mut |d, t| bar.update(d, t));
    bar.finish();
    let n = got?;
    eprintln!("wrote {} ({})", file.display(), output::bytes(n));
    Ok(())
}

/// `inspect-image`.
pub fn inspect(c: &Client, id: String, format: Format) -> Result<(), CliError> {
    let a = c.get(&format!("/v1/images/{}", enc(&id)))?;
    let i: Image = a.decode()?;
    let fields = vec![
        ("id", text(Some(&i.id))),
        ("name", text(Some(&i.name))),
        ("tag", text(i.tag.as_deref())),
        ("size", output::bytes(i.size)),
        ("sha256", text(Some(&i.sha256))),
        ("builderId", text(i.builder_id.as_deref())),
        ("naclId", text(i.nacl_id.as_deref())),
        ("uplinkId", text(i.uplink_id.as_deref())),
        ("uplinkUrl", text(i.uplink_url.as_deref())),
        ("includeosVersion", text(i.includeos_version.as_deref())),
        ("created", text(Some(&i.created))),
    ];
    one(format, &a, fields, text(Some(&i.id)))?;
    Ok(())
}
