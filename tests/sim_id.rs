//! `jetpack sim --id`: the simulated instance docks as the id it is given,
//! as a VM launched with a UUID docks as that UUID's id (the test VM of
//! images/linux-vm runs the sim this way), against a real server; and the
//! option's checks refuse what could not be such an id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::sims::{sim_command, Killed};
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
