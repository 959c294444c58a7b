//! `jetpack config`: the effective configuration, all keys or the ones
//! named, or jetpack.conf.sample.

use super::output::Format;
use super::CliError;
use crate::config::{self, Config};

/// `config [KEY...] [--sample]`.
pub(super) fn config(
    config: &Config,
    keys: &[String],
    sample: bool,
    format: Format,
) -> Result<i32, CliError> {
    if sample {
        print!("{}", config::sample());
        return Ok(0);
    }
    show_config(config, keys, format)?;
    Ok(0)
}

fn show_config(config: &Config, keys: &[String], format: Format) -> Result<(), CliError> {
    let entries: Vec<(String, String)> = if keys.is_empty() {
        config
            .entries()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    } else {
        keys.iter()
            .map(|k| {
                config
                    .get(k)
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| CliError::UnknownKey(k.clone()))
            })
            .collect::<Result<_, _>>()?
    };
    match format {
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = entries
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            println!("{}", serde_json::Value::Object(map));
        }
        _ if keys.len() == 1 => println!("{}", entries[0].1),
        _ => entries.iter().for_each(|(k, v)| println!("{k} = {v}")),
    }
    Ok(())
}
