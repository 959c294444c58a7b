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
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufWriter, Read, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use http::Client;
use measure::{cpu_model, cpu_seconds, env_or, free_port, memory_mib, met, percentile_ms};
use serve::Server;

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
                connections: env_or("JETPACK_BENCH_CONNECTIONS", 16),
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
// Servers under test: `jetpack serve` (support/serve.rs) and the baseline

/// Names the temporary folders, bridge and jails of this bench's servers.
const SERVE: serve::Bench = serve::Bench {
    name: "API",
    tag: "jpb",
};

impl Server {
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
}

/// The baseline: the same stack as jetpack (axum-server, rustls with the
/// configuration `jetpack::access::tls::load` makes), one route, no state.
fn minimal_server(args: &[String]) {
    let [port, cert, key, body] = args else {
        panic!("usage: {MINIMAL_SERVER} PORT CERT KEY BODY");
    };
    let port: u16 = port.parse().expect("a port number");
    let identity =
        jetpack::access::tls::load(Path::new(cert), Path::new(key)).expect("TLS identity");
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
// The load generator: one connection per thread, each a `Client` of
// support/http.rs (blocking HTTP/1.1 over rustls, requests serialised once,
// one reused buffer, parsing no more than the status line and
// Content-Length).

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
    let noauth = Server::jetpack(&SERVE, "jetpack, auth off", &["--serverauth", "none"]);
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
            percentile_ms(&l.latencies, 0.5),
            percentile_ms(&l.latencies, 0.99),
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
            percentile_ms(s, 0.5),
            percentile_ms(s, 0.9),
            percentile_ms(s, 0.99),
            percentile_ms(s, 1.0)
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
    let server = Server::jetpack(&SERVE, "jetpack (transfers)", &[]);
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

fn summary(
    plan: &Plan,
    cores: usize,
    info: &InfoResults,
    list: &ListResults,
    transfer: &TransferResults,
) {
    let (auth, noauth, minimal) = (info.auth.rate(), info.noauth.rate(), info.minimal.rate());
    let auth_ratio = auth / noauth;
    let list_p99 = percentile_ms(&list.list, 0.99);
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
        percentile_ms(&list.list, 0.5),
        percentile_ms(&list.info, 0.5),
        percentile_ms(&list.info, 0.99),
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
    let auth = Server::jetpack(&SERVE, "jetpack, auth", &[]);
    let info = scenario_info(&plan, &auth);
    let list = scenario_list(&plan, &auth);
    drop(auth);
    let transfer = scenario_transfer(&plan);
    summary(&plan, cores, &info, &list, &transfer);
}
