//! Several jetpack hosts on one test database (issue 21): servers named
//! h0, h1, ... started at once, each with its own data root, ports and pod
//! network; heartbeats every second, down after three.

use super::postgres::TestDb;
use super::server::TestServer;
use super::{Driver, TestHost};

/// `n` test machines on `driver` (each its own root and pod network), or
/// None when the test must skip.
pub fn machines(n: usize, driver: Driver) -> Option<Vec<TestHost>> {
    (0..n).map(|_| TestHost::new(driver)).collect()
}

/// A server named h0, h1, ... on each machine, on `db`, with `extra(i)`
/// options of its own; one after the other.
pub fn on_machines(
    db: &TestDb,
    machines: &[TestHost],
    extra: impl Fn(usize) -> Vec<String>,
) -> Vec<TestServer> {
    machines
        .iter()
        .enumerate()
        .map(|(i, machine)| {
            let mut options = db.store_options();
            options.extend([
                format!("host.name=h{i}"),
                "host.heartbeat=1".to_string(),
                "host.down=3".to_string(),
            ]);
            options.extend(extra(i));
            let refs: Vec<&str> = options.iter().map(String::as_str).collect();
            TestServer::on_host_with(machine, &refs, &[])
        })
        .collect()
}

/// `n` servers on `db`, started at once (each on its own thread).
pub fn hosts(db: &TestDb, n: usize, flags: &[&str]) -> Vec<TestServer> {
    let starts: Vec<_> = (0..n)
        .map(|i| {
            let options = options(db, i);
            let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            std::thread::spawn(move || {
                let refs: Vec<&str> = options.iter().map(String::as_str).collect();
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                TestServer::start(&refs, &flags)
            })
        })
        .collect();
    starts
        .into_iter()
        .map(|s| s.join().expect("a server failed to start"))
        .collect()
}

/// Server `hi` alone on `db` (a host that joins later).
pub fn host(db: &TestDb, i: usize, flags: &[&str]) -> TestServer {
    let options = options(db, i);
    let refs: Vec<&str> = options.iter().map(String::as_str).collect();
    TestServer::start(&refs, flags)
}

/// The options of server `hi` on `db`.
fn options(db: &TestDb, i: usize) -> Vec<String> {
    let tag = std::process::id() % 10000;
    let mut options = db.store_options();
    options.extend([
        format!("host.name=h{i}"),
        "host.heartbeat=1".to_string(),
        "host.down=3".to_string(),
        // Each host's pod network is its own.
        format!("jail.interface=jpf{tag}{i}"),
        format!("jail.namePrefix=jpf{tag}{i}-"),
    ]);
    options
}

/// (name, status, self) of every host, as `server` lists them.
pub fn statuses(server: &TestServer) -> Vec<(String, String, bool)> {
    let (status, hosts) = server.json(&[], "/v1/hosts");
    assert_eq!(status, 200, "{hosts}");
    hosts
        .as_array()
        .expect("a list")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_string(),
                h["status"].as_str().unwrap_or_default().to_string(),
                h["self"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}
