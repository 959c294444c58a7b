//! API throughput, latency and streaming, against the real `jetpack serve`
//! (the release binary, as a separate process, TLS and auth on):
//!
//! 1. `GET /v1/info` over TLS with keep-alive from 16 threads of this
//!    process (JETPACK_BENCH_CONNECTIONS), each holding one connection and
//!    sending the same bytes (Basic credentials included): requests/s with
//!    auth, with auth off (`--serverauth none`) and, as the baseline, against a minimal
//!    axum + rustls server (this binary re-run as `__minimal-server`,
//!    answering the same body with the same TLS configuration). The three
//!    are measured in interleaved rounds so that drift hits all alike, and
//!    the CPU time of the server and of the load generator is read from
//!    /proc, for on a small machine they share the cores.
//! 2. `GET /v1/images?limit=100` with 10,000 images stored (uploaded through
//!    the API by 8 threads): latency percentiles of sequential requests on
//!    one keep-alive connection, beside `GET /v1/info` on the same one.
//! 3. Upload and download of a 1 GiB image with curl, each timed against
//!    `cp` + `sync` of the same file on the same disk (and beside the time
//!    one thread takes to SHA-1 and SHA-256 it, as the server must), the
//!    CPU time of the server and of curl and the server's RSS (sampled, and
//!    VmHWM) read meanwhile, the download checked by size and SHA-256.
//!
//! `cargo bench --bench api` measures; `cargo test` (no `--bench`) runs every
//! scenario tiny (40 images, 8 MiB, a fraction of a second of load) and only
//! checks that each works. Targets are reported, never enforced: absolute
//! figures drift on shared machines. Prints a markdown table for the README.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
/// First argument that makes this binary the baseline server.
const MINIMAL_SERVER: &str = "__minimal-server";
const MIB: u64 = 1024 * 1024;

/// How much of everything: the real run, or the quick check of `cargo test`.
struct Plan {
    bench: bool,
    connections: usize,
    rounds: usize,
    warm: Duration,
    round: Duration,
    images: usize,
    list_requests: usize,
    big_file: u64,
}

impl Plan {
    fn new(bench: bool) -> Plan {
        if bench {
            Plan {
                bench,
                connections: std::env::var("JETPACK_BENCH_CONNECTIONS")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(16),
                rounds: 5,
                warm: Duration::from_millis(300),
                round: Duration::from_secs(1),
                images: 10_000,
                list_requests: 500,
                big_file: 1024 * MIB,
            }
        } else {
            Plan {
                bench,
                connections: 2,
                rounds: 1,
                warm: Duration::from_millis(50),
                round: Duration::from_millis(150),
                images: 40,
                list_requests: 20,
                big_file: 8 * MIB,
            }
        }
    }
}

// ---------------------------------------------------------------------
// Servers under test

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A server process on loopback, in its own folder; SIGTERM on drop.
struct Server {
    label: &'static str,
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    /// `Authorization: Basic ...` for the admin user (empty without auth).
    authorization: String,
    userpass: String,
    certfile: PathBuf,
}

impl Server {
    /// `jetpack serve` on the dir driver, TLS on, with `flags` added.
    fn jetpack(label: &'static str, flags: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-bench-api-")
            .tempdir()
            .expect("a temporary folder");
        let conf = dir.path().join("jetpack.conf");
        std::fs::write(&conf, "# jetpack API bench\n").expect("writing jetpack.conf");
        let port = free_port();
        let n = std::process::id() % 100_000;
        let options = [
            "datasets.driver=dir".to_string(),
            format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            "server.listen=127.0.0.1".into(),
            format!("server.port={port}"),
            format!("uplink.port={}", free_port()),
            format!("jail.interface=jpb{n}"),
            format!("jail.namePrefix=jpb{n}-"),
        ];
        let mut cmd = Command::new(JETPACK);
        cmd.arg("--config").arg(&conf);
        for o in &options {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("serve").args(flags);
        let mut server = Server::spawn(label, dir, port, cmd);
        let password_file = server.dir.path().join("jetpack/admin.password");
        if let Ok(p) = std::fs::read_to_string(password_file) {
            server.userpass = format!("admin:{}", p.trim());
            server.authorization = format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(&server.userpass)
            );
        }
        server.certfile = server.dir.path().join("jetpack/cert.pem");
        server
    }

