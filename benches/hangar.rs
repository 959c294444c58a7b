//! The hangar under a fleet: the real `jetpack serve` (release build) and
//! `jetpack sim` as separate processes on loopback, on this machine's two
//! cores. N simulated instances (JETPACK_BENCH_INSTANCES, 20,000) dock from
//! distinct loopback source addresses, each sending STATS every 5 s and a
//! LOG line every second, and are held for JETPACK_BENCH_HOLD_S (300 s).
//! Measured:
//!
//! - docking rate: instances/s from the sim's start until the API's
//!   summary counts all N connected;
//! - disconnects during the hold (the sim's count and the server's
//!   summary), which must be none;
//! - server RSS (VmRSS sampled each second and VmHWM), idle before the
//!   fleet as the baseline, and memory per docked instance;
//! - STATS visibility: for 20 instances polled through the API every
//!   50 ms, the time from the `rtc_ts_ms` the instance put in a STATS to
//!   the first API answer showing that STATS (the poll interval bounds the
//!   resolution), p50/p99.
//!
//! - a `/metrics` scrape through the API with the fleet docked: the
//!   default instance cap and `?instances=all`, time and size.
//!
//! JETPACK_BENCH_INFLUX=1 runs the server with the InfluxDB reporter on
//! (`--metricsreporter influxdb`, a private influxd on loopback), so its
//! figures can be set against a run without it; =2 aims the reporter at a
//! port nobody listens on (its own cost, without influxd on the cores).
//! JETPACK_BENCH_TLS=1 runs the hangar with TLS (the sim then speaks TLS
//! 1.2 AES256-SHA as an instance does). `cargo test` (no `--bench`) runs it
//! tiny (50 instances, 3 s) as a check that it works. Targets are printed,
//! never enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "support/influxd.rs"]
mod influxd;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[path = "support/proc.rs"]
mod proc;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use measure::{cpu_seconds, env_or, free_port, memory_kib, percentile};

use proc::Proc;

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
/// Names the temporary folder, bridge and jails of this bench's server.
const SERVE: serve::Bench = serve::Bench {
    name: "hangar",
    tag: "jph",
};
const SEED: &str = "bench";
/// Instances per sim process.
const SIM_SHARE: usize = 10_000;

/// (VmRSS, VmHWM) of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let kib = |field: &str| memory_kib(pid, field).unwrap_or(0);
    (kib("VmRSS"), kib("VmHWM"))
}

fn get(agent: &ureq::Agent, url: &str) -> Option<serde_json::Value> {
    let mut response = agent.get(url).call().ok()?;
    let text = response.body_mut().read_to_string().ok()?;
    serde_json::from_str(&text).ok()
}

