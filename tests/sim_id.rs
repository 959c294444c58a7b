//! `jetpack sim --id`: the simulated instance docks as the id it is given,
//! as a VM launched with a UUID docks as that UUID's id (the test VM of
//! images/linux-vm runs the sim this way), against a real server; and the
//! option's checks refuse what could not be such an id. Also `--url` given
//! several times: instances whose first URL is down fail over to the next.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{free_port, TestServer};
use common::sims::{sim_command, sim_id, uplink_token, Killed};
use common::JETPACK;

/// The id qemu -uuid 11223344-5566-7788-99aa-bbccddeeff00 gives.
const ID: &str = "443322116655887799aabbccddeeff00";

#[test]
fn a_sim_with_an_id_docks_as_that_id() {
    let server = TestServer::start(&[], &[]);
    let _sim = Killed::spawn(
        sim_command(&server, true)
            .args(["--count", "1", "--report-ms", "0", "--id", ID])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, v) = server.json(&[], &format!("/v1/instances/{ID}"));
        if code == 200 && v["status"] == "connected" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ID} never connected: {code} {v}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only that id: the seed's instance 0 did not dock beside it.
    let (status, list) = server.json(&[], "/v1/instances");
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .expect("a list of instances")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [ID], "{list}");
}

#[test]
fn a_bad_id_or_more_than_one_instance_is_refused() {
    for (args, wants) in [
        (vec!["--id", ID, "--count", "2"], "--count 1"),
        (
            vec!["--id", "443322116655887799AABBCCDDEEFF00"],
            "32 lower-case hex",
        ),
        (
            vec!["--id", "44332211-6655-8877-99aa-bbccddeeff00"],
            "32 lower-case hex",
        ),
        (vec!["--id", "4433"], "32 lower-case hex"),
    ] {
        // Refused before any connection: the URL leads nowhere.
        let out = Command::new(JETPACK)
            .args(["sim", "--url", "http://127.0.0.1:9", "--token", "t"])
            .args(&args)
            .output()
            .expect("running jetpack sim");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(wants), "{args:?}: {stderr}");
    }
}

#[test]
fn instances_fail_over_from_a_dead_url_to_a_live_one() {
    // One bad URL among several is refused, by name, before any connection.
    let out = Command::new(JETPACK)
        .args([
            "sim",
            "--url",
            "http://127.0.0.1:9",
            "--url",
            "http://127.0.0.1:0",
        ])
        .args(["--token", "t"])
        .output()
        .expect("running jetpack sim");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a port 0 URL was accepted");
    assert!(stderr.contains("\"http://127.0.0.1:0\""), "{stderr}");

    let server = TestServer::start(&[], &[]);
    // Nothing listens there: connections are refused.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let live = format!("https://127.0.0.1:{}", server.uplink_port);
    let dir = tempfile::tempdir().expect("tempdir");
    let err_path = dir.path().join("sim.err");
    let err = std::fs::File::create(&err_path).expect("creating sim.err");
    let seed = "sim-urls";
    let count = 4;
    let _sim = Killed::spawn(
        Command::new(JETPACK)
            .args(["sim", "--url", &dead, "--url", &live])
            .args(["--token", &uplink_token(&server), "--seed", seed])
            .args(["--count", &count.to_string(), "--report-ms", "0", "-v"])
            .stdout(Stdio::null())
            .stderr(err),
    );
    // Instances 0 and 2 start on the dead URL, fail, and after one
    // back-off (5 s) try the live one; 1 and 3 start there.
    let docked_live = format!("docked on URL 1 ({live})");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&err_path).unwrap_or_default();
        let connected = (0..count)
            .filter(|&i| {
                let (code, v) = server.json(&[], &format!("/v1/instances/{}", sim_id(seed, i)));
                code == 200 && v["status"] == "connected"
            })
            .count();
        if connected == count && log.matches(&docked_live).count() == count {
            for i in [0, 2] {
                let failed = format!("instance {i} (");
                assert!(
                    log.lines().any(|l| l.contains(&failed)
                        && l.contains("auth failed")
                        && l.contains(&dead[7..])),
                    "instance {i} never tried {dead} first:\n{log}"
                );
            }
            assert!(
                !log.contains("docked on URL 0"),
                "nothing docks on the dead URL:\n{log}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{connected}/{count} connected, {} docked on {live}:\n{log}\n{}",
            log.matches(&docked_live).count(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