    /// This binary as a minimal axum + rustls server that answers
    /// `GET /v1/info` with `body`, using `like`'s certificate and key.
    fn minimal(like: &Server, body: &[u8]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-bench-api-minimal-")
            .tempdir()
            .expect("a temporary folder");
        let body_file = dir.path().join("body.json");
        std::fs::write(&body_file, body).expect("writing the baseline body");
        let port = free_port();
        let keys = like.dir.path().join("jetpack");
        let mut cmd = Command::new(std::env::current_exe().expect("this bench's path"));
        cmd.arg(MINIMAL_SERVER)
            .arg(port.to_string())
            .arg(keys.join("cert.pem"))
            .arg(keys.join("key.pem"))
            .arg(&body_file);
        let mut server = Server::spawn("minimal axum + rustls", dir, port, cmd);
        server.certfile = like.certfile.clone();
        server
    }

    fn spawn(label: &'static str, dir: tempfile::TempDir, port: u16, mut cmd: Command) -> Server {
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn tls(&self) -> Arc<rustls::ClientConfig> {
        client_tls(&self.certfile)
    }

    fn connect(&self) -> Client {
        Client::connect(self.port, &self.tls()).expect("connecting to the server")
    }

    /// A serialised `GET path` with this server's credentials.
    fn get(&self, path: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Accept: application/json\r\n\r\n",
            self.port, self.authorization
        )
        .into_bytes()
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

/// The baseline: the same stack as jetpack (axum-server, rustls with the
/// configuration `jetpack::server::tls::load` makes), one route, no state.
fn minimal_server(args: &[String]) {
    let [port, cert, key, body] = args else {
        panic!("usage: {MINIMAL_SERVER} PORT CERT KEY BODY");
    };
    let port: u16 = port.parse().expect("a port number");
    let identity =
        jetpack::server::tls::load(Path::new(cert), Path::new(key)).expect("TLS identity");
    let body = axum::body::Bytes::from(std::fs::read(body).expect("reading the body"));
    let app = axum::Router::new().route(
        "/v1/info",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("binding");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("an async runtime");
    runtime.block_on(async move {
        let config = axum_server::tls_rustls::RustlsConfig::from_config(identity.config);
        axum_server::from_tcp_rustls(listener, config)
            .expect("a TLS listener")
            .serve(app.into_make_service())
            .await
            .expect("serving");
    });
}

// ---------------------------------------------------------------------
// The load generator: blocking HTTP/1.1 over rustls, one connection per
// thread, requests serialised once, one reused buffer, parsing no more
// than the status line and Content-Length.

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

// ---------------------------------------------------------------------
// Measuring

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// User + system CPU seconds of a process (all its threads).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks / hz
}

/// A `/proc/<pid>/status` field in MiB (VmRSS, VmHWM).
fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[derive(Default)]
struct Load {
    requests: usize,
    seconds: f64,
    server_cpu: f64,
    generator_cpu: f64,
    latencies: Vec<Duration>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn add(&mut self, other: Load) {
        self.requests += other.requests;
        self.seconds += other.seconds;
        self.server_cpu += other.server_cpu;
        self.generator_cpu += other.generator_cpu;
        self.latencies.extend(other.latencies);
    }

    /// Server CPU microseconds per request.
    fn server_us(&self) -> f64 {
        self.server_cpu * 1e6 / self.requests as f64
    }

    fn generator_us(&self) -> f64 {
        self.generator_cpu * 1e6 / self.requests as f64
    }
}

/// `plan.connections` threads, each on its own keep-alive connection,
/// sending `request` back to back: a warm-up, then `plan.round` counted.
fn load(server: &Server, request: &[u8], plan: &Plan) -> Load {
    let tls = server.tls();
    let barrier = Barrier::new(plan.connections + 1);
    let (warm, round) = (plan.warm, plan.round);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..plan.connections)
            .map(|_| {
                let (tls, barrier) = (&tls, &barrier);
                scope.spawn(move || {
                    let mut client = Client::connect(server.port, tls).expect("connecting");
                    client.expect(request, 200);
                    barrier.wait();
                    let start = Instant::now();
                    let (counted, end) = (start + warm, start + warm + round);
                    let mut latencies = Vec::with_capacity(64 * 1024);
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        client.expect(request, 200);
                        let done = Instant::now();
                        if t >= counted && done <= end {
                            latencies.push(done - t);
                        }
                    }
                    latencies
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(warm);
        let (server0, self0) = (cpu_seconds(server.pid()), cpu_seconds(std::process::id()));
        std::thread::sleep((start + warm + round).saturating_duration_since(Instant::now()));
        let (server1, self1) = (cpu_seconds(server.pid()), cpu_seconds(std::process::id()));
        let mut result = Load {
            seconds: round.as_secs_f64(),
            server_cpu: server1 - server0,
            generator_cpu: self1 - self0,
            ..Default::default()
        };
        for worker in workers {
            let latencies = worker.join().expect("a load thread panicked");
            result.requests += latencies.len();
            result.latencies.extend(latencies);
        }
        result
    })
}

// ---------------------------------------------------------------------
// Scenarios

struct InfoResults {
    auth: Load,
    noauth: Load,
    minimal: Load,
}

fn scenario_info(plan: &Plan, auth: &Server) -> InfoResults {
    let noauth = Server::jetpack("jetpack, auth off", &["--serverauth", "none"]);
    let info = auth.get("/v1/info");
    let mut client = auth.connect();
    let body = client.expect(&info, 200).to_vec();
    // Auth is really on: no credentials, or wrong ones, are refused.
    let anonymous = format!(
        "GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        auth.port
    );
    client.expect(anonymous.as_bytes(), 401);
    let wrong = format!(
        "GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Basic {}\r\n\r\n",
        auth.port,
        base64::engine::general_purpose::STANDARD.encode("admin:not-the-password")
    );
    client.expect(wrong.as_bytes(), 401);
    let minimal = Server::minimal(auth, &body);
    // The same bytes to all three: the auth-off server and the minimal one
    // ignore the Authorization header.
    let mut results = InfoResults {
        auth: Load::default(),
        noauth: Load::default(),
        minimal: Load::default(),
    };
    for _ in 0..plan.rounds {
        results.minimal.add(load(&minimal, &info, plan));
        results.auth.add(load(auth, &info, plan));
        results.noauth.add(load(&noauth, &info, plan));
    }
    println!(
        "\n1. GET /v1/info, TLS, keep-alive, {} connections, {} x {:.1} s interleaved (+{:.1} s warm-up each)",
        plan.connections,
        plan.rounds,
        plan.round.as_secs_f64(),
        plan.warm.as_secs_f64()
    );
    println!(
        "{:<28} {:>10} {:>8} {:>8} {:>13} {:>13}",
        "server", "req/s", "p50 ms", "p99 ms", "server us/req", "client us/req"
    );
    for (server, l) in [
        (&minimal, &mut results.minimal),
        (auth, &mut results.auth),
        (&noauth, &mut results.noauth),
    ] {
        l.latencies.sort();
        println!(
            "{:<28} {:>10.0} {:>8.2} {:>8.2} {:>13.1} {:>13.1}",
            server.label,
            l.rate(),
            percentile(&l.latencies, 0.5),
            percentile(&l.latencies, 0.99),
            l.server_us(),
            l.generator_us()
        );
    }
    results
}

struct ListResults {
    images: usize,
    insert_seconds: f64,
    /// How many images share the newest `created` second.
    newest_second: usize,
    list: Vec<Duration>,
    info: Vec<Duration>,
}

/// A distinct tiny ELF file per `i`.
fn tiny_elf(i: usize) -> Vec<u8> {
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.extend_from_slice(format!("jetpack bench image {i}\n").as_bytes());
    bytes.resize(256, 0x5a);
    bytes
}

fn scenario_list(plan: &Plan, server: &Server) -> ListResults {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let mut client = server.connect();
                let mut request = Vec::with_capacity(1024);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= plan.images {
                        break;
                    }
                    let body = tiny_elf(i);
                    request.clear();
                    request.extend_from_slice(
                        format!(
                            "POST /v1/images?name=bench-{i} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}\
                             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                            server.port,
                            server.authorization,
                            body.len()
                        )
                        .as_bytes(),
                    );
                    request.extend_from_slice(&body);
                    client.expect(&request, 201);
                }
            });
        }
    });
    let insert_seconds = started.elapsed().as_secs_f64();

    let mut client = server.connect();
    let list = server.get("/v1/images?limit=100");
    let info = server.get("/v1/info");
    let page: Vec<serde_json::Value> =
        serde_json::from_slice(client.expect(&list, 200)).expect("the image list is JSON");
    assert_eq!(page.len(), plan.images.min(100), "GET /v1/images?limit=100");
    let last = server.get(&format!("/v1/images?limit=10&offset={}", plan.images - 1));
    let tail: Vec<serde_json::Value> =
        serde_json::from_slice(client.expect(&last, 200)).expect("the image list is JSON");
    assert_eq!(tail.len(), 1, "exactly {} images stored", plan.images);
    // The default order is `created_at DESC, id` and created_at counts
    // seconds: the images of the newest second are sorted on every request,
    // so their number (it varies from run to run) drives the latency.
    let newest = page.first().map(|i| i["created"].clone());
    let mut newest_second = 0;
    'pages: for offset in (0..plan.images).step_by(1000) {
        let request = server.get(&format!("/v1/images?limit=1000&offset={offset}"));
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(client.expect(&request, 200)).expect("the image list is JSON");
        for row in &rows {
            if Some(&row["created"]) != newest.as_ref() {
                break 'pages;
            }
            newest_second += 1;
        }
    }

    let mut results = ListResults {
        images: plan.images,
        insert_seconds,
        newest_second,
        list: Vec::with_capacity(plan.list_requests),
        info: Vec::with_capacity(plan.list_requests),
    };
    for _ in 0..plan.list_requests / 10 {
        client.expect(&list, 200);
        client.expect(&info, 200);
    }
    // Interleaved, one after another on one connection.
    for _ in 0..plan.list_requests {
        let t = Instant::now();
        client.expect(&list, 200);
        results.list.push(t.elapsed());
        let t = Instant::now();
        client.expect(&info, 200);
        results.info.push(t.elapsed());
    }
    results.list.sort();
    results.info.sort();
    println!(
        "\n2. {} images uploaded by 8 threads in {:.1} s ({:.0} uploads/s), {} of them in the newest second; \
         {} sequential requests on one connection",
        plan.images,
        insert_seconds,
        plan.images as f64 / insert_seconds,
        newest_second,
        plan.list_requests
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8}",
        "request", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (name, s) in [
        ("GET /v1/images?limit=100", &results.list),
        ("GET /v1/info", &results.info),
    ] {
        println!(
            "{name:<28} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            percentile(s, 0.5),
            percentile(s, 0.9),
            percentile(s, 0.99),
            percentile(s, 1.0)
        );
    }
    results
}

