//! The event stream (`GET /v1/events`, docs/CONSOLE.md) against a real
//! server with TLS and auth: `jetpack events -o json` reads it while
//! `jetpack sim` instances dock and go away, and curl resumes it with
//! `Last-Event-ID`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::sims::{sim_command, Killed};
use common::JETPACK;
use serde_json::Value;

fn sim(server: &TestServer, seed: &str, count: usize) -> Killed {
    Killed::spawn(
        sim_command(server, true)
            .args(["--count", &count.to_string(), "--seed", seed])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// `jetpack events -o json`, its lines parsed as they come.
fn events(server: &TestServer) -> (Killed, mpsc::Receiver<Value>) {
    let mut child = Command::new(JETPACK)
        .args(["--host", "127.0.0.1", "--port", &server.port.to_string()])
        .args(["--username", "admin", "--password", &server.password])
        .args(["--tlsInsecureSkipVerify", "-o", "json", "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting jetpack events");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            let value: Value = serde_json::from_str(&line).expect("one JSON object per line");
            if tx.send(value).is_err() {
                return;
            }
        }
    });
    (Killed(child), rx)
}

/// The next event for which `f` holds, within `secs`.
fn until(rx: &mpsc::Receiver<Value>, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if f(&v) => return v,
            Ok(_) => {}
            Err(_) => panic!("no event {what} within {secs} s"),
        }
    }
}

#[test]
fn the_stream_tells_counts_and_status_changes_and_resumes() {
    let server = TestServer::start(&[], &[]);
    let (_events, rx) = events(&server);
    let first = until(&rx, 20, "counts first", |_| true);
    assert_eq!(first["event"], "counts", "{first}");
    assert_eq!(first["data"]["total"], 0, "{first}");
    let resume_from = first["id"].as_str().expect("an id").to_string();

    let mut sims = sim(&server, "events", 5);
    // Each instance's change comes as it happens, the counts after.
    let one = until(&rx, 30, "of an instance", |v| v["event"] == "instance");
    assert_eq!(one["data"]["id"].as_str().map(str::len), Some(32), "{one}");
    let docked = until(&rx, 30, "of 5 connected", |v| {
        v["event"] == "counts" && v["data"]["connected"] == 5
    });
    assert_eq!(docked["data"]["total"], 5, "{docked}");

    // They go away: the counts follow within the stream, without polling.
    let _ = sims.0.kill();
    let _ = sims.0.wait();
    let gone = until(&rx, 60, "of 5 disconnected", |v| {
        v["event"] == "counts" && v["data"]["disconnected"] == 5
    });
    assert_eq!(gone["data"]["connected"], 0, "{gone}");

    // A client that comes back with the id it saw last gets what it missed
    // in order, the counts included.
    let (status, text) = server.curl(
        &[
            "-N",
            "--max-time",
            "3",
            "-H",
            &format!("Last-Event-ID: {resume_from}"),
        ],
        "/v1/events",
    );
    assert!(status == 200 || status == 0, "{status} {text}");
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|id| id.parse().expect("numeric ids"))
        .collect();
    assert!(ids.len() > 5, "the missed events come again: {text}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert!(text.contains("event: instance\n"), "{text}");
    // An id this server never gave: the client must reload.
    let (_, text) = server.curl(
        &["-N", "--max-time", "2", "-H", "Last-Event-ID: 1"],
        "/v1/events",
    );
    assert!(text.starts_with("event: resync\n"), "{text}");
}

#[test]
fn the_stream_needs_credentials() {
    let server = TestServer::start(&[], &[]);
    let (status, _) = server.curl_as(None, &["--max-time", "5"], "/v1/events");
    assert_eq!(status, 401);
}

#[test]
fn a_browsers_stream_ends_with_its_session() {
    let server = TestServer::start(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("cookies");
    let jar = jar.to_str().unwrap();
    let body = format!(r#"{{"username":"admin","password":"{}"}}"#, server.password);
    let (status, _) = server.curl_as(
        None,
        &[
            "-c",
            jar,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ],
        "/v1/session",
    );
    assert_eq!(status, 200);
    let mut stream = Killed(
        Command::new("curl")
            .args(["-sSkN", "-b", jar, &server.url("/v1/events")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl"),
    );
    let mut lines = BufReader::new(stream.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").expect("text");
    assert!(first.starts_with("id: "), "{first}");
    // The user goes: another one takes the file.
    let htpasswd = server.keys_dir().join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&htpasswd)
        .args(["someone", "else"])
        .output()
        .expect("htpasswd");
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = stream.0.try_wait().unwrap() {
            assert!(status.success(), "the server ended the stream: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the stream outlived its session");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = server.curl_as(None, &["-b", jar], "/v1/info");
    assert_eq!(status, 401, "and the session is over for every request");
}

#[test]
fn a_pod_whose_command_ends_by_itself_is_announced() {
    let Some(host) = common::TestHost::with_busybox(common::Driver::Dir) else {
        return;
    };
    let server = TestServer::on_host(&host, &[]);
    let (_events, rx) = events(&server);
    until(&rx, 20, "counts first", |v| v["event"] == "counts");
    // The pod's command ends on its own: no handler sees that, its
    // supervisor (another process) records it, and the stream says it.
    let body = r#"{"base":"busybox","name":"brief","command":["true"],"state":"running"}"#;
    let (status, pod) = server.json(
        &["-H", "Content-Type: application/json", "-d", body],
        "/v1/pods",
    );
    assert_eq!(status, 201, "{pod}");
    let id = pod["id"].as_str().expect("an id").to_string();
    until(&rx, 30, "of the pod exited", |v| {
        v["event"] == "pod" && v["data"]["id"] == id.as_str() && v["data"]["state"] == "exited"
    });
    // Removed by a host command, not through the API: said too.
    let out = server
        .jetpack()
        .args(["pod", "rm", "brief"])
        .output()
        .expect("jetpack pod rm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until(&rx, 30, "of the pod removed", |v| {
        v["event"] == "pod-removed" && v["data"]["id"] == id.as_str()
    });
}
