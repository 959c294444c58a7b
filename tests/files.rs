//! The southbound file server (src/files/) with curl as the client: an
//! in-process server over real temporary trees (`DirTrees`) on loopback
//! for the HTTP rules (bodies byte-exact, HEAD, ranges, validators,
//! listings, traversal, symlinks, the allow-list), and the real
//! `jetpack serve` for unikernel images uploaded through the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jetpack::files::{StoreKind, StoredFile, Trees};
use jetpack::runtime::fetch_policy::Net;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Trees over a folder: `os/<name>/<version>/` are OS images,
/// `isos/` and `microkernels/` the stores (sha256 computed when asked).
struct DirTrees(PathBuf);

impl DirTrees {
    fn stored_file(path: &Path) -> Option<StoredFile> {
        let meta = std::fs::metadata(path).ok()?;
        let bytes = std::fs::read(path).ok()?;
        Some(StoredFile {
            name: path.file_name()?.to_str()?.to_string(),
            path: path.to_path_buf(),
            size: meta.len(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            modified: meta.modified().ok()?,
        })
    }
}

impl Trees for DirTrees {
    fn os_image(&self, name: &str, version: &str) -> Option<PathBuf> {
        let p = self.0.join("os").join(name).join(version);
        p.is_dir().then_some(p)
    }
    fn os_images(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for name in std::fs::read_dir(self.0.join("os"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for v in std::fs::read_dir(name.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push((
                    name.file_name().into_string().unwrap(),
                    v.file_name().into_string().unwrap(),
                ));
            }
        }
        out
    }
    fn stored(&self, store: StoreKind, name: &str) -> Option<StoredFile> {
        Self::stored_file(&self.0.join(jetpack::files::folder(store)).join(name))
    }
    fn stored_list(&self, store: StoreKind) -> Vec<StoredFile> {
        std::fs::read_dir(self.0.join(jetpack::files::folder(store)))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Self::stored_file(&e.path()))
            .collect()
    }
    fn image(&self, _id: &str) -> Option<StoredFile> {
        None
    }
    fn image_by_tag(&self, _tag: &str) -> Option<StoredFile> {
        None
    }
}

/// An in-process file server on 127.0.0.1 (a port of its own, bound
/// here, so no other test can take it), stopped on drop.
struct Files {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Files {
    fn start(allow: &[&str]) -> Files {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-files-")
            .tempdir()
            .unwrap();
        for d in ["os/debian/12/pool/main", "isos", "microkernels"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Self::start_in(dir, allow)
    }

    fn start_in(dir: tempfile::TempDir, allow: &[&str]) -> Files {
        let allow: Vec<Net> = allow.iter().map(|a| Net::parse(a).unwrap()).collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let trees = Arc::new(DirTrees(dir.path().to_path_buf()));
        let token = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                jetpack::api::serve::serve(
                    jetpack::files::app(trees, allow),
                    listener,
                    None,
                    jetpack::config::ConnLimits::default(),
                    jetpack::net::ConnGate::new("files", 256, 256, false),
                    token,
                    Duration::from_secs(5),
                )
                .await
            });
        });
        Files {
            dir,
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// curl with `args`: (status, headers by lower-case name, body).
    fn curl(&self, args: &[&str], path: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--path-as-is", "-D", "/dev/stderr"]);
        if !args.contains(&"-o") {
            cmd.args(["-o", "-"]);
        }
        let out = cmd.args(args).arg(self.url(path)).output().expect("curl");
        parse_curl(out)
    }

    fn get(&self, path: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
        self.curl(&[], path)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// curl's -D to stderr: the last head's status and headers; stdout the body.
fn parse_curl(out: std::process::Output) -> (u16, HashMap<String, String>, Vec<u8>) {
    let head = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = head
        .rfind("HTTP/")
        .map(|i| &head[i..])
        .unwrap_or_else(|| panic!("no response: {head}"));
    let mut lines = last.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, out.stdout)
}

fn random_file(path: &Path, size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn have_curl() -> bool {
    common::tool("curl")
}

#[test]
fn a_big_file_comes_back_byte_exact_and_head_tells_its_size() {
    if !have_curl() {
        return;
    }
    let files = Files::start(&[]);
    let big = files.path("os/debian/12/pool/main/big.bin");
    let bytes = random_file(&big, 64 << 20);
    let out = files.path("down.bin");
    let (status, headers, _) = files.curl(
        &["-o", out.to_str().unwrap()],
        "/debian/12/pool/main/big.bin",
    );
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], (64u64 << 20).to_string());
    assert_eq!(headers["accept-ranges"], "bytes");
    let got = std::fs::read(&out).unwrap();
    assert!(got == bytes, "the download differs from the source");

    let (status, h, _) = files.curl(&["-I"], "/debian/12/pool/main/big.bin");
    assert_eq!(status, 200);
    // On the wire: the head alone, no byte after it.
    let answer = raw(files.addr, "HEAD", "/debian/12/pool/main/big.bin");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    assert_eq!(h["content-length"], (64u64 << 20).to_string());
    assert!(
        h["etag"].starts_with('"') && h.contains_key("last-modified"),
        "{h:?}"
    );
    assert_eq!(h["content-type"], "application/octet-stream");
}

/// Ranges of a file of an OS image's tree (read as it is sent) and of a
/// stored file (sent from a mapping): the same answers, byte-exact, across
/// the 512 KiB pieces a body is sent in.
#[test]
fn ranges_single_multiple_and_unsatisfiable() {
    if !have_curl() {
        return;
    }
    let files = Files::start(&[]);
    let bytes = random_file(&files.path("os/debian/12/r.bin"), 1_000_000);
    check_ranges(&files, "/debian/12/r.bin", &bytes);
    std::fs::create_dir_all(files.path("isos")).unwrap();
    std::fs::copy(files.path("os/debian/12/r.bin"), files.path("isos/r.bin")).unwrap();
    check_ranges(&files, "/isos/r.bin", &bytes);
    let (status, _, body) = files.curl(&[], "/isos/r.bin");
    assert_eq!((status, body.as_slice()), (200, bytes.as_slice()));
}

fn check_ranges(files: &Files, path: &str, bytes: &[u8]) {
    let (status, h, body) = files.curl(&["-r", "100-199"], path);
    assert_eq!(status, 206);
    assert_eq!(h["content-range"], "bytes 100-199/1000000");
    assert_eq!(body, &bytes[100..200]);
    let (status, h, body) = files.curl(&["-H", "Range: bytes=-10"], path);
    assert_eq!(
        (status, h["content-range"].as_str()),
        (206, "bytes 999990-999999/1000000")
    );
    assert_eq!(body, &bytes[999_990..]);

    let wanted = [(0u64, 9u64), (500_000, 799_999), (999_999, 999_999)];
    let (status, h, body) = files.curl(&["-r", "0-9,500000-799999,-1"], path);
    assert_eq!(status, 206);
    let ct = &h["content-type"];
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{ct}"));
    assert_eq!(h["content-length"], body.len().to_string());
    // Each part: its head, then exactly its bytes, then the next delimiter.
    let mut at = 0;
    for (s, e) in wanted {
        let head = format!(
            "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {s}-{e}/1000000\r\n\r\n"
        );
        let found = find(&body[at..], head.as_bytes()).expect("a part head") + at;
        let start = found + head.len();
        let end = start + (e - s + 1) as usize;
        assert_eq!(&body[start..end], &bytes[s as usize..=e as usize]);
        assert!(body[end..].starts_with(format!("\r\n--{boundary}").as_bytes()));
        at = end;
    }
    assert!(body.ends_with(format!("\r\n--{boundary}--\r\n").as_bytes()));

    let (status, h, _) = files.curl(&["-r", "2000000-"], path);
    assert_eq!(
        (status, h["content-range"].as_str()),
        (416, "bytes */1000000")
    );
    // A malformed Range is ignored: the whole file.
    let (status, _, body) = files.curl(&["-H", "Range: bytes=9-1"], path);
    assert_eq!((status, body.len()), (200, 1_000_000));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn validators_answer_304_and_if_range_falls_back_to_the_whole_file() {
    if !have_curl() {
        return;
    }
    let files = Files::start(&[]);
    std::fs::write(files.path("os/debian/12/v.txt"), b"0123456789").unwrap();
    std::fs::write(files.path("isos/x.iso"), b"an iso").unwrap();
    let (_, h, _) = files.get("/debian/12/v.txt");
    let (etag, modified) = (h["etag"].clone(), h["last-modified"].clone());
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    let inm = format!("If-None-Match: {etag}");
    let (status, h304, body) = files.curl(&["-H", &inm], "/debian/12/v.txt");
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(h304["etag"], etag);
    let (status, _, _) = files.curl(&["-H", "If-None-Match: \"other\""], "/debian/12/v.txt");
    assert_eq!(status, 200);
    let ims = format!("If-Modified-Since: {modified}");
    assert_eq!(files.curl(&["-H", &ims], "/debian/12/v.txt").0, 304);
    let old = format!(
        "If-Modified-Since: {}",
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
    );
    assert_eq!(files.curl(&["-H", &old], "/debian/12/v.txt").0, 200);
    let ir = format!("If-Range: {etag}");
    let (status, _, body) = files.curl(&["-r", "2-3", "-H", &ir], "/debian/12/v.txt");
    assert_eq!((status, body.as_slice()), (206, &b"23"[..]));
    let (status, _, body) = files.curl(
        &["-r", "2-3", "-H", "If-Range: \"stale\""],
        "/debian/12/v.txt",
    );
    assert_eq!((status, body.as_slice()), (200, &b"0123456789"[..]));
    // A stored file's ETag is its sha256.
    let (status, h, body) = files.get("/isos/x.iso");
    assert_eq!((status, body.as_slice()), (200, &b"an iso"[..]));
    assert_eq!(
        h["etag"],
        format!("\"{}\"", hex::encode(Sha256::digest(b"an iso")))
    );
    assert_eq!(h["content-type"], "application/x-iso9660-image");
}

#[test]
fn listings_are_escaped_html_or_json() {
    if !have_curl() {
        return;
    }
    let files = Files::start(&[]);
    std::fs::write(files.path("os/debian/12/a&b<c>.txt"), b"x").unwrap();
    std::fs::write(files.path("isos/one.iso"), b"iso").unwrap();
    let (status, h, body) = files.get("/debian/12/");
    assert_eq!(status, 200);
    assert!(h["content-type"].starts_with("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains("a&amp;b&lt;c&gt;.txt") && !page.contains("a&b<c>"),
        "{page}"
    );
    assert!(
        page.contains("href=\"a%26b%3Cc%3E.txt\"") && page.contains("pool/"),
        "{page}"
    );
    let (status, h, body) = files.curl(&["-H", "Accept: application/json"], "/debian/12/");
    assert_eq!(
        (status, h["content-type"].as_str()),
        (200, "application/json")
    );
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a&b<c>.txt", "pool"]);
    assert_eq!(doc["entries"][1]["type"], "dir");
    // The root, a name's versions, a store.
    let (_, _, body) = files.curl(&["-H", "Accept: application/json"], "/");
    let root: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = root["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["isos", "microkernels", "debian"]);
    let (_, _, body) = files.curl(&["-H", "Accept: application/json"], "/debian/");
    assert!(String::from_utf8_lossy(&body).contains("\"12\""));
    let (_, _, body) = files.curl(&["-H", "Accept: application/json"], "/isos/");
    let isos: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(isos["entries"][0]["name"], "one.iso");
    assert_eq!(
        isos["entries"][0]["sha256"],
        hex::encode(Sha256::digest(b"iso"))
    );
    // Folders without their final slash are redirected to it.
    let (status, h, _) = files.get("/debian/12/pool");
    assert_eq!((status, h["location"].as_str()), (301, "/debian/12/pool/"));
    let (status, h, _) = files.get("/debian/12");
    assert_eq!((status, h["location"].as_str()), (301, "/debian/12/"));
    assert_eq!(files.get("/nothing").0, 404);
    assert_eq!(files.get("/nothing/1/").0, 404);
    let (status, h, _) = files.curl(&["-X", "POST"], "/debian/12/");
    assert_eq!((status, h["allow"].as_str()), (405, "GET, HEAD"));
}

/// A request sent as given (curl would clean some of these paths): the
/// whole answer, up to the server's close.
fn raw(addr: SocketAddr, method: &str, target: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn raw_status(addr: SocketAddr, target: &str) -> u16 {
    let answer = raw(addr, "GET", target);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{target}: {answer:?}"))
}

#[test]
fn no_path_leaves_the_trees() {
    if !have_curl() {
        return;
    }
    let files = Files::start(&[]);
    let tree = files.path("os/debian/12");
    std::fs::write(files.path("secret"), b"secret").unwrap();
    std::fs::write(tree.join("real.txt"), b"inside").unwrap();
    std::os::unix::fs::symlink("real.txt", tree.join("in.txt")).unwrap();
    std::os::unix::fs::symlink("../../../secret", tree.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", tree.join("etc")).unwrap();
    for path in [
        "/debian/12/../../../secret",
        "/debian/12/%2e%2e/%2e%2e/%2e%2e/secret",
        "/debian/12/%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret",
        "/debian/12/..%2F..%2F..%2Fsecret",
        "/debian/12//etc/passwd",
        "//etc/passwd",
        "/debian/12/real.txt%00.iso",
        "/debian/12/..%5C..%5Csecret",
        "/isos/..",
    ] {
        let (status, _, body) = files.get(path);
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
    }
    for target in [
        "/debian/12/../../../secret",
        "http://x/debian/12/../secret",
        "/debian/12/..\\secret",
    ] {
        assert_eq!(raw_status(files.addr, target), 400, "{target}");
    }
    let (status, _, body) = files.get("/debian/12/in.txt");
    assert_eq!((status, body.as_slice()), (200, &b"inside"[..]));
    for path in [
        "/debian/12/out.txt",
        "/debian/12/etc/passwd",
        "/debian/12/etc/",
    ] {
        let (status, _, body) = files.get(path);
        assert_eq!(status, 403, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("root:"), "{path}");
    }
    // Listings leave out what points outside.
    let (_, _, body) = files.curl(&["-H", "Accept: application/json"], "/debian/12/");
    let page = String::from_utf8_lossy(&body);
    assert!(
        page.contains("in.txt") && !page.contains("out.txt") && !page.contains("\"etc\""),
        "{page}"
    );
}

#[test]
fn the_allow_list_refuses_other_sources() {
    if !have_curl() {
        return;
    }
    let refused = Files::start(&["10.0.0.0/8"]);
    std::fs::write(refused.path("os/debian/12/f"), b"f").unwrap();
    assert_eq!(refused.get("/debian/12/f").0, 403);
    let allowed = Files::start(&["10.0.0.0/8", "127.0.0.0/8"]);
    std::fs::write(allowed.path("os/debian/12/f"), b"f").unwrap();
    let (status, _, body) = allowed.get("/debian/12/f");
    assert_eq!((status, body.as_slice()), (200, &b"f"[..]));
}

#[test]
fn serve_serves_uploaded_images_by_id_and_by_tag() {
    if !have_curl() {
        return;
    }
    let server = common::server::TestServer::start(&[], &[]);
    assert!(
        server
            .log()
            .contains("file server listening on http://127.0.0.1:"),
        "{}",
        server.log()
    );
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("svc.elf");
    common::server::fake_elf(&elf, 3_000_000, "files");
    let upload = |tag: &str, path: &Path| {
        let arg = format!("@{}", path.display());
        let (status, img) = server.json(
            &[
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &arg,
            ],
            &format!("/v1/images?name=svc&tag={tag}"),
        );
        assert_eq!(status, 201, "{img}");
        img
    };
    let img = upload("t1", &elf);
    let id = img["id"].as_str().unwrap();
    let files_url = |p: &str| format!("http://127.0.0.1:{}{p}", server.files_port);
    let out = dir.path().join("down.elf");
    let get = |p: &str| {
        let o = Command::new("curl")
            .args(["-sS", "-D", "/dev/stderr", "-o", out.to_str().unwrap()])
            .arg(files_url(p))
            .output()
            .unwrap();
        parse_curl(o)
    };
    let (status, h, _) = get(&format!("/images/{id}"));
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&elf).unwrap());
    assert_eq!(
        h["etag"],
        format!("\"{}\"", img["sha256"].as_str().unwrap())
    );
    let (status, _, _) = get("/images/by-tag/t1");
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&elf).unwrap());
    for (path, want) in [
        (format!("/images/{}", &id[..8]), 404),
        ("/images/by-tag/none".to_string(), 404),
        ("/images/%2e%2e".to_string(), 400),
    ] {
        assert_eq!(get(&path).0, want, "{path}");
    }
}

#[test]
fn files_tls_serves_with_the_apis_certificate() {
    if !have_curl() {
        return;
    }
    let server = common::server::TestServer::start(&["files.tls=on"], &[]);
    assert!(
        server.log().contains("file server listening on https://"),
        "{}",
        server.log()
    );
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", server.files_port);
    let out = Command::new("curl")
        .args(["-sS", "-k", "-D", "/dev/stderr", "-o", "-"])
        .args(["-H", "Accept: application/json"])
        .arg(url("/"))
        .output()
        .unwrap();
    let (status, _, body) = parse_curl(out);
    assert_eq!(status, 200);
    let root: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(root["entries"][0]["name"], "isos");
    // Plain HTTP on the TLS port gets no listing.
    let plain = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/", server.files_port))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}
