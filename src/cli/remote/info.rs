//! `info`: what the server says about itself.

use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::Client;
use crate::model::info::Info;

/// `info`: the server's name, version, uptime, features.
pub fn show(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/info")?;
    let v: Info = a.decode()?;
    let fields = vec![
        ("name", text(Some(&v.name))),
        ("version", text(Some(&v.version))),
        ("api version", text(Some(&v.api_version))),
        ("uptime", uptime(Some(v.uptime))),
        ("started", text(Some(&v.started))),
        ("tls", v.tls.to_string()),
        ("auth", v.auth.to_string()),
        ("hangar", text(Some(&v.hangar.url))),
        ("features", texts(&v.features)),
        ("server", c.base().to_string()),
    ];
    one(format, &a, fields, text(Some(&v.name)))?;
    Ok(())
}
