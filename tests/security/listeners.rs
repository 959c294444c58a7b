//! Security tests: the API's and the hangar's listeners against idle,
//! slow and greedy clients (issue 13, findings 1 and 6). Each server runs
//! with short timeouts so that every test ends in seconds.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::server::TestServer;
use crate::common::{jetpack_bin, tool};

/// Short clocks: a 1 s handshake, 2 s for a head, 3 s idle, 2 s body stall.
const SHORT: &[&str] = &[
    "server.timeout.handshake=1",
    "server.timeout.head=2",
    "server.timeout.idle=3",
    "server.timeout.body=2",
];

fn with_short(extra: &[&'static str]) -> Vec<&'static str> {
    SHORT.iter().chain(extra).copied().collect()
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `from`.
fn connect_from(from: IpAddr, port: u16) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from, 0))
            .expect("binding the source address");
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connecting")
    });
    let stream = stream.into_std().expect("a std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// How long until the server closes `stream` (reading and discarding
/// whatever it answers), or None when it is still open after `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if started.elapsed() >= within {
                    return None;
                }
            }
            // Reset by the server: closed too.
            Err(_) => return Some(started.elapsed()),
        }
    }
}

fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

#[test]
fn idle_and_slow_clients_are_dropped_by_the_plain_api() {
    let server = TestServer::start(&with_short(&[]), &["--noservertls"]);
    // Connects and sends nothing: dropped after the first head's 2 s.
    let mut silent = connect_from(localhost(), server.port);
    let t =
        closed_within(&mut silent, Duration::from_secs(10)).expect("a silent client is dropped");
    assert!(t >= Duration::from_millis(1500), "dropped too early: {t:?}");

    // A head trickled a byte every 300 ms: each byte is on time, the head
    // is not; dropped 2 s after its first byte.
    let mut slow = connect_from(localhost(), server.port);
    let started = Instant::now();
    let head =
        b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(
        cut || closed_within(&mut slow, Duration::from_secs(2)).is_some(),
        "a trickled head is not dropped"
    );
    assert!(started.elapsed() < Duration::from_secs(8));

    // After one answered request, the connection may idle 3 s, not forever.
    let mut keep = connect_from(localhost(), server.port);
    keep.write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let t =
        closed_within(&mut keep, Duration::from_secs(10)).expect("an idle keep-alive is dropped");
    assert!(
        t >= Duration::from_millis(2500),
        "idle limit too short: {t:?}"
    );

    // A body shorter than its Content-Length ends within the body stall.
    let mut short = connect_from(localhost(), server.port);
    let userpass = format!("{}:{}", server.user, server.password);
    let auth = base64_basic(&userpass);
    write!(
        short,
        "POST /v1/uplinks HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"id\":"
    )
    .expect("request");
    let t = closed_within(&mut short, Duration::from_secs(10)).expect("a short body is cut off");
    assert!(t < Duration::from_secs(6), "{t:?}");

    // The server is fine afterwards.
    let (status, _) = server.curl(&[], "/v1/info");
    assert_eq!(status, 200);
}

fn base64_basic(userpass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(userpass)
}

