//! The native NaCl validator (`jetpack::nacl`, spec/nacl.md):
//!
//! 1. In process: a ~1 MiB valid NaCl made by `support/nacl_gen.rs` (the
//!    same bytes every run: ~800 Ifaces (plain, DHCP, VLAN) with unique
//!    indexes and addresses, ~1,600 Filter::IP/TCP and Nat functions with
//!    nested if/else, `in` ranges, lists and CIDRs, a Gateway with ~900
//!    routes, ~3,600 constants and ~1,500 dotted assignments; the counts
//!    are printed), first checked valid (so the
//!    generator is honest), then `nacl::check` (parse + check) and
//!    `nacl::parse` alone timed over JETPACK_BENCH_RUNS runs (200): p50/p99
//!    and MiB/s. Baselines in the same run, interleaved with it: a plain pass
//!    over the same bytes counting lines and token starts, and serde_json
//!    parsing a JSON document of the same size and shape.
//! 2. Over the API: the real `jetpack serve` (release binary, separate
//!    process, TLS and auth on, as `benches/api.rs` runs it) on loopback;
//!    `POST /v1/nacls/validate` of a typical ~2 KiB NaCl, sequential on one
//!    keep-alive connection, JETPACK_BENCH_REQUESTS (5,000) after a warm-up,
//!    interleaved with `GET /v1/info` on the same connection as the
//!    baseline (the cheap endpoint `benches/api.rs` measures). Beside it:
//!    `nacl::check` of the same 2 KiB in process, and the 1 MiB NaCl
//!    through the API.
//!
//! `cargo bench --bench nacl` measures; without `--bench` (`cargo test
//! --benches`) everything runs tiny as a check that it works (the 1 MiB
//! NaCl is still generated and checked valid). Targets are printed, never
//! enforced: absolute figures drift on shared machines.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

#[path = "support/nacl_gen.rs"]
mod nacl_gen;

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
const MIB: usize = 1024 * 1024;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How much of everything: the real run, or the quick check.
struct Plan {
    bench: bool,
    /// Timed runs over the 1 MiB NaCl (after `warm_runs`).
    runs: usize,
    warm_runs: usize,
    /// Timed requests of each kind (after `warm_requests`).
    requests: usize,
    warm_requests: usize,
    /// Timed POSTs of the 1 MiB NaCl.
    big_requests: usize,
}

impl Plan {
    fn new(bench: bool) -> Plan {
        if bench {
            Plan {
                bench,
                runs: env_or("JETPACK_BENCH_RUNS", 200),
                warm_runs: 5,
                requests: env_or("JETPACK_BENCH_REQUESTS", 5000),
                warm_requests: 500,
                big_requests: 30,
            }
        } else {
            Plan {
                bench,
                runs: 3,
                warm_runs: 1,
                requests: 30,
                warm_requests: 5,
                big_requests: 2,
            }
        }
    }
}

// ---------------------------------------------------------------------
// Measuring

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Sorted timings with their p50 and p99, in ms.
struct Timings(Vec<Duration>);

impl Timings {
    fn new(mut v: Vec<Duration>) -> Timings {
        v.sort();
        Timings(v)
    }
    fn p50(&self) -> f64 {
        percentile(&self.0, 0.5)
    }
    fn p99(&self) -> f64 {
        percentile(&self.0, 0.99)
    }
    fn max(&self) -> f64 {
        percentile(&self.0, 1.0)
    }
    /// MiB/s of `bytes` at the median.
    fn mib_s(&self, bytes: usize) -> f64 {
        bytes as f64 / MIB as f64 / (self.p50() / 1000.0)
    }
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    black_box(f());
    t.elapsed()
}

fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

// ---------------------------------------------------------------------
// 1. In process

/// The baseline: one pass over the bytes counting lines and token starts
/// (a word after a non-word byte, and every punctuation byte).
fn scan(bytes: &[u8]) -> (usize, usize) {
    let (mut lines, mut tokens, mut in_word) = (0usize, 0usize, false);
    for &b in bytes {
        let word = b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-';
        lines += usize::from(b == b'\n');
        tokens += usize::from(word && !in_word) + usize::from(!word && !b.is_ascii_whitespace());
        in_word = word;
    }
    (lines, tokens)
}

