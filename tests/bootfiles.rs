//! Boot files through a real `jetpack serve`: the ISO and microkernel
//! stores and OS images from every source (upload raw and multipart, a
//! path on the server, a URL served by a loopback HTTP server written
//! here, the store), ISOs made by xorriso with nested folders, a 20 MiB
//! file and a symlink pointing outside, extracted byte-exact; and the bad
//! cases: wrong sha256, a stalling server, a redirect to file://, ftp, a
//! corrupt ISO, bad names, an upload over the limit, an ISO in use, and a
//! server restarted during a download. Clients are curl and the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::home::Home;
use common::iso::{make_iso, noise};
use common::server::TestServer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The big file's size: large enough that a slow download shows progress.
const BIG: usize = 20 << 20;

/// The tree an ISO is made of: nested folders, a big file, a symlink out.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("boot/grub/i386")).unwrap();
    std::fs::create_dir_all(dir.join("pool/main/z")).unwrap();
    std::fs::write(dir.join("README.txt"), b"an OS image for tests\n").unwrap();
    std::fs::write(dir.join("boot/grub/grub.cfg"), b"set timeout=1\n").unwrap();
    std::fs::write(dir.join("boot/grub/i386/deep.mod"), noise(3000, 7)).unwrap();
    std::fs::write(dir.join("pool/main/z/big.bin"), noise(BIG, 42)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../etc", dir.join("boot/up")).unwrap();
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every regular file and symlink under `root`, relative, with its bytes
/// (a symlink: its target).
fn contents(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((rel, target.display().to_string().into_bytes()));
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// ---- a loopback HTTP server, written here, in the ways a test needs ----

#[derive(Clone)]
enum Serve {
    /// The file, in chunks of `chunk` bytes with `pause` between them.
    File {
        bytes: Arc<Vec<u8>>,
        chunk: usize,
        pause: Duration,
    },
    /// The head and a first part of the body, then nothing until the test ends.
    Stall { length: usize },
    /// A redirect to this location.
    Redirect(String),
    /// The file with an ETag and byte ranges (`Range: bytes=N-` honoured
    /// when `If-Range` names the current ETag), each answer cut off after
    /// `cut` bytes of its body; answer k has `etags[k]` (the last after).
    Ranges {
        bytes: Arc<Vec<u8>>,
        cut: usize,
        etags: Arc<Vec<&'static str>>,
        answers: Arc<std::sync::atomic::AtomicUsize>,
    },
}

/// The value of a request header, from the head's text.
fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

struct Peer {
    port: u16,
    done: Arc<AtomicBool>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees `done`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn http_peer(serve: Serve) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let Ok(mut conn) = conn else { continue };
            let serve = serve.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                match serve {
                    Serve::File {
                        bytes,
                        chunk,
                        pause,
                    } => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            bytes.len()
                        );
                        for part in bytes.chunks(chunk) {
                            if stop.load(Ordering::Relaxed) || conn.write_all(part).is_err() {
                                return;
                            }
                            if !pause.is_zero() {
                                std::thread::sleep(pause);
                            }
                        }
                    }
                    Serve::Stall { length } => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = conn.write_all(&vec![0u8; length / 4]);
                        let _ = conn.flush();
                        // Holds the connection open, sending nothing.
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    Serve::Redirect(to) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                    Serve::Ranges {
                        bytes,
                        cut,
                        etags,
                        answers,
                    } => {
                        let head = String::from_utf8_lossy(&head).into_owned();
                        let k = answers.fetch_add(1, Ordering::SeqCst);
                        let etag = etags[k.min(etags.len() - 1)];
                        let from = header_of(&head, "range")
                            .and_then(|r| r.strip_prefix("bytes="))
                            .and_then(|r| r.strip_suffix('-'))
                            .and_then(|n| n.parse::<usize>().ok())
                            .filter(|_| header_of(&head, "if-range") == Some(etag));
                        let len = bytes.len();
                        let (status, start) = match from {
                            Some(n) => (
                                format!(
                                    "206 Partial Content\r\nContent-Range: bytes {n}-{}/{len}",
                                    len - 1
                                ),
                                n,
                            ),
                            None => ("200 OK".to_string(), 0),
                        };
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {status}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            len - start
                        );
                        let end = (start + cut).min(len);
                        let _ = conn.write_all(&bytes[start..end]);
                        // Dropping the connection here cuts the body short.
                    }
                }
            });
        }
    });
    Peer { port, done }
}

