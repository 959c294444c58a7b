//! `jetpack user`: the API's users in the htpasswd file (bcrypt), edited
//! on the server's host.

use std::io::IsTerminal;

use super::args::UserCommand;
use super::output::{self, Format};
use super::CliError;
use crate::config::Config;

pub(super) fn user(
    config: &Config,
    cmd: UserCommand,
    password: Option<String>,
    format: Format,
) -> Result<i32, CliError> {
    use crate::access::users::Htpasswd;
    let path = &config.server.htpasswd;
    let mut file = Htpasswd::load(path)?;
    match cmd {
        UserCommand::List => {
            let users: Vec<&str> = file.users().collect();
            output::list(
                format,
                &users,
                &["USER"],
                |u| vec![u.to_string()],
                |u| u.to_string(),
            );
        }
        UserCommand::Add { name } => {
            let password = match password {
                Some(p) => p,
                None => {
                    if std::io::stdin().is_terminal() {
                        eprint!("password for {name}: ");
                    }
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| CliError::Usage(format!("reading the password: {e}")))?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                return Err(CliError::Usage("the password is empty".into()));
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| CliError::Usage(format!("creating {}: {e}", dir.display())))?;
            }
            file.set(&name, &password)?;
            file.save(path)?;
            eprintln!(
                "user {name} saved in {} (a running server sees it within a second)",
                path.display()
            );
        }
        UserCommand::Rm { name } => {
            file.remove(&name)?;
            file.save(path)?;
            eprintln!("user {name} removed from {}", path.display());
        }
    }
    Ok(0)
}