/// Stops the bench with the first problems and the lines they are on.
fn assert_valid(what: &str, text: &str) {
    let verdict = jetpack::nacl::check(text);
    if verdict.valid && verdict.errors.is_empty() {
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut report = String::new();
    for d in verdict.errors.iter().take(10) {
        let at = lines
            .get((d.line as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("");
        report.push_str(&format!(
            "\n  line {}:{} {}\n    | {}",
            d.line, d.column, d.message, at
        ));
    }
    panic!(
        "{what} is valid NaCl by spec/nacl.md, but nacl::check says valid={} with {} errors:{report}",
        verdict.valid,
        verdict.errors.len()
    );
}

struct InProcess {
    bytes: usize,
    lines: usize,
    tokens: usize,
    json_bytes: usize,
    check: Timings,
    parse: Timings,
    scan: Timings,
    json: Timings,
}

fn scenario_in_process(plan: &Plan, generated: &nacl_gen::Generated) -> InProcess {
    let text = generated.text.as_str();
    let json = nacl_gen::json_like(text.len());
    // The serde_json baseline really parses.
    let value: serde_json::Value = serde_json::from_str(&json).expect("the JSON baseline parses");
    assert!(value["units"].as_array().is_some_and(|u| !u.is_empty()));
    let (lines, tokens) = scan(text.as_bytes());

    for _ in 0..plan.warm_runs {
        black_box(jetpack::nacl::check(black_box(text)));
        let _ = black_box(jetpack::nacl::parse(black_box(text)));
        black_box(scan(black_box(text.as_bytes())));
        black_box(serde_json::from_str::<serde_json::Value>(black_box(&json)).ok());
    }
    let mut t = [
        Vec::with_capacity(plan.runs),
        Vec::with_capacity(plan.runs),
        Vec::with_capacity(plan.runs),
        Vec::with_capacity(plan.runs),
    ];
    // Interleaved, so that drift hits all alike.
    for _ in 0..plan.runs {
        t[0].push(time(|| jetpack::nacl::check(black_box(text))));
        t[1].push(time(|| {
            let _ = black_box(jetpack::nacl::parse(black_box(text)));
        }));
        t[2].push(time(|| scan(black_box(text.as_bytes()))));
        t[3].push(time(|| {
            serde_json::from_str::<serde_json::Value>(black_box(&json)).ok()
        }));
    }
    let [check, parse, scan_t, json_t] = t;
    let r = InProcess {
        bytes: text.len(),
        lines,
        tokens,
        json_bytes: json.len(),
        check: Timings::new(check),
        parse: Timings::new(parse),
        scan: Timings::new(scan_t),
        json: Timings::new(json_t),
    };
    println!(
        "\n1. in process: {} bytes ({:.2} MiB) of NaCl, {} lines, ~{} tokens: {} units, {} Ifaces, \
         {} functions, {} Gateway routes, {} constants, {} dotted assignments; {} runs each, interleaved",
        r.bytes,
        r.bytes as f64 / MIB as f64,
        r.lines,
        r.tokens,
        generated.units,
        generated.ifaces,
        generated.functions,
        generated.routes,
        generated.constants,
        generated.dotted,
        plan.runs
    );
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "pass", "p50 ms", "p99 ms", "max ms", "MiB/s", "p50 / scan"
    );
    let scan_p50 = r.scan.p50();
    for (name, t, bytes) in [
        ("nacl::check (parse + check)", &r.check, r.bytes),
        ("nacl::parse alone", &r.parse, r.bytes),
        (
            "baseline: byte scan (lines, token starts)",
            &r.scan,
            r.bytes,
        ),
        ("baseline: serde_json::Value of JSON", &r.json, r.json_bytes),
    ] {
        println!(
            "{name:<44} {:>8.3} {:>8.3} {:>8.3} {:>9.1} {:>10.1}",
            t.p50(),
            t.p99(),
            t.max(),
            t.mib_s(bytes),
            t.p50() / scan_p50
        );
    }
    println!(
        "(JSON document: {} bytes, the same units as objects; check p50 / serde_json p50 = {:.2})",
        r.json_bytes,
        r.check.p50() / r.json.p50()
    );
    r
}

// ---------------------------------------------------------------------
// 2. Over the API. The server and client are those of benches/api.rs
// (blocking HTTP/1.1 over rustls, requests serialised once, one reused
// buffer), cut to what this bench needs.

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `jetpack serve` on loopback, in its own folder; SIGTERM on drop.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    /// `Authorization: Basic ...` for the admin user (empty without auth).
    authorization: String,
    certfile: PathBuf,
}

impl Server {
    /// `jetpack serve` on the dir driver, TLS and auth on.
    fn jetpack() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-bench-nacl-")
            .tempdir()
            .expect("a temporary folder");
        let conf = dir.path().join("jetpack.conf");
        std::fs::write(&conf, "# jetpack NaCl bench\n").expect("writing jetpack.conf");
        let port = free_port();
        let n = std::process::id() % 100_000;
        let options = [
            "datasets.driver=dir".to_string(),
            format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            "server.listen=127.0.0.1".into(),
            format!("server.port={port}"),
            format!("uplink.port={}", free_port()),
            format!("jail.interface=jpn{n}"),
            format!("jail.namePrefix=jpn{n}-"),
        ];
        let mut cmd = Command::new(JETPACK);
        cmd.arg("--config").arg(&conf);
        for o in &options {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("serve");
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting jetpack serve");
        let mut server = Server {
            dir,
            port,
            child,
            authorization: String::new(),
            certfile: PathBuf::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("jetpack serve exited with {status}: {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "jetpack serve did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let keys = server.dir.path().join("jetpack");
        if let Ok(p) = std::fs::read_to_string(keys.join("admin.password")) {
            server.authorization = format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", p.trim()))
            );
        }
        server.certfile = keys.join("cert.pem");
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn connect(&self) -> Client {
        Client::connect(self.port, &client_tls(&self.certfile)).expect("connecting to the server")
    }

    /// A serialised `GET path` with this server's credentials.
    fn get(&self, path: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Accept: application/json\r\n\r\n",
            self.port, self.authorization
        )
        .into_bytes()
    }

    /// A serialised `POST path` of a text/plain body.
    fn post_text(&self, path: &str, body: &str) -> Vec<u8> {
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
}

/// Trusts exactly the server's (self-signed) certificate.
fn client_tls(certfile: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(certfile).expect("reading the server certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

struct Client {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

fn bad_response(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

impl Client {
    fn connect(port: u16, tls: &Arc<rustls::ClientConfig>) -> io::Result<Client> {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        let conn = rustls::ClientConnection::new(tls.clone(), name).map_err(io::Error::other)?;
        Ok(Client {
            stream: rustls::StreamOwned::new(conn, tcp),
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends a serialised request (head and body) and reads the answer:
    /// its status and body.
    fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, &[u8])> {
        self.stream.write_all(request)?;
        self.stream.flush()?;
        let mut filled = 0;
        let head_end = loop {
            if filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let from = filled.saturating_sub(3);
            filled += n;
            if let Some(i) = self.buf[from..filled]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break from + i + 4;
            }
        };
        let head = &self.buf[..head_end];
        let status = std::str::from_utf8(head.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| bad_response("no status line"))?;
        let mut length = None;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return Err(bad_response("chunked answers are not read by this client"));
            }
        }
        let end = head_end + length.ok_or_else(|| bad_response("no Content-Length"))?;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        while filled < end {
            let n = self.stream.read(&mut self.buf[filled..end])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
        }
        if filled > end {
            return Err(bad_response(
                "bytes after the answer (nothing was pipelined)",
            ));
        }
        Ok((status, &self.buf[head_end..end]))
    }

    /// `exchange`, insisting on `want`; a server bug stops the bench with
    /// the request and the answer.
    fn expect(&mut self, request: &[u8], want: u16) -> &[u8] {
        match self.exchange(request) {
            Ok((status, body)) if status == want => body,
            Ok((status, body)) => panic!(
                "{}: answered {status} (wanted {want}): {}",
                request_line(request),
                String::from_utf8_lossy(body)
            ),
            Err(e) => panic!("{}: {e}", request_line(request)),
        }
    }
}

fn request_line(request: &[u8]) -> String {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}

const VALIDATE: &str = "/v1/nacls/validate";

/// An invalid NaCl and the message the spec gives for its first problem.
const INVALID: (&str, &str) = (
    "Iface eth0 { index: 0, address: 10.0.0.300, netmask: 255.255.255.0 }\n",
    "IPv4 addr 10.0.0.300 contains bytes greater than 255",
);

struct OverApi {
    typical_bytes: usize,
    validate: Timings,
    info: Timings,
    in_process: Timings,
    /// The 1 MiB NaCl through the API, and its status (413 if over
    /// server.maxbody).
    big: Option<Timings>,
    big_status: u16,
}

/// `None` if this server has no `POST /v1/nacls/validate` (404, 405).
fn scenario_api(plan: &Plan, big: &str) -> Option<OverApi> {
    let typical = nacl_gen::TYPICAL;
    assert_valid("the typical NaCl (benches/support/nacl_gen.rs)", typical);
    let server = Server::jetpack();
    let mut client = server.connect();
    let validate = server.post_text(VALIDATE, typical);
    let info = server.get("/v1/info");

    // What the endpoint answers: 200 {"valid": true}; 422 {"errors": [...]}.
    let answer: serde_json::Value = match client.exchange(&validate) {
        Ok((200, body)) => serde_json::from_slice(body).expect("the validate answer is JSON"),
        Ok((status @ (404 | 405), _)) => {
            println!(
                "\n2. POST {VALIDATE} answered {status}: not in this server yet, not measured"
            );
            return None;
        }
        Ok((status, body)) => panic!(
            "POST {VALIDATE} of the typical NaCl answered {status}: {}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => panic!("POST {VALIDATE}: {e}"),
    };
    assert_eq!(
        answer["valid"], true,
        "POST {VALIDATE} of the typical NaCl: {answer}"
    );
    let bad = server.post_text(VALIDATE, INVALID.0);
    match client.exchange(&bad) {
        Ok((422, body)) => {
            let answer: serde_json::Value =
                serde_json::from_slice(body).expect("the 422 answer is JSON");
            let errors = answer["errors"].as_array().cloned().unwrap_or_default();
            let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
            if errors.is_empty() || !first.contains(INVALID.1) {
                println!(
                    "note: POST {VALIDATE} of an invalid NaCl: 422 but errors {answer} \
                     (expected a first error with \"{}\")",
                    INVALID.1
                );
            }
        }
        Ok((status, body)) => println!(
            "note: POST {VALIDATE} of an invalid NaCl answered {status} (expected 422): {}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => panic!("POST {VALIDATE} of an invalid NaCl: {e}"),
    }

    for _ in 0..plan.warm_requests {
        client.expect(&validate, 200);
        client.expect(&info, 200);
    }
    let (mut v, mut i) = (
        Vec::with_capacity(plan.requests),
        Vec::with_capacity(plan.requests),
    );
    // Interleaved, one after another on one connection.
    for _ in 0..plan.requests {
        let t = Instant::now();
        client.expect(&validate, 200);
        v.push(t.elapsed());
        let t = Instant::now();
        client.expect(&info, 200);
        i.push(t.elapsed());
    }
    let in_process: Vec<Duration> = (0..plan.requests)
        .map(|_| time(|| jetpack::nacl::check(black_box(typical))))
        .collect();

    // The 1 MiB NaCl through the API, if server.maxbody lets it in.
    let big_request = server.post_text(VALIDATE, big);
    let (big_status, big_timings) = match client.exchange(&big_request) {
        Ok((200, _)) => {
            let t: Vec<Duration> = (0..plan.big_requests)
                .map(|_| {
                    let t = Instant::now();
                    client.expect(&big_request, 200);
                    t.elapsed()
                })
                .collect();
            (200, Some(Timings::new(t)))
        }
        Ok((status, _)) => (status, None),
        Err(e) => panic!("POST {VALIDATE} of the 1 MiB NaCl: {e}"),
    };

    let r = OverApi {
        typical_bytes: typical.len(),
        validate: Timings::new(v),
        info: Timings::new(i),
        in_process: Timings::new(in_process),
        big: big_timings,
        big_status,
    };
    println!(
        "\n2. jetpack serve over TLS with auth, keep-alive, one connection: {} sequential requests \
         of each kind, interleaved (+{} warm-up)",
        plan.requests, plan.warm_requests
    );
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>8}",
        "request", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let rows = [
        (
            format!("POST {VALIDATE}, typical NaCl ({} B)", r.typical_bytes),
            &r.validate,
        ),
        ("baseline: GET /v1/info".to_string(), &r.info),
        (
            format!("nacl::check of the same {} B, in process", r.typical_bytes),
            &r.in_process,
        ),
    ];
    for (name, t) in rows {
        println!(
            "{name:<52} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            t.p50(),
            percentile(&t.0, 0.9),
            t.p99(),
            t.max()
        );
    }
    match &r.big {
        Some(t) => println!(
            "{:<52} {:>8.3} {:>8.3} {:>8.3} {:>8.3}   ({} requests)",
            format!("POST {VALIDATE}, the {} B NaCl", big.len()),
            t.p50(),
            percentile(&t.0, 0.9),
            t.p99(),
            t.max(),
            plan.big_requests
        ),
        None => println!(
            "POST {VALIDATE} of the {} B NaCl answered {} (server.maxbody?): not timed",
            big.len(),
            r.big_status
        ),
    }
    Some(r)
}

// ---------------------------------------------------------------------

fn summary(cores: usize, local: &InProcess, api: Option<&OverApi>) {
    let build = if cfg!(debug_assertions) {
        "debug build: a quick check, the figures mean nothing"
    } else {
        "release build"
    };
    println!(
        "\n{cores} cores ({}), {build}, client and server on the same machine:\n",
        cpu_model()
    );
    println!("| measure | jetpack | baseline | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    let (check_p99, scan_p50, json_p50) = (local.check.p99(), local.scan.p50(), local.json.p50());
    println!(
        "| `nacl::check` (parse + check), {:.2} MiB NaCl | p50 {:.2} ms, p99 {check_p99:.2} ms, {:.0} MiB/s | byte scan: p50 {scan_p50:.2} ms ({:.0} MiB/s); serde_json of {:.2} MiB JSON: p50 {json_p50:.2} ms ({:.0} MiB/s) | {:.1}x scan, {:.2}x serde_json (p50) | p99 < 50 ms | {} |",
        local.bytes as f64 / MIB as f64,
        local.check.p50(),
        local.check.mib_s(local.bytes),
        local.scan.mib_s(local.bytes),
        local.json_bytes as f64 / MIB as f64,
        local.json.mib_s(local.json_bytes),
        local.check.p50() / scan_p50,
        local.check.p50() / json_p50,
        met(check_p99 < 50.0)
    );
    println!(
        "| `nacl::parse` alone, same NaCl | p50 {:.2} ms, p99 {:.2} ms, {:.0} MiB/s | | parse / check {:.2} (p50) | | |",
        local.parse.p50(),
        local.parse.p99(),
        local.parse.mib_s(local.bytes),
        local.parse.p50() / local.check.p50()
    );
    let Some(api) = api else {
        println!(
            "| `POST /v1/nacls/validate`, {} B NaCl | not in this server | `GET /v1/info` | | p99 < 2 ms | not measured |",
            nacl_gen::TYPICAL.len()
        );
        return;
    };
    let v_p99 = api.validate.p99();
    println!(
        "| `POST /v1/nacls/validate`, {} B NaCl, TLS, auth, keep-alive, sequential | p50 {:.3} ms, p99 {v_p99:.3} ms | `GET /v1/info`: p50 {:.3} ms, p99 {:.3} ms | {:.2} (p50), {:.2} (p99) | p99 < 2 ms | {} |",
        api.typical_bytes,
        api.validate.p50(),
        api.info.p50(),
        api.info.p99(),
        api.validate.p50() / api.info.p50(),
        v_p99 / api.info.p99(),
        met(v_p99 < 2.0)
    );
    println!(
        "\n(of which `nacl::check` in process: p50 {:.3} ms, p99 {:.3} ms)",
        api.in_process.p50(),
        api.in_process.p99()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then
    // everything runs tiny, as a check that it works.
    let plan = Plan::new(std::env::args().any(|a| a == "--bench"));
    if !plan.bench {
        println!("nacl bench: quick check (run `cargo bench --bench nacl` to measure)");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let generated = nacl_gen::generate(MIB);
    let generate_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        generated.text.len() > MIB * 9 / 10 && generated.text.len() <= MIB,
        "the generated NaCl is {} bytes, not ~1 MiB",
        generated.text.len()
    );
    assert_eq!(
        generated.text,
        nacl_gen::generate(MIB).text,
        "the generator is deterministic"
    );
    assert_valid(
        "the generated 1 MiB NaCl (benches/support/nacl_gen.rs)",
        &generated.text,
    );
    println!(
        "generated {} bytes of NaCl in {generate_ms:.1} ms; nacl::check says valid",
        generated.text.len()
    );
    let local = scenario_in_process(&plan, &generated);
    let api = scenario_api(&plan, &generated.text);
    summary(cores, &local, api.as_ref());
}
