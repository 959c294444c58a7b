//! The RackHD image-service compatibility listener (`imageservice.*`)
//! through a real `jetpack serve` and real curl: the exact flow
//! (`PUT /images?...&isoclient=x.iso --upload-file x.iso`, ready in `GET
//! /images`, the files byte-exact from the southbound server), the other
//! sources (isolocal, isostore, isoweb from a loopback HTTP server written
//! here), the two stores with `{name, size, upload}`, bad input, the API's
//! auth and TLS by default, the allow-list, and the listener off by default
//! (its port not bound). ISOs are made by xorriso.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::iso::{make_iso, noise};
use common::server::{free_port, TestServer};
use serde_json::Value;

/// Over curl's threshold for `Expect: 100-continue` (1 MiB), so the
/// streamed answer is tried against a client that waits for it.
const BIG: usize = 3 << 20;

struct Fixture {
    dir: tempfile::TempDir,
    iso: PathBuf,
    big: Vec<u8>,
}

/// x.iso: nested folders, a README and a 3 MiB file.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("pool/main/u")).unwrap();
    std::fs::write(tree.join("README.txt"), b"an OS image for RackHD\n").unwrap();
    let big = noise(BIG, 19);
    std::fs::write(tree.join("pool/main/u/big.bin"), &big).unwrap();
    // A real path, no symlink on the way (isolocal refuses those).
    let iso = std::fs::canonicalize(dir.path()).unwrap().join("x.iso");
    make_iso(&tree, &iso);
    Fixture { dir, iso, big }
}

fn available() -> bool {
    common::tool("xorriso") && common::tool("bsdtar") && common::tool("curl")
}

/// The compatibility listener's base URL.
fn base(port: u16, tls: bool) -> String {
    format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" })
}

/// curl as the image-service's users ran it: (status, body, exit success).
fn curl(args: &[&str], url: &str) -> (u16, String, bool) {
    let out = Command::new("curl")
        .args(["-sS", "-k", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("running curl");
    split(out)
}

fn split(out: Output) -> (u16, String, bool) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or(0);
    (status, body.to_string(), out.status.success())
}

fn json(args: &[&str], url: &str) -> (u16, Value) {
    let (status, body, _) = curl(args, url);
    let v =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body:?}"));
    (status, v)
}

/// Polls `GET /images` until the image is `OK` (or failed: the test fails).
fn wait_ok(url: &str, name: &str, version: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, v) = json(&[], &format!("{url}/images"));
        assert_eq!(status, 200, "{v}");
        let found = v
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name && i["version"] == version)
            .cloned()
            .unwrap_or_else(|| panic!("no image {name} {version} in {v}"));
        match found["status"].as_str().unwrap() {
            "OK" => return found,
            "downloading iso" | "preparing" => {}
            other => panic!("image {name} {version} is {other}: {found}"),
        }
        assert!(Instant::now() < deadline, "{name} {version} never OK");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A file of the southbound server, as bytes.
fn southbound(server: &TestServer, path: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{}{path}", server.files_port))
        .output()
        .expect("running curl");
    let mut body = out.stdout;
    let status = body.split_off(body.len().saturating_sub(3));
    (String::from_utf8(status).unwrap().parse().unwrap(), body)
}

/// An upload's streamed answer, as the image-service printed it.
fn assert_progress(body: &str) {
    for tenth in 1..=10 {
        assert!(
            body.contains(&format!("Uploaded {} %\n", tenth * 10)),
            "no {}% line: {body:?}",
            tenth * 10
        );
    }
    assert!(body.ends_with("Upload finished!\n"), "{body:?}");
}

/// A loopback HTTP server that answers every request with `bytes`.
fn http_peer(bytes: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = conn.write_all(&bytes);
        }
    });
    port
}

/// The TCP ports a process listens on (/proc: its socket inodes among
/// the listening sockets).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let mut inodes = BTreeSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.display().to_string();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

fn pid(server: &TestServer) -> u32 {
    server.child.as_ref().unwrap().id()
}

