//! The API on each store driver, in the same run: the real `jetpack
//! serve` (release build, TLS and auth on) once on SQLite and once on
//! PostgreSQL (a throwaway cluster on loopback, started here with
//! scripts/pg-test-cluster.sh unless JETPACK_TEST_PG_* name one), measured
//! in interleaved rounds so that drift hits both alike:
//!
//! 1. `GET /v1/info` (no store read): requests/s from 8 connections, the
//!    floor both share;
//! 2. `POST /v1/uplinks` (one transaction each) from 8 connections until
//!    JETPACK_BENCH_ROWS (10,000) uplinks are stored: rows/s;
//! 3. `GET /v1/uplinks?limit=100` (a sorted page of that table) and
//!    `GET /v1/uplinks/NAME` (a lookup) on one connection: p50/p99;
//! 4. `GET /v1/instances?limit=100` with JETPACK_BENCH_INSTANCES (20,000)
//!    instances stored (written into each store while its server is
//!    stopped, loaded when it starts again): requests/s from 8
//!    connections, and p50/p99 on one.
//!
//! `cargo bench --bench store` measures; `cargo test` runs it tiny (200
//! rows, short rounds) as a check that it works. Targets are reported,
//! never enforced. Failover and three hangars sharing one fleet are
//! measured by tests/fleet_spread.rs (it prints the failover time).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "support/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use measure::{env_or, percentile_ms};
use postgres::Postgres;
use serve::Server;

const SERVE: serve::Bench = serve::Bench {
    name: "store",
    tag: "jpst",
};

/// Requests/s of `request(i)` from `connections` connections for `time`.
fn rate(
    server: &Server,
    connections: usize,
    time: Duration,
    request: impl Fn(usize) -> Vec<u8> + Sync,
    want: u16,
    limit: usize,
) -> f64 {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let mut client = server.connect();
                while started.elapsed() < time {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= limit {
                        break;
                    }
                    client.expect(&request(i), want);
                }
            });
        }
    });
    next.load(Ordering::Relaxed).min(limit) as f64 / started.elapsed().as_secs_f64()
}

fn uplink(server: &Server, i: usize) -> Vec<u8> {
    let body = format!(r#"{{"name":"u{i}","url":"https://hangar.example:9090"}}"#);
    let mut request = format!(
        "POST /v1/uplinks HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        server.port,
        server.authorization,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

fn latencies(server: &Server, request: &[u8], n: usize) -> Vec<Duration> {
    let mut client = server.connect();
    for _ in 0..n / 10 {
        client.expect(request, 200);
    }
    let mut out: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            client.expect(request, 200);
            t.elapsed()
        })
        .collect();
    out.sort();
    out
}

/// An IDENT like a sim's: what the list reads and searches.
fn ident(i: usize) -> String {
    format!(
        r#"{{"uuid":"{i}","version":"v0.14.2","service":"Starbase","tag":"t{}","net":[{{"addr":"10.{}.{}.{}"}}]}}"#,
        i % 7,
        i / 65536 % 256,
        i / 256 % 256,
        i % 256
    )
}

/// `n` instances, as the hangar stores them (unknown until they dock).
fn seed_sqlite(data_dir: &std::path::Path, n: usize) {
    let mut db = rusqlite::Connection::open(data_dir.join("state.db")).expect("state.db");
    let tx = db.transaction().expect("a transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO instances (id, ident, first_seen, last_seen) VALUES (?1, ?2, 1, ?3)",
            )
            .expect("an insert");
        for i in 0..n {
            insert
                .execute(rusqlite::params![format!("{i:032x}"), ident(i), i as i64])
                .expect("an instance");
        }
    }
    tx.commit().expect("commit");
}

