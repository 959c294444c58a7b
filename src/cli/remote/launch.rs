//! Launched instances from the CLI: `launch` (a local ELF is pushed first,
//! as Mothership's launch took a file), `instance-console`, and `stop`,
//! `start` and `restart`.

use std::path::Path;

use ureq::http::Method;

use super::jobs::finished_job;
use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::{enc, Client};
use crate::model::images::Image;
use crate::model::instances::{Instance, LaunchRequest};

/// `launch`: waits for the launch job, prints the instance's id.
pub fn launch(
    c: &Client,
    mut req: LaunchRequest,
    image: Option<String>,
    attach: bool,
    format: Format,
) -> Result<(), CliError> {
    if let Some(image) = image {
        req.image_id = Some(image_reference(c, image)?);
    }
    let a = c.send(Method::POST, "/v1/instances", &req)?;
    let job = finished_job(c, &a, "launching")?;
    let result = job
        .result
        .ok_or_else(|| CliError::Failed("the launch job gave no instance".into()))?;
    let instance: Instance = serde_json::from_value(result.clone())?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Format::Table | Format::Id => println!("{}", instance.id),
    }
    if attach {
        console(c, instance.id, true)?;
    }
    Ok(())
}

/// An image reference as given: a local ELF file is pushed and named by
/// its id; anything else is the server's to resolve.
fn image_reference(c: &Client, image: String) -> Result<String, CliError> {
    let path = Path::new(&image);
    if !path.is_file() {
        return Ok(image);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::names::Name::new("image name", n).is_ok())
        .unwrap_or("launched")
        .to_string();
    let a = c.upload_file(
        path,
        &format!("/v1/images?name={}", enc(&name)),
        &mut |_, _| {},
    )?;
    Ok(a.decode::<Image>()?.id)
}

/// `instance-console`.
pub fn console(c: &Client, id: String, follow: bool) -> Result<(), CliError> {
    c.stream_text(
        &format!("/v1/instances/{}/console?follow={follow}", enc(&id)),
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

/// `stop`, `start`, `restart`: the instance as it is afterwards.
pub fn verb(c: &Client, verb: &str, id: String, format: Format) -> Result<(), CliError> {
    let a = c.send(
        Method::POST,
        &format!("/v1/instances/{}/{verb}", enc(&id)),
        &serde_json::json!({}),
    )?;
    let instance: Instance = a.decode()?;
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => {
            println!("{} {}", instance.id, instance.status.as_str())
        }
    }
    Ok(())
}
