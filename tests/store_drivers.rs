//! The store's driver seam (`jetpack::store::sql`) on both drivers: each
//! test runs on a sqlite driver on a temporary file and on a postgres
//! driver on a fresh database of the test cluster (tests/common/postgres.rs;
//! without PostgreSQL the postgres half is skipped with a printed reason,
//! and fails under CI). Then what only the postgres driver has: migrations
//! by several hosts at once, passwords, TLS, the bounded pool, and the
//! fleet's schema (src/store/migrations/postgres/0001_fleet.sql).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::postgres::{cluster, TestDb};
use jetpack::params;
use jetpack::store::sql::postgres::PgDriver;
use jetpack::store::sql::sqlite::SqliteDriver;
use jetpack::store::sql::{DbError, Dialect, Driver, Executor, Sql, Value};

/// A test table set, in each engine's words for the same five kinds.
fn schema(d: Dialect) -> String {
    let (int, real, blob) = match d {
        Dialect::Sqlite => ("INTEGER", "REAL", "BLOB"),
        Dialect::Postgres => ("BIGINT", "DOUBLE PRECISION", "BYTEA"),
    };
    format!(
        "CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT UNIQUE, n {int}, m {int}, r {real}, b {blob});
         CREATE TABLE pair (a TEXT NOT NULL, b TEXT NOT NULL, UNIQUE (a, b));
         CREATE TABLE counter (id {int} PRIMARY KEY, n {int} NOT NULL);
         INSERT INTO counter (id, n) VALUES (1, 0);"
    )
}

enum Kind {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres(TestDb),
}

/// One engine under test: a migrated driver, and more on the same data.
struct Store {
    driver: Box<dyn Driver>,
    kind: Kind,
}

impl Store {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres(_) => "postgres",
        }
    }

    /// Another driver on the same database: another process (sqlite) or
    /// another host (postgres).
    fn another(&self) -> Box<dyn Driver> {
        match &self.kind {
            Kind::Sqlite { path, .. } => Box::new(SqliteDriver::open(path).expect("sqlite open")),
            Kind::Postgres(db) => Box::new(db.connect(4)),
        }
    }
}

/// The test's stores, each with `schema` applied through its driver's
/// migrations: sqlite always, postgres when there is a cluster.
fn stores(schema: fn(Dialect) -> String) -> Vec<Store> {
    let dir = tempfile::Builder::new()
        .prefix("jetpack-drivers-")
        .tempdir()
        .expect("tempdir");
    let path = dir.path().join("store.db");
    let mut sqlite = SqliteDriver::open(&path).expect("sqlite open");
    sqlite
        .migrate(&[&schema(Dialect::Sqlite)])
        .expect("sqlite migrate");
    let mut all = vec![Store {
        driver: Box::new(sqlite),
        kind: Kind::Sqlite { _dir: dir, path },
    }];
    if let Some(c) = cluster() {
        let db = c.database();
        let pg = db.connect(4);
        pg.migrate(&[&schema(Dialect::Postgres)], "store_drivers")
            .expect("postgres migrate");
        all.push(Store {
            driver: Box::new(pg),
            kind: Kind::Postgres(db),
        });
    }
    all
}