/// One curl transfer: its time and status, and what it cost.
struct Transfer {
    seconds: f64,
    status: u16,
    server_cpu: f64,
    curl_cpu: f64,
    peak_rss: f64,
}

struct TransferResults {
    size: u64,
    cp: Vec<f64>,
    hash_seconds: f64,
    upload: Transfer,
    download: Transfer,
    idle_rss: f64,
    hwm: f64,
}

impl TransferResults {
    fn cp_seconds(&self) -> f64 {
        self.cp.iter().sum::<f64>() / self.cp.len() as f64
    }

    fn mib_s(&self, seconds: f64) -> f64 {
        self.size as f64 / MIB as f64 / seconds
    }
}

/// Writes `size` bytes of an ELF-looking file of pseudo-random content,
/// fsynced; returns its SHA-256.
fn make_big_file(path: &Path, size: u64) -> String {
    let file = std::fs::File::create(path).expect("creating the big file");
    let mut out = BufWriter::with_capacity(MIB as usize, file);
    let mut hash = Sha256::new();
    let mut chunk = vec![0u8; MIB as usize];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut written = 0;
    while written < size {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        if written == 0 {
            chunk[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\0");
        }
        let n = (size - written).min(MIB) as usize;
        hash.update(&chunk[..n]);
        out.write_all(&chunk[..n]).expect("writing the big file");
        written += n as u64;
    }
    let file = out.into_inner().expect("flushing the big file");
    file.sync_all().expect("syncing the big file");
    hex::encode(hash.finalize())
}

/// Size and SHA-256 of a file, and with `sha1` its SHA-1 too.
fn file_digests(path: &Path, sha1: bool) -> (u64, String) {
    let mut file = std::fs::File::open(path).expect("opening a file to hash");
    let mut sha256 = Sha256::new();
    let mut sha1 = sha1.then(sha1::Sha1::new);
    let mut buf = vec![0u8; MIB as usize];
    let mut size = 0;
    loop {
        let n = file.read(&mut buf).expect("reading a file to hash");
        if n == 0 {
            break;
        }
        sha256.update(&buf[..n]);
        if let Some(h) = sha1.as_mut() {
            h.update(&buf[..n]);
        }
        size += n as u64;
    }
    (size, hex::encode(sha256.finalize()))
}

/// The baseline: `cp` then `sync` of the copy (the server fsyncs blobs).
fn cp_and_sync(from: &Path, to: &Path) -> f64 {
    let t = Instant::now();
    let cp = Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("running cp");
    assert!(cp.success(), "cp failed");
    let sync = Command::new("sync").arg(to).status().expect("running sync");
    assert!(sync.success(), "sync failed");
    let seconds = t.elapsed().as_secs_f64();
    std::fs::remove_file(to).expect("removing the copy");
    seconds
}

/// CPU seconds of this process's finished (waited for) children.
fn children_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) } != 0 {
        return f64::NAN;
    }
    // SAFETY: getrusage succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Runs curl against `server` (body to `out`) while sampling the server's
