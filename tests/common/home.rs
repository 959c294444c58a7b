//! A CLI user's home for tests that drive a server with `jetpack --host`:
//! HOME and XDG_CONFIG_HOME inside a temporary folder (the login file
//! lands there, never in the caller's home), and none of the caller's
//! JETPACK_* variables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::server::TestServer;
use super::JETPACK;

pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("jetpack-cli-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn xdg(&self) -> PathBuf {
        self.path().join("xdg")
    }

    pub fn login_file(&self) -> PathBuf {
        self.xdg().join("jetpack").join("login.json")
    }

    /// jetpack with this home (and it as the working folder), no flags.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::new(JETPACK);
        cmd.env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.xdg())
            .current_dir(self.path());
        for var in [
            "JETPACK_HOST",
            "JETPACK_USERNAME",
            "JETPACK_PASSWORD",
            "JETPACK_CONF",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// jetpack with the server's address and admin's credentials.
    pub fn cli(&self, server: &TestServer) -> Command {
        let mut cmd = self.bare();
        cmd.args(server_flags(server));
        cmd
    }

    /// `cli` with `args`, run to its end.
    pub fn run(&self, server: &TestServer, args: &[&str]) -> Output {
        self.cli(server)
            .args(args)
            .output()
            .expect("running jetpack")
    }

    /// `run`, as (exit code, stdout, stderr).
    pub fn texts(&self, server: &TestServer, args: &[&str]) -> (i32, String, String) {
        let out = self.run(server, args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// `--host` and admin's credentials for `server`.
pub fn server_flags(server: &TestServer) -> Vec<String> {
    vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        server.port.to_string(),
        "--username".into(),
        "admin".into(),
        "--password".into(),
        server.password.clone(),
        "--tlsInsecureSkipVerify".into(),
    ]
}