fn seed_postgres(postgres: &Postgres, url: &str, n: usize) {
    // The same rows as `ident` and `seed_sqlite` make, generated in SQL:
    // as literals they would not fit in one argument.
    postgres.psql(
        url,
        &[&format!(
            r#"INSERT INTO instances (id, ident, first_seen, last_seen)
               SELECT lpad(to_hex(i), 32, '0'),
                   format('{{"uuid":"%s","version":"v0.14.2","service":"Starbase","tag":"t%s","net":[{{"addr":"10.%s.%s.%s"}}]}}',
                       i, i % 7, i / 65536 % 256, i / 256 % 256, i % 256),
                   1, i
               FROM generate_series(0, {}) AS i"#,
            n - 1
        )],
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rows: usize = if bench {
        env_or("JETPACK_BENCH_ROWS", 10_000)
    } else {
        200
    };
    let round = Duration::from_millis(if bench { 2000 } else { 200 });
    let rounds = if bench { 3 } else { 1 };
    let samples = if bench { 300 } else { 20 };
    let instances: usize = if bench {
        env_or("JETPACK_BENCH_INSTANCES", 20_000)
    } else {
        500
    };
    if !bench {
        println!("store bench: quick check (run `cargo bench --bench store` to measure)");
    }
    let postgres = Postgres::find();
    let db = format!("jetpack_bench_{}", std::process::id());
    let pg_options = postgres.database(&db);
    let mut pg_flags: Vec<&str> = Vec::new();
    for o in &pg_options {
        pg_flags.extend(["-o", o.as_str()]);
    }
    let mut servers = [
        Server::jetpack(&SERVE, "sqlite", &[]),
        Server::jetpack(&SERVE, "postgres", &pg_flags),
    ];
    // Instances are the hangar's to write: written while each server is
    // stopped, loaded by its fleet when it starts again.
    servers[0].restart(&SERVE, &[], |dir| seed_sqlite(&dir.join("root"), instances));
    let pg_url = pg_options[1].trim_start_matches("store.url=").to_string();
    servers[1].restart(&SERVE, &pg_flags, |_| {
        seed_postgres(&postgres, &pg_url, instances)
    });

    // 1 and 2, interleaved: reads that touch no store, then writes.
    let mut info = [0.0f64; 2];
    let mut writes = [0.0f64; 2];
    let per_round = rows.div_ceil(rounds);
    for r in 0..rounds {
        for (k, s) in servers.iter().enumerate() {
            let get = s.get("/v1/info");
            info[k] += rate(s, 8, round, |_| get.clone(), 200, usize::MAX) / rounds as f64;
            let first = r * per_round;
            let n = per_round.min(rows - first);
            writes[k] += rate(
                s,
                8,
                Duration::from_secs(3600),
                |i| uplink(s, first + i),
                201,
                n,
            ) / rounds as f64;
        }
    }
    // 3: a page and a lookup of the full table; 4: a page of instances.
    let mut page = Vec::new();
    let mut lookup = Vec::new();
    let mut instance_page = Vec::new();
    let mut instance_rate = [0.0f64; 2];
    for (k, s) in servers.iter().enumerate() {
        let get = s.get("/v1/instances?limit=100");
        instance_rate[k] = rate(s, 8, round, |_| get.clone(), 200, usize::MAX);
        instance_page.push(latencies(s, &get, samples));
        page.push(latencies(s, &s.get("/v1/uplinks?limit=100"), samples));
        lookup.push(latencies(
            s,
            &s.get(&format!("/v1/uplinks/u{}", rows / 2)),
            samples,
        ));
    }

    println!(
        "\nthe API on each store driver ({} uplinks; TLS and auth on; {} rounds interleaved)",
        rows, rounds
    );
    println!(
        "{:<36} {:>12} {:>12} {:>10}",
        "measure", "sqlite", "postgres", "pg/sqlite"
    );
    let line = |what: &str, a: f64, b: f64, unit: &str| {
        println!(
            "{what:<36} {:>9.0} {unit} {:>9.0} {unit} {:>9.2}x",
            a,
            b,
            b / a
        );
    };
    line("GET /v1/info (8 conns)", info[0], info[1], "/s");
    line("POST /v1/uplinks (8 conns)", writes[0], writes[1], "/s");
    line(
        &format!("GET /v1/instances?limit=100 ({instances})"),
        instance_rate[0],
        instance_rate[1],
        "/s",
    );
    for (what, l) in [
        ("GET /v1/uplinks?limit=100", &page),
        ("GET /v1/uplinks/NAME", &lookup),
        ("GET /v1/instances?limit=100", &instance_page),
    ] {
        for (p, label) in [(0.5, "p50"), (0.99, "p99")] {
            let (a, b) = (percentile_ms(&l[0], p), percentile_ms(&l[1], p));
            println!(
                "{:<36} {:>9.2} ms {:>9.2} ms {:>9.2}x",
                format!("{what} {label}"),
                a,
                b,
                b / a
            );
        }
    }
    drop(servers);
    drop(postgres);
}
