//! The cost of a `/metrics` scrape over a large fleet, in process: N
//! instances (JETPACK_BENCH_INSTANCES, 20,000) docked in a real `Fleet`
//! on a real store, each with a STATS document like `jetpack sim`'s (40
//! stats), then the scrape's work (snapshot and Prometheus text encoding,
//! what the handler runs on a blocking thread) timed with the default cap
//! (1,000 instances) and with `?instances=all`: time and size. HTTP and
//! TLS are left out (benches/api.rs measures those). `cargo test` runs it
//! tiny (200 instances) as a check that it works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use jetpack::catalog::Catalog;
use jetpack::hangar::fleet::{Fleet, Limits};
use jetpack::hangar::frame::{Code, Transport};
use jetpack::hangar::token::InstanceId;
use jetpack::metrics::collect::{snapshot, Scrape, Sources};
use jetpack::metrics::encode::encode;
use jetpack::metrics::instances::{Selection, StatLimits};
use jetpack::metrics::Format;

fn stats(i: usize) -> Vec<u8> {
    let mut entries = vec![
        format!(r#"{{"name":"monotonic_ts_ms","value":{}}}"#, 1000 + i),
        format!(
            r#"{{"name":"rtc_ts_ms","value":{}}}"#,
            1_700_000_000_000u64 + i as u64
        ),
        r#"{"name":"total_memuse","value":4194304}"#.to_string(),
    ];
    for n in 0..37 {
        entries.push(format!(
            r#"{{"name":"eth0.ethernet.counter_{n}","value":{}}}"#,
            i * n
        ));
    }
    format!("[{}]", entries.join(",")).into_bytes()
}

fn main() {
    let tiny = !std::env::args().any(|a| a == "--bench");
    let n: usize = match std::env::var("JETPACK_BENCH_INSTANCES") {
        Ok(v) => v.parse().expect("JETPACK_BENCH_INSTANCES is a number"),
        Err(_) if tiny => 200,
        Err(_) => 20_000,
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
    let fleet = Arc::new(Fleet::load(catalog.clone(), Limits::default()).unwrap());
    let mut keep = Vec::with_capacity(n);
    for i in 0..n {
        let id = InstanceId::new(&format!("{i:032x}")).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        keep.push(rx);
        fleet.docked(&id, "127.0.0.1:1".parse().unwrap(), tx);
        fleet.received(
            &id,
            Transport {
                code: Code::Stats,
                payload: stats(i),
            },
        );
    }
    fleet.sync().unwrap();
    let sources = Sources {
        fleet: fleet.clone(),
        catalog,
        data_dir: dir.path().to_path_buf(),
        started_at: 0,
        mds_socket: None,
        host: None,
    };
    println!("instances={n} (docked, 40 stats each)");
    for (what, selection) in [
        ("default cap (1000)", Selection::Capped),
        ("?instances=all", Selection::All),
    ] {
        let scrape = Scrape {
            instances: selection,
            cap: 1000,
            stats: StatLimits::default(),
        };
        let (mut times, mut snapshots) = (Vec::new(), Vec::new());
        let mut size = 0;
        for _ in 0..if tiny { 1 } else { 5 } {
            let t = Instant::now();
            let snap = snapshot(&sources, &scrape);
            snapshots.push(t.elapsed().as_secs_f64() * 1000.0);
            let text = encode(snap, Format::Prometheus).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            size = text.len();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        snapshots.sort_by(|a, b| a.total_cmp(b));
        println!(
            "scrape {what}: median {:.1} ms (snapshot {:.1} ms, then encoding), max {:.1} ms, {:.2} MiB",
            times[times.len() / 2],
            snapshots[snapshots.len() / 2],
            times[times.len() - 1],
            size as f64 / (1 << 20) as f64
        );
    }
}