fn count(db: &dyn Driver, sql: &str) -> i64 {
    db.query_row(sql, params![], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn values_round_trip() {
    // (No NUL: PostgreSQL's text refuses it, SQLite's takes it.)
    let text = "it's \"quoted\"\nline two\ttab \\ back -- not a comment; ?1 ünïcödé 🚀";
    let every_byte: Vec<u8> = (0..=255).collect();
    let cases: Vec<(&str, Value, Value, Value, Value)> = vec![
        ("nulls", Value::Null, Value::Null, Value::Null, Value::Null),
        (
            "min",
            Value::Text(text.into()),
            Value::Int(i64::MIN),
            Value::Real(-0.25),
            Value::Blob(vec![]),
        ),
        (
            "max",
            Value::Text(String::new()),
            Value::Int(i64::MAX),
            Value::Real(1.5e300),
            Value::Blob(every_byte),
        ),
        (
            "minus-one",
            Value::Text("ünï 🚀".into()),
            Value::Int(-1),
            Value::Real(std::f64::consts::PI),
            Value::Blob(vec![0, b'\'', 0]),
        ),
    ];
    for s in stores(schema) {
        let db = &*s.driver;
        for (id, name, n, r, b) in &cases {
            db.execute(
                "INSERT INTO t (id, name, n, r, b) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, n, r, b],
            )
            .unwrap_or_else(|e| panic!("{}: inserting {id}: {e}", s.name()));
        }
        for (id, name, n, r, b) in &cases {
            let back = db
                .query_row(
                    "SELECT name, n, r, b FROM t WHERE id = ?1",
                    params![id],
                    |row| {
                        Ok((
                            row.get::<Value>("name")?,
                            row.get::<Value>("n")?,
                            row.get::<Value>("r")?,
                            row.get::<Value>("b")?,
                        ))
                    },
                )
                .unwrap();
            assert_eq!(
                back,
                (name.clone(), n.clone(), r.clone(), b.clone()),
                "{}: row {id}",
                s.name()
            );
        }
        // Text with quotes and newlines finds its row as a parameter.
        let found: String = db
            .query_row("SELECT id FROM t WHERE name = ?1", params![text], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(found, "min", "{}", s.name());
        // Typed reads: an integer into a REAL column is a real on both;
        // a flag is a 0/1 integer; an i64 out of a u32's range is refused.
        db.execute(
            "INSERT INTO t (id, n, m, r) VALUES (?1, ?2, ?3, ?4)",
            params!["typed", true, u32::MAX, 2],
        )
        .unwrap();
        let (flag, m, r): (bool, u32, Value) = db
            .query_row(
                "SELECT n, m, r FROM t WHERE id = ?1",
                params!["typed"],
                |row| Ok((row.get("n")?, row.get("m")?, row.get("r")?)),
            )
            .unwrap();
        assert_eq!(
            (flag, m, r),
            (true, u32::MAX, Value::Real(2.0)),
            "{}",
            s.name()
        );
        let too_big = db.query_row("SELECT n FROM t WHERE id = 'max'", params![], |r| {
            r.get::<u32>(0)
        });
        assert!(
            matches!(too_big, Err(DbError::Column { .. })),
            "{}: {too_big:?}",
            s.name()
        );
    }
}

#[test]
fn numbered_placeholders_are_reused_and_bare_ones_follow() {
    for s in stores(schema) {
        let db = &*s.driver;
        let name = s.name();
        db.execute(
            "INSERT INTO t (id, name, n, m) VALUES (?, ?, ?, ?)",
            params!["a", "x", 1, 2],
        )
        .unwrap();
        db.execute(
            "INSERT INTO t (id, name, n, m) VALUES (?, ?, ?, ?)",
            params!["b", "y", 3, 4],
        )
        .unwrap();
        assert_eq!(
            db.execute("UPDATE t SET n = ?2, m = ?2 WHERE id = ?1", params!["a", 7])
                .unwrap(),
            1
        );
        let ids = |sql: &str, p: &[Value]| -> Vec<String> {
            db.query_map(sql, p, |r| r.get(0))
                .unwrap_or_else(|e| panic!("{name}: {sql}: {e}"))
        };
        assert_eq!(
            ids(
                "SELECT id FROM t WHERE n = ?2 AND m = ?2 AND id = ?1",
                params!["a", 7]
            ),
            ["a"],
            "{name}"
        );
        // A bare one after ?2 is ?3. (Every number is used: PostgreSQL
        // cannot type a parameter no statement names.)
        assert_eq!(
            ids(
                "SELECT id FROM t WHERE (id = ?2 AND m <> ?1) OR n = ? ORDER BY id",
                params![99, "b", 7]
            ),
            ["a", "b"],
            "{name}"
        );
        // A ? inside quotes is text, not a placeholder.
        assert_eq!(
            ids(
                "SELECT id FROM t WHERE name <> '?' AND name <> '?1' AND id = ?1",
                params!["b"]
            ),
            ["b"],
            "{name}"
        );
        let q: String = db
            .query_row("SELECT '?1' AS q FROM t WHERE id = ?1", params!["a"], |r| {
                r.get("q")
            })
            .unwrap();
        assert_eq!(q, "?1", "{name}");
    }
}

#[test]
fn a_unique_violation_names_its_columns_never_the_value() {
    let secret = "client-input-9f2c";
    for s in stores(schema) {
        let db = &*s.driver;
        let name = s.name();
        db.execute(
            "INSERT INTO t (id, name) VALUES (?1, ?2)",
            params!["a", secret],
        )
        .unwrap();
        db.execute(
            "INSERT INTO pair (a, b) VALUES (?1, ?2)",
            params![secret, "b"],
        )
        .unwrap();
        let refused = [
            (
                "INSERT INTO t (id, name) VALUES (?1, ?2)",
                params!["b", secret],
                "t.name",
            ),
            (
                "INSERT INTO t (id, name) VALUES (?1, ?2)",
                params!["a", "other"],
                "t.id",
            ),
            (
                "INSERT INTO pair (a, b) VALUES (?1, ?2)",
                params![secret, "b"],
                "pair.a, pair.b",
            ),
        ];
        for (sql, p, want) in refused {
            let e = db.execute(sql, p).unwrap_err();
            match &e {
                DbError::Unique { columns } => assert_eq!(columns, want, "{name}: {sql}"),
                other => panic!("{name}: {sql}: not Unique: {other:?}"),
            }
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "{name}: the value shows: {shown}");
        }
        assert_eq!(count(db, "SELECT count(*) FROM t"), 1, "{name}");
    }
}

#[test]
fn a_dropped_write_tx_changes_nothing_and_a_committed_one_persists() {
    for s in stores(schema) {
        let db = &*s.driver;
        let name = s.name();
        let other = s.another();
        {
            let tx = db.write_tx().unwrap();
            tx.execute("INSERT INTO t (id, n) VALUES (?1, ?2)", params!["a", 1])
                .unwrap();
            tx.execute("UPDATE counter SET n = 5 WHERE id = 1", params![])
                .unwrap();
            let inside: i64 = tx
                .query_row("SELECT count(*) FROM t", params![], |r| r.get(0))
                .unwrap();
            assert_eq!(inside, 1, "{name}: a transaction sees its own writes");
            assert_eq!(
                count(&*other, "SELECT count(*) FROM t"),
                0,
                "{name}: another connection does not see an open transaction's writes"
            );
        }
        assert_eq!(count(db, "SELECT count(*) FROM t"), 0, "{name}");
        assert_eq!(count(db, "SELECT n FROM counter WHERE id = 1"), 0, "{name}");

        let tx = db.write_tx().unwrap();
        tx.execute("INSERT INTO t (id, n) VALUES (?1, ?2)", params!["a", 1])
            .unwrap();
        tx.commit().unwrap();
        assert_eq!(count(db, "SELECT count(*) FROM t"), 1, "{name}");
        assert_eq!(
            count(&*other, "SELECT count(*) FROM t"),
            1,
            "{name}: committed, it is seen by every connection"
        );
    }
}

#[test]
fn read_then_write_increments_in_write_tx_lose_no_update() {
    const EACH: i64 = 200;
    for s in stores(schema) {
        let start = Arc::new(Barrier::new(2));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                // Two drivers: two processes on one file, two hosts on one database.
                let d = s.another();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..EACH {
                        let tx = d.write_tx()?;
                        let n: i64 =
                            tx.query_row("SELECT n FROM counter WHERE id = 1", params![], |r| {
                                r.get(0)
                            })?;
                        tx.execute("UPDATE counter SET n = ?1 WHERE id = 1", params![n + 1])?;
                        tx.commit()?;
                    }
                    Ok::<_, DbError>(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker").expect("increments");
        }
        assert_eq!(
            count(&*s.driver, "SELECT n FROM counter WHERE id = 1"),
            2 * EACH,
            "{}",
            s.name()
        );
    }
}

const MIGRATIONS: [&str; 3] = [
    "CREATE TABLE m1 (id BIGINT PRIMARY KEY)",
    "ALTER TABLE m1 ADD COLUMN note TEXT",
    "CREATE TABLE m3 (id BIGINT); INSERT INTO m3 (id) VALUES (1)",
];

#[test]
fn four_hosts_migrating_an_empty_database_at_once_apply_each_migration_once() {
    let Some(c) = cluster() else { return };
    let db = c.database();
    let start = Arc::new(Barrier::new(4));
    let hosts: Vec<_> = (0..4)
        .map(|i| {
            let d = db.connect(2);
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                d.migrate(&MIGRATIONS, &format!("host{i}"))
            })
        })
        .collect();
    let mut found: Vec<i64> = hosts
        .into_iter()
        .map(|h| h.join().expect("host").expect("migrate"))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [0, 3, 3, 3],
        "one host found it empty, the others found it done"
    );
    let pg = db.connect(1);
    let applied: Vec<(i64, String)> = pg
        .query_map(
            "SELECT version, applied_by FROM jetpack_migrations ORDER BY version",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        applied.iter().map(|a| a.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "{applied:?}"
    );
    assert!(
        applied.iter().all(|a| a.1 == applied[0].1),
        "one host applied them all: {applied:?}"
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM m3"), 1, "ran once");
    let columns: Vec<String> = pg
        .query_map(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = 'm1' ORDER BY ordinal_position",
            params![],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(columns, ["id", "note"]);

    // A jetpack that knows fewer migrations than the database has.
    match pg.migrate(&MIGRATIONS[..2], "old-host") {
        Err(DbError::TooNew(3)) => {}
        other => panic!(
            "expected TooNew(3), got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    // The current list again: nothing to do.
    assert_eq!(pg.migrate(&MIGRATIONS, "again").unwrap(), 3);
    assert_eq!(count(&pg, "SELECT count(*) FROM jetpack_migrations"), 3);
}

#[test]
fn a_failed_migration_leaves_the_earlier_ones_and_nothing_of_its_own() {
    let Some(c) = cluster() else { return };
    let db = c.database();
    let pg = db.connect(1);
    let broken = [
        MIGRATIONS[0],
        "CREATE TABLE half (id BIGINT); SELECT no_such_function()",
    ];
    assert!(pg.migrate(&broken, "test").is_err());
    assert_eq!(count(&pg, "SELECT count(*) FROM jetpack_migrations"), 1);
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"
        ),
        0,
        "the failed migration's DDL was rolled back"
    );
    // The connection is usable, and the lock was let go: a fixed list
    // goes on from version 1.
    assert_eq!(pg.migrate(&MIGRATIONS, "test").unwrap(), 1);
    assert_eq!(count(&pg, "SELECT count(*) FROM jetpack_migrations"), 3);
}

#[test]
fn four_processes_migrating_a_new_sqlite_file_at_once_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let start = Arc::new(Barrier::new(4));
    let procs: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut d = SqliteDriver::open(&path).map_err(|e| format!("open: {e}"))?;
                d.migrate(&MIGRATIONS).map_err(|e| format!("migrate: {e}"))
            })
        })
        .collect();
    let mut found: Vec<i64> = procs
        .into_iter()
        .map(|p| p.join().expect("process").expect("migrate"))
        .collect();
    found.sort();
    assert_eq!(found, [0, 3, 3, 3]);
    let db = SqliteDriver::open(&path).unwrap();
    assert_eq!(count(&db, "PRAGMA user_version"), 3);
    assert_eq!(count(&db, "SELECT count(*) FROM m3"), 1);
}

