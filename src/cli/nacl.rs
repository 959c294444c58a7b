//! `jetpack nacl`: NaCl files checked on this machine, no server needed.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;

use super::output::Format;
use super::CliError;
use crate::nacl;

#[derive(Debug, Subcommand)]
pub enum NaclCommand {
    /// Check a NaCl file (`-` for stdin): each error as `line L:C message`,
    /// each warning as `line L:C warning: message`; exit status 1 if there
    /// is an error (warnings alone exit 0)
    Check { file: PathBuf },
}

pub fn run(cmd: NaclCommand, format: Format) -> Result<i32, CliError> {
    let NaclCommand::Check { file } = cmd;
    let source = read(&file)?;
    let verdict = nacl::check(&source);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verdict).map_err(|e| CliError::Failed(e.to_string()))?
        ),
        Format::Table | Format::Id => {
            // Errors first (the first is the reference's), then warnings,
            // each `line L:C warning: message` so no tool reading
            // `line L:C message` takes one for an error.
            for e in &verdict.errors {
                println!("{e}");
            }
            for w in &verdict.warnings {
                println!("line {}:{} warning: {}", w.line, w.column, w.message);
            }
            if verdict.valid {
                eprintln!("{}: valid", file.display());
            }
        }
    }
    Ok(if verdict.valid { 0 } else { 1 })
}

/// The file's text; a NaCl is text, so bytes that are not UTF-8 are an
/// error of their own rather than characters to guess at.
fn read(file: &PathBuf) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    String::from_utf8(bytes)
        .map_err(|e| CliError::Usage(format!("{}: not UTF-8 text: {e}", file.display())))
}
