//! `netboot set MAC --tag T | --image ID [--append ...]`, `netboot list`,
//! `netboot show MAC`, `netboot rm MAC`: which unikernel image a machine
//! booting with iPXE gets from the file server's `/boot/ipxe?mac=`.

use ureq::http::Method;

use super::args::NetbootCommand;
use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::{enc, Answer, Client};
use crate::model::netboot::{NetbootMapping, NetbootRequest};

/// What the mapping boots, as one word for tables and messages.
fn target(m: &NetbootMapping) -> String {
    match (&m.image_id, &m.tag) {
        (Some(id), _) => format!("image {}", short(id)),
        (_, Some(tag)) => format!("tag {tag}"),
        _ => "-".into(),
    }
}

/// The JSON, or the MAC (table, id).
fn answer(format: Format, a: &Answer, mac: &str) {
    match format {
        Format::Json => print_json(&a.text),
        Format::Table | Format::Id => println!("{mac}"),
    }
}

pub fn netboot(c: &Client, cmd: NetbootCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        NetbootCommand::Set {
            mac,
            tag,
            image,
            append,
        } => {
            let body = NetbootRequest {
                image_id: image,
                tag,
                append,
            };
            let a = c.send(Method::PUT, &format!("/v1/netboot/{}", enc(&mac)), &body)?;
            let m: NetbootMapping = a.decode()?;
            if format == Format::Table {
                eprintln!("{} boots {}", m.mac, target(&m));
            }
            answer(format, &a, &m.mac);
        }
        NetbootCommand::List => {
            let a = c.get("/v1/netboot")?;
            list_of(
                format,
                &a,
                &["MAC", "BOOTS", "APPEND", "UPDATED"],
                |m: &NetbootMapping| {
                    vec![
                        m.mac.clone(),
                        target(m),
                        text(Some(&m.append)),
                        ago_at(Some(&m.updated)),
                    ]
                },
                |m| m.mac.clone(),
            )?;
        }
        NetbootCommand::Show { mac } => {
            let a = c.get(&format!("/v1/netboot/{}", enc(&mac)))?;
            let m: NetbootMapping = a.decode()?;
            match format {
                Format::Json => print_json(&a.text),
                Format::Id => println!("{}", m.mac),
                Format::Table => {
                    println!("mac:      {}", m.mac);
                    println!("image:    {}", m.image_id.as_deref().unwrap_or("-"));
                    println!("tag:      {}", m.tag.as_deref().unwrap_or("-"));
                    println!("append:   {}", text(Some(&m.append)));
                    println!("updated:  {}", m.updated);
                }
            }
        }
        NetbootCommand::Rm { mac } => {
            let a = c.delete(&format!("/v1/netboot/{}", enc(&mac)))?;
            let m: NetbootMapping = a.decode()?;
            if format == Format::Table {
                eprintln!("deleted the netboot mapping of {}", m.mac);
            }
            answer(format, &a, &m.mac);
        }
    }
    Ok(0)
}
