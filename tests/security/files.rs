//! Security tests: jetpack's files on disk and what a base import may
//! fetch (issue 13, findings 4 and 5). File modes after real use and after
//! a start over a loose data dir; base imports from the server's own
//! ports, its neighbours and metadata addresses, refused alike; URL
//! credentials kept out of job logs and errors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::server::{fake_elf, TestServer};
use crate::common::{busybox_tarball, tool};

/// What a refused or unreachable URL gets, whichever it was.
const UNREACHABLE: &str = "not allowed or unreachable";

fn wait_job(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, job) = server.json(&[], &format!("/v1/jobs/{id}"));
        assert_eq!(status, 200, "{job}");
        let state = job["state"].as_str().unwrap_or_default().to_string();
        if matches!(state.as_str(), "succeeded" | "failed" | "cancelled") {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Imports a base from `url` through the API; the finished job.
fn import_url(server: &TestServer, url: &str, name: &str) -> Value {
    let body = json!({"url": url, "name": name}).to_string();
    let (status, job) = server.json(
        &["-H", "Content-Type: application/json", "-d", &body],
        "/v1/bases",
    );
    assert_eq!(status, 202, "{url}: {job}");
    wait_job(server, job["id"].as_str().expect("a job id"))
}

/// Imports `tarball` as a base by upload; the finished job.
fn import_upload(server: &TestServer, tarball: &Path, name: &str) -> Value {
    let (status, job) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", tarball.display()),
        ],
        &format!("/v1/bases?name={name}"),
    );
    assert_eq!(status, 202, "{job}");
    let done = wait_job(server, job["id"].as_str().expect("a job id"));
    assert_eq!(done["state"], "succeeded", "{done}");
    done
}

fn upload_image(server: &TestServer, salt: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let elf = dir.path().join("service.elf");
    fake_elf(&elf, 10_000, salt);
    let (status, img) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", elf.display()),
        ],
        &format!("/v1/images?name=svc-{salt}"),
    );
    assert_eq!(status, 201, "{img}");
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Every directory and file under `root` (itself included), without
/// entering the pods' and bases' root file systems (directories directly
/// in `bases/` and `pods/`): those are the pods', not jetpack's.
fn own_paths(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !(meta.is_dir() || meta.is_file()) {
            continue;
        }
        found.push(path.clone());
        if !meta.is_dir() {
            continue;
        }
        let datasets = path.parent() == Some(root)
            && matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("bases" | "pods" | "osimages")
            );
        for entry in std::fs::read_dir(&path).expect("read_dir").flatten() {
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if datasets && is_dir {
                continue;
            }
            pending.push(entry.path());
        }
    }
    found
}

/// The paths under `root` that their group or others may use, with modes.
fn open_to_others(root: &Path) -> Vec<String> {
    own_paths(root)
        .into_iter()
        .filter(|p| mode(p) & 0o077 != 0)
        .map(|p| format!("{} {:o}", p.display(), mode(&p)))
        .collect()
}

/// Whether user nobody can read `path`.
fn nobody_reads(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat"])
        .arg(path)
        .output()
        .expect("running setpriv")
        .status
        .success()
}

