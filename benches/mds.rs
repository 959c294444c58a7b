//! Metadata service (spec/mds.md) speed, measured from where its clients
//! are: inside a pod.
//!
//! 1. In-process: `Keys::token_is` (what every request pays), `Keys::token`
//!    and `Keys::sign` of 64 bytes, ns/op over JETPACK_BENCH_ITERATIONS
//!    (default 200,000) each.
//! 2. A host of its own (temporary root, dir driver, a bridge and a /24 of
//!    its own, the busybox base of images/busybox/build.sh), a jetpack.conf
//!    (mode 0600) with both keys and a free mds.port, the real `jetpack mds`
//!    as a child (it drops to `_jetpack`), and a pod `load` running `sleep`.
//! 3. The load client is this binary re-run (`--client`) in the pod's
//!    network namespace (`nsenter --net=/proc/<holder>/ns/net`), so its
//!    source address is the pod's and the MDS serves it: K threads
//!    (JETPACK_BENCH_CONNECTIONS, default 4), each on one keep-alive
//!    connection speaking HTTP/1.1 by hand, every answer required to be a
//!    200 (and the first one checked: the pod's uuid, the signature
//!    `Keys::sign` makes). `GET pod/uuid` and `POST pod/hmac/sign`
//!    (`content=` 64 bytes).
//! 4. Baseline: a minimal axum server (one fallback handler answering bodies
//!    of the same lengths, on axum-server with the MDS's HTTP/1 settings)
//!    in this process, on the same bridge address, loaded by the same client
//!    from the same namespace. MDS and baseline are measured in interleaved
//!    rounds (JETPACK_BENCH_SECONDS counted per variant, default 3) so drift
//!    of this shared machine hits both alike; server and client CPU time is
//!    read from /proc, for on a small machine they share the cores.
//! 5. The MDS is stopped, the pod removed, the bridge deleted, the
//!    temporary root removed.
//!
//! Needs root, namespaces, nsenter and the `_jetpack` user; without them it
//! prints SKIPPED and why, and succeeds. `cargo bench --bench mds` measures;
//! without `--bench` (`cargo test --benches`) only step 1 runs, briefly.
//! Targets are reported, never enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use jetpack::mds::Keys;
use uuid::Uuid;

#[path = "support/command.rs"]
mod command;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;

use command::run;
use http::Client;
use measure::{cpu_model, cpu_seconds, env_or, free_port, met};

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
/// First argument that makes this binary the load client.
const CLIENT: &str = "--client";
/// The holder's subcommand (src/runtime/jails/linux/holder.rs).
const CELL_INIT: &str = "__cell-init";
/// What is signed: 64 bytes that need no form encoding.
const CONTENT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------
// Small helpers

/// 32 random bytes as hex: a key as `openssl rand -hex 32` makes one.
fn random_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex::encode(bytes)
}

/// Why this machine cannot run the pod part, if it cannot.
fn missing_facility() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if let Err(e) = run(
        "unshare",
        &["--pid", "--fork", "--mount", "--net", "--uts", "true"],
    ) {
        return Some(format!("no namespaces: {e}"));
    }
    if let Err(e) = run("ip", &["-V"]) {
        return Some(format!("no ip(8): {e}"));
    }
    if let Err(e) = run("nsenter", &["--version"]) {
        return Some(format!("no nsenter (util-linux): {e}"));
    }
    if run("id", &["_jetpack"]).is_err() {
        return Some("no user _jetpack (scripts/test.sh creates it)".into());
    }
    None
}

/// The busybox base, built by the real build script when missing.
fn busybox_tarball() -> Result<PathBuf, String> {
    if let Some(base) = std::env::var_os("JETPACK_TEST_BASE") {
        return Ok(PathBuf::from(base));
    }
    let tarball = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox.tar.xz");
    if !tarball.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/busybox/build.sh");
        run(
            script.to_str().ok_or("script path")?,
            &[tarball.to_str().ok_or("tarball path")?],
        )
        .map_err(|e| format!("building the busybox base: {e}"))?;
    }
    Ok(tarball)
}

