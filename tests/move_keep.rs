//! Move and keep: a base exported from one jetpack host and imported into
//! another (zfs-cli on zfs-fuse, and dir), damaged exports refused without
//! a trace, and a pod's snapshots, rollback and clones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Driver, TestHost};

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Where an export's payload starts: after the magic, the version, the
/// header's length and the header.
fn payload_start(bytes: &[u8]) -> usize {
    assert_eq!(&bytes[..13], b"jetpack-base\0", "the envelope's magic");
    let len = u32::from_be_bytes(bytes[17..21].try_into().unwrap()) as usize;
    21 + len
}

fn export_and_import(driver: Driver) {
    let Some(a) = TestHost::with_busybox(driver) else {
        return;
    };
    let b = TestHost::new(driver).unwrap();
    b.ok(&["init"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("busybox.jpb");
    a.ok(&["base", "export", "busybox", file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();
    let start = payload_start(&bytes);
    assert!(bytes.len() > start + 1024, "a payload of some size");

    // A byte flipped in the payload, or the file cut short: refused, and
    // host B has no base and no dataset more than before.
    let mut flipped = bytes.clone();
    let mid = start + (bytes.len() - start) / 2;
    flipped[mid] ^= 0x40;
    let damaged = dir.path().join("flipped.jpb");
    std::fs::write(&damaged, &flipped).unwrap();
    let err = b.fails(&["base", "import", damaged.to_str().unwrap()]);
    assert!(
        err.contains("sha256") || err.contains("damaged") || err.contains("stream"),
        "{err}"
    );
    let cut = dir.path().join("cut.jpb");
    std::fs::write(&cut, &bytes[..mid]).unwrap();
    b.fails(&["base", "import", cut.to_str().unwrap()]);
    assert_eq!(b.json(&["base", "list"]), serde_json::json!([]));
    assert!(b.leftovers().is_empty(), "left: {:?}", b.leftovers());

    // Through a pipe: `base export B -` | `base import -`.
    let exported = a
        .command()
        .args(["base", "export", "busybox", "-"])
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(
        payload_start(&exported.stdout),
        start,
        "the same header either way"
    );
    let mut import = b
        .command()
        .args(["base", "import", "-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    import
        .stdin
        .take()
        .unwrap()
        .write_all(&exported.stdout)
        .unwrap();
    let imported = import.wait_with_output().unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    // The same base: metadata and files.
    let show_a = a.json(&["base", "show", "busybox"]);
    let show_b = b.json(&["base", "show", "busybox"]);
    for key in ["id", "name", "source", "size", "created_at", "state"] {
        assert_eq!(show_a[key], show_b[key], "{key}");
    }
    let id = show_a["id"].as_str().unwrap();
    let inside = |h: &TestHost| h.root.join("bases").join(id).join("bin/busybox");
    assert_eq!(sha256_of(&inside(&a)), sha256_of(&inside(&b)));

    // Once is enough: the same export again is refused by name and id.
    let err = b.fails(&["base", "import", file.to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");

    // A pod runs on the imported base.
    let out = b.ok(&[
        "pod",
        "run",
        "--rm",
        "busybox",
        "--",
        "/bin/sh",
        "-c",
        "echo moved",
    ]);
    assert_eq!(out.trim(), "moved");

    // The other driver's host refuses the stream, saying why.
    let other = match driver {
        Driver::Dir => Driver::ZfsCli,
        Driver::ZfsCli => Driver::Dir,
    };
    if let Some(c) = TestHost::new(other) {
        c.ok(&["init"]);
        let err = c.fails(&["base", "import", file.to_str().unwrap()]);
        assert!(err.contains("stream"), "{err}");
        assert!(c.leftovers().is_empty(), "left: {:?}", c.leftovers());
    }
}

#[test]
fn a_base_moves_between_hosts_on_zfs() {
    export_and_import(Driver::ZfsCli);
}

#[test]
fn a_base_moves_between_hosts_on_dir() {
    export_and_import(Driver::Dir);
}

fn in_pod(host: &TestHost, pod: &str, script: &str) -> String {
    host.ok(&["pod", "run", pod, "--", "/bin/sh", "-c", script])
}

fn snapshots_rollback_clone(driver: Driver) {
    let Some(host) = TestHost::with_busybox(driver) else {
        return;
    };
    host.ok(&["pod", "create", "busybox", "--name", "keeper"]);
    in_pod(&host, "keeper", "echo one > /note");
    host.ok(&["pod", "snapshot", "keeper", "first"]);
    in_pod(&host, "keeper", "echo two > /note; echo x > /extra");

    let snaps = host.json(&["pod", "snapshots", "keeper"]);
    let names: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first"]);
    let err = host.fails(&["pod", "snapshot", "keeper", "first"]);
    assert!(err.contains("already has a snapshot"), "{err}");
    for bad in ["../x", "sealed", "a/b", ""] {
        host.fails(&["pod", "snapshot", "keeper", bad]);
    }
    let err = host.fails(&["pod", "rollback", "keeper", "nope"]);
    assert!(err.contains("no snapshot"), "{err}");

    // A clone of the snapshot has the snapshot's files; a clone of the
    // pod has its files now.
    host.ok(&[
        "pod",
        "clone",
        "keeper",
        "from-first",
        "--snapshot",
        "first",
    ]);
    assert_eq!(
        in_pod(
            &host,
            "from-first",
            "cat /note; test -e /extra && echo extra || true"
        ),
        "one\n"
    );
    host.ok(&["pod", "clone", "keeper", "from-now"]);
    assert_eq!(in_pod(&host, "from-now", "cat /note /extra"), "two\nx\n");
    let err = host.fails(&["pod", "clone", "keeper", "from-now"]);
    assert!(err.contains("from-now"), "{err}");

    // Rollback: the later write and the new file are gone. On ZFS not
    // while a clone hangs on a later snapshot (ZFS would destroy it).
    if driver == Driver::ZfsCli {
        let err = host.fails(&["pod", "rollback", "keeper", "first"]);
        assert!(err.contains("have clones"), "{err}");
    }
    host.ok(&["pod", "rm", "from-now"]);
    host.ok(&["pod", "rollback", "keeper", "first"]);
    assert_eq!(
        in_pod(
            &host,
            "keeper",
            "cat /note; test -e /extra && echo extra || true"
        ),
        "one\n"
    );

    // Not while it runs.
    host.ok(&["pod", "run", "-d", "keeper", "--", "/bin/sleep", "300"]);
    let err = host.fails(&["pod", "rollback", "keeper", "first"]);
    assert!(err.contains("stop it"), "{err}");
    host.ok(&["pod", "kill", "keeper"]);
    host.ok(&["pod", "rollback", "keeper", "first"]);

    // Snapshots go with their pod (clones first: on ZFS they hang on it).
    if driver == Driver::ZfsCli {
        let err = host.fails(&["pod", "rm", "keeper"]);
        assert!(err.contains("in use"), "{err}");
    }
    host.ok(&["pod", "rm", "from-first"]);
    host.ok(&["pod", "rm", "keeper"]);
    host.ok(&["base", "rm", "busybox"]);
    assert!(host.leftovers().is_empty(), "left: {:?}", host.leftovers());
}

#[test]
fn pod_snapshots_rollback_and_clones_on_zfs() {
    snapshots_rollback_clone(Driver::ZfsCli);
}

#[test]
fn pod_snapshots_rollback_and_clones_on_dir() {
    snapshots_rollback_clone(Driver::Dir);
}

/// Every file under `dir` with its bytes' sha256 (for "nothing changed").
fn tree_digest(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for entry in std::fs::read_dir(&p).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if entry.file_type().unwrap().is_file() {
                out.push((path.display().to_string(), sha256_of(&path)));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_backup_restores_the_catalog_on_another_host() {
    use common::server::{fake_elf, TestServer};
    if !(common::tool("curl") && common::tool("htpasswd") && common::tool("openssl")) {
        return;
    }
    let mut a = TestServer::start(&[], &[]);
    let json_post = |s: &TestServer, body: serde_json::Value, path: &str| {
        let body = body.to_string();
        let (status, made) = s.json(&["-H", "Content-Type: application/json", "-d", &body], path);
        assert_eq!(status, 201, "{path}: {made}");
    };
    json_post(
        &a,
        serde_json::json!({"name": "lab", "url": "https://10.0.0.9:9090"}),
        "/v1/uplinks",
    );
    json_post(
        &a,
        serde_json::json!({"name": "edge", "content": "Iface eth0 dhcp\neth0.index: 0\n"}),
        "/v1/nacls",
    );
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("service.elf");
    fake_elf(&elf, 200_000, "backup");
    let (status, img) = a.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", elf.display()),
        ],
        "/v1/images?name=service&tag=v1",
    );
    assert_eq!(status, 201, "{img}");
    let lists = |s: &TestServer| -> Vec<serde_json::Value> {
        ["/v1/nacls", "/v1/images", "/v1/uplinks"]
            .iter()
            .map(|p| {
                let (status, v) = s.json(&[], p);
                assert_eq!(status, 200, "{p}: {v}");
                v
            })
            .collect()
    };
    let before = lists(&a);

    // Taken while A runs.
    let file = dir.path().join("catalog.tar");
    let out = a
        .jetpack()
        .args(["backup", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let password = a.password.clone();
    assert!(a.stop());

    // A fresh host B: a truncated backup, or any restore while B's server
    // runs, is refused and changes nothing.
    let mut b = TestServer::start(&[], &[]);
    let restore = |s: &TestServer, f: &Path| {
        s.jetpack()
            .args(["restore", f.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let refused = restore(&b, &file);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("holds"), "{err}");
    assert!(b.stop());
    let untouched = (tree_digest(&b.data_dir()), tree_digest(&b.keys_dir()));
    let bytes = std::fs::read(&file).unwrap();
    // Cut in the middle, in the last member, in the first one. (A cut in
    // the two zero blocks that end a tar loses no byte of any member: the
    // manifest checks what is there, and that is all of it.)
    for cut_at in [bytes.len() / 2, bytes.len() - 1024 - 100, 700] {
        let cut = dir.path().join("cut.tar");
        std::fs::write(&cut, &bytes[..cut_at]).unwrap();
        let out = restore(&b, &cut);
        assert!(
            !out.status.success(),
            "a backup cut at {cut_at} was restored"
        );
        assert_eq!(
            (tree_digest(&b.data_dir()), tree_digest(&b.keys_dir())),
            untouched,
            "a refused restore (cut at {cut_at}) changed B"
        );
    }

    let out = restore(&b, &file);
    assert!(out.status.success(), "{out:?}");
    b.spawn(&[]);
    // A's users came along: A's admin password opens B.
    b.password = password;
    assert_eq!(lists(&b), before);
}

#[test]
fn a_base_moves_through_the_api() {
    use common::server::TestServer;
    if !common::tool("curl") {
        return;
    }
    let Some(a) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let b = TestHost::new(Driver::Dir).unwrap();
    b.ok(&["init"]);
    let (sa, sb) = (TestServer::on_host(&a, &[]), TestServer::on_host(&b, &[]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("busybox.jpb");
    let got = Command::new("curl")
        .args(["-sSfk", "-u", &format!("{}:{}", sa.user, sa.password), "-o"])
        .arg(&file)
        .arg(sa.url("/v1/bases/busybox/export"))
        .output()
        .unwrap();
    assert!(got.status.success(), "{got:?}");
    let bytes = std::fs::read(&file).unwrap();
    payload_start(&bytes);
    assert_eq!(sa.curl(&[], "/v1/bases/nope/export").0, 404);

    let post = |s: &TestServer| {
        let (status, job) = s.json(
            &[
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", file.display()),
            ],
            "/v1/bases/import",
        );
        assert_eq!(status, 202, "{job}");
        let id = job["id"].as_str().unwrap().to_string();
        common::until(60, "the import job to end", || {
            let (_, job) = s.json(&[], &format!("/v1/jobs/{id}"));
            let state = job["state"].as_str().unwrap_or_default().to_string();
            matches!(state.as_str(), "succeeded" | "failed").then_some(job)
        })
    };
    let done = post(&sb);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["name"], "busybox");
    let (_, base_a) = sa.json(&[], "/v1/bases/busybox");
    let (_, base_b) = sb.json(&[], "/v1/bases/busybox");
    assert_eq!(base_a, base_b);
    // Twice: the job fails, saying the base exists.
    let again = post(&sb);
    assert_eq!(again["state"], "failed", "{again}");
    assert!(again.to_string().contains("already exists"), "{again}");
}
