//! The metadata service with real pods: namespaces with real addresses on
//! the pod bridge, `jetpack mds` really running as `_jetpack`, busybox
//! `wget` inside the pods as the client. Every test checks that no process
//! of its MDS or server outlives it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::server::{free_port, TestServer};
use common::{facility, Driver, TestHost, JETPACK};

const TOKEN_KEY: &str = "7f3c1a9e5d2b8c4f6a0e1d3b5c7a9f2e4d6b8a0c1e3f5a7b9d2c4e6f8a0b1c3d";
const SIGNING_KEY: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
/// Other keys: jetpack.conf's after a rotation.
const NEW_TOKEN_KEY: &str = "3d1c0b8a6f4e2c9d7b5a3f1e0c8a6b4d2e9f7a5c3b1d8e6f4a2c0b9d7e5f3a1c";
const NEW_SIGNING_KEY: &str = "09f8e7d6c5b4a3928170f6e5d4c3b2a109f8e7d6c5b4a3928170f6e5d4c3b2a1";

/// A test host with the busybox base and an MDS of its own, started on
/// its own as its rc.d script starts it (no server; stdin not a lifeline).
struct Mds {
    host: TestHost,
    conf: PathBuf,
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mds {
    fn drop(&mut self) {
        for pod in ["a", "b", "c"] {
            let _ = self.run(&["pod", "rm", "-f", pod]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Nothing run with this jetpack.conf survives: not the MDS, not a
        // pod's supervisor.
        let conf = self.conf.display().to_string();
        let left = common::left_after(Duration::from_secs(10), || {
            common::processes_mentioning(&conf)
        });
        common::assert_none_left(&format!("processes of {conf}"), &left);
    }
}

fn jetpack_user() -> bool {
    facility(
        "the _jetpack user",
        Command::new("id")
            .arg("_jetpack")
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err("no user _jetpack (scripts/test.sh creates it)".into())
                }
            }),
    )
}

/// Writes jetpack.conf with the keys, mode `mode`.
fn conf(dir: &std::path::Path, port: u16, mode: u32) -> PathBuf {
    conf_with(dir, (TOKEN_KEY, SIGNING_KEY), port, mode)
}