#[test]
fn jetpacks_files_are_private_and_tightened_at_start() {
    if !tool("setpriv") {
        return;
    }
    let mut server = TestServer::start(&[], &[]);
    // The test's folder is 0700, which would hide everything from nobody
    // whatever jetpack did: open it as /var is.
    chmod(server.dir.path(), 0o755);
    let control = server.dir.path().join("control");
    std::fs::write(&control, b"readable\n").expect("writing the control file");
    chmod(&control, 0o644);
    assert!(
        nobody_reads(&control),
        "setpriv works: nobody reads a 0644 file"
    );

    // Use it: an image upload, a base import (an upload, and a job).
    upload_image(&server, "one");
    let base = import_upload(&server, &busybox_tarball(), "busybox");
    let base_id = base["result"]["id"]
        .as_str()
        .expect("a base id")
        .to_string();
    // An archive that lists neither "." nor the directories above its one
    // file: what jetpack makes of them is a pod's "/" and tar(1)'s 0755,
    // not its own private modes.
    let plain = server.dir.path().join("plain");
    std::fs::create_dir_all(plain.join("usr/lib")).expect("mkdir");
    std::fs::write(plain.join("usr/lib/data.txt"), b"data\n").expect("write");
    chmod(&plain.join("usr/lib/data.txt"), 0o644);
    let plain_tar = server.dir.path().join("plain.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(&plain)
        .arg("-cf")
        .arg(&plain_tar)
        .arg("usr/lib/data.txt")
        .status()
        .expect("running tar");
    assert!(made.success());
    let plain_base = import_upload(&server, &plain_tar, "plain");
    let plain_root = server
        .data_dir()
        .join("bases")
        .join(plain_base["result"]["id"].as_str().expect("a base id"));
    for (rel, expected) in [
        ("", 0o755),
        ("usr", 0o755),
        ("usr/lib", 0o755),
        ("usr/lib/data.txt", 0o644),
    ] {
        assert_eq!(mode(&plain_root.join(rel)), expected, "/{rel} of a base");
    }

    let data = server.data_dir();
    let db = data.join("state.db");
    assert!(db.exists());
    assert_eq!(mode(&data), 0o700);
    assert_eq!(
        open_to_others(&data),
        Vec::<String>::new(),
        "under {}",
        data.display()
    );
    let keys = server.keys_dir();
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(
        open_to_others(&keys),
        Vec::<String>::new(),
        "under {}",
        keys.display()
    );
    // The uplink tokens are in the state database.
    assert!(!nobody_reads(&db), "nobody reads {}", db.display());
    for p in own_paths(&data).into_iter().filter(|p| p.is_file()) {
        assert!(!nobody_reads(&p), "nobody reads {}", p.display());
    }

    // Loosen what an older jetpack left loose, and restart.
    server.stop();
    let base_root = data.join("bases").join(&base_id);
    let busybox = base_root.join("bin/busybox");
    let busybox_mode = mode(&busybox);
    let mut loosened = 0;
    for p in own_paths(&data) {
        chmod(&p, if p.is_dir() { 0o755 } else { 0o644 });
        // The server's lock is tightened when it is taken, after the walk
        // that reports the others.
        if !p.ends_with("serve.lock") {
            loosened += 1;
        }
    }
    assert!(nobody_reads(&db), "the loosened state database is readable");
    server.spawn(&[]);
    assert_eq!(
        open_to_others(&data),
        Vec::<String>::new(),
        "after a restart"
    );
    assert!(!nobody_reads(&db));
    let log = server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tightened modes"))
        .collect();
    assert_eq!(lines.len(), 1, "one log line: {log}");
    assert!(
        lines[0].contains(&format!(
            "tightened modes of {loosened} path(s) under {}",
            data.display()
        )),
        "{}",
        lines[0]
    );
    // The bases' own file systems are the pods', not tightened.
    assert_eq!(mode(&busybox), busybox_mode, "{}", busybox.display());
    assert_eq!(mode(&plain_root), 0o755);
    assert_eq!(mode(&plain_root.join("usr/lib/data.txt")), 0o644);
    // And it still serves what it stored.
    let (status, _) = server.curl(&[], &format!("/v1/bases/{base_id}"));
    assert_eq!(status, 200);
}

/// A small HTTP server for the test: `/redirect` answers 302 to
/// `redirect_to`, `/NAME.tar.xz` the busybox archive, anything else 404.
/// Returns its address; it serves until the test process ends.
fn http_server(ip: &str, redirect_to: String) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("binding the test's HTTP server");
    let addr = listener.local_addr().expect("its address");
    let tarball = std::fs::read(busybox_tarball()).expect("the busybox archive");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, extra, body): (&str, String, &[u8]) = if path == "/redirect" {
                ("302 Found", format!("Location: {redirect_to}\r\n"), b"")
            } else if path.ends_with(".tar.xz") {
                ("200 OK", String::new(), &tarball)
            } else {
                ("404 Not Found", String::new(), b"")
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
        }
    });
    addr
}

