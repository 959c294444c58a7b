//! One fleet over three jetpack hosts on one PostgreSQL (issue 21): 3,000
//! simulated instances dock spread over the three hangars, and every
//! host's API lists all of them with the right statuses and holders; what
//! only the holder can answer (stats, a deploy, the deploy job's log) is
//! asked of another host and answered; a host killed with 1,000 docked
//! loses them to the others, which the fleet shows connected again with
//! nothing lost from the store, and a job it was running fails with the
//! reason. The failover time is printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::Instant;

use common::server::{fake_elf, TestServer};
use common::sims::{sim_id, uplink_token, Killed};
use common::JETPACK;
use serde_json::Value;

const COUNT: u64 = 3000;

fn summary(server: &TestServer) -> Value {
    let (status, s) = server.json(&[], "/v1/instances/summary");
    assert_eq!(status, 200, "{s}");
    s
}

fn connected(server: &TestServer) -> u64 {
    summary(server)["connected"].as_u64().unwrap_or(0)
}

/// How many instances `server` lists connected with their dock at `host`.
fn held(server: &TestServer, host: &str) -> u64 {
    let (status, text) = server.curl(
        &["-i"],
        &format!("/v1/instances?status=connected&host={host}&limit=1"),
    );
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-total-count:")
                .map(|n| n.trim().to_string())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no X-Total-Count: {text}"))
}