// ---- the API through curl ----

fn post_json(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ],
        path,
    )
}

fn upload(server: &TestServer, path: &str, file: &Path) -> (u16, Value) {
    server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        path,
    )
}

fn osimage(server: &TestServer, name: &str, version: &str) -> Value {
    let (status, v) = server.json(&[], &format!("/v1/osimages/{name}/{version}"));
    assert_eq!(status, 200, "{v}");
    v
}

/// Polls an OS image until it is ready or failed; returns it and every
/// (state, progress) seen on the way.
fn settle(server: &TestServer, name: &str, version: &str) -> (Value, Vec<(String, f64)>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let v = osimage(server, name, version);
        let state = v["state"].as_str().unwrap().to_string();
        seen.push((state.clone(), v["progress"].as_f64().unwrap()));
        if state == "ready" || state == "failed" {
            return (v, seen);
        }
        assert!(
            Instant::now() < deadline,
            "OS image {name} {version} still {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn job_log(server: &TestServer, id: &str) -> String {
    server.curl(&[], &format!("/v1/jobs/{id}/log")).1
}

/// The OS images' datasets on the dir driver (each `osimages/<uuid>`).
fn datasets(server: &TestServer) -> Vec<PathBuf> {
    let dir = server.data_dir().join("osimages");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// What downloads left staged (nothing once a job has ended).
fn staged(server: &TestServer) -> usize {
    std::fs::read_dir(server.data_dir().join("tmp/bootfiles"))
        .map(|d| d.count())
        .unwrap_or(0)
}

struct Fixture {
    _dir: tempfile::TempDir,
    tree: PathBuf,
    iso: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let iso = dir.path().join("test.iso");
    make_iso(&tree, &iso);
    Fixture {
        tree,
        iso,
        _dir: dir,
    }
}

/// The peers these tests need (Debian: xorriso, libarchive-tools, curl).
fn available() -> bool {
    common::tool("xorriso") && common::tool("bsdtar") && common::tool("curl")
}

#[test]
fn stores_and_osimages_from_every_source_and_every_bad_input() {
    if !available() {
        return;
    }
    let fx = fixture();
    let expected = contents(&fx.tree);
    let server = TestServer::start(
        &[
            "base.import.allow=127.0.0.1",
            "bootfiles.fetch.stall=2",
            "bootfiles.maxupload=41943040",
        ],
        &[],
    );
    let work = tempfile::tempdir().unwrap();

    // ---- the ISO store: raw upload, duplicate, download, Range, ETag ----
    let (status, iso) = upload(&server, "/v1/isos?name=test.iso", &fx.iso);
    assert_eq!(status, 201, "{iso}");
    assert_eq!(iso["sha256"], sha256_of(&fx.iso));
    let (status, again) = upload(&server, "/v1/isos?name=test.iso", &fx.iso);
    assert_eq!(status, 409, "{again}");
    let back = work.path().join("back.iso");
    let got = Command::new("curl")
        .args(["-sSfk", "-u", &format!("admin:{}", server.password), "-o"])
        .arg(&back)
        .arg(server.url("/v1/isos/test.iso"))
        .status()
        .unwrap();
    assert!(got.success());
    assert_eq!(sha256_of(&back), sha256_of(&fx.iso));
    let (status, part) = server.curl(&["-r", "32769-32773"], "/v1/isos/test.iso");
    assert_eq!((status, part.as_str()), (206, "CD001"));
    let etag = format!("If-None-Match: \"{}\"", sha256_of(&fx.iso));
    assert_eq!(server.curl(&["-H", &etag], "/v1/isos/test.iso").0, 304);
    let (status, meta) = server.json(&["-H", "Accept: application/json"], "/v1/isos/test.iso");
    assert_eq!(
        (status, meta["size"].as_u64()),
        (200, Some(fs_len(&fx.iso)))
    );

    // ---- the microkernel store: multipart ----
    let kernel = work.path().join("vmlinuz");
    std::fs::write(&kernel, noise(100_000, 9)).unwrap();
    let (status, mk) = server.json(
        &[
            "-F",
            &format!("file=@{}", kernel.display()),
            "-F",
            "name=vmlinuz-6.1",
        ],
        "/v1/microkernels",
    );
    assert_eq!(status, 201, "{mk}");
    let (_, list) = server.json(&[], "/v1/microkernels");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["sha256"], sha256_of(&kernel));

    // ---- OS images from an upload (raw and multipart) ----
    let (status, made) = upload(&server, "/v1/osimages/upload?name=raw&version=1.0", &fx.iso);
    assert_eq!(status, 202, "{made}");
    let (status, made_mp) = server.json(
        &[
            "-F",
            &format!("iso=@{}", fx.iso.display()),
            "-F",
            "name=multi",
            "-F",
            "version=2.0",
        ],
        "/v1/osimages/upload",
    );
    assert_eq!(status, 202, "{made_mp}");
    for (name, version) in [("raw", "1.0"), ("multi", "2.0")] {
        let (v, _) = settle(&server, name, version);
        assert_eq!(v["state"], "ready", "{v}");
        assert_eq!(v["sha256"], sha256_of(&fx.iso));
    }
    let (status, dup) = upload(&server, "/v1/osimages/upload?name=raw&version=1.0", &fx.iso);
    assert_eq!(status, 409, "{dup}");

    // ---- from a path on the server; paths through symlinks refused ----
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "local", "version": "1", "source": {"path": fx.iso.display().to_string()}}),
    );
    assert_eq!(status, 202, "{v}");
    assert_eq!(settle(&server, "local", "1").0["state"], "ready");
    let link = work.path().join("link.iso");
    std::os::unix::fs::symlink(&fx.iso, &link).unwrap();
    for bad in [
        link.display().to_string(),
        "relative.iso".to_string(),
        format!("{}/../tree/README.txt", fx.tree.display()),
        fx.tree.display().to_string(),
    ] {
        let (status, v) = post_json(
            &server,
            "/v1/osimages",
            json!({"name": "badpath", "version": "1", "source": {"path": bad}}),
        );
        assert_eq!(status, 400, "{bad}: {v}");
    }

    // ---- from the store; the ISO is then held ----
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "stored", "version": "1", "source": {"iso": "test.iso"}}),
    );
    assert_eq!(status, 202, "{v}");
    assert_eq!(settle(&server, "stored", "1").0["state"], "ready");
    let (status, v) = server.json(&["-X", "DELETE"], "/v1/isos/test.iso");
    assert_eq!(status, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("stored 1"), "{v}");
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "nothere", "version": "1", "source": {"iso": "missing.iso"}}),
    );
    assert_eq!(status, 404, "{v}");

    // ---- from a URL: progress while downloading, then preparing, then ready ----
    let bytes = Arc::new(std::fs::read(&fx.iso).unwrap());
    let slow = http_peer(Serve::File {
        bytes: bytes.clone(),
        chunk: 512 << 10,
        pause: Duration::from_millis(40),
    });
    let url = format!("http://127.0.0.1:{}/test.iso", slow.port);
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "web", "version": "1", "source": {"url": url, "sha256": sha256_of(&fx.iso)}}),
    );
    assert_eq!(status, 202, "{v}");
    let job = v["job"]["id"].as_str().unwrap().to_string();
    let (v, seen) = settle(&server, "web", "1");
    assert_eq!(v["state"], "ready", "{v}");
    assert!(
        seen.iter()
            .any(|(s, p)| s == "downloading" && *p > 0.0 && *p < 1.0),
        "no download progress seen: {seen:?}"
    );
    let log = job_log(&server, &job);
    let downloaded = log.find("downloaded").expect(&log);
    let extracting = log.find("extracting into dataset").expect(&log);
    let ready = log.rfind("ready").expect(&log);
    assert!(downloaded < extracting && extracting < ready, "{log}");
    drop(slow);

    // ---- every ready image holds the ISO's files, byte-exact ----
    let roots = datasets(&server);
    assert_eq!(roots.len(), 5, "{roots:?}");
    for root in &roots {
        assert_eq!(contents(root), expected, "{}", root.display());
        // The symlink pointing outside is kept as it is, not followed.
        let escape = std::fs::symlink_metadata(root.join("escape")).unwrap();
        assert!(escape.file_type().is_symlink());
    }

    // ---- the southbound file server serves them, as RackHD reads a repo ----
    let south = |args: &[&str], path: &str| -> (u16, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-sS", "--path-as-is", "-o", "-", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("http://127.0.0.1:{}{path}", server.files_port))
            .output()
            .expect("curl");
        let text = out.stdout;
        let cut = text.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        let code = String::from_utf8_lossy(&text[cut + 1..])
            .trim()
            .parse()
            .unwrap_or(0);
        (code, text[..cut].to_vec())
    };
    let (code, big) = south(&[], "/local/1/pool/main/z/big.bin");
    assert_eq!(code, 200);
    assert!(big == noise(BIG, 42), "the big file, byte-exact");
    let (code, part) = south(&["-r", "100-199"], "/stored/1/boot/grub/i386/deep.mod");
    assert_eq!((code, part), (206, noise(3000, 7)[100..200].to_vec()));
    let (code, listing) = south(&["-H", "Accept: application/json"], "/local/1/boot/");
    assert_eq!(code, 200);
    let listing = String::from_utf8_lossy(&listing);
    assert!(listing.contains("grub"), "{listing}");
    assert_eq!(
        south(&[], "/local/1/escape").0,
        403,
        "a symlink out is not followed"
    );
    // Wherever `boot/up` (../../../../etc) lands, nothing is served through it.
    assert!(matches!(south(&[], "/local/1/boot/up/passwd").0, 403 | 404));
    let (code, iso) = south(&[], "/isos/test.iso");
    assert_eq!(code, 200);
    assert!(
        iso == std::fs::read(&fx.iso).unwrap(),
        "the stored ISO, byte-exact"
    );
    let (code, top) = south(&["-H", "Accept: application/json"], "/");
    assert_eq!(code, 200);
    assert!(
        String::from_utf8_lossy(&top).contains("local"),
        "the OS images at /"
    );
    assert_eq!(south(&[], "/local/9/README.txt").0, 404, "no such version");

    // ---- downloads that fail leave nothing ----
    let fast = http_peer(Serve::File {
        bytes: bytes.clone(),
        chunk: 1 << 20,
        pause: Duration::ZERO,
    });
    let stall = http_peer(Serve::Stall { length: 4 << 20 });
    let redirect = http_peer(Serve::Redirect("file:///etc/passwd".into()));
    let cases = [
        (
            "wrongsum",
            json!({"url": format!("http://127.0.0.1:{}/x.iso", fast.port), "sha256": "0".repeat(64)}),
            "sha256",
        ),
        (
            "stalled",
            json!({"url": format!("http://127.0.0.1:{}/x.iso", stall.port)}),
            "stalled",
        ),
        (
            "redirected",
            json!({"url": format!("http://127.0.0.1:{}/x.iso", redirect.port)}),
            "not http(s)",
        ),
    ];
    for (name, source, why) in &cases {
        let (status, v) = post_json(
            &server,
            "/v1/osimages",
            json!({"name": name, "version": "1", "source": source}),
        );
        assert_eq!(status, 202, "{v}");
        let started = Instant::now();
        let (v, _) = settle(&server, name, "1");
        assert_eq!(v["state"], "failed", "{v}");
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: {reason}");
        assert!(!reason.contains("left behind"), "{name}: {reason}");
        if *name == "stalled" {
            assert!(started.elapsed() < Duration::from_secs(30), "{reason}");
        }
    }
    assert_eq!(
        datasets(&server).len(),
        5,
        "a failed download left a dataset"
    );
    assert_eq!(staged(&server), 0, "a failed download left its file");
    drop(stall);

    // ---- a corrupt ISO and a truncated one: failed, nothing half-made ----
    let junk = work.path().join("junk.iso");
    std::fs::write(&junk, noise(100_000, 3)).unwrap();
    let truncated = work.path().join("truncated.iso");
    std::fs::write(&truncated, &bytes[..(bytes.len() / 2)]).unwrap();
    for (name, file) in [("junk", &junk), ("truncated", &truncated)] {
        let (status, v) = upload(
            &server,
            &format!("/v1/osimages/upload?name={name}&version=1"),
            file,
        );
        assert_eq!(status, 202, "{v}");
        let (v, _) = settle(&server, name, "1");
        assert_eq!(v["state"], "failed", "{v}");
        assert!(!v["reason"].as_str().unwrap().is_empty(), "{v}");
    }
    assert_eq!(datasets(&server).len(), 5, "a corrupt ISO left a dataset");
    assert_eq!(staged(&server), 0);

    // ---- bad input: ftp, names, sizes ----
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "ftp", "version": "1", "source": {"url": "ftp://127.0.0.1/x.iso"}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("ftp"), "{v}");
    for (name, version) in [
        ("..", "1"),
        ("a/b", "1"),
        ("a\u{0}b", "1"),
        ("ok", "1\n2"),
        ("ok", ".."),
        ("", "1"),
        // The file server's own folders.
        ("isos", "1"),
        ("images", "1"),
    ] {
        let (status, v) = post_json(
            &server,
            "/v1/osimages",
            json!({"name": name, "version": version, "source": {"iso": "test.iso"}}),
        );
        assert_eq!(status, 400, "{name:?} {version:?}: {v}");
    }
    for query in [
        "name=..&version=1",
        "name=a%2Fb&version=1",
        "name=a%00b&version=1",
    ] {
        let (status, v) = upload(&server, &format!("/v1/osimages/upload?{query}"), &junk);
        assert_eq!(status, 400, "{query}: {v}");
    }
    for path in [
        "/v1/isos?name=..",
        "/v1/isos?name=x%2F..%2Fy",
        "/v1/isos?name=a%00",
    ] {
        let (status, v) = upload(&server, path, &junk);
        assert_eq!(status, 400, "{path}: {v}");
    }
    assert_eq!(server.curl(&[], "/v1/isos/..%2F..%2Fstate.db").0, 400);
    let huge = work.path().join("huge.iso");
    std::fs::write(&huge, noise(41943041, 5)).unwrap();
    let (status, v) = upload(&server, "/v1/isos?name=huge.iso", &huge);
    assert_eq!(status, 413, "{v}");
    let (status, v) = upload(&server, "/v1/osimages/upload?name=huge&version=1", &huge);
    assert_eq!(status, 413, "{v}");
    let (_, isos) = server.json(&[], "/v1/isos");
    assert_eq!(isos.as_array().unwrap().len(), 1, "{isos}");
    assert_eq!(server.json(&[], "/v1/osimages/huge/1").0, 404);

    // ---- deletes: an OS image with its dataset, then the ISO it held ----
    let before = datasets(&server).len();
    let (status, v) = server.json(&["-X", "DELETE"], "/v1/osimages/stored/1");
    assert_eq!(status, 200, "{v}");
    assert_eq!(datasets(&server).len(), before - 1);
    let (status, v) = server.json(&["-X", "DELETE"], "/v1/isos/test.iso");
    assert_eq!(status, 200, "{v}");
    assert_eq!(server.json(&[], "/v1/isos/test.iso").0, 404);
}

