//! One fleet over three jetpack hosts on one PostgreSQL (issue 21): three
//! release `jetpack serve` processes (TLS and auth on) and `jetpack sim`
//! processes whose instances are spread over the three hangars (`--url`
//! three times: instance i docks at hangar i mod 3), STATS every 5 s.
//! Measured:
//!
//! - docking: instances/s until host h0's API counts all N connected;
//! - STATS visibility, as benches/hangar.rs measures it on one host (the
//!   time from the `rtc_ts_ms` an instance puts in a STATS to the first API
//!   answer showing it), for 21 instances polled every 50 ms through h0,
//!   two thirds of them held by h1 and h2 (the request is sent on), and
//!   in the same rounds through each one's own holder (no hop): p50/p99,
//!   and their ratio;
//! - failover: h2 killed (SIGKILL), the time until h0 and h1 count all N
//!   connected at h0 or h1 again (the sims move on when their dock ends).
//!
//! JETPACK_BENCH_INSTANCES (19,000), JETPACK_BENCH_HOLD_S (60).
//! `cargo bench --bench fleet` measures; `cargo test` runs it tiny.
//! Targets are printed, never enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/proc.rs"]
mod proc;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use measure::{env_or, free_port, percentile};

use proc::Proc;

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
const SEED: &str = "fleet-bench";
/// Instances per sim process.
const SIM_SHARE: usize = 10_000;

fn sim_id(index: usize) -> String {
    hex::encode(Sha1::digest(format!("{SEED}-{index}").as_bytes()))[..32].to_string()
}

/// One host: its server and what reaches its API.
struct Host {
    server: serve::Server,
    hangar_port: u16,
}

impl Host {
    fn api(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.port)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into()
}

fn get(agent: &ureq::Agent, host: &Host, path: &str) -> Option<(serde_json::Value, Option<u64>)> {
    let mut response = agent
        .get(host.api(path))
        .header(
            "Authorization",
            host.server
                .authorization
                .trim_start_matches("Authorization: ")
                .trim(),
        )
        .call()
        .ok()?;
    let total = response
        .headers()
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.body_mut().read_to_string().ok()?;
    Some((serde_json::from_str(&text).ok()?, total))
}

/// Instances `seen_from` lists connected with their dock at `holder`.
fn held(agent: &ureq::Agent, seen_from: &Host, holder: &str) -> u64 {
    get(
        agent,
        seen_from,
        &format!("/v1/instances?status=connected&host={holder}&limit=1"),
    )
    .and_then(|(_, total)| total)
    .unwrap_or(0)
}