fn instance(server: &TestServer, id: &str) -> Value {
    let (status, v) = server.json(&[], &format!("/v1/instances/{id}"));
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn three_hosts_serve_one_fleet_and_survive_one_death() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database();
    let mut hosts = common::fleet::hosts(&db, 3, &["--nouplinktls"]);
    let token = uplink_token(&hosts[0]);
    let seed = format!("spread-{}", std::process::id());

    // Instance i docks first at hangar i mod 3, and at the next one when
    // it loses its dock.
    let mut sim = std::process::Command::new(JETPACK);
    sim.args([
        "sim",
        "--token",
        &token,
        "--seed",
        &seed,
        "--report-ms",
        "0",
    ])
    .args(["--count", &COUNT.to_string()])
    .args(["--source", "127.77.0.0/20"])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for h in &hosts {
        sim.args(["--url", &format!("http://127.0.0.1:{}", h.uplink_port)]);
    }
    let _sim = Killed::spawn(&mut sim);

    // Every host lists the whole fleet connected, and who holds what.
    for h in &hosts {
        common::until(180, "3,000 connected on every host", || {
            (connected(h) == COUNT).then_some(())
        });
    }
    // Spread over the three (instance i tries hangar i mod 3 first; one
    // whose first try failed under load docked at the next), and every
    // host sees the same split.
    let names = ["h0", "h1", "h2"];
    let split: Vec<u64> = names.iter().map(|n| held(&hosts[0], n)).collect();
    assert_eq!(split.iter().sum::<u64>(), COUNT, "{split:?}");
    assert!(split.iter().all(|&n| n >= COUNT / 4), "{split:?}");
    for h in &hosts[1..] {
        common::until(10, "the same split seen from every host", || {
            let seen: Vec<u64> = names.iter().map(|n| held(h, n)).collect();
            (seen == split).then_some(())
        });
    }
    // An instance h2 holds, as every host sees it.
    let (_, page) = hosts[0].json(&[], "/v1/instances?host=h2&status=connected&limit=1");
    let on_h2 = page[0]["id"]
        .as_str()
        .expect("an instance at h2")
        .to_string();
    for h in &hosts {
        let v = instance(h, &on_h2);
        assert_eq!(v["status"], "connected", "{v}");
        assert_eq!(v["host"], "h2", "{v}");
    }

    // What only h2 can answer, asked of h0.
    let (status, stats) = hosts[0].json(&["-X", "POST"], &format!("/v1/instances/{on_h2}/stats"));
    assert_eq!(status, 200, "{stats}");
    let (status, _) = hosts[0].curl(&[], &format!("/v1/instances/{on_h2}/history"));
    assert_eq!(status, 200);

    // A deploy asked of h0, of an image uploaded to h0, to an instance
    // docked at h2: h2 runs it, fetching the image from h0.
    let elf = hosts[0].dir.path().join("spread.elf");
    fake_elf(&elf, 300_000, "spread");
    let (status, image) = hosts[0].json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", elf.display()),
        ],
        "/v1/images?name=spread",
    );
    assert_eq!(status, 201, "{image}");
    let image = image["id"].as_str().expect("an image id").to_string();
    let (status, job) = hosts[0].json(
        &["-X", "POST"],
        &format!("/v1/instances/{on_h2}/deploy/{image}?force=true&timeout=30"),
    );
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().expect("a job id").to_string();
    let job = common::until(90, "the deploy job ends", || {
        let (_, j) = hosts[1].json(&[], &format!("/v1/jobs/{job_id}"));
        matches!(j["state"].as_str(), Some("succeeded" | "failed")).then_some(j)
    });
    assert_eq!(job["state"], "succeeded", "{job}\n{}", hosts[2].log());
    let (status, log) = hosts[0].curl(&[], &format!("/v1/jobs/{job_id}/log"));
    assert_eq!(status, 200, "{log}");
    assert!(!log.trim().is_empty(), "the job's log, from h2");
    for h in &hosts {
        common::until(30, "the new image shown everywhere", || {
            (instance(h, &on_h2)["imageId"] == image.as_str()).then_some(())
        });
    }

    // A deploy left running at h2 (its instance acks and never returns):
    // when h2 dies, the job fails with the reason, not stuck `running`.
    let stuck_seed = format!("{seed}-stuck");
    let stuck = sim_id(&stuck_seed, 0);
    let _stuck_sim = Killed::spawn(
        std::process::Command::new(JETPACK)
            .args([
                "sim",
                "--token",
                &token,
                "--seed",
                &stuck_seed,
                "--report-ms",
                "0",
            ])
            .args(["--count", "1", "--no-return"])
            .args([
                "--url",
                &format!("http://127.0.0.1:{}", hosts[2].uplink_port),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // Each host learns of the others' docks within half a second.
    for h in &hosts[..2] {
        common::until(30, "the stuck instance connected", || {
            let (status, v) = h.json(&[], &format!("/v1/instances/{stuck}"));
            (status == 200 && v["status"] == "connected" && v["host"] == "h2").then_some(())
        });
    }
    let (status, job) = hosts[1].json(
        &["-X", "POST"],
        &format!("/v1/instances/{stuck}/deploy/{image}?force=true&timeout=300"),
    );
    assert_eq!(status, 202, "{job}");
    let stuck_job = job["id"].as_str().expect("a job id").to_string();
    common::until(30, "the stuck deploy running", || {
        let (_, j) = hosts[0].json(&[], &format!("/v1/jobs/{stuck_job}"));
        (j["state"] == "running").then_some(())
    });

    // h2 dies with its 1,000: they re-dock at the others at once (an
    // instance that did not would show `unknown` once h2 is down: the
    // unit tests of hangar/fleet/spread.rs), and the fleet shows them
    // connected again, held by h0 or h1, none lost.
    let killed = Instant::now();
    hosts[2].kill();
    common::until(120, "3,000 connected again at h0 and h1", || {
        hosts[..2]
            .iter()
            .all(|h| held(h, "h0") + held(h, "h1") == COUNT)
            .then_some(())
    });
    let failover = killed.elapsed();
    let job = common::until(30, "the stuck deploy failed", || {
        let (_, j) = hosts[0].json(&[], &format!("/v1/jobs/{stuck_job}"));
        (j["state"] == "failed").then_some(j)
    });
    assert!(
        job["error"]
            .as_str()
            .unwrap_or("")
            .contains("host h2 went down"),
        "{job}"
    );
    println!(
        "failover: {:.1} s from kill -9 of a host with ~1,000 docked to all connected elsewhere",
        failover.as_secs_f64()
    );
    for h in &hosts[..2] {
        common::until(30, "h2 down", || {
            common::fleet::statuses(h)
                .iter()
                .any(|(n, s, _)| n == "h2" && s == "down")
                .then_some(())
        });
        let s = summary(h);
        assert_eq!(s["total"].as_u64(), Some(COUNT + 1), "{s}");
        let v = instance(h, &on_h2);
        assert!(matches!(v["host"].as_str(), Some("h0" | "h1")), "{v}");
    }
    let stored = db
        .psql("SELECT count(*) FROM instances")
        .expect("counting the stored instances");
    assert_eq!(stored.trim(), (COUNT + 1).to_string());

    // Servers go before their database.
    hosts.clear();
    drop(db);
}
