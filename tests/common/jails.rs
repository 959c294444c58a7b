//! The jails conformance suite: what every driver must do with a cell, the
//! same way, on a busybox (or, on FreeBSD, the test base's) root: create
//! with its parameters, run a process inside, see its own hostname and
//! address, list, stop and destroy (idempotent), and be found again by a
//! driver that did not make it.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use jetpack::config::Ipv4Net;
use jetpack::runtime::jails::{CellSpec, JailError, Jails, Process};

/// A cell spec for `root` named `name` at `address` of `network`.
pub fn spec(
    name: &str,
    root: &Path,
    network: &str,
    address: Ipv4Addr,
    interface: &str,
) -> CellSpec {
    CellSpec {
        name: name.to_string(),
        hostname: format!("{name}.test"),
        root: root.to_path_buf(),
        address,
        network: Ipv4Net::parse(network).expect("a network"),
        interface: interface.to_string(),
        securelevel: -1,
        devfs_ruleset: 4,
        linux_abi: false,
        params: Vec::new(),
        devices: Vec::new(),
        volumes: Vec::new(),
        limits: Default::default(),
        vnet: false,
    }
}

/// Runs `argv` in the cell; (exit code, stdout).
pub fn run(
    jails: &dyn Jails,
    cell: &jetpack::runtime::jails::Cell,
    argv: &[&str],
) -> (i32, String) {
    let process = Process {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: jetpack::runtime::jails::base_env("conformance"),
        terminal: false,
    };
    let out = jails
        .command(cell, &process)
        .expect("a command in the cell")
        .stdin(Stdio::null())
        .output()
        .expect("running in the cell");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The suite. `again` is a second driver value, as a jetpack process that
/// did not make the cell would have.
pub fn conformance(jails: &dyn Jails, again: &dyn Jails, spec: &CellSpec, prefix: &str) {
    jails
        .prepare_network(&spec.interface, spec.network)
        .expect("the pod network");
    let cell = jails.create(spec).expect("a cell");
    assert!(jails.is_running(&cell));

    // Its own hostname and address; a failing program's code comes back.
    let (code, hostname) = run(jails, &cell, &["/bin/hostname"]);
    assert_eq!((code, hostname.trim()), (0, spec.hostname.as_str()));
    let (_, addresses) = run(jails, &cell, &["/bin/sh", "-c", "ip -4 addr || ifconfig"]);
    assert!(
        addresses.contains(&spec.address.to_string()),
        "the cell does not hold {}: {addresses}",
        spec.address
    );
    assert_eq!(run(jails, &cell, &["/bin/sh", "-c", "exit 7"]).0, 7);
    // A missing program is the spawn's NotFound, or a failed exec.
    let process = Process {
        argv: vec!["/nonexistent".into()],
        ..Process::default()
    };
    let missing = jails
        .command(&cell, &process)
        .expect("a command")
        .stdin(Stdio::null())
        .output();
    assert!(missing.map(|o| !o.status.success()).unwrap_or(true));

    // Listed by prefix, and found again by another driver value.
    let listed = jails.list(prefix).expect("list");
    assert!(
        listed.iter().any(|(n, c)| n == &spec.name && *c == cell),
        "{listed:?}"
    );
    let found = again.list(prefix).expect("list");
    let (_, found) = found
        .into_iter()
        .find(|(n, _)| n == &spec.name)
        .expect("the cell found again");
    assert!(again.is_running(&found));
    assert_eq!(
        run(again, &found, &["/bin/hostname"]).1.trim(),
        spec.hostname
    );

    // A process still running is ended by destroy, within the grace.
    let mut sleeper = jails
        .command(
            &cell,
            &Process {
                argv: vec!["/bin/sleep".into(), "600".into()],
                ..Process::default()
            },
        )
        .expect("a command")
        .stdin(Stdio::null())
        .spawn()
        .expect("a sleeper");
    again
        .destroy(&found, Duration::from_secs(2))
        .expect("destroy");
    let _ = sleeper.wait();
    assert!(!jails.is_running(&cell));
    assert!(!jails
        .list(prefix)
        .expect("list")
        .iter()
        .any(|(n, _)| n == &spec.name));
    jails
        .destroy(&cell, Duration::from_secs(1))
        .expect("destroy is idempotent");
    match jails.command(
        &cell,
        &Process {
            argv: vec!["/bin/true".into()],
            ..Process::default()
        },
    ) {
        Err(JailError::NotRunning(_)) => {}
        Err(e) => panic!("a gone cell: {e}"),
        Ok(mut cmd) => assert!(
            !cmd.stdin(Stdio::null()).status().is_ok_and(|s| s.success()),
            "a process ran in a destroyed cell"
        ),
    }
}