fn fs_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn a_restart_during_a_download_leaves_every_os_image_truthful() {
    if !available() {
        return;
    }
    let fx = fixture();
    let mut server = TestServer::start(&["base.import.allow=127.0.0.1"], &[]);
    let (status, v) = upload(&server, "/v1/osimages/upload?name=kept&version=1", &fx.iso);
    assert_eq!(status, 202, "{v}");
    assert_eq!(settle(&server, "kept", "1").0["state"], "ready");

    // A server that sends 64 KiB every 50 ms: the download takes ~16 s.
    let slow = http_peer(Serve::File {
        bytes: Arc::new(std::fs::read(&fx.iso).unwrap()),
        chunk: 64 << 10,
        pause: Duration::from_millis(50),
    });
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "cut", "version": "1",
               "source": {"url": format!("http://127.0.0.1:{}/x.iso", slow.port)}}),
    );
    assert_eq!(status, 202, "{v}");
    wait_for_progress(&server, "cut", "1");
    server.kill();
    server.spawn(&[]);
    let v = osimage(&server, "cut", "1");
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted by a restart"),
        "{v}"
    );
    let kept = osimage(&server, "kept", "1");
    assert_eq!(kept["state"], "ready", "{kept}");
    let roots = datasets(&server);
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert_eq!(contents(&roots[0]), contents(&fx.tree));
    assert_eq!(staged(&server), 0);
    // The failed one can be deleted and made again under its name.
    assert_eq!(server.json(&["-X", "DELETE"], "/v1/osimages/cut/1").0, 200);

    // SIGTERM during a download: the server ends at once (the download does
    // not hold its exit) and the image is failed, interrupted.
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "cut", "version": "1",
               "source": {"url": format!("http://127.0.0.1:{}/x.iso", slow.port)}}),
    );
    assert_eq!(status, 202, "{v}");
    wait_for_progress(&server, "cut", "1");
    let stopping = Instant::now();
    assert!(server.stop(), "the server ends cleanly: {}", server.log());
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the download held the server's exit for {:?}",
        stopping.elapsed()
    );
    server.spawn(&[]);
    let v = osimage(&server, "cut", "1");
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted by a restart"),
        "{v}"
    );
    assert_eq!(datasets(&server).len(), 1);
    assert_eq!(staged(&server), 0);
    assert_eq!(osimage(&server, "kept", "1")["state"], "ready");
}