// ---------------------------------------------------------------------
// 1. Keys in-process

struct KeyTimes {
    iterations: usize,
    token_is: f64,
    token: f64,
    sign: f64,
}

fn ns_per_op(iterations: usize, mut op: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        op();
    }
    let t = Instant::now();
    for _ in 0..iterations {
        op();
    }
    t.elapsed().as_nanos() as f64 / iterations as f64
}

fn bench_keys(iterations: usize) -> KeyTimes {
    let keys = Keys::new(&random_key(), &random_key()).expect("keys");
    let uuid = Uuid::new_v4();
    let token = keys.token(&uuid);
    let mut wrong = token.clone().into_bytes();
    wrong[127] = if wrong[127] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("hex");
    assert!(keys.token_is(&uuid, &token) && !keys.token_is(&uuid, &wrong));
    let token_is = ns_per_op(iterations, || {
        assert!(keys.token_is(black_box(&uuid), black_box(&token)));
    });
    let token_make = ns_per_op(iterations, || {
        black_box(keys.token(black_box(&uuid)));
    });
    let sign = ns_per_op(iterations, || {
        black_box(keys.sign(black_box(&uuid), black_box(CONTENT.as_bytes())));
    });
    let times = KeyTimes {
        iterations,
        token_is,
        token: token_make,
        sign,
    };
    println!(
        "1. keys in-process (HMAC-SHA512, ring), {} iterations each",
        times.iterations
    );
    println!("{:<44} {:>10}", "operation", "ns/op");
    for (name, ns) in [
        ("Keys::token_is (hex decode + hmac::verify)", times.token_is),
        ("Keys::token (hmac::sign + hex)", times.token),
        ("Keys::sign, 64-byte content (+ base64)", times.sign),
    ] {
        println!("{name:<44} {ns:>10.0}");
    }
    println!(
        "target: token verify < 5 µs: {} ({:.2} µs)",
        met(times.token_is < 5_000.0),
        times.token_is / 1000.0
    );
    times
}

// ---------------------------------------------------------------------
// 2. A host, its MDS and a pod