#[test]
fn rackhd_flow_every_source_both_stores_and_bad_input() {
    if !available() {
        return;
    }
    let fx = fixture();
    let port = free_port();
    let server = TestServer::start(
        &[
            &format!("imageservice.port={port}"),
            "imageservice.auth=none",
            "imageservice.tls=off",
            "base.import.allow=127.0.0.1",
        ],
        &[],
    );
    let url = base(port, false);
    assert!(listening_ports(pid(&server)).contains(&port));

    // The exact flow, as the image-service README shows it.
    let out = Command::new("curl")
        .args(["-sS", "-X", "PUT"])
        .arg(format!(
            "{url}/images?name=ubuntu&version=14.04&isoclient=x.iso"
        ))
        .arg("--upload-file")
        .arg(&fx.iso)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_progress(&text);
    let image = wait_ok(&url, "ubuntu", "14.04");
    assert_eq!(image["iso"], "x.iso", "{image}");
    assert_eq!(image["id"].as_str().unwrap().len(), 36, "{image}");
    let (status, bytes) = southbound(&server, "/ubuntu/14.04/pool/main/u/big.bin");
    assert_eq!(status, 200);
    assert!(bytes == fx.big, "big.bin differs ({} bytes)", bytes.len());
    let (status, bytes) = southbound(&server, "/ubuntu/14.04/README.txt");
    assert_eq!(
        (status, bytes.as_slice()),
        (200, &b"an OS image for RackHD\n"[..])
    );
    // The same business layer as /v1: visible there too.
    let (status, v) = server.json(&[], "/v1/osimages/ubuntu/14.04");
    assert_eq!((status, v["state"].as_str()), (200, Some("ready")), "{v}");
    let (_, v) = server.json(&[], "/v1/isos");
    assert!(
        v.as_array().unwrap().iter().any(|i| i["name"] == "x.iso"),
        "{v}"
    );
    // Filters of GET /images, as it had them.
    let (_, v) = json(&[], &format!("{url}/images?name=ubuntu&status=OK"));
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (_, v) = json(&[], &format!("{url}/images?name=centos"));
    assert_eq!(v, serde_json::json!([]));

    // A duplicate name and version: 400, as it answered.
    let (status, v) = json(
        &["-X", "PUT"],
        &format!("{url}/images?name=ubuntu&version=14.04&isostore=x.iso"),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("already exists"),
        "{v}"
    );

    // isostore: the ISO the first upload left in the store.
    let (status, v) = json(
        &["-X", "PUT"],
        &format!("{url}/images?name=ubuntu&version=14.04-store&isostore=x.iso"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["iso"].as_str()),
        (Some("preparing"), Some("x.iso")),
        "{v}"
    );
    wait_ok(&url, "ubuntu", "14.04-store");
    assert_eq!(southbound(&server, "/ubuntu/14.04-store/README.txt").0, 200);

    // isolocal: a path on the server.
    let (status, v) = json(
        &["-X", "PUT"],
        &format!(
            "{url}/images?name=centos&version=7.0&isolocal={}",
            fx.iso.display()
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["iso"].as_str()),
        (Some("preparing"), Some("x.iso")),
        "{v}"
    );
    wait_ok(&url, "centos", "7.0");
    let (status, bytes) = southbound(&server, "/centos/7.0/pool/main/u/big.bin");
    assert!(status == 200 && bytes == fx.big);

    // isoweb: downloaded in the background ("downloading iso").
    let peer = http_peer(std::fs::read(&fx.iso).unwrap());
    let (status, v) = json(
        &["-X", "PUT"],
        &format!("{url}/images?name=photon&version=1.0&isoweb=http://127.0.0.1:{peer}/iso/photon-1.0.iso"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["iso"].as_str()),
        (Some("downloading iso"), Some("photon-1.0.iso")),
        "{v}"
    );
    wait_ok(&url, "photon", "1.0");
    assert_eq!(southbound(&server, "/photon/1.0/README.txt").0, 200);

    // Bad input: each a 400 with a message, nothing made.
    let local = fx.iso.display().to_string();
    for query in [
        // two sources, none
        format!("name=a&version=1&isostore=x.iso&isolocal={local}"),
        "name=a&version=1".to_string(),
        // no name, no version
        "version=1&isostore=x.iso".to_string(),
        "name=a&isostore=x.iso".to_string(),
        // names that would be paths
        "name=..&version=1&isostore=x.iso".to_string(),
        "name=a%2Fb&version=1&isostore=x.iso".to_string(),
        "name=a&version=..&isostore=x.iso".to_string(),
        "name=a&version=1&isostore=..%2Fx.iso".to_string(),
        // a relative path, a URL that is no http
        "name=a&version=1&isolocal=x.iso".to_string(),
        "name=a&version=1&isoweb=file:///etc/passwd".to_string(),
    ] {
        let (status, v) = json(&["-X", "PUT"], &format!("{url}/images?{query}"));
        assert_eq!(status, 400, "{query}: {v}");
        assert!(v["message"].as_str().is_some(), "{v}");
    }
    // An upload with a bad file name is refused before its body.
    let (status, _, _) = curl(
        &["-X", "PUT", "--upload-file", &local],
        &format!("{url}/images?name=a&version=1&isoclient=..%2Fx.iso"),
    );
    assert_eq!(status, 400);
    let (_, v) = json(&[], &format!("{url}/images"));
    assert_eq!(v.as_array().unwrap().len(), 4, "{v}");

    // Delete: by name and version (both required), the array it answered.
    let (status, _) = json(&["-X", "DELETE"], &format!("{url}/images?name=ubuntu"));
    assert_eq!(status, 400);
    let (status, v) = json(
        &[
            "-X",
            "DELETE",
            "-H",
            "Content-Type: application/json",
            "-d",
            "",
        ],
        &format!("{url}/images?name=ubuntu&version=14.04-store"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0]["version"], "14.04-store", "{v}");
    assert_eq!(southbound(&server, "/ubuntu/14.04-store/README.txt").0, 404);
    let (status, _) = json(
        &["-X", "DELETE"],
        &format!("{url}/images?name=ubuntu&version=14.04-store"),
    );
    assert_eq!(status, 404);

    // The ISO store: x.iso is in use by ubuntu 14.04.
    let (status, v) = json(&[], &format!("{url}/iso"));
    assert_eq!(status, 200);
    let x = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "x.iso")
        .cloned()
        .unwrap();
    assert!(x["size"].as_str().unwrap().ends_with(" MB"), "{x}");
    assert_eq!(x["bytes"], std::fs::metadata(&fx.iso).unwrap().len());
    assert!(
        x["upload"].as_str().unwrap().ends_with('Z') && x["uploaded"] == x["upload"],
        "{x}"
    );
    let (status, v) = json(&["-X", "DELETE"], &format!("{url}/iso?name=x.iso"));
    assert_eq!(status, 409, "{v}");

    // PUT/GET/DELETE /iso and /microkernel.
    for (route, southbound_dir, name) in [
        ("iso", "isos", "other.iso"),
        ("microkernel", "microkernels", "vmlinuz-3.16.0-25-generic"),
    ] {
        let file = fx.dir.path().join(name);
        let bytes = noise(BIG + 12345, name.len() as u64);
        std::fs::write(&file, &bytes).unwrap();
        let (status, body, ok) = curl(
            &["-X", "PUT", "--upload-file", &file.display().to_string()],
            &format!("{url}/{route}?name={name}"),
        );
        assert!(status == 200 && ok, "{route}: {status} {body}");
        assert_progress(&body);
        let (_, v) = json(&[], &format!("{url}/{route}"));
        let entry = v
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {v}"));
        assert_eq!(entry["size"], "3.16 MB", "{entry}");
        assert_eq!(entry["bytes"], bytes.len() as u64);
        let (status, served) = southbound(&server, &format!("/{southbound_dir}/{name}"));
        assert!(status == 200 && served == bytes, "{route}: {status}");
        // A taken name: refused before the body (the stored file may back
        // an OS image).
        let (status, _, _) = curl(
            &["-X", "PUT", "--upload-file", &file.display().to_string()],
            &format!("{url}/{route}?name={name}"),
        );
        assert_eq!(status, 409);
        for bad in ["..", "a%2Fb", ""] {
            let (status, _, _) = curl(
                &["-X", "PUT", "--upload-file", &file.display().to_string()],
                &format!("{url}/{route}?name={bad}"),
            );
            assert_eq!(status, 400, "{route} {bad:?}");
        }
        let (status, v) = json(&["-X", "DELETE"], &format!("{url}/{route}?name={name}"));
        assert_eq!((status, v["name"].as_str()), (200, Some(name)), "{v}");
        let (status, _) = json(&["-X", "DELETE"], &format!("{url}/{route}?name={name}"));
        assert_eq!(status, 404);
        assert_eq!(
            southbound(&server, &format!("/{southbound_dir}/{name}")).0,
            404
        );
    }
    let (status, v) = json(&[], &format!("{url}/nothing"));
    assert_eq!(status, 404, "{v}");
}

