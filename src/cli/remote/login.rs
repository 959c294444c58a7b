//! `login`: credentials checked against the server, then stored for later
//! commands; prompts (without echo for the password) when on a terminal.

use std::io::IsTerminal;

use super::args::ServerFlags;
use super::print::{print_json, text};
use super::CliError;
use crate::cli::output::Format;
use crate::client::{login, Client, ClientError, Login};
use crate::model::info::Info;

pub fn login_command(flags: &ServerFlags, format: Format) -> Result<i32, CliError> {
    let path = login::path().map_err(ClientError::from)?;
    // A damaged file is what `login` repairs: start from the flags then.
    let stored = match login::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    };
    let mut l = Login::resolve(&flags.overrides(), stored);
    if l.username.is_none() && std::io::stdin().is_terminal() {
        l.username = read_line("username: ", false)?;
    }
    if l.username.is_some() && l.password.is_none() {
        l.password = read_line("password: ", true)?;
    }
    let c = Client::new(&l)?;
    let info = match c.get("/v1/info") {
        Ok(a) => a,
        Err(ClientError::Http {
            status: status @ (401 | 403),
            message,
            ..
        }) => {
            return Err(ClientError::from(login::LoginError::Refused {
                url: c.base().to_string(),
                message: format!("{message} ({status})"),
            })
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    login::save(&path, &l).map_err(ClientError::from)?;
    let v: Info = info.decode()?;
    eprintln!(
        "logged in to {} as {}: {} (jetpack {}); saved in {}",
        c.base(),
        l.username.as_deref().unwrap_or("nobody (auth is off)"),
        text(Some(&v.name)),
        text(Some(&v.version)),
        path.display()
    );
    if format == Format::Json {
        print_json(&info.text);
    }
    Ok(0)
}

/// A line from the terminal (without echo for secrets) or from stdin when
/// it is not one; `None` when nothing was given.
fn read_line(prompt: &str, secret: bool) -> Result<Option<String>, CliError> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}");
    }
    let saved = if terminal && secret {
        use nix::sys::termios;
        termios::tcgetattr(&stdin).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_flags.remove(termios::LocalFlags::ECHO);
            let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &quiet);
        })
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read.map_err(|e| {
        CliError::Usage(format!(
            "reading {}: {e}",
            prompt.trim_end_matches([':', ' '])
        ))
    })?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    Ok((!line.is_empty()).then_some(line))
}
