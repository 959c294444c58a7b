//! `jetpack backup FILE` and `jetpack restore FILE` (`-`: stdout, stdin):
//! local commands over this host's data dir and users file, read from
//! jetpack.conf; the work and the format are `store::backup`'s.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::output::{self, Format};
use super::CliError;
use crate::config::Config;
use crate::store::backup::{self, BackupError};

pub(super) fn backup(config: &Config, file: &str, format: Format) -> Result<i32, CliError> {
    let (data_dir, users) = (&config.data_dir, &config.server.htpasswd);
    let manifest = if file == "-" {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            return Err(CliError::Usage(
                "backup to `-` writes a tar archive: redirect stdout to a file or a pipe".into(),
            ));
        }
        let mut out = std::io::BufWriter::new(stdout.lock());
        backup::backup(data_dir, users, &mut out)?
    } else {
        to_file(Path::new(file), |out| backup::backup(data_dir, users, out))?
    };
    let bytes: u64 = manifest.members.iter().map(|m| m.size).sum();
    eprintln!(
        "backed up {} ({} member(s), {})",
        data_dir.display(),
        manifest.members.len(),
        output::bytes(bytes)
    );
    if file != "-" && format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    }
    Ok(0)
}

/// Writes beside `path` and renames into place when complete.
fn to_file<T>(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<T, BackupError>,
) -> Result<T, CliError> {
    let io = |what: String| move |source| BackupError::Io { what, source };
    let mut staged = path.as_os_str().to_owned();
    staged.push(".partial");
    let staged = PathBuf::from(staged);
    let file = crate::store::private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&staged)
        .map_err(io(format!("creating {}", staged.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let done = write(&mut out).and_then(|v| {
        let file = out
            .into_inner()
            .map_err(|e| io(format!("writing {}", staged.display()))(e.into_error()))?;
        file.sync_all()
            .map_err(io(format!("writing {}", staged.display())))?;
        std::fs::rename(&staged, path).map_err(io(format!("renaming {}", staged.display())))?;
        Ok(v)
    });
    if done.is_err() {
        // Best effort: the error says what failed.
        let _ = std::fs::remove_file(&staged);
    }
    Ok(done?)
}

pub(super) fn restore(config: &Config, file: &str, format: Format) -> Result<i32, CliError> {
    let (data_dir, users) = (&config.data_dir, &config.server.htpasswd);
    let restored = if file == "-" {
        backup::restore(data_dir, users, &mut std::io::stdin().lock())?
    } else {
        let f = std::fs::File::open(file).map_err(|source| BackupError::Io {
            what: format!("opening {file}"),
            source,
        })?;
        backup::restore(data_dir, users, &mut std::io::BufReader::new(f))?
    };
    eprintln!(
        "restored {} member(s) into {}",
        restored.manifest.members.len(),
        data_dir.display()
    );
    if let Some(old) = &restored.replaced {
        eprintln!("the database it replaced is kept as {}", old.display());
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&restored.manifest)?);
    }
    Ok(0)
}