/// The `rtc_ts_ms` of the STATS `host` shows for `id`, and now (ms).
fn rtc(agent: &ureq::Agent, host: &Host, id: &str) -> Option<(i64, i64)> {
    let (v, _) = get(agent, host, &format!("/v1/instances/{id}/stats"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    let rtc = v["latest"]["stats"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "rtc_ts_ms")?["value"]
        .as_i64()?;
    Some((rtc, now))
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let count: usize = if bench {
        env_or("JETPACK_BENCH_INSTANCES", 19_000)
    } else {
        60
    };
    let hold = Duration::from_secs(if bench {
        env_or("JETPACK_BENCH_HOLD_S", 60)
    } else {
        6
    });
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        1 << 20,
        1 << 20,
    );
    let pg = postgres::Postgres::find();
    let db = format!("jetpack_fleet_bench_{}", std::process::id());
    let store = pg.database(&db);
    // Each may end up holding all of them (the failover).
    let per_host = (count + 1000).to_string();
    let mut hosts: Vec<Host> = (0..3)
        .map(|i| {
            let bench = serve::Bench {
                name: "fleet",
                tag: ["jpf0", "jpf1", "jpf2"][i],
            };
            let hangar_port = free_port();
            let mut options: Vec<String> = store.clone();
            options.extend([
                format!("host.name=h{i}"),
                "host.heartbeat=1".into(),
                "host.down=3".into(),
                format!("uplink.port={hangar_port}"),
                format!("uplink.maxconns={per_host}"),
            ]);
            let mut flags: Vec<&str> = Vec::new();
            for o in &options {
                flags.extend(["-o", o.as_str()]);
            }
            flags.push("--nouplinktls");
            Host {
                server: serve::Server::jetpack(&bench, ["h0", "h1", "h2"][i], &flags),
                hangar_port,
            }
        })
        .collect();
    let agent = agent();
    let token = loop {
        if let Some((v, _)) = get(&agent, &hosts[0], "/v1/uplinks") {
            break v[0]["token"]
                .as_str()
                .expect("the default uplink")
                .to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let started = Instant::now();
    let mut sims = Vec::new();
    for share in 0..count.div_ceil(SIM_SHARE) {
        let first = share * SIM_SHARE;
        let n = SIM_SHARE.min(count - first);
        let mut sim = Command::new(JETPACK);
        sim.args(["sim", "--token", &token, "--seed", SEED])
            .args(["--count", &n.to_string(), "--first", &first.to_string()])
            .args(["--stats-ms", "5000", "--report-ms", "0"])
            .args(["--source", &format!("127.{}.0.0/16", 101 + share)]);
        for h in &hosts {
            sim.args(["--url", &format!("http://127.0.0.1:{}", h.hangar_port)]);
        }
        sims.push(Proc(
            sim.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting jetpack sim"),
        ));
    }
    let limit = Duration::from_secs(120 + count as u64 / 50);
    loop {
        let connected = get(&agent, &hosts[0], "/v1/instances/summary")
            .and_then(|(s, _)| s["connected"].as_u64())
            .unwrap_or(0);
        if connected as usize >= count {
            break;
        }
        assert!(started.elapsed() < limit, "only {connected}/{count} docked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let docked = started.elapsed();
    eprintln!("{count} docked over three hosts in {docked:.1?}; holding {hold:?}");

    // STATS to the API: through h0 (sent on for those h1 and h2 hold) and
    // through each instance's holder, in the same rounds.
    let sampled: Vec<(String, usize)> = (0..21)
        .map(|k| {
            let i = k * (count / 21);
            (sim_id(i), i % 3)
        })
        .collect();
    let mut last: Vec<[Option<i64>; 2]> = vec![[None; 2]; sampled.len()];
    let mut latencies: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let hold_start = Instant::now();
    while hold_start.elapsed() < hold {
        for (k, (id, holder)) in sampled.iter().enumerate() {
            for (way, via) in [&hosts[0], &hosts[*holder]].into_iter().enumerate() {
                let Some((rtc, now)) = rtc(&agent, via, id) else {
                    continue;
                };
                if last[k][way].is_some_and(|prev| prev != rtc) {
                    latencies[way].push((now - rtc) as f64);
                }
                last[k][way] = Some(rtc);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for l in &mut latencies {
        l.sort_by(f64::total_cmp);
    }

    // Failover: h2 dies; its third docks at h0 and h1.
    let killed = Instant::now();
    let h2 = hosts.pop().expect("three hosts");
    let pid = nix::unistd::Pid::from_raw(h2.server.pid() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let failover = loop {
        let moved = hosts
            .iter()
            .all(|h| held(&agent, h, "h0") + held(&agent, h, "h1") >= count as u64);
        if moved {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(300),
            "h2's instances did not dock elsewhere"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(h2);

    println!(
        "\none fleet over three hosts on PostgreSQL: {count} instances, TLS and auth on the APIs"
    );
    println!(
        "docking: {:.0} instances/s ({docked:.1?} for all)",
        count as f64 / docked.as_secs_f64()
    );
    let p = |l: &Vec<f64>, q: f64| percentile(l, q).unwrap_or(f64::NAN);
    println!(
        "{:<44} {:>8} {:>8} {:>8}",
        "STATS to the API (samples)", "p50 ms", "p99 ms", "n"
    );
    for (label, l) in [
        ("through the holder's own API", &latencies[1]),
        ("through h0 (2/3 sent on to h1, h2)", &latencies[0]),
    ] {
        println!(
            "{label:<44} {:>8.0} {:>8.0} {:>8}",
            p(l, 0.5),
            p(l, 0.99),
            l.len()
        );
    }
    println!(
        "through h0 / through the holder: p50 {:.2}x, p99 {:.2}x",
        p(&latencies[0], 0.5) / p(&latencies[1], 0.5),
        p(&latencies[0], 0.99) / p(&latencies[1], 0.99)
    );
    println!(
        "failover: {:.1} s from SIGKILL of h2 (~{} docked) to all {count} connected at h0 or h1",
        failover.as_secs_f64(),
        count / 3
    );
    drop(sims);
    drop(hosts);
    drop(pg);
}
