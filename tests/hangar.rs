//! The hangar against real clients on loopback: `jetpack sim` (instances
//! that speak the uplink protocol as IncludeOS does), a hand-driven raw
//! client for what a good instance never sends, and `openssl s_client`
//! restricted to the one suite IncludeOS speaks. What the hangar learned
//! is read back through the REST API with curl.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hangar::{auth, auth_request, dock, is_identified, request, RawInstance};
use common::server::{fake_elf, TestServer};
use common::sims::{sim_command, sim_id, uplink_token, Killed};
use common::JETPACK;
use jetpack::hangar::frame::Code;
use serde_json::Value;

const ID: &str = "0123456789abcdef0123456789abcdef";

fn instance(server: &TestServer, id: &str) -> (u16, Value) {
    server.json(&[], &format!("/v1/instances/{id}"))
}

/// Polls `what` until it gives Some, for up to `secs`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_status(server: &TestServer, id: &str, status: &str, secs: u64) -> Value {
    wait_for(secs, &format!("{id} to be {status}"), || {
        let (code, v) = instance(server, id);
        (code == 200 && v["status"] == status).then_some(v)
    })
}

/// Waits until `id` is connected and has sent its IDENT and UPLINK.
fn wait_identified(server: &TestServer, id: &str, secs: u64) -> Value {
    wait_for(
        secs,
        &format!("{id} to be connected with IDENT and UPLINK"),
        || {
            let (code, v) = instance(server, id);
            (code == 200 && is_identified(&v)).then_some(v)
        },
    )
}

/// `jetpack sim` against this server's hangar, its reports in a log file
/// in the server's folder.
fn sim(server: &TestServer, tls: bool, args: &[&str]) -> Killed {
    let log = std::fs::File::create(
        server
            .dir
            .path()
            .join(format!("sim-{}.log", Instant::now().elapsed().as_nanos())),
    )
    .expect("sim log");
    Killed::spawn(
        sim_command(server, tls)
            .args(["--report-ms", "500"])
            .args(args)
            .stdout(log)
            .stderr(Stdio::inherit()),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn instances_dock_over_tls_and_plain_and_report_ident() {
    for tls in [true, false] {
        let flags: &[&str] = if tls { &[] } else { &["--nouplinktls"] };
        let server = TestServer::start(&[], flags);
        let seed = format!("dock-{tls}");
        let _sim = sim(
            &server,
            tls,
            &[
                "--count",
                "3",
                "--seed",
                &seed,
                "--tag",
                "edge",
                "--stats-ms",
                "500",
            ],
        );
        for i in 0..3 {
            let v = wait_identified(&server, &sim_id(&seed, i), 30);
            assert_eq!(v["tag"], "edge", "{v}");
            assert_eq!(v["service"], "Starbase");
            assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
            assert!(
                !v["addresses"].as_array().expect("addresses").is_empty(),
                "{v}"
            );
            assert!(!v["devices"].as_array().expect("devices").is_empty(), "{v}");
            assert_eq!(
                v["uplinkUrl"]
                    .as_str()
                    .map(|u| u.starts_with(if tls { "https" } else { "http:" })),
                Some(true)
            );
        }
        let (_, summary) = server.json(&[], "/v1/instances/summary");
        assert_eq!(summary["connected"], 3, "{summary}");
        assert_eq!(summary["total"], 3);
    }
}

#[test]
fn statuses_follow_disconnects_and_server_restarts() {
    let mut server = TestServer::start(&[], &["--nouplinktls"]);
    let seed = "restart";
    let id = sim_id(seed, 0);
    let sim1 = sim(&server, false, &["--count", "1", "--seed", seed]);
    wait_identified(&server, &id, 30);
    drop(sim1);
    wait_status(&server, &id, "disconnected", 30);
    let (_, history) = server.json(&[], &format!("/v1/instances/{id}/history"));
    let events: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"docked") && events.contains(&"disconnected"),
        "{events:?}"
    );
    assert!(server.stop(), "clean stop");
    server.spawn(&["--nouplinktls"]);
    let v = wait_status(&server, &id, "unknown", 10);
    assert_eq!(v["service"], "Starbase", "IDENT survives a restart: {v}");
    let _sim2 = sim(&server, false, &["--count", "1", "--seed", seed]);
    wait_status(&server, &id, "connected", 30);
}

