//! A real `jetpack serve` on loopback for a test: its own folder (config,
//! keys, users, data), a free port, TLS and auth on unless told otherwise.
//! Clients are the real tools: curl, htpasswd, openssl, and the jetpack CLI.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::jetpack_bin;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The hangar's port.
    pub uplink_port: u16,
    /// The file server's port (0: `files.listen=off`).
    pub files_port: u16,
    pub conf: PathBuf,
    pub options: Vec<String>,
    pub child: Option<Child>,
    pub tls: bool,
    pub user: String,
    pub password: String,
    /// The database of a server on the postgres store
    /// (JETPACK_TEST_STORE=postgres); dropped after the server is killed.
    pub pg: Option<super::postgres::TestDb>,
}

/// A port for a server a test starts. Not bind(0)'s pick: that comes from
/// the ephemeral range (32768-60999), from which every outgoing connection
/// of every test also takes its source port, so one could take it between
/// this check and the server's bind, and the test would talk to the wrong
/// peer. These come from below that range, each process from its own
/// stride, each call once, and are checked free on every address.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

impl TestServer {
    /// A server on the dir driver in a fresh folder, with `options`
    /// (`key=value`) and `flags` (serve's own) added.
    pub fn start(options: &[&str], flags: &[&str]) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-serve-")
            .tempdir()
            .expect("tempdir");
        let n = std::process::id() % 100000;
        let mut all = vec![
            format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            "datasets.driver=dir".to_string(),
            format!("jail.interface=jps{n}"),
            format!("jail.namePrefix=jps{n}-"),
            "server.listen=127.0.0.1".to_string(),
        ];
        all.extend(options.iter().map(|o| o.to_string()));
        Self::start_with(dir, all, flags)
    }

    /// A server over an existing test host's configuration (for pods).
    pub fn on_host(host: &super::TestHost, flags: &[&str]) -> TestServer {
        Self::on_host_with(host, &[], flags)
    }

    /// `on_host`, with `options` (`key=value`) added.
    pub fn on_host_with(host: &super::TestHost, options: &[&str], flags: &[&str]) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-serve-")
            .tempdir()
            .expect("tempdir");
        let mut all: Vec<String> = host.options().to_vec();
        all.push("server.listen=127.0.0.1".into());
        all.extend(options.iter().map(|o| o.to_string()));
        Self::start_with(dir, all, flags)
    }

    fn start_with(dir: tempfile::TempDir, mut options: Vec<String>, flags: &[&str]) -> TestServer {
        // Tests never reach the Internet: the default DockerHub provider
        // is off unless a test asks for it.
        if !options.iter().any(|o| o.starts_with("builders.dockerhub=")) {
            options.push("builders.dockerhub=off".into());
        }
        // JETPACK_TEST_STORE=postgres: the API suite runs again with every
        // server on the postgres store driver, each on a fresh database
        // (unless the test chose its own store).
        let pg = (std::env::var("JETPACK_TEST_STORE").as_deref() == Ok("postgres")
            && !options.iter().any(|o| o.starts_with("store.")))
        .then(|| {
            let cluster = super::postgres::cluster()
                .expect("JETPACK_TEST_STORE=postgres, but there is no PostgreSQL");
            let db = cluster.database();
            options.extend(db.store_options());
            db
        });
        let conf = dir.path().join("jetpack.conf");
        std::fs::write(&conf, "# test server\n").expect("writing jetpack.conf");
        // As an operator's: the MDS refuses a jetpack.conf others can read.
        std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod jetpack.conf");
        let port = free_port();
        options.push(format!("server.port={port}"));
        // A caller may pick the hangar's port (to keep it across restarts).
        let uplink_port = match options.iter().find_map(|o| o.strip_prefix("uplink.port=")) {
            Some(p) => p.parse().expect("uplink.port"),
            None => {
                let p = free_port();
                options.push(format!("uplink.port={p}"));
                p
            }
        };
        // The file server's default port is fixed (9091): tests side by
        // side each take their own unless the caller chose.
        let files_port = match options.iter().find_map(|o| o.strip_prefix("files.listen=")) {
            Some(at) => at
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(0),
            None => {
                let p = free_port();
                options.push(format!("files.listen=127.0.0.1:{p}"));
                p
            }
        };
        let tls =
            !flags.contains(&"--noservertls") && !options.iter().any(|o| o == "server.tls=off");
        let mut server = TestServer {
            dir,
            port,
            uplink_port,
            files_port,
            conf,
            options,
            child: None,
            tls,
            user: "admin".into(),
            password: String::new(),
            pg,
        };
        server.spawn(flags);
        let password_file = server.keys_dir().join("admin.password");
        if let Ok(p) = std::fs::read_to_string(password_file) {
            server.password = p.trim().to_string();
        }
        server
    }

    /// The folder of htpasswd, cert.pem, key.pem, admin.password.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("jetpack")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// jetpack with this server's configuration.
    pub fn jetpack(&self) -> Command {
        let mut cmd = Command::new(jetpack_bin());
        cmd.arg("--config").arg(&self.conf);
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd
    }

    /// Starts `jetpack serve` and waits until it accepts connections.
    pub fn spawn(&mut self, flags: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .expect("server log");
        let child = self
            .jetpack()
            .arg("serve")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting jetpack serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("jetpack serve exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit; returns whether it exited cleanly.
    /// Fails the test when a process of this server outlives it.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let clean = child.wait().map(|s| s.success()).unwrap_or(false);
        self.assert_no_process_left();
        clean
    }

    /// SIGKILL: a crash, for consistency tests. Fails the test when a
    /// process of this server outlives it (its MDS must end with it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.assert_no_process_left();
        }
    }

    /// This server's own processes still alive: `jetpack serve` and
    /// `jetpack mds` with this server's jetpack.conf. (Pods' supervisors
    /// mention it too, but pods outlive a server by design; their test
    /// host removes them.)
    pub fn processes(&self) -> Vec<super::Process> {
        let conf = self.conf.display().to_string();
        super::processes_mentioning(&conf)
            .into_iter()
            .filter(|p| matches!(p.jetpack_command(), Some("serve" | "mds")))
            .collect()
    }

    /// Once the server has exited, its processes end within a few seconds
    /// (an MDS drains its connections first), else the test fails.
    fn assert_no_process_left(&self) {
        let left = super::left_after(Duration::from_secs(5), || self.processes());
        super::assert_none_left(
            &format!("processes of the server {}", self.conf.display()),
            &left,
        );
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// curl with this server's credentials; `-k` because the certificate
    /// is self-signed. Returns (status, body).
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let userpass = format!("{}:{}", self.user, self.password);
        self.curl_as(Some(&userpass), args, path)
    }

    /// curl with the given `user:password` (or none).
    pub fn curl_as(&self, userpass: Option<&str>, args: &[&str], path: &str) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-k", "-o", "-", "-w", "\n%{http_code}"]);
        if let Some(up) = userpass {
            cmd.args(["-u", up]);
        }
        let out = cmd
            .args(args)
            .arg(self.url(path))
            .output()
            .expect("running curl");
        curl_result(out)
    }

    /// POSTs `body` as JSON; the status and the answer as JSON.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.json(
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ],
            path,
        )
    }

    /// POSTs `file` as the raw body (application/octet-stream); the
    /// status and the answer as JSON.
    pub fn post_file(&self, path: &str, file: &Path) -> (u16, serde_json::Value) {
        self.json(
            &[
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", file.display()),
            ],
            path,
        )
    }

    pub fn json(&self, args: &[&str], path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.curl(args, path);
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body:?}"));
        (status, value)
    }

    /// A sample of this server's /metrics (see `sample`); None when the
    /// scrape fails.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (status, body) = self.curl(&[], "/metrics");
        if status != 200 {
            return None;
        }
        sample(&body, series)
    }
}

/// The value of the first line of a Prometheus exposition that is
/// `series` (name and labels as written) followed by a space.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Splits curl's output into the body and the status it appended.
pub fn curl_result(out: Output) -> (u16, String) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl gave no status: {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (status, body.to_string())
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A failing test shows why the server answered as it did: CI keeps
        // nothing but the test's output.
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!("---- the server's log (last {} lines) ----", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
        self.kill();
    }
}

/// A minimal ELF file (what an image upload must be), `size` bytes, with
/// `salt` making its bytes (and so its id) unique.
pub fn fake_elf(path: &Path, size: usize, salt: &str) {
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.extend_from_slice(salt.as_bytes());
    bytes.resize(size.max(bytes.len()), 0x5a);
    std::fs::write(path, bytes).expect("writing an ELF");
}
