//! Starting the real `jetpack serve` for a bench: its temporary folder and
//! jetpack.conf, the loopback options (`command`), and `Server`, a server
//! process waited for on its port, with the admin's credentials and the
//! TLS certificate, SIGTERM on drop. Include it beside `measure` and `http`,
//! which it uses: `#[path = "support/serve.rs"] mod serve;`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use super::http::{client_tls, Client, TlsStream};
use super::measure::free_port;

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");

/// Which bench starts the server: `name` is in its temporary folder
/// (`jetpack-bench-<name>-`, lower case) and its jetpack.conf, `tag` and
/// this process's id in the bridge and jail names, so that benches and
/// runs side by side do not meet.
pub struct Bench {
    pub name: &'static str,
    pub tag: &'static str,
}

/// `jetpack serve` on the dir driver in a temporary folder of its own, the
/// API on 127.0.0.1:`port`, the hangar on `uplink_port`: the folder and the
/// command, to which the caller adds `serve`'s flags.
pub fn command(bench: &Bench, port: u16, uplink_port: u16) -> (tempfile::TempDir, Command) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("jetpack-bench-{}-", bench.name.to_lowercase()))
        .tempdir()
        .expect("a temporary folder");
    let cmd = command_in(bench, dir.path(), port, uplink_port);
    (dir, cmd)
}

/// `command`'s server in the folder `dir` (made already).
fn command_in(bench: &Bench, dir: &std::path::Path, port: u16, uplink_port: u16) -> Command {
    let conf = dir.join("jetpack.conf");
    std::fs::write(&conf, format!("# jetpack {} bench\n", bench.name))
        .expect("writing jetpack.conf");
    let (tag, n) = (bench.tag, std::process::id() % 100_000);
    let options = [
        "datasets.driver=dir".to_string(),
        format!("root.zfs.mountpoint={}", dir.join("root").display()),
        "server.listen=127.0.0.1".into(),
        format!("server.port={port}"),
        format!("uplink.port={uplink_port}"),
        // Its default port is fixed; benches side by side would meet there.
        "files.listen=off".into(),
        format!("jail.interface={tag}{n}"),
        format!("jail.namePrefix={tag}{n}-"),
    ];
    let mut cmd = Command::new(JETPACK);
    cmd.arg("--config").arg(&conf);
    for o in &options {
        cmd.arg("-o").arg(o);
    }
    cmd.arg("serve");
    cmd
}

/// A server process on loopback, in its own folder; SIGTERM on drop.
pub struct Server {
    pub label: &'static str,
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
    /// `Authorization: Basic ...` for the admin user (empty without auth).
    pub authorization: String,
    pub userpass: String,
    pub certfile: PathBuf,
}

impl Server {
    /// `jetpack serve` on the dir driver, TLS on, with `flags` added.
    pub fn jetpack(bench: &Bench, label: &'static str, flags: &[&str]) -> Server {
        let port = free_port();
        let (dir, mut cmd) = command(bench, port, free_port());
        cmd.args(flags);
        let mut server = Server::spawn(label, dir, port, cmd);
        let keys = server.dir.path().join("jetpack");
        if let Ok(p) = std::fs::read_to_string(keys.join("admin.password")) {
            server.userpass = format!("admin:{}", p.trim());
            server.authorization = format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(&server.userpass)
            );
        }
        server.certfile = keys.join("cert.pem");
        server
    }

    /// Runs `cmd` (stderr to `serve.log` in `dir`) and waits until it
    /// listens on `port`.
    pub fn spawn(
        label: &'static str,
        dir: tempfile::TempDir,
        port: u16,
        mut cmd: Command,
    ) -> Server {
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a server");
        let mut server = Server {
            label,
            dir,
            port,
            child,
            authorization: String::new(),
            userpass: String::new(),
            certfile: PathBuf::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{label} exited with {status}: {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "{label} did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Stops the server (SIGTERM), runs `between` on its folder, and
    /// starts it again there with `flags`.
    pub fn restart(
        &mut self,
        bench: &Bench,
        flags: &[&str],
        between: impl FnOnce(&std::path::Path),
    ) {
        self.end();
        between(self.dir.path());
        let mut cmd = command_in(bench, self.dir.path(), self.port, free_port());
        cmd.args(flags);
        let log = std::fs::File::create(self.dir.path().join("serve.log")).expect("server log");
        self.child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a server");
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}: {}", self.label, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start again: {}",
                self.label,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after 10 s; reaped.
    fn end(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        client_tls(&self.certfile)
    }

    pub fn connect(&self) -> Client<TlsStream> {
        Client::connect(self.port, &self.tls()).expect("connecting to the server")
    }

    /// A serialised `GET path` with this server's credentials.
    pub fn get(&self, path: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Accept: application/json\r\n\r\n",
            self.port, self.authorization
        )
        .into_bytes()
    }

    /// A serialised `POST path` of a text/plain body.
    pub fn post_text(&self, path: &str, body: &str) -> Vec<u8> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Accept: application/json\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            self.port,
            self.authorization,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body.as_bytes());
        request
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.end();
    }
}