#[test]
fn logs_stats_and_panics_round_trip() {
    let server = TestServer::start(&[], &["--nouplinktls"]);
    let seed = "rt";
    let id = sim_id(seed, 0);
    let _sim = sim(
        &server,
        false,
        &["--count", "1", "--seed", seed, "--log-ms", "100", "--panic"],
    );
    let v = wait_for(30, "a panic", || {
        let (_, v) = instance(&server, &id);
        (v["panicked"] == true && v["status"] == "connected").then_some(v)
    });
    assert_eq!(v["status"], "connected");
    let (_, panics) = server.json(&[], &format!("/v1/instances/{id}/panics"));
    let panic_id = panics[0]["id"].as_str().expect("a panic id").to_string();
    assert!(
        panic_id.starts_with("panic_") && panic_id.ends_with(".txt"),
        "{panic_id}"
    );
    let (status, text) = server.curl(
        &["-H", "Accept: text/plain"],
        &format!("/v1/instances/{id}/panics/{panic_id}"),
    );
    assert_eq!(status, 200);
    assert!(!text.is_empty());
    wait_for(10, "log lines", || {
        let (status, text) = server.curl(&[], &format!("/v1/instances/{id}/logs"));
        (status == 200 && text.lines().count() >= 3).then_some(text)
    });
    // The log grows while we read: the tail read first is in the whole read after.
    let (_, tail) = server.curl(&[], &format!("/v1/instances/{id}/logs?tail=1"));
    let (_, logs) = server.curl(&[], &format!("/v1/instances/{id}/logs"));
    assert_eq!(tail.trim_end().lines().count(), 1, "{tail:?}");
    assert!(
        logs.contains(tail.trim_end()),
        "the tail is in the log: {tail:?}"
    );
    // Fresh stats on request (the sim sends none by itself here).
    let (status, stats) = server.json(&["-X", "POST"], &format!("/v1/instances/{id}/stats"));
    assert_eq!(status, 200, "{stats}");
    let (_, stored) = server.json(&[], &format!("/v1/instances/{id}/stats"));
    let names: Vec<&str> = stored["latest"]["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        &names[..3],
        ["monotonic_ts_ms", "rtc_ts_ms", "total_memuse"]
    );
    // Alias, search, delete.
    let (status, _) = server.json(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"alias":"edge-1","description":"lab"}"#,
        ],
        &format!("/v1/instances/{id}"),
    );
    assert_eq!(status, 200);
    let (_, found) = server.json(&[], "/v1/instances?q=edge-1");
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, found) = server.json(&[], "/v1/instances?status=disconnected");
    assert!(found.as_array().unwrap().is_empty());
    let (status, _) = server.curl(&["-X", "DELETE"], "/v1/instances/edge-1");
    assert!(status == 200 || status == 204, "{status}");
    // Forgotten: panics, alias and logs are gone. The live instance docks
    // again at once (it re-auths when its socket closes) as a new one.
    let (status, panics) = server.curl(&[], &format!("/v1/instances/{id}/panics"));
    assert!(status == 404 || panics.trim() == "[]", "{status} {panics}");
    let (status, v) = instance(&server, &id);
    assert!(status == 404 || v["alias"].is_null(), "{status} {v}");
}

/// An image the deploy tests can send: any ELF will do for the sim.
fn upload_image(server: &TestServer, salt: &str) -> String {
    let path = server.dir.path().join(format!("{salt}.elf"));
    fake_elf(&path, 200_000, salt);
    let (status, image) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", path.display()),
        ],
        &format!("/v1/images?name={salt}"),
    );
    assert_eq!(status, 201, "{image}");
    image["id"].as_str().expect("image id").to_string()
}

fn deploy(server: &TestServer, id: &str, image: &str, query: &str) -> (u16, Value) {
    server.json(
        &["-X", "POST"],
        &format!("/v1/instances/{id}/deploy/{image}{query}"),
    )
}