/// VmRSS every 5 ms and reading its CPU time and curl's.
fn curl(server: &Server, args: &[&str], path: &str, out: &Path) -> Transfer {
    let pid = server.pid();
    let stop = AtomicBool::new(false);
    let (server0, curl0) = (cpu_seconds(pid), children_cpu_seconds());
    let t = Instant::now();
    let (output, peak_rss) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak: f64 = 0.0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(memory_mib(pid, "VmRSS"));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(memory_mib(pid, "VmRSS"))
        });
        let output = Command::new("curl")
            .args(["-sS", "-k", "-u", &server.userpass, "-o"])
            .arg(out)
            .args(["-w", "%{http_code}"])
            .args(args)
            .arg(server.url(path))
            .stdin(Stdio::null())
            .output()
            .expect("running curl");
        stop.store(true, Ordering::Relaxed);
        (output, sampler.join().expect("the RSS sampler panicked"))
    });
    let seconds = t.elapsed().as_secs_f64();
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "curl {path}: no status: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    Transfer {
        seconds,
        status,
        server_cpu: cpu_seconds(pid) - server0,
        curl_cpu: children_cpu_seconds() - curl0,
        peak_rss,
    }
}

fn scenario_transfer(plan: &Plan) -> TransferResults {
    let server = Server::jetpack("jetpack (transfers)", &[]);
    let dir = server.dir.path();
    let (original, copy, download, answer) = (
        dir.join("big.elf"),
        dir.join("big.copy"),
        dir.join("big.download"),
        dir.join("upload.json"),
    );
    let sha256 = make_big_file(&original, plan.big_file);
    // What the server must compute of every upload, on one thread.
    let t = Instant::now();
    file_digests(&original, true);
    let hash_seconds = t.elapsed().as_secs_f64();
    let idle_rss = memory_mib(server.pid(), "VmRSS");
    let mut cp = vec![cp_and_sync(&original, &copy)];

    // -T streams the file; --data-binary @FILE would read it all into
    // curl's memory before sending.
    let original_arg = original.to_str().expect("a UTF-8 path");
    let upload = curl(
        &server,
        &[
            "-T",
            original_arg,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
        ],
        "/v1/images?name=big",
        &answer,
    );
    let body = std::fs::read_to_string(&answer).unwrap_or_default();
    assert_eq!(upload.status, 201, "POST /v1/images?name=big: {body}");
    let image: serde_json::Value = serde_json::from_str(&body).expect("the upload answer is JSON");
    assert_eq!(
        image["sha256"],
        sha256.as_str(),
        "the stored image's SHA-256"
    );
    assert_eq!(image["size"], plan.big_file, "the stored image's size");
    let id = image["id"].as_str().expect("an image id").to_string();

    let download_transfer = curl(
        &server,
        &["-H", "Accept: application/octet-stream"],
        &format!("/v1/images/{id}"),
        &download,
    );
    assert_eq!(
        download_transfer.status, 200,
        "GET /v1/images/{id} (octet-stream)"
    );
    let hwm = memory_mib(server.pid(), "VmHWM");
    cp.push(cp_and_sync(&original, &copy));
    let (size, downloaded) = file_digests(&download, false);
    assert_eq!(size, plan.big_file, "the downloaded size");
    assert_eq!(downloaded, sha256, "the downloaded SHA-256");
    for f in [&original, &download] {
        let _ = std::fs::remove_file(f);
    }
    let results = TransferResults {
        size: plan.big_file,
        cp,
        hash_seconds,
        upload,
        download: download_transfer,
        idle_rss,
        hwm,
    };
    println!(
        "\n3. {} MiB image with curl over TLS (same disk: {}); downloaded file checked (size, SHA-256)",
        plan.big_file / MIB,
        dir.display()
    );
    println!(
        "{:<36} {:>7} {:>8} {:>10} {:>10} {:>8} {:>9}",
        "transfer", "s", "MiB/s", "vs cp+sync", "server cpu", "curl cpu", "peak RSS"
    );
    let cp_s = results.cp_seconds();
    let cp_runs: Vec<String> = results.cp.iter().map(|s| format!("{s:.2}")).collect();
    println!(
        "{:<36} {:>7.2} {:>8.0} {:>10}",
        format!("cp + sync (runs: {})", cp_runs.join(", ")),
        cp_s,
        results.mib_s(cp_s),
        "1.00"
    );
    println!(
        "{:<36} {:>7.2} {:>8.0}",
        "SHA-1 + SHA-256 of it, one thread",
        results.hash_seconds,
        results.mib_s(results.hash_seconds),
    );
    for (name, t) in [
        ("POST /v1/images (curl -T)", &results.upload),
        ("GET /v1/images/{id} (octet-stream)", &results.download),
    ] {
        println!(
            "{name:<36} {:>7.2} {:>8.0} {:>10.2} {:>9.2}s {:>7.2}s {:>5.1} MiB",
            t.seconds,
            results.mib_s(t.seconds),
            cp_s / t.seconds,
            t.server_cpu,
            t.curl_cpu,
            t.peak_rss
        );
    }
    println!(
        "server RSS: idle {:.1} MiB, VmHWM after both transfers {:.1} MiB",
        results.idle_rss, results.hwm
    );
    results
}