#[test]
fn a_wrong_password_fails_connect_without_showing_it() {
    let Some(c) = cluster() else { return };
    let db = c.database();
    let mut o = db.options(1);
    o.password = Some("wrong-pw-7c1e".into());
    let e = PgDriver::connect(&o)
        .err()
        .expect("a wrong password connects");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("wrong-pw-7c1e"), "{shown}");
    assert!(
        shown.contains("password authentication failed"),
        "the reason is clear: {shown}"
    );

    // A password in the URL is as secret.
    let mut o = db.options(1);
    o.password = None;
    o.url = db.url.replacen("jetpack@", "jetpack:url-pw-51d0@", 1);
    let e = PgDriver::connect(&o)
        .err()
        .expect("a wrong password in the URL connects");
    let shown = format!("{e} {e:?} {o:?}");
    assert!(!shown.contains("url-pw-51d0"), "{shown}");

    // The right one, in the URL, connects.
    o.url = db
        .url
        .replacen("jetpack@", &format!("jetpack:{}@", c.password()), 1);
    if let Err(e) = PgDriver::connect(&o) {
        panic!("the right password in the URL: {e}");
    }
}

#[test]
fn tls_verified_against_the_clusters_ca_and_refused_without_it() {
    let Some(c) = cluster() else { return };
    let db = c.database();
    let ssl = |d: &PgDriver| -> bool {
        d.query_row(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            params![],
            |r| r.get(0),
        )
        .unwrap()
    };
    let mut o = db.options(1);
    assert!(
        !ssl(&PgDriver::connect(&o).unwrap()),
        "store.tls=off: plain"
    );

    o.tls = true;
    o.ca = Some(db.ca().to_path_buf());
    let d = PgDriver::connect(&o).unwrap_or_else(|e| panic!("TLS with the CA: {e}"));
    assert!(ssl(&d), "store.tls=on: TLS");

    // The system's roots do not know the cluster's self-signed certificate.
    o.ca = None;
    let e = PgDriver::connect(&o)
        .err()
        .expect("an unknown certificate was accepted");
    let shown = e.to_string();
    assert!(
        shown.contains("certificate verify failed"),
        "the reason is clear: {shown}"
    );

    // A CA file that is not there is named.
    o.ca = Some(PathBuf::from("/nonexistent/ca.pem"));
    let e = PgDriver::connect(&o).err().expect("a missing CA file");
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

#[test]
fn a_full_pool_makes_a_statement_wait_then_end_unavailable() {
    let Some(c) = cluster() else { return };
    let db = c.database();
    let mut o = db.options(1);
    o.timeout = Duration::from_millis(500);
    let pg = patiently("connect", || PgDriver::connect(&o));
    let tx = patiently("write_tx", || pg.write_tx());
    let t0 = Instant::now();
    let e = pg.query("SELECT 1", params![]).unwrap_err();
    let waited = t0.elapsed();
    assert!(matches!(e, DbError::Unavailable(_)), "{e:?}");
    assert!(
        waited >= o.timeout && waited < Duration::from_secs(5),
        "waited {waited:?} for a {:?} timeout",
        o.timeout
    );
    // The connection comes back with the transaction's end.
    drop(tx);
    let one: i64 = patiently("SELECT 1", || {
        pg.query_row("SELECT 1", params![], |r| r.get(0))
    });
    assert_eq!(one, 1);
}

/// A step of a test with a short timeout, tried again while it ends
/// `Unavailable`: on a loaded machine a connect or a BEGIN can outlast
/// 500 ms, and that is not what such a test is about.
fn patiently<T>(what: &str, mut f: impl FnMut() -> Result<T, DbError>) -> T {
    let mut last = None;
    for _ in 0..20 {
        match f() {
            Ok(v) => return v,
            Err(DbError::Unavailable(why)) => last = Some(why),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: unavailable 20 times, last: {last:?}")
}

/// The fleet's schema on PostgreSQL beside SQLite's.
#[path = "store_drivers/fleet.rs"]
mod fleet;