fn sim_id(index: usize) -> String {
    hex::encode(Sha1::digest(format!("{SEED}-{index}").as_bytes()))[..32].to_string()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let mut count: usize = if bench {
        env_or("JETPACK_BENCH_INSTANCES", 20_000)
    } else {
        50
    };
    // The server holds a descriptor per docked instance: where the hard
    // limit cannot be raised (no CAP_SYS_RESOURCE), fewer fit.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let room = (hard as usize).saturating_sub(100);
        if count > room
            && nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                1 << 20,
                1 << 20,
            )
            .is_err()
        {
            eprintln!("the descriptor limit is {hard} and cannot be raised here: {room} instances, not {count}");
            count = room;
        }
    }
    let hold = Duration::from_secs(if bench {
        env_or("JETPACK_BENCH_HOLD_S", 300)
    } else {
        3
    });
    let tls = env_or("JETPACK_BENCH_TLS", 0) == 1;
    // 1: a private influxd; 2: the reporter aimed at a port nobody
    // listens on, for the reporter's own cost without influxd's.
    let reporter = env_or("JETPACK_BENCH_INFLUX", 0);
    let influx = (reporter == 1).then(|| {
        let influx = influxd::Influxd::start(free_port(), free_port());
        influx.create_databases(&["instance_stats", "mothership"]);
        influx
    });
    let influx_port = influx.as_ref().map_or_else(free_port, |i| i.port);

    let (api_port, hangar_port) = (free_port(), free_port());
    let (dir, mut serve) = serve::command(&SERVE, api_port, hangar_port);
    // The descriptors to the hangar: `auto` would keep a quarter for the
    // API, which this bench hardly uses, and fewer instances would fit.
    let hangar_conns = format!("uplink.maxconns={count}");
    serve.args(["-o", &hangar_conns, "-o", "server.maxconns=32"]);
    serve.args(["--noservertls", "--serverauth", "none"]);
    if !tls {
        serve.arg("--nouplinktls");
    }
    if reporter > 0 {
        serve
            .args(["--metricsreporter", "influxdb"])
            .env("INFLUXDB_ADDR", format!("http://127.0.0.1:{influx_port}"))
            .env("INFLUXDB_USERNAME", "")
            .env("INFLUXDB_PASSWORD", "");
    }
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("server log");
    let server = Proc(
        serve
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting jetpack serve"),
    );
    let pid = server.0.id();
    let api = format!("http://127.0.0.1:{api_port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let started = Instant::now();
    let uplinks = loop {
        if let Some(v) = get(&agent, &format!("{api}/v1/uplinks")) {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let token = uplinks[0]["token"]
        .as_str()
        .expect("the default uplink")
        .to_string();
    std::thread::sleep(Duration::from_millis(500));
    let (idle_rss, _) = memory(pid);

    let scheme = if tls { "https" } else { "http" };
    // Processes of at most SIM_SHARE instances: each instance is a
    // descriptor in the sim too, and one process may hold only so many.
    let shares = count.div_ceil(SIM_SHARE);
    let sim_start = Instant::now();
    let sim_lines: Arc<Mutex<Vec<Vec<String>>>> = Arc::new(Mutex::new(vec![Vec::new(); shares]));
    let mut sims = Vec::new();
    for share in 0..shares {
        let first = share * SIM_SHARE;
        let n = SIM_SHARE.min(count - first);
        let mut sim = Command::new(JETPACK);
        sim.args([
            "sim",
            "--url",
            &format!("{scheme}://127.0.0.1:{hangar_port}"),
            "--token",
            &token,
        ])
        .args([
            "--count",
            &n.to_string(),
            "--first",
            &first.to_string(),
            "--seed",
            SEED,
        ])
        .args(["--stats-ms", "5000", "--log-ms", "1000"])
        .args(["--source", &format!("127.{}.0.0/16", 1 + share)])
        .args(["--report-ms", "1000"]);
        if tls {
            sim.arg("--tls");
        }
        let mut sim = Proc(
            sim.stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("starting jetpack sim"),
        );
        let out = sim.0.stdout.take().expect("sim stdout");
        let lines = sim_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap_or_else(|p| p.into_inner())[share].push(line);
            }
        });
        sims.push(sim);
    }
    let sim_pids: Vec<u32> = sims.iter().map(|s| s.0.id()).collect();

    // Docking: until the API counts every instance connected.
    let summary = |agent: &ureq::Agent| get(agent, &format!("{api}/v1/instances/summary"));
    let dock_limit = Duration::from_secs(60 + count as u64 / 50);
    let docked_after = loop {
        let s = summary(&agent);
        let connected = s
            .as_ref()
            .and_then(|s| s["connected"].as_u64())
            .unwrap_or(0);
        if connected as usize >= count {
            break sim_start.elapsed();
        }
        if sim_start.elapsed() >= dock_limit {
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "only {connected}/{count} docked after {dock_limit:?}: {:?}\nserve.log (last lines, newest first):\n{}",
                sim_lines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|l| l.last().cloned())
                    .collect::<Vec<_>>(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (docked_rss, _) = memory(pid);
    eprintln!(
        "{count} docked in {:.1}s; holding {}s",
        docked_after.as_secs_f64(),
        hold.as_secs()
    );

    // Hold: sample memory, watch disconnects, time STATS to the API.
    let sims_cpu = || sim_pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let cpu_before = (cpu_seconds(pid), sims_cpu());
    let sampled: Vec<String> = (0..20).map(|i| sim_id(i * count / 20)).collect();
    let mut last_seen: Vec<Option<i64>> = vec![None; sampled.len()];
    let mut latencies_ms = Vec::new();
    let mut max_rss = docked_rss;
    let mut min_connected = count as u64;
    let hold_start = Instant::now();
    let mut next_summary = Instant::now();
    while hold_start.elapsed() < hold {
        for (i, id) in sampled.iter().enumerate() {
            let Some(v) = get(&agent, &format!("{api}/v1/instances/{id}/stats")) else {
                continue;
            };
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let rtc = v["latest"]["stats"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == "rtc_ts_ms"))
                .and_then(|s| s["value"].as_i64());
            if let Some(rtc) = rtc {
                if last_seen[i].is_some_and(|prev| prev != rtc) {
                    latencies_ms.push((now_ms - rtc) as f64);
                }
                last_seen[i] = Some(rtc);
            }
        }
        if Instant::now() >= next_summary {
            next_summary += Duration::from_secs(1);
            max_rss = max_rss.max(memory(pid).0);
            if let Some(s) = summary(&agent) {
                min_connected = min_connected.min(s["connected"].as_u64().unwrap_or(0));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = (cpu_seconds(pid) - cpu_before.0, sims_cpu() - cpu_before.1);
    let (end_rss, hwm) = memory(pid);
    let sim_rss: u64 = sim_pids.iter().map(|p| memory(*p).0).sum();
    let end = summary(&agent).unwrap_or_default();
    let scrapes: Vec<(&str, Duration, usize)> = ["", "?instances=all"]
        .into_iter()
        .map(|query| {
            let asked = Instant::now();
            let body = agent
                .get(format!("{api}/metrics{query}"))
                .call()
                .ok()
                .and_then(|mut r| {
                    r.body_mut()
                        .with_config()
                        .limit(1 << 30)
                        .read_to_string()
                        .ok()
                })
                .unwrap_or_default();
            (query, asked.elapsed(), body.len())
        })
        .collect();
    let figures = agent
        .get(format!("{api}/metrics?instances=none"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    let figure = |name: &str| {
        figures
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("-")
            .to_string()
    };
    drop(sims);
    let lines = sim_lines.lock().unwrap().clone();
    let reports: Vec<String> = lines
        .iter()
        .map(|l| {
            l.iter()
                .rev()
                .find(|l| l.contains("disconnects="))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let sim_disconnects: u64 = reports
        .iter()
        .map(|r| {
            r.split_whitespace()
                .find_map(|kv| kv.strip_prefix("disconnects="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX / 4)
        })
        .sum();
    let sim_report = reports.join("\n     ");
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let per_instance = (max_rss.max(end_rss) as f64 - idle_rss as f64) / count as f64;
    let held = hold.as_secs_f64();

    println!(
        "\n### Hangar ({count} instances, hold {}s, hangar TLS {}, InfluxDB reporter {})\n",
        hold.as_secs(),
        if tls { "on" } else { "off" },
        match reporter {
            0 => "off",
            1 => "on",
            _ => "on, InfluxDB absent",
        }
    );
    println!("| measure | jetpack | baseline | target |");
    println!("|---|---|---|---|");
    println!(
        "| docking, 0 to {count} connected (API summary) | {:.1} s, {:.0} instances/s | | |",
        docked_after.as_secs_f64(),
        count as f64 / docked_after.as_secs_f64()
    );
    println!(
        "| disconnects during the hold | sim {sim_disconnects}, fewest connected {min_connected}/{count}, end: {} disconnected | | 0: {} |",
        end["disconnected"],
        if sim_disconnects == 0 && min_connected as usize == count { "met" } else { "**not met**" }
    );
    println!(
        "| server RSS, fleet docked | {:.0} MiB (VmHWM {:.0} MiB) | idle {:.1} MiB | < 1536 MiB: {} |",
        max_rss.max(end_rss) as f64 / 1024.0,
        hwm as f64 / 1024.0,
        idle_rss as f64 / 1024.0,
        if hwm < 1536 * 1024 { "met" } else { "**not met**" }
    );
    println!(
        "| memory per docked instance | {:.1} KiB | | <= 64 KiB: {} |",
        per_instance,
        if per_instance <= 64.0 {
            "met"
        } else {
            "**not met**"
        }
    );
    let p99 = percentile(&latencies_ms, 0.99).unwrap_or(f64::NAN);
    println!(
        "| STATS to API, {} samples (50 ms polls) | p50 {:.0} ms, p99 {:.0} ms | | p99 < 1000 ms: {} |",
        latencies_ms.len(),
        percentile(&latencies_ms, 0.5).unwrap_or(f64::NAN),
        p99,
        if p99 < 1000.0 { "met" } else { "**not met**" }
    );
    println!(
        "| CPU during the hold | server {:.0}% of a core, sim {:.0}% | | |",
        cpu.0 / held * 100.0,
        cpu.1 / held * 100.0
    );
    println!("| sim RSS | {:.0} MiB | | |", sim_rss as f64 / 1024.0);
    for (query, took, size) in &scrapes {
        println!(
            "| GET /metrics{query} | {:.0} ms, {:.1} MiB | | {} |",
            took.as_secs_f64() * 1000.0,
            *size as f64 / (1024.0 * 1024.0),
            if query.is_empty() {
                format!("< 200 ms: {}", measure::met(took.as_millis() < 200))
            } else {
                String::new()
            }
        );
    }
    if reporter > 0 {
        println!(
            "| InfluxDB points written, dropped | {}, {} | | |",
            figure("jetpack_influx_written_points_total"),
            figure("jetpack_influx_dropped_points_total")
        );
    }
    println!("\nsim: {sim_report}");
    if !bench {
        assert!(
            sim_disconnects == 0,
            "disconnects in the check run: {sim_report}"
        );
    }
}