// ---------------------------------------------------------------------

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

fn summary(
    plan: &Plan,
    cores: usize,
    info: &InfoResults,
    list: &ListResults,
    transfer: &TransferResults,
) {
    let (auth, noauth, minimal) = (info.auth.rate(), info.noauth.rate(), info.minimal.rate());
    let auth_ratio = auth / noauth;
    let list_p99 = percentile(&list.list, 0.99);
    let cp_s = transfer.cp_seconds();
    let (up_ratio, down_ratio) = (
        cp_s / transfer.upload.seconds,
        cp_s / transfer.download.seconds,
    );

    // On a small machine the load generator takes its share of the cores:
    // say so, and what the server alone would need per request.
    let busy = (info.auth.server_cpu + info.auth.generator_cpu) / info.auth.seconds;
    let generator_share =
        info.auth.generator_cpu / (info.auth.server_cpu + info.auth.generator_cpu);
    println!(
        "\nload generator: {:.0}% of the CPU time during the authenticated run ({:.2} of {cores} cores busy);",
        generator_share * 100.0,
        busy
    );
    if busy > cores as f64 * 0.85 && generator_share > 0.25 {
        println!(
            "the cores are saturated and the generator holds {:.0}% of them, so req/s is bound by the machine, not the server alone.",
            generator_share * 100.0
        );
    }
    println!(
        "server CPU per request: auth {:.1} us, auth off {:.1} us, minimal {:.1} us; \
         all {cores} cores to jetpack alone would give ~{:.0} req/s with auth.",
        info.auth.server_us(),
        info.noauth.server_us(),
        info.minimal.server_us(),
        cores as f64 * 1e6 / info.auth.server_us()
    );
    println!(
        "upload: SHA-1 + SHA-256 of the file alone take {:.2} s on one thread, so on this disk \
         an upload that hashes as it receives reaches at most {:.2} of cp + sync.",
        transfer.hash_seconds,
        cp_s / transfer.hash_seconds
    );
    for (name, t) in [
        ("upload", &transfer.upload),
        ("download", &transfer.download),
    ] {
        if t.curl_cpu > 0.8 * t.seconds {
            println!(
                "{name}: curl was on a core {:.0}% of the time ({:.2} s CPU in {:.2} s): the client bounds it.",
                100.0 * t.curl_cpu / t.seconds,
                t.curl_cpu,
                t.seconds
            );
        }
    }

    let build = if cfg!(debug_assertions) {
        "debug build: a quick check, the figures mean nothing"
    } else {
        "release build"
    };
    println!(
        "\n{cores} cores ({}), {build}, client and servers on the same machine:\n",
        cpu_model()
    );
    println!("| measure | jetpack | baseline | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| `GET /v1/info`, TLS, auth, keep-alive, {} connections | {auth:.0} req/s | minimal axum + rustls: {minimal:.0} req/s | {:.2} | >= 10,000 req/s | {} |",
        plan.connections,
        auth / minimal,
        met(auth >= 10_000.0)
    );
    println!(
        "| same, auth off (`--serverauth none`) | {noauth:.0} req/s | | auth / no auth {auth_ratio:.2} | ratio >= 0.5 | {} |",
        met(auth_ratio >= 0.5)
    );
    println!(
        "| `GET /v1/images?limit=100`, {} images ({} in the newest second), sequential | p50 {:.2} ms, p99 {list_p99:.2} ms | `GET /v1/info` p50 {:.2} ms, p99 {:.2} ms | | p99 < 20 ms | {} |",
        list.images,
        list.newest_second,
        percentile(&list.list, 0.5),
        percentile(&list.info, 0.5),
        percentile(&list.info, 0.99),
        met(list_p99 < 20.0)
    );
    println!(
        "| upload {} MiB (curl, TLS, fsynced) | {:.0} MiB/s | cp + sync: {:.0} MiB/s | {up_ratio:.2} | >= 0.7 | {} |",
        transfer.size / MIB,
        transfer.mib_s(transfer.upload.seconds),
        transfer.mib_s(cp_s),
        met(up_ratio >= 0.7)
    );
    println!(
        "| download {} MiB (curl, TLS) | {:.0} MiB/s | cp + sync: {:.0} MiB/s | {down_ratio:.2} | >= 0.7 | {} |",
        transfer.size / MIB,
        transfer.mib_s(transfer.download.seconds),
        transfer.mib_s(cp_s),
        met(down_ratio >= 0.7)
    );
    println!(
        "| server peak RSS (VmHWM) over both transfers | {:.1} MiB | idle: {:.1} MiB | | < 64 MiB | {} |",
        transfer.hwm,
        transfer.idle_rss,
        met(transfer.hwm < 64.0)
    );
    println!(
        "\n(uploading {} images through the API took {:.1} s: {:.0} uploads/s)",
        list.images,
        list.insert_seconds,
        list.images as f64 / list.insert_seconds
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(MINIMAL_SERVER) {
        minimal_server(&args[1..]);
        return;
    }
    // `cargo bench` passes --bench; `cargo test` does not: then every
    // scenario runs tiny, as a check that it works.
    let plan = Plan::new(args.iter().any(|a| a == "--bench"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !plan.bench {
        println!("api bench: quick check (run `cargo bench --bench api` to measure)");
    }
    let auth = Server::jetpack("jetpack, auth", &[]);
    let info = scenario_info(&plan, &auth);
    let list = scenario_list(&plan, &auth);
    drop(auth);
    let transfer = scenario_transfer(&plan);
    summary(&plan, cores, &info, &list, &transfer);
}