/// Writes jetpack.conf with `keys` (token, signing), mode `mode`.
fn conf_with(dir: &std::path::Path, keys: (&str, &str), port: u16, mode: u32) -> PathBuf {
    let path = dir.join("jetpack.conf");
    let (token, signing) = keys;
    std::fs::write(
        &path,
        format!("mds.token-key = {token}\nmds.signing-key = {signing}\nmds.port = {port}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The `-o` options that give a server `keys` (token, signing) and the
/// MDS port `port`.
fn key_options(keys: (&str, &str), port: u16) -> Vec<String> {
    vec![
        format!("mds.token-key={}", keys.0),
        format!("mds.signing-key={}", keys.1),
        format!("mds.port={port}"),
    ]
}

/// The uid of `_jetpack`.
fn jetpack_uid() -> u32 {
    let out = Command::new("id")
        .args(["-u", "_jetpack"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Runs `jetpack ARGS` through `jetpack` (a configured command maker).
fn run_with(jetpack: &dyn Fn() -> Command, args: &[&str]) -> Output {
    jetpack().args(args).output().expect("running jetpack")
}

/// Starts pod `name` running `sleep` through `jetpack`; its id.
fn pod_with(jetpack: &dyn Fn() -> Command, name: &str) -> String {
    let out = run_with(
        jetpack,
        &[
            "pod", "run", "-d", "--name", name, "busybox", "--", "sleep", "600",
        ],
    );
    assert!(
        out.status.success(),
        "pod run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value =
        serde_json::from_slice(&run_with(jetpack, &["pod", "show", name, "-o", "json"]).stdout)
            .unwrap();
    shown["id"].as_str().unwrap().to_string()
}

/// What pod `name` learns of its uuid from the MDS with its own token:
/// (exit code, stdout, stderr) of busybox wget in it.
fn uuid_with(jetpack: &dyn Fn() -> Command, name: &str) -> (i32, String, String) {
    uuid_at(jetpack, name, None)
}

/// `uuid_with`, with the URL `url` instead of the process's own
/// `$AC_METADATA_URL` when given.
fn uuid_at(jetpack: &dyn Fn() -> Command, name: &str, url: Option<&str>) -> (i32, String, String) {
    let out = run_with(
        jetpack,
        &[
            "pod",
            "exec",
            name,
            "--",
            "sh",
            "-c",
            r#"wget -q -O - "${1:-$AC_METADATA_URL}/acMetadata/v1/pod/uuid""#,
            "sh",
            url.unwrap_or(""),
        ],
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The MDS's status through `jetpack mds check -o json`, once it answers.
fn mds_status(jetpack: &dyn Fn() -> Command) -> serde_json::Value {
    let out = run_with(jetpack, &["mds", "check", "-o", "json"]);
    assert!(
        out.status.success(),
        "mds check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

impl Mds {
    fn start() -> Option<Mds> {
        Self::start_with((TOKEN_KEY, SIGNING_KEY))
    }

    /// An MDS with `keys` (token, signing) in its jetpack.conf.
    fn start_with(keys: (&str, &str)) -> Option<Mds> {
        if !jetpack_user() {
            return None;
        }
        let host = TestHost::with_busybox(Driver::Dir)?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = conf_with(dir.path(), keys, port, 0o600);
        let child = Command::new(JETPACK)
            .arg("--config")
            .arg(&conf)
            .args(host.options().iter().flat_map(|o| ["-o", o.as_str()]))
            .arg("mds")
            // As daemon(8) runs it for rc.d: no lifeline.
            .env_remove("JETPACK_MDS_LIFELINE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting jetpack mds");
        let mds = Mds {
            host,
            conf,
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !mds.run(&["mds", "check"]).status.success() {
            assert!(Instant::now() < deadline, "the MDS did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(mds)
    }

    fn command(&self) -> Command {
        let mut cmd = self.host.command();
        cmd.arg("--config").arg(&self.conf);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("running jetpack")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "jetpack {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A pod running `sleep`, and its id.
    fn pod(&self, name: &str) -> String {
        self.ok(&[
            "pod", "run", "-d", "--name", name, "busybox", "--", "sleep", "600",
        ]);
        let shown: serde_json::Value =
            serde_json::from_str(&self.ok(&["pod", "show", name, "-o", "json"])).unwrap();
        shown["id"].as_str().unwrap().to_string()
    }

    /// Runs a shell script in pod `name`: (exit code, stdout, stderr).
    fn sh(&self, name: &str, script: &str, args: &[&str]) -> (i32, String, String) {
        let mut argv = vec!["pod", "exec", name, "--", "sh", "-c", script, "sh"];
        argv.extend(args);
        let out = self.run(&argv);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// GET `endpoint` from pod `name`, with the URL `url` (the pod's own
    /// `$AC_METADATA_URL` when None).
    fn get(&self, name: &str, url: Option<&str>, endpoint: &str) -> (i32, String, String) {
        self.sh(
            name,
            r#"wget -q -O - "${1:-$AC_METADATA_URL}/acMetadata/v1/$2""#,
            &[url.unwrap_or(""), endpoint],
        )
    }

    fn post(&self, name: &str, endpoint: &str, body: &str) -> (i32, String, String) {
        self.sh(
            name,
            r#"wget -q -S -O - --post-data "$2" "$AC_METADATA_URL/acMetadata/v1/$1" 2>&1"#,
            &[endpoint, body],
        )
    }

    fn url(&self, name: &str) -> String {
        self.sh(name, "echo \"$AC_METADATA_URL\"", &[])
            .1
            .trim()
            .to_string()
    }

    fn host_address(&self) -> String {
        let range = self
            .host
            .options()
            .iter()
            .find_map(|o| o.strip_prefix("jail.ip4.range="))
            .unwrap();
        range.replace(".0/24", ".1")
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn pods_learn_who_they_are_and_nobody_else_does() {
    let Some(mds) = Mds::start() else {
        return;
    };
    // It really runs as _jetpack, on the pod network's host address.
    let status: serde_json::Value =
        serde_json::from_str(&mds.ok(&["mds", "check", "-o", "json"])).unwrap();
    assert_eq!(status["user"], "_jetpack");
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", mds.child.id())).unwrap();
    let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uid = status["uid"].as_u64().unwrap().to_string();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == uid),
        "real, effective, saved and fs uid are all _jetpack's: {uid_line}"
    );
    assert_eq!(
        status["address"],
        format!("{}:{}", mds.host_address(), mds.port)
    );

    let a = mds.pod("a");
    let b = mds.pod("b");
    let (code, uuid, err) = mds.get("a", None, "pod/uuid");
    assert_eq!((code, uuid.as_str()), (0, a.as_str()), "{err}");
    let (code, manifest, _) = mds.get("a", None, "pod/manifest");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        (code, manifest["acKind"].as_str()),
        (0, Some("PodManifest"))
    );
    assert_eq!(
        manifest["apps"][0]["app"]["exec"],
        serde_json::json!(["sleep", "600"])
    );
    let (code, notes, _) = mds.get("b", None, "pod/annotations");
    assert!(code == 0 && notes.contains("\"b\""), "{notes}");
    let (code, image, _) = mds.get("a", None, "apps/main/image/id");
    assert!(code == 0 && !image.is_empty());

    // Pod b with pod a's token, from its own address: refused.
    let a_url = mds.url("a");
    let (code, out, err) = mds.get("b", Some(&a_url), "pod/uuid");
    assert!(code != 0 && err.contains("403"), "{out}{err}");
    assert!(!out.contains(&a), "learns nothing");
    // The host's own address and loopback: refused, and not even bound.
    let from_host = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{a_url}/acMetadata/v1/pod/uuid"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&from_host.stdout), "403");
    let loopback = std::net::TcpStream::connect(("127.0.0.1", mds.port));
    assert!(loopback.is_err(), "the MDS listens on the pod network only");

    // Sign in a, verify in b; tampered content or signature is 403.
    let (code, signed, _) = mds.post("a", "pod/hmac/sign", "content=built-image-sha256");
    assert_eq!(code, 0, "{signed}");
    let signature = signed.lines().last().unwrap().trim().to_string();
    let verify = |uuid: &str, sig: &str, content: &str| {
        mds.post(
            "b",
            "pod/hmac/verify",
            &form(&[("uuid", uuid), ("signature", sig), ("content", content)]),
        )
    };
    let (code, out, _) = verify(&a, &signature, "built-image-sha256");
    assert!(code == 0 && out.contains("200"), "{out}");
    let (code, out, _) = verify(&a, &signature, "built-image-sha257");
    assert!(code != 0 && out.contains("403"), "{out}");
    let mut forged = signature.clone().into_bytes();
    forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
    let (code, out, _) = verify(
        &a,
        std::str::from_utf8(&forged).unwrap(),
        "built-image-sha256",
    );
    assert!(code != 0 && out.contains("403"), "{out}");
    let (code, out, _) = verify(&b, &signature, "built-image-sha256");
    assert!(
        code != 0 && out.contains("403"),
        "another pod's uuid: {out}"
    );

    // A destroyed and re-created pod: the old token no longer works.
    mds.ok(&["pod", "rm", "-f", "a"]);
    let again = mds.pod("a");
    assert_ne!(again, a);
    let (code, _, err) = mds.get("a", Some(&a_url), "pod/uuid");
    assert!(code != 0 && err.contains("403"), "{err}");
    let (code, uuid, _) = mds.get("a", None, "pod/uuid");
    assert_eq!((code, uuid.as_str()), (0, again.as_str()));
    let _ = b;
}

#[test]
fn bad_requests_get_clear_statuses_and_bounded_resources() {
    let Some(mds) = Mds::start() else {
        return;
    };
    mds.pod("c");
    let status = |(_, out, _): (i32, String, String)| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix("HTTP/1.1 "))
            .map(|s| s[..3].to_string())
            .unwrap_or_else(|| out.clone())
    };
    assert_eq!(
        status(mds.post("c", "pod/hmac/sign", "other=1")),
        "400",
        "missing content"
    );
    let big = format!("content={}", "x".repeat(70 * 1024));
    assert_eq!(status(mds.post("c", "pod/hmac/sign", &big)), "413");
    assert_eq!(
        status(mds.post("c", "pod/hmac/verify", "uuid=x&signature=%21%21&content=y")),
        "400"
    );
    assert_eq!(
        status(mds.post(
            "c",
            "pod/hmac/verify",
            &form(&[
                ("uuid", "00000000-0000-0000-0000-000000000000"),
                ("signature", "not base64!"),
                ("content", "y")
            ])
        )),
        "400",
        "a signature neither base64 nor hex"
    );
    let get_status = |endpoint: &str| {
        mds.sh(
            "c",
            r#"wget -q -S -O - "$AC_METADATA_URL/acMetadata/v1/$1" 2>&1"#,
            &[endpoint],
        )
    };
    assert_eq!(
        status(get_status("apps/web/image/id")),
        "404",
        "unknown app"
    );
    assert_eq!(
        status(get_status("apps/%2e%2e/image/id")),
        "400",
        "traversal"
    );
    assert_eq!(status(get_status("pod/hmac/sign")), "405", "sign is POST");

    // A slow-loris client is cut off, and the MDS still serves.
    let mut slow = std::net::TcpStream::connect((mds.host_address().as_str(), mds.port)).unwrap();
    slow.write_all(b"GET /~x/acMetadata/v1/pod/uuid HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the connection was closed by the server's header timeout"
    );
    let (code, uuid, _) = mds.get("c", None, "pod/uuid");
    assert!(code == 0 && uuid.len() == 36);
}

#[test]
fn the_mds_refuses_a_readable_conf_and_missing_or_weak_keys() {
    if !jetpack_user() {
        return;
    }
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let try_mds = |conf: &PathBuf| {
        let out = host
            .command()
            .arg("--config")
            .arg(conf)
            .arg("mds")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let readable = conf(dir.path(), port, 0o644);
    assert!(
        try_mds(&readable).contains("chmod 600"),
        "{}",
        try_mds(&readable)
    );
    std::fs::write(&readable, format!("mds.token-key = {TOKEN_KEY}\n")).unwrap();
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(try_mds(&readable).contains("mds.signing-key is not set"));
    std::fs::write(
        &readable,
        format!("mds.token-key = abcd\nmds.signing-key = {SIGNING_KEY}\n"),
    )
    .unwrap();
    assert!(try_mds(&readable).contains("mds.token-key must be hex of at least 32 bytes"));
    // And nobody answers: `mds check` says so.
    let out = host.command().args(["mds", "check"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn serve_starts_the_mds_for_its_pods_and_stops_it() {
    if !jetpack_user() {
        return;
    }
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let port = free_port();
    let keys = [
        format!("mds.token-key={TOKEN_KEY}"),
        format!("mds.signing-key={SIGNING_KEY}"),
        format!("mds.port={port}"),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut server = TestServer::on_host_with(&host, &keys, &[]);
    let jetpack = |args: &[&str]| {
        let mut cmd = server.jetpack();
        cmd.args(args);
        cmd
    };
    let mut later = jetpack(&["mds", "check"]);
    let run = |args: &[&str]| jetpack(args).output().unwrap();
    let check = run(&["mds", "check", "-o", "json"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(status["user"], "_jetpack");
    // A pod made by any host command is known to it at once.
    let out = run(&[
        "pod", "run", "-d", "--name", "s", "busybox", "--", "sleep", "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = run(&[
        "pod",
        "exec",
        "s",
        "--",
        "sh",
        "-c",
        r#"wget -q -O - "$AC_METADATA_URL/acMetadata/v1/pod/uuid""#,
    ]);
    let shown: serde_json::Value =
        serde_json::from_slice(&run(&["pod", "show", "s", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        shown["id"].as_str().unwrap()
    );
    // The server's /metrics has the MDS's own counts, asked of it over
    // its control socket: that answer, and no refusal.
    let (code, metrics) = server.curl(&[], "/metrics");
    assert_eq!(code, 200, "{metrics}");
    for line in [
        "jetpack_mds_up 1",
        "jetpack_mds_requests_total{endpoint=\"uuid\",code=\"200\"} 1",
        "jetpack_mds_refusals_total{reason=\"token\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} in {}",
            metrics
                .lines()
                .filter(|l| l.contains("mds"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let _ = run(&["pod", "rm", "-f", "s"]);
    // It ends with the server.
    assert!(server.stop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while later.output().unwrap().status.success() {
        assert!(Instant::now() < deadline, "the MDS outlived its server");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server's MDS processes: `jetpack mds` as `_jetpack` with its
/// jetpack.conf.
fn mds_processes(server: &TestServer) -> Vec<common::Process> {
    let uid = jetpack_uid();
    server
        .processes()
        .into_iter()
        .filter(|p| p.uid == uid && p.jetpack_command() == Some("mds"))
        .collect()
}

#[test]
fn a_killed_server_takes_its_mds_with_it() {
    if !jetpack_user() {
        return;
    }
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    let options = key_options((TOKEN_KEY, SIGNING_KEY), free_port());
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut server = TestServer::on_host_with(&host, &options, &[]);
    let jetpack = || server.jetpack();
    let status = mds_status(&jetpack);
    let mds = mds_processes(&server);
    assert_eq!(mds.len(), 1, "the server's MDS, as _jetpack: {mds:?}");
    assert_eq!(status["pid"], mds[0].pid);
    assert_eq!(
        status["started_by"],
        server.child.as_ref().unwrap().id(),
        "it knows it is this server's"
    );

    // kill -9: the server has no say in it.
    server.signal(nix::sys::signal::Signal::SIGKILL);
    let killed = Instant::now();
    while !mds_processes(&server).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "the MDS outlived its killed server by a second: {:?}",
            mds_processes(&server)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Reaps the server (and checks that nothing else of it is left).
    server.kill();
}

#[test]
fn keys_rotated_between_two_server_runs_are_the_ones_the_mds_serves_with() {
    if !jetpack_user() {
        return;
    }
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let port = free_port();
    let options = key_options((TOKEN_KEY, SIGNING_KEY), port);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut server = TestServer::on_host_with(&host, &options, &[]);
    let old_status = mds_status(&|| server.jetpack());
    let old = pod_with(&|| server.jetpack(), "old");
    let (code, uuid, err) = uuid_with(&|| server.jetpack(), "old");
    assert_eq!((code, uuid.as_str()), (0, old.as_str()), "{err}");
    // A process's token is made by the host that starts it, from its keys.
    let out = run_with(
        &|| server.jetpack(),
        &[
            "pod",
            "exec",
            "old",
            "--",
            "sh",
            "-c",
            "echo $AC_METADATA_URL",
        ],
    );
    let old_url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(old_url.contains("/~"), "{old_url:?}");
    // The crash that used to leave the MDS running with the old keys.
    server.kill();

    // The operator rotates the keys in jetpack.conf and starts it again.
    conf_with(
        server.dir.path(),
        (NEW_TOKEN_KEY, NEW_SIGNING_KEY),
        port,
        0o600,
    );
    server
        .options
        .retain(|o| !o.starts_with("mds.token-key=") && !o.starts_with("mds.signing-key="));
    server.spawn(&[]);
    let new_status = mds_status(&|| server.jetpack());
    assert_ne!(new_status["keys"], old_status["keys"], "{new_status}");
    assert_eq!(
        new_status["started_by"],
        server.child.as_ref().unwrap().id()
    );
    // A pod started now has a token of the new keys, and it works.
    let new = pod_with(&|| server.jetpack(), "new");
    let (code, uuid, err) = uuid_with(&|| server.jetpack(), "new");
    assert_eq!((code, uuid.as_str()), (0, new.as_str()), "{err}");
    // The pod that ran before: a process started in it now gets a token of
    // the new keys, which works; the old keys' token is refused, so the
    // rotation really took effect.
    let (code, uuid, err) = uuid_with(&|| server.jetpack(), "old");
    assert_eq!((code, uuid.as_str()), (0, old.as_str()), "{err}");
    let (code, out, err) = uuid_at(&|| server.jetpack(), "old", Some(&old_url));
    assert!(code != 0 && err.contains("403"), "{out}{err}");
    assert!(server.stop());
}

#[test]
fn a_server_adopts_an_mds_on_its_own_with_its_keys_and_leaves_it_running() {
    let Some(mut mds) = Mds::start() else {
        return;
    };
    let before = mds_status(&|| mds.command());
    assert_eq!(before["started_by"], serde_json::Value::Null);
    let options = key_options((TOKEN_KEY, SIGNING_KEY), mds.port);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut server = TestServer::on_host_with(&mds.host, &options, &[]);
    assert!(
        server.log().contains("adopting the MDS found running"),
        "{}",
        server.log()
    );
    assert!(mds_processes(&server).is_empty(), "no MDS of its own");
    let status = mds_status(&|| server.jetpack());
    assert_eq!(status["pid"], mds.child.id(), "the same MDS serves");
    // It serves the server's pods.
    let id = pod_with(&|| server.jetpack(), "a");
    let (code, uuid, err) = uuid_with(&|| server.jetpack(), "a");
    assert_eq!((code, uuid.as_str()), (0, id.as_str()), "{err}");
    let _ = run_with(&|| server.jetpack(), &["pod", "rm", "-f", "a"]);

    // The server stops; the rc.d MDS is not its to stop.
    assert!(server.stop());
    assert!(
        mds.child.try_wait().unwrap().is_none(),
        "the MDS on its own still runs"
    );
    assert_eq!(mds_status(&|| mds.command())["pid"], mds.child.id());
}

#[test]
fn a_server_replaces_an_mds_with_other_keys_and_says_so() {
    let Some(mut mds) = Mds::start() else {
        return;
    };
    let old_pid = mds.child.id();
    let options = key_options((NEW_TOKEN_KEY, NEW_SIGNING_KEY), mds.port);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut server = TestServer::on_host_with(&mds.host, &options, &[]);
    let log = server.log();
    assert!(
        log.contains(&format!("replacing the MDS found running (pid {old_pid})"))
            && log.contains("its keys are not the ones in jetpack.conf"),
        "{log}"
    );
    // The server waited for it to end before starting its own.
    let status = mds.child.try_wait().unwrap();
    assert!(status.is_some(), "the MDS with other keys was stopped");
    let status = mds_status(&|| server.jetpack());
    assert_eq!(status["started_by"], server.child.as_ref().unwrap().id());
    assert_eq!(mds_processes(&server).len(), 1);
    // Its pods' tokens (of the server's keys) work.
    let id = pod_with(&|| server.jetpack(), "b");
    let (code, uuid, err) = uuid_with(&|| server.jetpack(), "b");
    assert_eq!((code, uuid.as_str()), (0, id.as_str()), "{err}");
    let _ = run_with(&|| server.jetpack(), &["pod", "rm", "-f", "b"]);
    assert!(server.stop());
}
