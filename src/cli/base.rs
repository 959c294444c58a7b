//! `jetpack base` on this host (the runtime's `Host`); `remote/bases.rs`
//! is the same command sent to a server with `--host`.

use std::io::IsTerminal;

use super::args::BaseCommand;
use super::output::{self, Format};
use super::CliError;
use crate::runtime::Host;

pub(super) fn base(host: Host, cmd: BaseCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        BaseCommand::Import {
            source,
            name,
            sha256,
        } => {
            let interactive = std::io::stderr().is_terminal();
            let mut progress = |n: u64| {
                if interactive {
                    eprint!("\rfetching {source}: {}   ", output::bytes(n));
                }
                std::ops::ControlFlow::Continue(())
            };
            let imported =
                host.import_base(&source, name.as_deref(), sha256.as_deref(), &mut progress);
            if interactive {
                eprintln!();
            }
            let imported = imported?;
            let b = &imported.base;
            if imported.existed {
                eprintln!("already imported as base {} ({})", b.name, b.id.short());
            }
            match format {
                Format::Table => println!("{}", b.id),
                _ => output::one(format, b, vec![], b.id.to_string()),
            }
        }
        BaseCommand::List => {
            let bases = host.bases()?;
            output::list(
                format,
                &bases,
                &["ID", "NAME", "SIZE", "STATE", "CREATED"],
                |b| {
                    vec![
                        b.id.short().to_string(),
                        b.name.to_string(),
                        output::bytes(b.size),
                        format!("{:?}", b.state).to_lowercase(),
                        output::time(Some(b.created_at)),
                    ]
                },
                |b| b.id.to_string(),
            );
        }
        BaseCommand::Show { base } => {
            let b = host.base(&base)?;
            output::one(
                format,
                &b,
                vec![
                    ("id", b.id.to_string()),
                    ("name", b.name.to_string()),
                    ("source", b.source.clone()),
                    ("sha256", b.id.to_string()),
                    ("size", output::bytes(b.size)),
                    ("state", format!("{:?}", b.state).to_lowercase()),
                    ("created", output::time(Some(b.created_at))),
                ],
                b.id.to_string(),
            );
        }
        BaseCommand::Rm { base } => {
            let b = host.remove_base_with(&base, false, &crate::build::BuilderHolds)?;
            eprintln!("removed base {} ({})", b.name, b.id.short());
        }
    }
    Ok(0)
}