#[test]
fn the_apis_users_and_tls_by_default() {
    if !common::tool("curl") {
        return;
    }
    let port = free_port();
    let server = TestServer::start(
        &[
            &format!("imageservice.port={port}"),
            "bootfiles.maxupload=1000000",
        ],
        &[],
    );
    let url = base(port, true);
    let (status, _, _) = curl(&[], &format!("{url}/iso"));
    assert_eq!(status, 401);
    let (status, _, _) = curl(&["-u", "admin:wrong"], &format!("{url}/microkernel"));
    assert_eq!(status, 401);
    let userpass = format!("{}:{}", server.user, server.password);
    let (status, v) = json(&["-u", &userpass], &format!("{url}/iso"));
    assert_eq!((status, v), (200, serde_json::json!([])));
    // An upload with credentials, over TLS.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("initrd.img");
    std::fs::write(&file, noise(5000, 3)).unwrap();
    let (status, body, ok) = curl(
        &[
            "-u",
            &userpass,
            "-X",
            "PUT",
            "--upload-file",
            &file.display().to_string(),
        ],
        &format!("{url}/microkernel?name=initrd.img"),
    );
    assert!(status == 200 && ok, "{status} {body}");
    assert_progress(&body);
    let (_, v) = server.json(&[], "/v1/microkernels");
    assert_eq!(v[0]["name"], "initrd.img", "{v}");
    // Over bootfiles.maxupload: a declared length is a 413 before the
    // body; a chunked body is cut where it passes the limit, the answer
    // saying why and curl exiting non-zero; nothing is stored either way.
    let big = dir.path().join("big.img");
    std::fs::write(&big, noise(3 << 20, 4)).unwrap();
    let (status, body, _) = curl(
        &[
            "-u",
            &userpass,
            "-X",
            "PUT",
            "--upload-file",
            &big.display().to_string(),
        ],
        &format!("{url}/microkernel?name=big.img"),
    );
    assert_eq!(status, 413, "{body}");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "-u",
            &userpass,
            "-X",
            "PUT",
            "--upload-file",
            "-",
        ])
        .arg(format!("{url}/microkernel?name=big.img"))
        .stdin(std::fs::File::open(&big).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Upload failed: the body is larger than the limit"),
        "{text}"
    );
    let (_, v) = server.json(&[], "/v1/microkernels");
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    // Plain HTTP is not spoken there.
    let (status, _, ok) = curl(&[], &format!("http://127.0.0.1:{port}/iso"));
    assert!(!ok || status != 200);
}

