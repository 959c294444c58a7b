//! `/metrics` against a real `jetpack serve` (TLS, auth) with `jetpack sim`
//! fleets: the auth rules and formats, `promtool check metrics` on the
//! exposition with a docked fleet and a hostile STATS document, and a real
//! Prometheus on loopback that scrapes jetpack and is asked, through its
//! HTTP API, for the fleet's figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::hangar::RawInstance;
use common::server::sample;
use common::server::{free_port, TestServer};
use common::sims::{sim_command, uplink_token, Killed};
use common::until;
use jetpack::hangar::frame::Code;
use serde_json::Value;

fn sim(server: &TestServer, tls: bool, count: usize, stats_ms: u64) -> Killed {
    Killed::spawn(
        sim_command(server, tls)
            .args(["--count", &count.to_string(), "--seed", "metrics"])
            .args(["--stats-ms", &stats_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn scrape(server: &TestServer, query: &str) -> String {
    let (status, body) = server.curl(&[], &format!("/metrics{query}"));
    assert_eq!(status, 200, "{body}");
    body
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_need_the_api_auth_unless_told_otherwise() {
    let server = TestServer::start(&[], &[]);
    let (status, _) = server.curl_as(None, &[], "/metrics");
    assert_eq!(status, 401);
    let (status, _) = server.curl_as(Some("admin:wrong"), &[], "/metrics");
    assert_eq!(status, 401);
    let _ = server.curl(&[], "/v1/info");
    let (status, head) = server.curl(&["-D", "-", "-o", "/dev/null"], "/metrics");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let text = scrape(&server, "");
    assert!(text.contains("jetpack_build_info{version="), "{text}");
    // Requests by route template; failures of auth by reason.
    assert!(
        sample(
            &text,
            r#"jetpack_api_requests_total{route="/v1/info",method="GET",status="200"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"jetpack_api_auth_failures_total{reason="missing"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"jetpack_api_auth_failures_total{reason="refused"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "process_resident_memory_bytes").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    let (status, open) = server.curl(
        &["-H", "Accept: application/openmetrics-text; version=1.0.0"],
        "/metrics",
    );
    assert_eq!(status, 200);
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    let (status, _) = server.curl(&[], "/metrics?instances=some");
    assert_eq!(status, 400);

    let side = free_port();
    let listen = format!("metrics.listen=127.0.0.1:{side}");
    let open = TestServer::start(&["metrics.auth=none", &listen], &[]);
    let (status, text) = open.curl_as(None, &[], "/metrics");
    assert_eq!(status, 200, "{text}");
    let (status, _) = open.curl_as(None, &[], "/v1/info");
    assert_eq!(status, 401, "only /metrics is open");
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{side}/metrics"))
        .output()
        .unwrap();
    let (status, text) = common::server::curl_result(out);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("jetpack_instances{status=\"connected\"} 0"),
        "{text}"
    );
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{side}/v1/info"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

#[test]
fn promtool_passes_with_a_fleet_and_hostile_stats() {
    if !common::tool("promtool") {
        return;
    }
    let server = TestServer::start(&["metrics.instances.max=3"], &["--nouplinktls"]);
    let _sims = sim(&server, false, 4, 500);
    until(60, "4 docked sims", || {
        let text = scrape(&server, "");
        (sample(&text, r#"jetpack_instances{status="connected"}"#) == Some(4.0)).then_some(())
    });
    // A raw instance sends a hostile STATS document: names with quotes
    // and newlines, 10,000 keys, and deep nesting.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = uplink_token(&server);
    let raw = rt.block_on(RawInstance::dock(
        server.uplink_port,
        "00000000000000000000000000000bad",
        &key,
        false,
    ));
    let mut entries: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"name":"evil\"}} 1\n# TYPE x counter\n{i}","value":{i}}}"#))
        .collect();
    let deep = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
    entries.push(format!(r#"{{"name":"deep","value":{deep}}}"#));
    let doc = format!("[{}]", entries.join(","));
    rt.block_on(raw.transport(Code::Stats, doc.as_bytes()));
    let text = until(30, "the hostile STATS counted", || {
        let text = scrape(&server, "?instances=all");
        (sample(&text, r#"jetpack_instance_stats_dropped{reason="keys"}"#).unwrap_or(0.0) > 0.0)
            .then_some(text)
    });
    promtool_check(&text);
    assert_eq!(
        sample(&text, r#"jetpack_instance_stats_dropped{reason="keys"}"#),
        Some(9_500.0)
    );
    assert_eq!(
        sample(&text, r#"jetpack_instance_stats_dropped{reason="depth"}"#),
        Some(1.0)
    );
    let stats = text
        .lines()
        .filter(|l| {
            l.starts_with("jetpack_instance_stat{instance_id=\"00000000000000000000000000000bad\"")
        })
        .count();
    assert_eq!(stats, 500, "capped per instance");
    assert!(text.len() < 4 << 20, "bounded: {} bytes", text.len());
    assert!(
        sample(
            &text,
            r#"jetpack_hangar_transports_received_total{code="stats"}"#
        )
        .unwrap_or(0.0)
            >= 5.0,
        "{text}"
    );
    assert!(sample(&text, "jetpack_hangar_docks_total").unwrap_or(0.0) >= 5.0);
    // The default cap: 3 of 5, and the exposition says so.
    let capped = scrape(&server, "");
    promtool_check(&capped);
    assert_eq!(
        capped
            .lines()
            .filter(|l| l.starts_with("jetpack_instance_up{"))
            .count(),
        3
    );
    assert_eq!(
        sample(&capped, "jetpack_metrics_instances_left_out"),
        Some(2.0)
    );
    assert!(
        capped.contains("# jetpack: 2 instance(s) left out"),
        "{capped}"
    );
    let none = scrape(&server, "?instances=none");
    assert_eq!(
        none.lines()
            .filter(|l| l.starts_with("jetpack_instance_up{"))
            .count(),
        0
    );
    promtool_check(&none);
    drop(raw);
}

/// Prometheus's answer to an instant query: (labels, value) of each series.
fn query(port: u16, q: &str) -> Vec<(Value, f64)> {
    let out = Command::new("curl")
        .args(["-sS", "-G", "--data-urlencode", &format!("query={q}")])
        .arg(format!("http://127.0.0.1:{port}/api/v1/query"))
        .output()
        .unwrap();
    let v: Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| Some((s["metric"].clone(), s["value"][1].as_str()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn prometheus_scrapes_the_fleet() {
    if !common::tool("prometheus") {
        return;
    }
    let server = TestServer::start(&["metrics.auth=none"], &[]);
    let _sims = sim(&server, true, 3, 300);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: jetpack\n    scheme: https\n    tls_config:\n      insecure_skip_verify: true\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            server.port
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus"),
    );
    until(90, "Prometheus sees 3 connected instances", || {
        let r = query(port, r#"jetpack_instances{status="connected"}"#);
        (r.first().map(|s| s.1) == Some(3.0)).then_some(())
    });
    // A stat that changes with every STATS the sims send.
    let (labels, first) = until(30, "an instance stat series", || {
        query(port, r#"jetpack_instance_stat{stat="monotonic_ts_ms"}"#)
            .into_iter()
            .next()
    });
    let id = labels["instance_id"].as_str().unwrap().to_string();
    until(30, "the stat series changes", || {
        let q = format!(r#"jetpack_instance_stat{{stat="monotonic_ts_ms",instance_id="{id}"}}"#);
        query(port, &q).first().filter(|s| s.1 != first).map(|_| ())
    });
    let up = query(port, "sum(jetpack_instance_up)");
    assert_eq!(up.first().map(|s| s.1), Some(3.0));
}