struct Setup {
    options: Vec<String>,
    conf: PathBuf,
    bridge: String,
    address: Ipv4Addr,
    mds: Option<Child>,
    mds_log: PathBuf,
    pod: Option<String>,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new(tarball: &Path) -> Setup {
        let pid = std::process::id();
        let dir = tempfile::Builder::new()
            .prefix("jetpack-bench-mds-")
            .tempdir()
            .expect("a temporary folder");
        let bridge = format!("jpmds{}", pid % 100_000);
        let subnet = 10 + pid % 240;
        let options = vec![
            format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            "datasets.driver=dir".to_string(),
            format!("jail.interface={bridge}"),
            format!("jail.ip4.range=10.252.{subnet}.0/24"),
            "jail.stop.timeout=2".to_string(),
            format!("jail.namePrefix=jpmds{pid}-"),
        ];
        let conf = dir.path().join("jetpack.conf");
        std::fs::write(
            &conf,
            format!(
                "mds.token-key = {}\nmds.signing-key = {}\nmds.port = {}\n",
                random_key(),
                random_key(),
                free_port()
            ),
        )
        .expect("writing jetpack.conf");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600))
            .expect("chmod 600 jetpack.conf");
        let mds_log = dir.path().join("mds.log");
        let mut setup = Setup {
            options,
            conf,
            bridge,
            address: Ipv4Addr::new(10, 252, subnet as u8, 1),
            mds: None,
            mds_log,
            pod: None,
            _dir: dir,
        };
        setup.ok(&["init"]);
        setup.ok(&[
            "base",
            "import",
            tarball.to_str().expect("a UTF-8 path"),
            "--name",
            "busybox",
        ]);
        let log = std::fs::File::create(&setup.mds_log).expect("the MDS log");
        setup.mds = Some(
            setup
                .command()
                .arg("mds")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting jetpack mds"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !setup.run(&["mds", "check"]).status.success() {
            if let Some(Ok(Some(status))) = setup.mds.as_mut().map(Child::try_wait) {
                panic!("jetpack mds exited with {status}: {}", setup.log());
            }
            assert!(
                Instant::now() < deadline,
                "the MDS did not come up: {}",
                setup.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        setup
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.mds_log).unwrap_or_default()
    }

    fn mds_pid(&self) -> u32 {
        self.mds.as_ref().expect("the MDS").id()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(JETPACK);
        cmd.arg("--config").arg(&self.conf);
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running jetpack")
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

    /// Starts pod `name` (`sleep 600`): its uuid and AC_METADATA_URL.
    fn pod(&mut self, name: &str) -> (Uuid, String) {
        self.ok(&[
            "pod", "run", "-d", "--name", name, "busybox", "--", "sleep", "600",
        ]);
        self.pod = Some(name.to_string());
        let shown: serde_json::Value =
            serde_json::from_str(&self.ok(&["pod", "show", name, "-o", "json"]))
                .expect("pod show -o json");
        let id = shown["id"].as_str().expect("a pod id");
        let uuid = Uuid::parse_str(id).expect("a pod uuid");
        let url = self
            .ok(&[
                "pod",
                "exec",
                name,
                "--",
                "sh",
                "-c",
                "echo $AC_METADATA_URL",
            ])
            .trim()
            .to_string();
        assert!(
            url.starts_with("http://"),
            "the pod has no AC_METADATA_URL: {url:?}"
        );
        (uuid, url)
    }

    fn jail_name(&self, uuid: &Uuid) -> String {
        let prefix = self
            .options
            .iter()
            .find_map(|o| o.strip_prefix("jail.namePrefix="))
            .expect("a jail.namePrefix");
        format!("{prefix}{uuid}")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut child) = self.mds.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(pod) = self.pod.take() {
            let _ = self.run(&["pod", "rm", "-f", &pod]);
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
        // The temporary root goes with `_dir`, after this.
    }
}

/// The pid of the holder of jail `name`: `jetpack __cell-init NAME`, PID 1
/// of its pid namespace (its launcher, briefly alive with the same command
/// line, is not).
fn holder_pid(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .find(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let pid1 = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("NSpid:"))
                        .map(|l| l.split_whitespace().last() == Some("1"))
                })
                .unwrap_or(false);
            args.get(1) == Some(&CELL_INIT.as_bytes())
                && args.get(2) == Some(&name.as_bytes())
                && pid1
        })
}

// ---------------------------------------------------------------------
// 4. The baseline: minimal axum, in this process

