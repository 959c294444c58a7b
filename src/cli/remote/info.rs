//! `info`: what the server says about itself.

use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::Client;

/// `info`: the server's name, version, uptime, features.
pub fn show(c: &Client, format: Format) -> Result<(), CliError> {
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
    Ok(())
}
