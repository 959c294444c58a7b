//! The manual and shell completions, made from the same clap definitions
//! the command line is parsed with, so they cannot drift from it:
//! `jetpack man DIR` writes `jetpack.1` and a page per command
//! (`jetpack-pod.1`, `jetpack-pod-run.1`, ...; `man -l` reads them, or
//! install them under man1), `jetpack completions SHELL` prints a script.
//! Hidden (internal) commands have no page; clap_complete offers them
//! (their names start with `__`).

use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;
use super::CliError;

/// Writes the pages into `dir` (made if missing); the names written.
pub(super) fn man(dir: &Path) -> Result<Vec<String>, CliError> {
    let io = |what: String| move |e: std::io::Error| CliError::Usage(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    let mut written = Vec::new();
    let mut top = Cli::command();
    top.build();
    write_pages(dir, &top, "jetpack", &mut written)?;
    Ok(written)
}

fn write_pages(
    dir: &Path,
    cmd: &clap::Command,
    name: &str,
    written: &mut Vec<String>,
) -> Result<(), CliError> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let file = format!("{name}.1");
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut text)
        .map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
    // Staged then renamed: a reader never sees half a page.
    let path = dir.join(&file);
    let staged = dir.join(format!(".{file}.tmp"));
    std::fs::write(&staged, &text)
        .and_then(|()| std::fs::rename(&staged, &path))
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    written.push(file);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(dir, sub, &format!("{name}-{}", sub.get_name()), written)?;
    }
    Ok(())
}

/// The completion script for `shell` on standard output.
pub(super) fn completions(shell: clap_complete::Shell) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "jetpack", &mut std::io::stdout());
}