/// Serves, on `address` and a free port, a fallback that answers GET with
/// `get_body` and POST (body read) with `post_body`; returns the port.
fn start_baseline(address: Ipv4Addr, get_body: String, post_body: String) -> u16 {
    use axum::body::Bytes;
    use axum::extract::ConnectInfo;
    use axum::http::Method;

    let listener = std::net::TcpListener::bind((address, 0)).expect("binding the baseline");
    let port = listener.local_addr().expect("its address").port();
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let app = axum::Router::new().fallback(
        move |ConnectInfo(_source): ConnectInfo<SocketAddr>, method: Method, _body: Bytes| {
            let answer = if method == Method::POST {
                post_body.clone()
            } else {
                get_body.clone()
            };
            async move { answer }
        },
    );
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("an async runtime");
        runtime.block_on(async move {
            let mut server = axum_server::from_tcp(listener).expect("a listener");
            server
                .http_builder()
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            server
                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .expect("serving the baseline");
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((address, port)).is_err() {
        assert!(Instant::now() < deadline, "the baseline did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    port
}

// ---------------------------------------------------------------------
// 3. The load client (this binary, `--client`, in the pod's namespace),
// on plain TCP connections of support/http.rs

/// `--client ADDRESS:PORT METHOD PATH BODY THREADS WARM_MS ROUND_MS`.
/// Prints `body <first answer>`, then `start` when the counted window
/// opens, `end` when it closes and `done <requests>`.
fn client(args: &[String]) {
    let [address, method, path, body, threads, warm, round] = args else {
        panic!("usage: {CLIENT} ADDRESS:PORT METHOD PATH BODY THREADS WARM_MS ROUND_MS");
    };
    let threads: usize = threads.parse().expect("THREADS");
    let warm = Duration::from_millis(warm.parse().expect("WARM_MS"));
    let round = Duration::from_millis(round.parse().expect("ROUND_MS"));
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let request = request.into_bytes();

    let mut probe = Client::open(address).expect("connecting to the server");
    let first = String::from_utf8_lossy(probe.expect(&request, 200)).into_owned();
    println!("body {first}");
    drop(probe);

    let barrier = Barrier::new(threads + 1);
    let requests: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, request) = (&barrier, &request);
                scope.spawn(move || {
                    let mut conn = Client::open(address).expect("connecting");
                    conn.expect(request, 200);
                    barrier.wait();
                    let start = Instant::now();
                    let (counted, end) = (start + warm, start + warm + round);
                    let mut n = 0usize;
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        conn.expect(request, 200);
                        if t >= counted && Instant::now() <= end {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(warm);
        println!("start");
        std::thread::sleep((start + warm + round).saturating_duration_since(Instant::now()));
        println!("end");
        workers
            .into_iter()
            .map(|w| w.join().expect("a load thread panicked"))
            .sum()
    });
    println!("done {requests}");
}

// ---------------------------------------------------------------------
// Measuring

struct Plan {
    threads: usize,
    rounds: usize,
    warm: Duration,
    round: Duration,
}

/// A server under load and what was asked of it.
struct Target<'a> {
    label: &'static str,
    port: u16,
    pid: u32,
    method: &'a str,
    path: &'a str,
    body: &'a str,
}

#[derive(Default)]
struct Load {
    requests: usize,
    seconds: f64,
    server_cpu: f64,
    client_cpu: f64,
    first_body: String,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn add(&mut self, other: Load) {
        self.requests += other.requests;
        self.seconds += other.seconds;
        self.server_cpu += other.server_cpu;
        self.client_cpu += other.client_cpu;
        self.first_body = other.first_body;
    }

    fn server_us(&self) -> f64 {
        self.server_cpu * 1e6 / self.requests as f64
    }

    fn client_us(&self) -> f64 {
        self.client_cpu * 1e6 / self.requests as f64
    }
}

/// One round: the client in the pod's network namespace against `target`.
fn load_round(holder: u32, address: Ipv4Addr, target: &Target, plan: &Plan) -> Load {
    let exe = std::env::current_exe().expect("this bench's path");
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/proc/{holder}/ns/net"))
        .arg("--")
        .arg(exe)
        .arg(CLIENT)
        .arg(format!("{address}:{}", target.port))
        .args([target.method, target.path, target.body])
        .arg(plan.threads.to_string())
        .arg(plan.warm.as_millis().to_string())
        .arg(plan.round.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running nsenter");
    let client_pid = child.id();
    let mut result = Load {
        seconds: plan.round.as_secs_f64(),
        ..Default::default()
    };
    let (mut server0, mut client0) = (0.0, 0.0);
    let stdout = child.stdout.take().expect("the client's stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reading the client");
        if let Some(body) = line.strip_prefix("body ") {
            result.first_body = body.to_string();
        } else if line == "start" {
            (server0, client0) = (cpu_seconds(target.pid), cpu_seconds(client_pid));
        } else if line == "end" {
            result.server_cpu = cpu_seconds(target.pid) - server0;
            result.client_cpu = cpu_seconds(client_pid) - client0;
        } else if let Some(n) = line.strip_prefix("done ") {
            result.requests = n.parse().expect("a request count");
        }
    }
    let status = child.wait().expect("waiting for the client");
    assert!(
        status.success() && result.requests > 0,
        "{} {}: the client failed ({status})",
        target.label,
        target.path
    );
    result
}

/// Every target for `plan.rounds` interleaved rounds.
fn measure(holder: u32, address: Ipv4Addr, targets: &[Target], plan: &Plan) -> Vec<Load> {
    let mut loads: Vec<Load> = targets.iter().map(|_| Load::default()).collect();
    for _ in 0..plan.rounds {
        for (target, load) in targets.iter().zip(loads.iter_mut()) {
            load.add(load_round(holder, address, target, plan));
        }
    }
    loads
}

fn bench_pods(plan: &Plan, tarball: &Path, keys_times: &KeyTimes) {
    let mut setup = Setup::new(tarball);
    let (uuid, url) = setup.pod("load");
    let holder = holder_pid(&setup.jail_name(&uuid)).expect("the pod's holder process");
    // The URL is http://<host address>:<port>/~<token>.
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, token_path) = rest.split_once('/').expect("a path in the URL");
    let (host, port) = authority.split_once(':').expect("a port in the URL");
    let (host, mds_port): (Ipv4Addr, u16) = (
        host.parse().expect("an IPv4 host address"),
        port.parse().expect("a port"),
    );
    assert_eq!(host, setup.address, "the MDS is on the bridge address");
    let token = token_path.strip_prefix('~').expect("a token");
    let conf = std::fs::read_to_string(&setup.conf).expect("reading jetpack.conf");
    let key = |name: &str| {
        conf.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_prefix('=')
                    .map(str::trim)
            })
            .expect("a key in jetpack.conf")
            .to_string()
    };
    let keys = Keys::new(&key("mds.token-key"), &key("mds.signing-key")).expect("keys");
    assert!(keys.token_is(&uuid, token), "the pod's token is its own");
    let signature = keys.sign(&uuid, CONTENT.as_bytes());

    let baseline_port = start_baseline(host, uuid.hyphenated().to_string(), signature.clone());
    let (uuid_path, sign_path) = (
        format!("/~{token}/acMetadata/v1/pod/uuid"),
        format!("/~{token}/acMetadata/v1/pod/hmac/sign"),
    );
    let form = format!("content={CONTENT}");
    let me = std::process::id();
    let targets = [
        Target {
            label: "MDS",
            port: mds_port,
            pid: setup.mds_pid(),
            method: "GET",
            path: &uuid_path,
            body: "",
        },
        Target {
            label: "baseline",
            port: baseline_port,
            pid: me,
            method: "GET",
            path: &uuid_path,
            body: "",
        },
        Target {
            label: "MDS",
            port: mds_port,
            pid: setup.mds_pid(),
            method: "POST",
            path: &sign_path,
            body: &form,
        },
        Target {
            label: "baseline",
            port: baseline_port,
            pid: me,
            method: "POST",
            path: &sign_path,
            body: &form,
        },
    ];
    println!(
        "\n2. host: dir driver, bridge {} ({host}), `jetpack mds` pid {} as _jetpack on port {mds_port}, pod load {uuid} (holder pid {holder})",
        setup.bridge,
        setup.mds_pid()
    );
    println!(
        "3./4. load from the pod's network namespace: {} keep-alive connections, {} interleaved rounds of {:.1} s (+{} ms warm-up) per variant; every answer a 200",
        plan.threads,
        plan.rounds,
        plan.round.as_secs_f64(),
        plan.warm.as_millis()
    );
    let loads = measure(holder, host, &targets, plan);
    assert_eq!(
        loads[0].first_body,
        uuid.hyphenated().to_string(),
        "GET pod/uuid is the pod's uuid"
    );
    assert_eq!(
        loads[2].first_body, signature,
        "the MDS signs as Keys::sign does"
    );
    let refused = setup
        .log()
        .lines()
        .filter(|l| l.contains("refused"))
        .count();
    assert_eq!(refused, 0, "the MDS refused requests: {}", setup.log());

    println!(
        "{:<10} {:<30} {:>10} {:>9} {:>14} {:>14}",
        "server", "request", "requests", "req/s", "server µs/req", "client µs/req"
    );
    for (target, load) in targets.iter().zip(&loads) {
        let what = if target.method == "GET" {
            "GET pod/uuid"
        } else {
            "POST pod/hmac/sign (64 B)"
        };
        println!(
            "{:<10} {:<30} {:>10} {:>9.0} {:>14.1} {:>14.1}",
            target.label,
            what,
            load.requests,
            load.rate(),
            load.server_us(),
            load.client_us()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (get, get_base, sign, sign_base) = (
        loads[0].rate(),
        loads[1].rate(),
        loads[2].rate(),
        loads[3].rate(),
    );
    let busy = (loads[0].server_cpu + loads[0].client_cpu) / loads[0].seconds;
    let client_share = loads[0].client_cpu / (loads[0].server_cpu + loads[0].client_cpu);
    println!(
        "during MDS GETs: {busy:.2} of {cores} cores busy, the client holding {:.0}% of that; \
         all {cores} cores to the MDS alone would give ~{:.0} GETs/s, ~{:.0} signs/s",
        client_share * 100.0,
        cores as f64 * 1e6 / loads[0].server_us(),
        cores as f64 * 1e6 / loads[2].server_us()
    );

    let build = if cfg!(debug_assertions) {
        "debug build: the figures mean nothing"
    } else {
        "release build"
    };
    println!(
        "\n{cores} cores ({}), {build}, client and servers on the same machine:\n",
        cpu_model()
    );
    println!("| measure | MDS | baseline | MDS / baseline | target | met |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| `Keys::token_is` in-process | {:.0} ns/op | | | token verify < 5 µs | {} |",
        keys_times.token_is,
        met(keys_times.token_is < 5_000.0)
    );
    println!(
        "| `Keys::sign`, 64 bytes, in-process | {:.0} ns/op | | | | |",
        keys_times.sign
    );
    println!(
        "| `GET pod/uuid` from a pod, {} connections | {get:.0} req/s | minimal axum: {get_base:.0} req/s | {:.2} | ≥ 20,000 GETs/s | {} |",
        plan.threads,
        get / get_base,
        met(get >= 20_000.0)
    );
    println!(
        "| `POST pod/hmac/sign` (64 B) from a pod, {} connections | {sign:.0} req/s | minimal axum: {sign_base:.0} req/s | {:.2} | ≥ 10,000 signs/s | {} |",
        plan.threads,
        sign / sign_base,
        met(sign >= 10_000.0)
    );
    drop(setup);
    println!(
        "\n5. cleaned up: MDS stopped, pod load removed, bridge deleted, temporary root removed"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CLIENT) {
        client(&args[1..]);
        return;
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not: then
    // only the in-process part runs, briefly, as a check that it works.
    let bench = args.iter().any(|a| a == "--bench");
    let iterations = if bench {
        env_or("JETPACK_BENCH_ITERATIONS", 200_000usize).max(100_000)
    } else {
        2_000
    };
    let keys_times = bench_keys(iterations);
    if !bench {
        println!("mds bench: quick check only (run `cargo bench --bench mds` to measure)");
        return;
    }
    if let Some(why) = missing_facility() {
        println!("SKIPPED: MDS load from a pod: {why}");
        return;
    }
    let tarball = match busybox_tarball() {
        Ok(t) => t,
        Err(why) => {
            println!("SKIPPED: MDS load from a pod: {why}");
            return;
        }
    };
    let seconds: f64 = env_or("JETPACK_BENCH_SECONDS", 3.0);
    let rounds = 3;
    let plan = Plan {
        threads: env_or("JETPACK_BENCH_CONNECTIONS", 4usize).max(1),
        rounds,
        warm: Duration::from_millis(300),
        round: Duration::from_secs_f64(seconds / rounds as f64),
    };
    bench_pods(&plan, &tarball, &keys_times);
}
