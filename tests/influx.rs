//! The InfluxDB reporter against a real InfluxDB 1.x (Debian's `influxdb`,
//! `influxd` on loopback with its own ports and directories, databases
//! created by the test with Debian's `influx` CLI, as Mothership's users
//! create them): `jetpack serve --metricsreporter influxdb` with a
//! `jetpack sim` fleet sending STATS; the points arrive in
//! `instance_stats` round after round, the server's figures in
//! `mothership`; killing influxd leaves the hangar and the API serving and
//! the dropped-points counter rising; restarting it resumes the writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../benches/support/influxd.rs"]
mod influxd;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::server::{free_port, TestServer};
use common::sims::{sim_command, Killed};
use common::until;
use influxd::Influxd;

fn sim(server: &TestServer, count: usize) -> Killed {
    Killed::spawn(
        sim_command(server, false)
            .args(["--count", &count.to_string(), "--seed", "influx"])
            .args(["--stats-ms", "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

const STATS_COUNT: &str = "SELECT count(*) FROM includeos_stats";
const FLEET: usize = 3;

#[test]
fn stats_and_figures_reach_influxdb_and_survive_its_outage() {
    if !common::tool("influxd") || !common::tool("influx") {
        return;
    }
    let mut influx = Influxd::start(free_port(), free_port());
    influx.create_databases(&["instance_stats", "mothership"]);
    // The variables Mothership's users set; serve inherits them. This
    // binary has one test, so nothing else reads the environment.
    std::env::set_var("INFLUXDB_ADDR", format!("http://127.0.0.1:{}", influx.port));
    std::env::set_var("INFLUXDB_USERNAME", "");
    std::env::set_var("INFLUXDB_PASSWORD", "");
    let server = TestServer::start(
        &["metrics.interval=1"],
        &["--nouplinktls", "--metricsreporter", "influxdb"],
    );
    let _fleet = sim(&server, FLEET);
    let connected = "jetpack_instances{status=\"connected\"}";
    until(30, "the sims dock", || {
        server.metric(connected).filter(|n| *n == FLEET as f64)
    });

    // Every STATS round adds points: the count grows, and grows again.
    let mut last = 0.0;
    for round in 0..3 {
        let what = format!(
            "instance_stats grows (round {round}) past {last}; query: {:?}; serve's log: {}",
            influx.query("instance_stats", STATS_COUNT),
            server.log()
        );
        last = until(30, &what, || {
            influx
                .number("instance_stats", STATS_COUNT)
                .filter(|n| *n > last)
        });
    }
    let tagged = influx
        .query(
            "instance_stats",
            "SHOW TAG VALUES FROM includeos_stats WITH KEY = instance_id",
        )
        .expect("tag values");
    assert_eq!(
        tagged["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len),
        Some(FLEET),
        "one instance_id per sim: {tagged}"
    );

    // The server's own figures, every metrics.interval.
    until(30, "mothership has the fleet's count", || {
        influx
            .number(
                "mothership",
                "SELECT last(value) FROM jetpack_instances WHERE status = 'connected'",
            )
            .filter(|n| *n == FLEET as f64)
    });
    until(30, "mothership has counters", || {
        influx.number(
            "mothership",
            "SELECT count(value) FROM jetpack_hangar_docks_total",
        )
    });

    // InfluxDB goes away: the hangar and the API do not notice.
    let dropped = "jetpack_influx_dropped_points_total";
    let before = server
        .metric(dropped)
        .expect("the dropped counter on /metrics");
    influx.kill();
    until(30, "points are dropped while InfluxDB is down", || {
        server
            .metric(dropped)
            .filter(|n| *n > before + FLEET as f64)
    });
    let asked = Instant::now();
    let (status, _) = server.json(&[], "/v1/instances");
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the API took {:?} with InfluxDB down",
        asked.elapsed()
    );
    assert_eq!(server.metric(connected), Some(FLEET as f64));
    assert!(
        server.log().contains("point(s) dropped"),
        "the drops are logged: {}",
        server.log()
    );

    // Back, with the same data and port: the writes resume.
    influx.spawn();
    let at_restart = influx
        .number("instance_stats", STATS_COUNT)
        .unwrap_or_else(|| panic!("the data survived: {}", influx.log()));
    until(30, "the writes resume", || {
        influx
            .number("instance_stats", STATS_COUNT)
            .filter(|n| *n > at_restart)
    });
    let written = server
        .metric("jetpack_influx_written_points_total")
        .expect("written");
    assert!(written > 0.0);
    // Logged as at most one line per interval, never with the password.
    let warnings = server.log().matches("point(s) dropped").count();
    assert!(warnings < 60, "{warnings} warnings");
}