#[test]
fn the_allow_list_refuses_other_sources() {
    if !common::tool("curl") {
        return;
    }
    let port = free_port();
    let _server = TestServer::start(
        &[
            &format!("imageservice.port={port}"),
            "imageservice.auth=none",
            "imageservice.tls=off",
            "imageservice.allow=10.0.0.0/8",
        ],
        &[],
    );
    let (status, v) = json(&[], &format!("{}/images", base(port, false)));
    assert_eq!(status, 403, "{v}");
}

#[test]
fn the_listener_is_off_by_default() {
    let server = TestServer::start(&[], &[]);
    let ports = listening_ports(pid(&server));
    let known = BTreeSet::from([server.port, server.uplink_port, server.files_port]);
    assert!(
        ports.is_subset(&known),
        "the server listens on {ports:?}, beyond the API, hangar and files {known:?}"
    );
    assert!(!server.log().contains("image-service API listening"));
}

/// A weaker listener than asked for is refused at start, not served:
/// TLS without the API's certificate, auth without the API's users.
#[test]
fn auth_or_tls_the_api_lacks_is_refused_at_start() {
    let mut server = TestServer::start(&[], &[]);
    assert!(server.stop());
    for (extra, expected) in [
        (
            ["server.tls=off", "imageservice.tls=on"],
            "imageservice.tls",
        ),
        (
            ["server.auth=none", "imageservice.tls=off"],
            "imageservice.auth",
        ),
    ] {
        let mut child = server
            .jetpack()
            .arg("-o")
            .arg(format!("imageservice.port={}", free_port()))
            .args(extra.iter().flat_map(|e| ["-o", e]))
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("jetpack serve started with {extra:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            !status.success() && err.contains(expected),
            "{extra:?}: {err}"
        );
    }
}