/// Waits until an OS image is downloading and has made progress.
fn wait_for_progress(server: &TestServer, name: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = osimage(server, name, version);
        if v["state"] == "downloading" && v["progress"].as_f64().unwrap() > 0.0 {
            return;
        }
        assert!(Instant::now() < deadline, "no progress: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cli_pushes_lists_makes_and_deletes() {
    if !available() {
        return;
    }
    let fx = fixture();
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let cli = |args: &[&str]| home.texts(&server, args);
    let iso = fx.iso.to_str().unwrap();
    let (code, out, err) = cli(&["push-iso", iso, "--name", "cli.iso"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "cli.iso");
    let (code, out, err) = cli(&["-o", "json", "isos"]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["sha256"], sha256_of(&fx.iso));
    let (code, _, err) = cli(&["push-microkernel", iso, "--name", "k"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli(&["microkernels"]);
    assert_eq!(code, 0);
    assert!(out.contains('k'), "{out}");
    let (code, out, err) = cli(&["add-osimage", "os", "1", "--iso", "cli.iso", "--wait"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "os/1");
    let (code, out, err) = cli(&[
        "add-osimage",
        "up",
        "1",
        "--file",
        iso,
        "--wait",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "ready");
    let (code, out, _) = cli(&["osimages"]);
    assert_eq!(code, 0);
    assert!(out.contains("ready"), "{out}");
    let (code, _, err) = cli(&["delete-iso", "cli.iso"]);
    assert_eq!(code, 1, "in use: {err}");
    assert!(err.contains("os 1"), "{err}");
    let (code, _, err) = cli(&["add-osimage", "no", "1", "--url", "ftp://x/y.iso"]);
    assert_ne!(code, 0);
    assert!(err.contains("ftp"), "{err}");
    for (cmd, args) in [
        ("delete-osimage", vec!["os", "1"]),
        ("delete-osimage", vec!["up", "1"]),
        ("delete-iso", vec!["cli.iso"]),
        ("delete-microkernel", vec!["k"]),
    ] {
        let mut all = vec![cmd];
        all.extend(args);
        let (code, _, err) = cli(&all);
        assert_eq!(code, 0, "{all:?}: {err}");
    }
    let (_, out, _) = cli(&["-o", "json", "osimages"]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn a_broken_download_resumes_where_it_stopped_or_anew_when_the_file_changed() {
    if !available() {
        return;
    }
    let fx = fixture();
    let server = TestServer::start(&["base.import.allow=127.0.0.1"], &[]);
    let bytes = Arc::new(std::fs::read(&fx.iso).unwrap());
    let expected = contents(&fx.tree);

    // Cut every 6 MiB: resumed each time from where it stopped.
    let answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peer = http_peer(Serve::Ranges {
        bytes: bytes.clone(),
        cut: 6 << 20,
        etags: Arc::new(vec!["\"v1\""]),
        answers: answers.clone(),
    });
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "resumed", "version": "1", "source": {
            "url": format!("http://127.0.0.1:{}/x.iso", peer.port),
            "sha256": sha256_of(&fx.iso)}}),
    );
    assert_eq!(status, 202, "{v}");
    let job = v["job"]["id"].as_str().unwrap().to_string();
    let (v, _) = settle(&server, "resumed", "1");
    assert_eq!(v["state"], "ready", "{v}");
    let pieces = bytes.len().div_ceil(6 << 20);
    assert_eq!(answers.load(Ordering::SeqCst), pieces);
    let log = job_log(&server, &job);
    assert_eq!(log.matches("resuming at byte").count(), pieces - 1, "{log}");
    assert!(
        log.contains(&format!("resuming at byte {}", 6 << 20)),
        "{log}"
    );

    // The file changes after the first answer: If-Range no longer matches,
    // the server answers whole and the download starts over.
    let answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peer = http_peer(Serve::Ranges {
        bytes: bytes.clone(),
        cut: bytes.len() * 2 / 3,
        etags: Arc::new(vec!["\"v1\"", "\"v2\""]),
        answers: answers.clone(),
    });
    let (status, v) = post_json(
        &server,
        "/v1/osimages",
        json!({"name": "changed", "version": "1", "source": {
            "url": format!("http://127.0.0.1:{}/x.iso", peer.port),
            "sha256": sha256_of(&fx.iso)}}),
    );
    assert_eq!(status, 202, "{v}");
    let (v, _) = settle(&server, "changed", "1");
    assert_eq!(v["state"], "ready", "{v}");
    // Whole (cut), whole again (cut: the ETag changed), then the rest.
    assert_eq!(answers.load(Ordering::SeqCst), 3);

    let roots = datasets(&server);
    assert_eq!(roots.len(), 2, "{roots:?}");
    for root in &roots {
        assert_eq!(contents(root), expected);
    }
    assert_eq!(staged(&server), 0);
}