fn job_end(server: &TestServer, job: &Value) -> Value {
    let job_id = job["id"].as_str().expect("a job").to_string();
    wait_for(60, "the deploy job", || {
        let (_, j) = server.json(&[], &format!("/v1/jobs/{job_id}"));
        matches!(
            j["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
        .then_some(j)
    })
}

#[test]
fn deploys_succeed_or_fail_with_the_reason() {
    let server = TestServer::start(&[], &["--nouplinktls"]);
    let image = upload_image(&server, "deploy-ok");
    let cases: [(&str, &[&str], Option<&str>); 4] = [
        ("ok", &[], None),
        ("bad-ack", &["--bad-ack"], Some("acknowledged")),
        ("no-return", &["--no-return"], Some("did not dock again")),
        ("fails", &["--update-fails"], Some("docked again running")),
    ];
    for (seed, flags, failure) in cases {
        let id = sim_id(seed, 0);
        let _sim = sim(
            &server,
            false,
            &[&["--count", "1", "--seed", seed], flags].concat(),
        );
        wait_status(&server, &id, "connected", 30);
        // An uploaded image has no known uplink: refused unless forced.
        let (status, refused) = deploy(&server, &id, &image, "");
        assert_eq!(status, 409, "{refused}");
        assert!(
            refused["message"].as_str().unwrap_or("").contains("force"),
            "{refused}"
        );
        let (status, job) = deploy(&server, &id, &image, "?force=true&timeout=8");
        assert_eq!(status, 202, "{job}");
        let job = job_end(&server, &job);
        match failure {
            None => {
                assert_eq!(job["state"], "succeeded", "{job}");
                let v = wait_status(&server, &id, "connected", 10);
                assert_eq!(v["imageId"], image.as_str());
            }
            Some(why) => {
                assert_eq!(job["state"], "failed", "{seed}: {job}");
                assert!(
                    job["error"].as_str().unwrap_or("").contains(why),
                    "{seed}: {job}"
                );
            }
        }
    }
}

#[test]
fn openssl_with_only_aes256_sha_and_no_sni_can_auth() {
    if !common::tool("openssl") {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let body = String::from_utf8(auth_request(ID, &uplink_token(&server))).unwrap();
    let request = body.replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", server.uplink_port),
        ])
        .args([
            "-tls1_2",
            "-cipher",
            "AES256-SHA",
            "-noservername",
            "-ign_eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("AES256-SHA"), "{text}");
    assert!(
        text.contains("Protocol  : TLSv1.2") || text.contains("TLSv1.2"),
        "{text}"
    );
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
}

#[test]
fn frames_are_bytes_not_utf8() {
    let server = TestServer::start(&[], &["--nouplinktls"]);
    let key = uplink_token(&server);
    rt().block_on(async {
        let raw = RawInstance::dock(server.uplink_port, ID, &key, false).await;
        // IDENT padded to 0x80 bytes: its header holds 0x80, not UTF-8.
        let mut ident = br#"{"uuid":"x","version":"v0.14.2","service":"Raw","net":[{"addr":"10.9.8.7"}],"pad":""#.to_vec();
        ident.resize(0x80 - 2, b'p');
        ident.extend(b"\"}");
        assert_eq!(ident.len(), 0x80);
        let message = jetpack::hangar::frame::encode(Code::Ident, &ident);
        assert!(std::str::from_utf8(&message).is_err());
        raw.message(message).await;
        // A LOG of invalid UTF-8, split over two WebSocket messages.
        let log = jetpack::hangar::frame::encode(Code::Log, b"boot \xff\xfe ok\n");
        raw.message(log[..8].to_vec()).await;
        raw.message(log[8..].to_vec()).await;
        // Zero-length STATS is valid framing (and ignored as not an array).
        raw.transport(Code::Stats, b"").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let (_, v) = instance(&server, ID);
    assert_eq!(v["version"], "v0.14.2", "{v}");
    assert_eq!(v["addresses"][0], "10.9.8.7");
    let (_, logs) = server.curl(&[], &format!("/v1/instances/{ID}/logs"));
    assert!(
        logs.starts_with("boot ") && logs.ends_with(" ok\n"),
        "{logs:?}"
    );
}

#[test]
fn bad_auth_and_docks_are_refused_and_logged() {
    let server = TestServer::start(
        &["uplink.authrate=1", "uplink.authburst=3"],
        &["--nouplinktls"],
    );
    let key = uplink_token(&server);
    let port = server.uplink_port;
    rt().block_on(async {
        let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(auth(port, Some(other), ID, "wrong").await.0, 401);
        assert_eq!(
            auth(port, Some(other), "../../etc/passwd", &key).await.0,
            403
        );
        assert_eq!(
            auth(port, Some(other), &"a".repeat(1000), &key).await.0,
            403
        );
        assert_eq!(
            auth(port, Some(other), &"a".repeat(10_000), &key).await.0,
            413
        );
        let (status, _) = request(
            port,
            Some("127.0.0.3".parse().unwrap()),
            b"POST /auth HTTP/1.1\r\nContent-Length: 8\r\n\r\nnot json",
        )
        .await;
        assert_eq!(status, 400);
        // A flood from one address is cut off; other addresses go on.
        let flood: std::net::IpAddr = "127.0.0.4".parse().unwrap();
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(auth(port, Some(flood), ID, &key).await.0);
        }
        assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
        assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
        assert_eq!(
            auth(port, Some("127.0.0.5".parse().unwrap()), ID, &key)
                .await
                .0,
            200
        );
        // Docks without a token, with a forged one, and other paths.
        assert_eq!(dock(port, None).await.err(), Some(401));
        let forged = format!("{ID}.99999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(dock(port, Some(&forged)).await.err(), Some(401));
        assert_eq!(
            request(port, None, b"GET /v1/info HTTP/1.1\r\n\r\n")
                .await
                .0,
            404
        );
        assert_eq!(
            request(port, None, b"GET /auth HTTP/1.1\r\n\r\n").await.0,
            405
        );
        let huge = format!("GET /dock HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(20_000));
        assert_eq!(request(port, None, huge.as_bytes()).await.0, 431);
    });
    let log = server.log();
    assert!(log.contains("auth flood from 127.0.0.4"), "{log}");
    assert!(log.contains("dock refused"), "{log}");
}

#[test]
fn bad_frames_close_only_their_own_dock() {
    let server = TestServer::start(
        &["uplink.maxtransport=4096", "uplink.ping=1"],
        &["--nouplinktls"],
    );
    let key = uplink_token(&server);
    let port = server.uplink_port;
    let good = "00000000000000000000000000000001";
    rt().block_on(async {
        let bystander = RawInstance::dock(port, good, &key, false).await;
        bystander
            .transport(Code::Ident, br#"{"uuid":"good","version":"v1"}"#)
            .await;
        // A transport announcing 4 GiB: closed with 1009, nothing allocated.
        let mut big =
            RawInstance::dock(port, "00000000000000000000000000000002", &key, false).await;
        big.message(vec![2, 0xff, 0xff, 0xff, 0xff, b'x']).await;
        assert_eq!(big.closed(Duration::from_secs(5)).await, Some(Some(1009)));
        // A message too short for a header.
        let mut short =
            RawInstance::dock(port, "00000000000000000000000000000003", &key, false).await;
        short.message(vec![1, 2]).await;
        assert!(short.closed(Duration::from_secs(5)).await.is_some());
        // Unknown codes and an IDENT that is not JSON are ignored, not fatal.
        let mut odd =
            RawInstance::dock(port, "00000000000000000000000000000004", &key, false).await;
        odd.transport(Code::Unknown(42), b"?").await;
        odd.transport(Code::Ident, b"not json").await;
        assert_eq!(
            odd.closed(Duration::from_millis(1500)).await,
            None,
            "still docked"
        );
        // An instance that stops answering pings is dropped (ping=1 s: 3 s).
        let mut dead =
            RawInstance::dock(port, "00000000000000000000000000000005", &key, true).await;
        assert!(dead.closed(Duration::from_secs(10)).await.is_some());
        let (_, v) = instance(&server, good);
        assert_eq!(
            v["status"], "connected",
            "the others' troubles are not the bystander's: {v}"
        );
        drop(bystander);
    });
    let (_, odd) = server.json(
        &[],
        "/v1/instances/00000000000000000000000000000004/history",
    );
    assert!(odd.to_string().contains("bad-ident"), "{odd}");
    let (_, dead) = instance(&server, "00000000000000000000000000000005");
    assert_eq!(dead["status"], "disconnected");
    let (_, history) = server.json(
        &[],
        "/v1/instances/00000000000000000000000000000005/history",
    );
    assert!(history.to_string().contains("heartbeat lost"), "{history}");
    let log = server.log();
    assert!(log.contains("larger than uplink.maxtransport"), "{log}");
    assert!(log.contains("without its whole 5-byte header"), "{log}");
}

/// The jetpack CLI against this server, as admin, in a home of its own.
fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(JETPACK)
        .env("HOME", server.dir.path())
        .env("XDG_CONFIG_HOME", server.dir.path().join("xdg"))
        .args(["--host", "127.0.0.1", "--port", &server.port.to_string()])
        .args([
            "--username",
            "admin",
            "--password",
            &server.password,
            "--tlsInsecureSkipVerify",
        ])
        .args(args)
        .output()
        .expect("running jetpack")
}

fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let out = cli(server, args);
    assert!(
        out.status.success(),
        "jetpack {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_cli_lists_names_reads_and_deploys_instances() {
    let server = TestServer::start(&[], &["--nouplinktls"]);
    let seed = "cli";
    let id = sim_id(seed, 0);
    let _sim = sim(
        &server,
        false,
        &[
            "--count", "1", "--seed", seed, "--log-ms", "100", "--panic", "--tag", "blue",
        ],
    );
    wait_for(30, "a panicked, connected instance", || {
        let (_, v) = instance(&server, &id);
        (v["panicked"] == true && v["status"] == "connected").then_some(())
    });
    let table = cli_ok(&server, &["instances"]);
    assert!(
        table.contains(&id[..8]) && table.contains("connected"),
        "{table}"
    );
    let listed: Value = serde_json::from_str(&cli_ok(
        &server,
        &["instances", "--status", "connected", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(cli_ok(&server, &["instances", "--status", "unknown", "-o", "json"]).trim() == "[]");
    let bad = cli(&server, &["instances", "--status", "asleep"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("jetpack: "));
    cli_ok(&server, &["instance-alias", &id[..10], "web-1"]);
    let shown: Value =
        serde_json::from_str(&cli_ok(&server, &["inspect-instance", "web-1"])).unwrap();
    assert_eq!(shown["tag"], "blue", "{shown}");
    assert!(cli_ok(&server, &["search", "web-1", "-o", "id"]).contains(&id));
    assert!(!cli_ok(&server, &["instance-logs", "web-1", "--tail", "2"]).is_empty());
    let panics = cli_ok(&server, &["instance-panics", "web-1", "-o", "json"]);
    let panics: Value = serde_json::from_str(&panics).unwrap();
    let panic_id = panics[0]["id"].as_str().expect("a panic").to_string();
    assert!(!cli_ok(&server, &["instance-panic", "web-1", &panic_id]).is_empty());
    // A deploy, refused without --force (an uploaded image), then done.
    let image = upload_image(&server, "cli-image");
    let refused = cli(&server, &["deploy", "web-1", &image]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("force"));
    cli_ok(
        &server,
        &[
            "deploy",
            "--wait",
            "--force",
            "--timeout",
            "20",
            "web-1",
            &image,
        ],
    );
    let (_, v) = instance(&server, &id);
    assert_eq!(v["imageId"], image.as_str());
    cli_ok(&server, &["delete-instance", "web-1"]);
    let gone = cli(&server, &["inspect-instance", "web-1"]);
    assert_eq!(gone.status.code(), Some(1), "the alias is forgotten");
}