#[test]
fn base_imports_fetch_only_allowed_addresses_and_say_nothing_of_ports() {
    // Something else listening on this host, which must see no connection.
    let bystander = TcpListener::bind("127.0.0.1:0").expect("a listening port");
    bystander.set_nonblocking(true).expect("nonblocking");
    let bystander_port = bystander.local_addr().expect("its address").port();
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // An allowed server (127.0.0.2) that redirects to the bystander.
    let allowed = http_server(
        "127.0.0.2",
        format!("http://127.0.0.1:{bystander_port}/a.tar.xz"),
    );
    let server = TestServer::start(&["base.import.allow=127.0.0.2/32"], &[]);

    let targets = [
        format!("http://127.0.0.1:{}/v1/info", server.port),
        format!("https://127.0.0.1:{}/v1/info", server.port),
        format!("http://127.0.0.1:{}/", server.uplink_port),
        format!("http://127.0.0.1:{bystander_port}/a.tar.xz"),
        format!("http://127.0.0.1:{closed}/a.tar.xz"),
        format!("http://[::1]:{}/a.tar.xz", server.port),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://localhost:{bystander_port}/a.tar.xz"),
        format!("http://{allowed}/redirect"),
    ];
    for (i, url) in targets.iter().enumerate() {
        let job = import_url(&server, url, &format!("refused{i}"));
        assert_eq!(job["state"], "failed", "{url}: {job}");
        assert_eq!(
            job["error"].as_str().unwrap_or_default(),
            format!("cannot fetch {url}: {UNREACHABLE}"),
            "{job}"
        );
    }
    assert_eq!(server.json(&[], "/v1/bases").1, json!([]), "no base made");
    assert!(
        matches!(bystander.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing connected to the bystander's port"
    );

    // What base.import.allow covers is fetched.
    let url = format!("http://{allowed}/busybox.tar.xz");
    let job = import_url(&server, &url, "allowed");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["name"], "allowed");
    assert_eq!(
        server.json(&[], "/v1/bases").1.as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn url_credentials_are_redacted_in_job_logs_and_errors() {
    let allowed = http_server("127.0.0.2", "http://127.0.0.1:1/".to_string());
    let server = TestServer::start(&["base.import.allow=127.0.0.2/32"], &[]);
    let secret = "s3cr3t-pw";

    // A refused URL with credentials, imported without a name (the job's
    // target is then the URL).
    let refused = format!(
        "http://user:{secret}@127.0.0.1:{}/busybox.tar.xz",
        server.port
    );
    let body = json!({"url": refused}).to_string();
    let (status, job) = server.json(
        &["-H", "Content-Type: application/json", "-d", &body],
        "/v1/bases",
    );
    assert_eq!(status, 202, "{job}");
    let refused_id = job["id"].as_str().expect("a job id").to_string();
    let failed = wait_job(&server, &refused_id);
    assert_eq!(failed["state"], "failed");
    assert_eq!(
        failed["error"].as_str().unwrap_or_default(),
        format!(
            "cannot fetch http://user:***@127.0.0.1:{}/busybox.tar.xz: {UNREACHABLE}",
            server.port
        )
    );

    // An allowed one that works.
    let url = format!("http://user:{secret}@{allowed}/busybox.tar.xz");
    let done = import_url(&server, &url, "withcreds");
    assert_eq!(done["state"], "succeeded", "{done}");
    let ok_id = done["id"].as_str().expect("a job id").to_string();

    for id in [&refused_id, &ok_id] {
        let (status, log) = server.curl(&[], &format!("/v1/jobs/{id}/log"));
        assert_eq!(status, 200);
        assert!(log.contains("user:***@"), "{log}");
        assert!(!log.contains(secret), "the job log: {log}");
    }
    let (_, jobs) = server.curl(&[], "/v1/jobs");
    assert!(jobs.contains("user:***@"), "{jobs}");
    assert!(!jobs.contains(secret), "the jobs: {jobs}");
    let (_, bases) = server.curl(&[], "/v1/bases");
    assert!(bases.contains("user:***@"), "{bases}");
    assert!(!bases.contains(secret), "the bases: {bases}");
    let log = server.log();
    assert!(!log.contains(secret), "the server's log: {log}");
}
