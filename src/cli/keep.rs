//! The local "move and keep" commands: `base export`, `base import` of an
//! export (told from an archive by its first bytes), and a pod's
//! snapshots, rollback and clones. They need this host's runtime (a
//! server's side refuses them in `base.rs` and `pod.rs`); the work is the
//! runtime's (`runtime::export`, `runtime::snapshots`).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use super::args::{BaseMoveCommand, PodKeepCommand};
use super::output::{self, short, Format, Shown};
use super::CliError;
use crate::model::bases::Base;
use crate::model::pods::Pod;
use crate::runtime::export::MAGIC;
use crate::runtime::{Host, RuntimeError};

/// Whether `source` of `base import` is an export rather than an archive:
/// `-` (only exports are read from stdin) or a file that starts with the
/// envelope's magic.
pub(super) fn is_export(source: &str) -> bool {
    if source == "-" {
        return true;
    }
    let mut head = [0u8; MAGIC.len()];
    std::fs::File::open(source)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|_| &head == MAGIC)
}

/// A progress line on stderr for big streams, when stderr is a terminal.
fn progress(verb: &'static str) -> impl FnMut(u64) {
    let interactive = std::io::stderr().is_terminal();
    let mut shown = 0u64;
    move |n| {
        // Every 16 MiB: a line per read would cost more than the copy.
        if interactive && n >= shown + (16 << 20) {
            shown = n;
            eprint!("\r{verb}: {}   ", output::bytes(n));
        }
    }
}

pub(super) fn base(host: &Host, cmd: BaseMoveCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        BaseMoveCommand::Export { base, file } => {
            let mut tell = progress("exporting");
            let header = if file == "-" {
                let stdout = std::io::stdout();
                if stdout.is_terminal() {
                    return Err(CliError::Usage(
                        "base export to `-` writes a binary stream: redirect stdout to a file or a pipe".into(),
                    ));
                }
                let mut out = std::io::BufWriter::new(stdout.lock());
                host.export_base(&base, &mut out, &mut tell)?
            } else {
                export_to_file(host, &base, PathBuf::from(&file), &mut tell)?
            };
            eprintln!(
                "exported base {} ({}): {} of {} stream",
                header.name,
                short(&header.id),
                output::bytes(header.payload_length),
                header.driver
            );
            if file != "-" && format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&header)?);
            }
        }
    }
    Ok(0)
}

/// Writes the export beside `path` and renames it into place, so that a
/// failed export leaves no file that looks whole.
fn export_to_file(
    host: &Host,
    base: &str,
    path: PathBuf,
    tell: &mut dyn FnMut(u64),
) -> Result<crate::runtime::export::ExportHeader, CliError> {
    let io = |what: String| move |source| RuntimeError::Io { what, source };
    let mut staged = path.clone().into_os_string();
    staged.push(".partial");
    let staged = PathBuf::from(staged);
    let file =
        std::fs::File::create(&staged).map_err(io(format!("creating {}", staged.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let written = host
        .export_base(base, &mut out, tell)
        .map_err(CliError::from)
        .and_then(|h| {
            let file = out
                .into_inner()
                .map_err(|e| io(format!("writing {}", staged.display()))(e.into_error()))?;
            file.sync_all()
                .map_err(io(format!("writing {}", staged.display())))?;
            std::fs::rename(&staged, &path)
                .map_err(io(format!("renaming {}", staged.display())))?;
            Ok(h)
        });
    if written.is_err() {
        // Best effort: the error below says what failed.
        let _ = std::fs::remove_file(&staged);
    }
    written
}

pub(super) fn import(host: &Host, source: &str, format: Format) -> Result<i32, CliError> {
    let mut tell = progress("importing");
    let imported = if source == "-" {
        let stdin = std::io::stdin();
        host.import_export(&mut stdin.lock(), &mut tell)?
    } else {
        let file = std::fs::File::open(source).map_err(|source_err| RuntimeError::Io {
            what: format!("opening {source}"),
            source: source_err,
        })?;
        host.import_export(&mut std::io::BufReader::new(file), &mut tell)?
    };
    let shown = Shown::local(imported.base, Base::from)?;
    eprintln!(
        "imported base {} ({})",
        shown.item.name,
        short(&shown.item.id)
    );
    shown.print_made(format, &shown.item.id);
    Ok(0)
}

pub(super) fn pod(host: &Host, cmd: PodKeepCommand, format: Format) -> Result<i32, CliError> {
    match cmd {
        PodKeepCommand::Snapshot { pod, name } => {
            let p = host.pod(&pod)?;
            let snap = host.snapshot_pod(&p, &name)?;
            eprintln!("snapshot {} of pod {}", snap.name, p.label());
            Shown::local(snap, |s| s)?.print_made(format, &name);
        }
        PodKeepCommand::Rollback { pod, name } => {
            let p = host.pod(&pod)?;
            host.rollback_pod(&p, &name)?;
            eprintln!("pod {} rolled back to {name}", p.label());
        }
        PodKeepCommand::Snapshots { pod } => {
            let p = host.pod(&pod)?;
            Shown::local(host.pod_snapshots(&p)?, |s| s)?.print_list(
                format,
                &["NAME", "CREATED"],
                |s| vec![s.name.clone(), output::time(Some(s.created))],
                |s| s.name.clone(),
            );
        }
        PodKeepCommand::Clone {
            pod,
            new_name,
            snapshot,
        } => {
            let p = host.pod(&pod)?;
            let made = host.clone_pod(&p, &new_name, snapshot.as_deref())?;
            eprintln!("pod {} cloned as {}", p.label(), made.label());
            let root = ("root", made.root.display().to_string());
            let mut shown = Shown::local(made, Pod::from)?;
            shown.extra.push(root);
            shown.print_made(format, &shown.item.id);
        }
    }
    std::io::stdout()
        .flush()
        .map_err(|source| RuntimeError::Io {
            what: "writing stdout".into(),
            source,
        })?;
    Ok(0)
}