#[test]
fn an_upload_trickled_below_the_minimum_rate_is_cut_off() {
    let server = TestServer::start(
        &with_short(&["server.minbodyrate=4096"]),
        &["--noservertls"],
    );
    let mut upload = connect_from(localhost(), server.port);
    let auth = base64_basic(&format!("{}:{}", server.user, server.password));
    write!(
        upload,
        "POST /v1/images?name=slow HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n\x7fELF"
    )
    .expect("request");
    // 100 bytes every 200 ms: never a 2 s stall, but 500 B/s < 4096 B/s.
    let started = Instant::now();
    let mut answer = Vec::new();
    upload
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    while started.elapsed() < Duration::from_secs(15) {
        if upload.write_all(&[0x5a; 100]).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match upload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a trickled upload was not cut off"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let (status, body) = server.curl(&[], "/v1/images");
    assert_eq!(status, 200);
    assert!(!body.contains("slow"), "a cut upload was stored: {body}");
}

#[test]
fn idle_tls_connections_are_dropped_after_the_handshake_timeout() {
    if !tool("openssl") {
        return;
    }
    let server = TestServer::start(&with_short(&[]), &[]);
    // A TCP connection that never says hello: the 1 s handshake limit.
    let mut mute = connect_from(localhost(), server.port);
    let t =
        closed_within(&mut mute, Duration::from_secs(10)).expect("a mute TLS client is dropped");
    assert!(t < Duration::from_secs(4), "{t:?}");
    // A real TLS client that completes the handshake and then says
    // nothing: dropped when its first head does not come (2 s).
    let started = Instant::now();
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{}", server.port))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = client.try_wait().expect("waiting") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = client.kill();
    assert!(status.is_some(), "an idle TLS connection stayed open");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn connections_over_the_per_address_cap_are_refused_and_others_still_served() {
    let server = TestServer::start(
        &with_short(&["server.maxconnsperip=8", "uplink.maxconnsperip=4"]),
        &["--noservertls", "--nouplinktls"],
    );
    let attacker = IpAddr::from([127, 0, 0, 2]);
    let mut held: Vec<TcpStream> = (0..8)
        .map(|_| connect_from(attacker, server.port))
        .collect();
    // The ninth from that address is closed at once, without an answer.
    let mut ninth = connect_from(attacker, server.port);
    let t = closed_within(&mut ninth, Duration::from_secs(1)).expect("the ninth is refused");
    assert!(t < Duration::from_millis(900));
    // Another address is served while the attacker holds its eight.
    let (status, _) = server.curl(&[], "/v1/info");
    assert_eq!(status, 200);
    // The same at the hangar: four, then refused.
    let mut docks: Vec<TcpStream> = (0..4)
        .map(|_| connect_from(attacker, server.uplink_port))
        .collect();
    let mut fifth = connect_from(attacker, server.uplink_port);
    assert!(closed_within(&mut fifth, Duration::from_secs(1)).is_some());
    assert!(
        closed_within(&mut docks[0], Duration::from_millis(200)).is_none(),
        "the four within the cap stay open"
    );
    assert!(server.log().contains("refused a connection from 127.0.0.2"));
    held.clear();
    docks.clear();
}

/// `jetpack serve` with at most `nofile` descriptors, unable to raise
/// the limit (CAP_SYS_RESOURCE dropped), as an operator's `ulimit -n`.
fn restart_with_nofile(server: &mut TestServer, nofile: u64, flags: &[&str]) {
    assert!(server.stop(), "the first server did not stop cleanly");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(server.dir.path().join("serve.log"))
        .expect("log");
    let limit = format!("--nofile={nofile}:{nofile}");
    let mut cmd = Command::new("prlimit");
    cmd.arg(&limit)
        .args(["setpriv", "--bounding-set", "-sys_resource", "--"])
        .arg(jetpack_bin())
        .arg("--config")
        .arg(&server.conf);
    for o in &server.options {
        cmd.arg("-o").arg(o);
    }
    let child = cmd
        .arg("serve")
        .args(flags)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prlimit jetpack serve");
    server.child = Some(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", server.port)).is_err() {
        assert!(Instant::now() < deadline, "no server: {}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn under_descriptor_pressure_the_api_answers_and_the_hangar_accepts() {
    if !tool("prlimit")
        || !tool("setpriv")
        || !crate::common::facility(
            "root",
            if nix::unistd::geteuid().is_root() {
                Ok(())
            } else {
                Err("dropping a capability needs root".into())
            },
        )
    {
        return;
    }
    let mut server = TestServer::start(
        &with_short(&["server.timeout.head=30", "server.timeout.handshake=30"]),
        &["--noservertls", "--nouplinktls"],
    );
    restart_with_nofile(&mut server, 256, &["--noservertls", "--nouplinktls"]);
    assert!(
        server.log().contains("descriptor limit 256"),
        "{}",
        server.log()
    );
    // 238 idle connections from three addresses: the per-address cap (64)
    // refuses some, and the rest fill the API's share of 256 descriptors,
    // where each newcomer takes the place of the oldest idle one.
    let mut idle = Vec::new();
    for i in 0..238u8 {
        let from = IpAddr::from([127, 0, 0, 2 + i % 3]);
        idle.push(connect_from(from, server.port));
    }
    // The API still answers a real user, at once.
    let started = Instant::now();
    let (status, _) = server.curl(&["--max-time", "10"], "/v1/info");
    assert_eq!(status, 200, "{}", server.log());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The hangar still accepts and answers (a wrong key: 401).
    let mut hangar = connect_from(localhost(), server.uplink_port);
    let body = r#"{"id":"0123456789abcdef","key":"not-a-token-of-any-uplink"}"#;
    write!(
        hangar,
        "POST /auth HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("auth");
    let mut answer = String::new();
    hangar
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = hangar.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "hangar: {answer:?}");
    // Refusals are counted and logged once per interval, not per attempt.
    let log = server.log();
    let refusals = log.matches("API: refused a connection").count()
        + log.matches("closed the oldest idle one").count();
    assert!(
        (1..=4).contains(&refusals),
        "{refusals} refusal lines: {log}"
    );
    assert!(
        log.matches("accept:").count() <= 3,
        "accept errors flood the log: {log}"
    );
    idle.clear();
}

#[test]
fn sigterm_closes_idle_connections_at_once() {
    let mut server = TestServer::start(
        &[
            "server.timeout.idle=60",
            "server.timeout.head=60",
            "server.timeout.handshake=60",
        ],
        &["--noservertls"],
    );
    // Keep-alive connections idle after a request, and fresh silent ones.
    let mut conns = Vec::new();
    for _ in 0..10 {
        let mut c = connect_from(localhost(), server.port);
        c.write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut buf = [0u8; 512];
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
        assert!(c.read(&mut buf).expect("an answer") > 0);
        conns.push(c);
    }
    for _ in 0..10 {
        conns.push(connect_from(localhost(), server.port));
    }
    let started = Instant::now();
    assert!(server.stop(), "the server did not exit cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM waited {:?} for idle connections",
        started.elapsed()
    );
}

/// The cipher `openssl s_client` negotiated with the hangar when offering
/// `ciphers` in that order.
fn negotiated(port: u16, ciphers: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-noservername",
            "-cipher",
            ciphers,
            "-connect",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Cipher    : "))
        .or_else(|| text.lines().find_map(|l| l.split("Cipher is ").nth(1)))
        .unwrap_or_else(|| panic!("no cipher in: {text}"))
        .trim()
        .to_string()
}

#[test]
fn the_hangar_prefers_forward_secret_suites_and_keeps_aes256_sha_for_includeos() {
    if !tool("openssl") {
        return;
    }
    let server = TestServer::start(&[], &[]);
    // A client listing AES256-SHA first still gets ECDHE.
    let cipher = negotiated(server.uplink_port, "AES256-SHA:ECDHE-RSA-AES256-GCM-SHA384");
    assert_eq!(cipher, "ECDHE-RSA-AES256-GCM-SHA384");
    // IncludeOS, which speaks only AES256-SHA, still docks.
    assert_eq!(negotiated(server.uplink_port, "AES256-SHA"), "AES256-SHA");
}
