//! `jetpack base`, once for both places it runs: this host (the runtime's
//! `Host`, the `Bases` side below) or a server given with `--host` (the side
//! in `remote/bases.rs`). The flow, the tables, the messages and what goes
//! to stdout are here; a side only fetches and acts, and answers in the
//! API's types (`model::bases::Base`).

use std::io::IsTerminal;

use super::args::BaseCommand;
use super::output::{self, ago_at, short, text, Format, Shown};
use super::CliError;
use crate::model::bases::Base;
use crate::runtime::Host;

/// Where the bases are: what `jetpack base` asks of this host or a server.
pub(super) trait Bases {
    /// Imports `source` (a file or a URL), telling its progress on stderr.
    fn import(
        &self,
        source: &str,
        name: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<Imported, CliError>;
    fn list(&self) -> Result<Shown<Vec<Base>>, CliError>;
    /// By id, name or id prefix.
    fn show(&self, base: &str) -> Result<Shown<Base>, CliError>;
    /// Removes it; the base as it was.
    fn remove(&self, base: &str) -> Result<Shown<Base>, CliError>;
    /// This host's runtime, for what only it does (exports); a server's
    /// side has none.
    fn host(&self) -> Option<&Host> {
        None
    }
}

pub(super) struct Imported {
    pub base: Shown<Base>,
    /// It was there already (same archive); nothing was imported.
    pub existed: bool,
}

pub(super) fn base(side: &impl Bases, cmd: BaseCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        BaseCommand::Import {
            source,
            name,
            sha256,
        } if super::keep::is_export(&source) => {
            if name.is_some() || sha256.is_some() {
                return Err(CliError::Usage(
                    "a base export carries its own name and sha256: drop --name and --sha256"
                        .into(),
                ));
            }
            let host = side.host().ok_or_else(|| {
                CliError::Usage(format!(
                    "{source} is a base export: import it on the host itself (without --host)"
                ))
            })?;
            return super::keep::import(host, &source, format);
        }
        BaseCommand::Move(cmd) => {
            let host = side.host().ok_or_else(|| {
                CliError::Usage("base export runs on the host itself (without --host)".into())
            })?;
            return super::keep::base(host, cmd, format);
        }
        BaseCommand::Import {
            source,
            name,
            sha256,
        } => {
            let imported = side.import(&source, name.as_deref(), sha256.as_deref())?;
            let b = &imported.base;
            if imported.existed {
                eprintln!(
                    "already imported as base {} ({})",
                    b.item.name,
                    short(&b.item.id)
                );
            }
            b.print_made(format, &b.item.id);
        }
        BaseCommand::List => side.list()?.print_list(
            format,
            &["ID", "NAME", "SIZE", "STATE", "CREATED"],
            |b| {
                vec![
                    short(&b.id),
                    text(Some(&b.name)),
                    output::bytes(b.size),
                    text(Some(&b.state)),
                    ago_at(Some(&b.created)),
                ]
            },
            |b| b.id.clone(),
        ),
        BaseCommand::Show { base } => {
            let shown = side.show(&base)?;
            let b = &shown.item;
            let fields = vec![
                ("id", b.id.clone()),
                ("name", text(Some(&b.name))),
                ("source", text(Some(&b.source))),
                ("sha256", b.id.clone()),
                ("size", output::bytes(b.size)),
                ("state", text(Some(&b.state))),
                ("created", ago_at(Some(&b.created))),
            ];
            shown.print_one(format, fields, "created", &b.id);
        }
        BaseCommand::Rm { base } => {
            let gone = side.remove(&base)?;
            eprintln!("removed base {} ({})", gone.item.name, short(&gone.item.id));
            if format != Format::Table {
                gone.print_made(format, &gone.item.id);
            }
        }
    }
    Ok(0)
}

/// This host: the runtime's records, shown as the runtime writes them
/// (`-o json`) and read through the API's own conversion.
impl Bases for Host {
    fn host(&self) -> Option<&Host> {
        Some(self)
    }

    fn import(
        &self,
        source: &str,
        name: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<Imported, CliError> {
        let interactive = std::io::stderr().is_terminal();
        let mut progress = |n: u64| {
            if interactive {
                eprint!("\rfetching {source}: {}   ", output::bytes(n));
            }
            std::ops::ControlFlow::Continue(())
        };
        let imported = self.import_base(source, name, sha256, &mut progress);
        if interactive {
            eprintln!();
        }
        let imported = imported?;
        Ok(Imported {
            base: Shown::local(imported.base, Base::from)?,
            existed: imported.existed,
        })
    }

    fn list(&self) -> Result<Shown<Vec<Base>>, CliError> {
        Shown::local(self.bases()?, |rows| {
            rows.into_iter().map(Base::from).collect()
        })
    }

    fn show(&self, base: &str) -> Result<Shown<Base>, CliError> {
        Shown::local(self.base(base)?, Base::from)
    }

    fn remove(&self, base: &str) -> Result<Shown<Base>, CliError> {
        let row = self.remove_base_with(base, false, &crate::build::BuilderHolds::Local)?;
        Shown::local(row, Base::from)
    }
}
