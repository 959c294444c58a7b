//! `jetpack top --once` against a real server with `jetpack sim` instances
//! (one of them panics once), in both table and JSON form; and
//! docs/grafana-dashboard.json checked against a real `/metrics`: every
//! metric its expressions name is one the server exposes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::sims::{sim_command, Killed};
use common::JETPACK;
use serde_json::Value;

fn sim(server: &TestServer, seed: &str, count: usize, extra: &[&str]) -> Killed {
    Killed::spawn(
        sim_command(server, true)
            .args(["--count", &count.to_string(), "--seed", seed])
            .args(["--stats-ms", "300"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn top(server: &TestServer, args: &[&str]) -> Output {
    let out = Command::new(JETPACK)
        .args(["--host", "127.0.0.1", "--port", &server.port.to_string()])
        .args(["--username", "admin", "--password", &server.password])
        .arg("--tlsInsecureSkipVerify")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running jetpack top");
    assert!(
        out.status.success(),
        "jetpack {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn frame(server: &TestServer, extra: &[&str]) -> Value {
    let mut args = vec!["-o", "json", "top", "--once"];
    args.extend_from_slice(extra);
    let out = top(server, &args);
    serde_json::from_slice(&out.stdout).expect("-o json --once prints one JSON frame")
}

/// Polls `f` until it gives a value, within `secs`.
fn within<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn top_once_shows_the_counts_the_busiest_and_the_panics() {
    let server = TestServer::start(&[], &[]);
    let _sims = sim(&server, "top", 3, &[]);
    let _panics = sim(&server, "top-panic", 1, &["--panic"]);

    // Settled: all four docked, each with two STATS (so a rate), and the
    // panic reported and listed.
    let json = within(60, "4 docked with rates and a panic", || {
        let f = frame(&server, &[]);
        let rows = f["instances"].as_array()?;
        let ready = f["counts"]["connected"] == 4
            && f["counts"]["panicked"] == 1
            && rows.len() == 4
            && rows.iter().all(|r| r["rate"].is_number())
            && f["panics"].as_array()?.len() == 1;
        ready.then_some(f)
    });
    assert_eq!(json["counts"]["total"], 4, "{json}");
    assert_eq!(json["stat"], "eth0.ethernet.packets_rx", "{json}");
    let rows = json["instances"].as_array().unwrap();
    let rates: Vec<f64> = rows.iter().map(|r| r["rate"].as_f64().unwrap()).collect();
    assert!(
        rates.windows(2).all(|w| w[0] >= w[1]),
        "busiest first: {rates:?}"
    );
    let (_, listed) = server.json(&[], "/v1/instances");
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let mut shown: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    shown.sort_unstable();
    assert_eq!(ids, shown, "{json}");
    let panicked = rows.iter().find(|r| r["panicked"] == true).expect("one");
    assert_eq!(json["panics"][0]["instanceId"], panicked["id"], "{json}");

    // The table: the counts line, a row per instance by its short id, the
    // panic; no escape codes when stdout is not a terminal.
    let out = top(&server, &["top", "--once"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "{text}");
    assert!(
        text.contains("instances: 4 total, 4 connected, 0 connecting, 0 disconnected"),
        "{text}"
    );
    assert!(text.contains("busiest docked instances by eth0.ethernet.packets_rx"));
    for id in &ids {
        assert!(text.contains(&id[..12]), "{id} in {text}");
    }
    assert!(text.contains("panic_"), "{text}");

    // --limit and another stat.
    let two = frame(&server, &["--limit", "2", "--stat", "total_memuse"]);
    assert_eq!(two["instances"].as_array().unwrap().len(), 2, "{two}");
    assert!(
        two["instances"][0]["value"].as_f64().unwrap() > 0.0,
        "{two}"
    );
    // Without --once, a stdout that is not a terminal still gets one frame.
    let out = top(&server, &["-o", "id", "top"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 4);
}

/// The metric names a PromQL expression uses.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let word = &expr[start..i];
        if word.starts_with("jetpack_") || word.starts_with("process_") {
            into.insert(word.to_string());
        }
        i = i.max(start + 1);
    }
}

#[test]
fn the_grafana_dashboard_names_only_metrics_the_server_has() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(
        dash["schemaVersion"].as_u64().unwrap() >= 36,
        "{}",
        dash["schemaVersion"]
    );
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(vars
        .iter()
        .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"));
    assert!(vars.iter().any(|v| v["name"] == "instance_id"));
    let mut names = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{p}");
        for t in p["targets"].as_array().unwrap() {
            metric_names(t["expr"].as_str().unwrap(), &mut names);
        }
    }
    for v in vars {
        if let Some(q) = v["definition"].as_str() {
            metric_names(q, &mut names);
        }
    }
    for needed in [
        "jetpack_instances",
        "jetpack_hangar_docks_total",
        "jetpack_hangar_deploys_total",
        "jetpack_hangar_disconnects_total",
        "jetpack_api_request_duration_seconds_bucket",
        "jetpack_instance_stat",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(names.contains(needed), "the dashboard shows {needed}");
    }

    // A server with instances that sent STATS, so the per-instance series
    // exist too; and one API request before, so the histogram has series.
    let server = TestServer::start(&[], &[]);
    let _sims = sim(&server, "dashboard", 2, &[]);
    let metrics = within(60, "instance stats in /metrics", || {
        let (status, text) = server.curl(&[], "/metrics");
        assert_eq!(status, 200, "{text}");
        text.contains("jetpack_instance_stat{").then_some(text)
    });
    let exposed: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !exposed.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in /metrics: {missing:?}\n{metrics}"
    );
}
