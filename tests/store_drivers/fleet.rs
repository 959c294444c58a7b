//! The fleet's PostgreSQL schema (src/store/migrations/postgres/0001_fleet.sql)
//! beside SQLite's migrations: the same tables with the same columns in
//! the same order, a row of each written and read back through the seam
//! with the same statements on both, and the constraints both keep.

use super::*;

const FLEET: &str = include_str!("../../src/store/migrations/postgres/0001_fleet.sql");
const SQLITE: [&str; 10] = [
    include_str!("../../src/store/migrations/sqlite/0001_runtime.sql"),
    include_str!("../../src/store/migrations/sqlite/0002_server.sql"),
    include_str!("../../src/store/migrations/sqlite/0003_instances.sql"),
    include_str!("../../src/store/migrations/sqlite/0004_builders.sql"),
    include_str!("../../src/store/migrations/sqlite/0005_launches.sql"),
    include_str!("../../src/store/migrations/sqlite/0006_bootfiles.sql"),
    include_str!("../../src/store/migrations/sqlite/0007_netboot.sql"),
    include_str!("../../src/store/migrations/sqlite/0008_volumes.sql"),
    include_str!("../../src/store/migrations/sqlite/0009_pod_policy.sql"),
    include_str!("../../src/store/migrations/sqlite/0010_limits.sql"),
];

/// SQLite's store (with the base a builder needs: its foreign key holds
/// there) and the fleet's PostgreSQL database.
fn fleet_stores() -> Vec<Store> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.db");
    let mut sqlite = SqliteDriver::open(&path).expect("sqlite open");
    sqlite.migrate(&SQLITE).expect("sqlite migrations");
    sqlite
        .execute(
            "INSERT INTO bases (id, name, source, size, state, created_at)
             VALUES ('base1', 'builder-base', '/x', 1, 'ready', 1)",
            params![],
        )
        .unwrap();
    let mut all = vec![Store {
        driver: Box::new(sqlite),
        kind: Kind::Sqlite { _dir: dir, path },
    }];
    if let Some(c) = cluster() {
        let db = c.database();
        let pg = db.connect(2);
        assert_eq!(
            pg.migrate(&[FLEET], "store_drivers")
                .expect("0001_fleet.sql"),
            0
        );
        all.push(Store {
            driver: Box::new(pg),
            kind: Kind::Postgres(db),
        });
    }
    all
}

fn t(s: &str) -> Value {
    Value::Text(s.to_string())
}

const I: fn(i64) -> Value = Value::Int;

/// A row of each fleet table, its columns in SQLite's order.
#[rustfmt::skip]
fn rows() -> Vec<(&'static str, Vec<(&'static str, Value)>)> {
    let now = I(1_780_000_000);
    vec![
        ("uplinks", vec![
            ("id", t("u1")), ("name", t("up")), ("url", t("https://h:9090")), ("token", t("tok")),
            ("tag", t("prod")), ("idx", t("0")), ("verify", I(1)), ("reboot", I(0)),
            ("ws_logging", I(1)), ("serialize_ct", I(0)), ("certs", Value::Null),
            ("send_stats", I(5000)), ("created_at", now.clone()), ("updated_at", now.clone()),
        ]),
        ("nacls", vec![
            ("id", t("n1")), ("name", t("nacl")), ("content", t("Iface eth0 {\n  index: 0\n}")),
            ("created_at", now.clone()), ("updated_at", now.clone()),
        ]),
        ("snippets", vec![
            ("id", t("s1")), ("name", t("snip")), ("content", t("Gateway gw {}")),
            ("created_at", now.clone()), ("updated_at", now.clone()),
        ]),
        ("images", vec![
            ("id", t(&"a".repeat(40))), ("sha256", t(&"b".repeat(64))), ("name", t("hello")),
            ("tag", t("v1")), ("size", I(i64::MAX)), ("builder_id", t("bob1")),
            ("nacl_id", t("n1")), ("uplink_id", t("u1")), ("uplink_url", t("https://h:9090")),
            ("includeos_version", t("0.16")), ("created_at", now.clone()),
        ]),
        ("jobs", vec![
            ("id", t("j1")), ("kind", t("build")), ("target", t("hello")), ("state", t("running")),
            ("progress", Value::Real(0.25)), ("result", t(r#"{"image":"x"}"#)), ("error", Value::Null),
            ("created_at", now.clone()), ("started_at", now.clone()), ("finished_at", Value::Null),
        ]),
        ("instances", vec![
            ("id", t("i1")), ("alias", t("web")), ("description", Value::Null),
            ("ident", t(r#"{"binary":"x"}"#)), ("uplink", t("{}")), ("uplink_id", t("u1")),
            ("image_id", t(&"a".repeat(40))), ("first_seen", now.clone()), ("last_seen", now.clone()),
        ]),
        ("panics", vec![
            ("id", t("panic_2026-12-06T00:00:00Z.txt")), ("instance_id", t("i1")),
            ("text", t("*** panic\nline 2")), ("created_at", now.clone()),
        ]),
        ("bob_lists", vec![
            ("provider_id", t("local")), ("bobs", t("[]")), ("updated_at", now.clone()),
        ]),
        ("builders", vec![
            ("id", t("bob1")), ("base_id", t("base1")), ("digest", t("sha256:00")),
            ("provider_id", t("local")), ("manifest", t("{}")), ("created_at", now.clone()),
        ]),
        ("launches", vec![
            ("instance_id", t("i1")), ("pod_id", t("p1")), ("spec", t("{}")),
            ("wanted", t("running")), ("supervisor", I(4242)), ("created_at", now.clone()),
        ]),
        ("bootfiles", vec![
            ("kind", t("iso")), ("name", t("freebsd.iso")), ("sha256", t(&"c".repeat(64))),
            ("size", I(1 << 40)), ("source", t("upload")), ("created_at", now.clone()),
        ]),
        ("osimages", vec![
            ("name", t("freebsd")), ("version", t("14.1")), ("source_kind", t("iso")),
            ("source", t("freebsd.iso")), ("iso", t("freebsd.iso")), ("state", t("ready")),
            ("progress", Value::Real(1.0)), ("reason", Value::Null),
            ("dataset", t("osimages/x")), ("job_id", t("j1")), ("size", I(1 << 40)),
            ("sha256", t(&"c".repeat(64))), ("created_at", now.clone()), ("updated_at", now.clone()),
        ]),
        ("netboot", vec![
            ("mac", t("aa:bb:cc:dd:ee:ff")), ("image_id", Value::Null), ("tag", t("v1")),
            ("append", t("console=ttyS0")), ("created_at", now.clone()), ("updated_at", now),
        ]),
    ]
}

fn columns(s: &Store, table: &str) -> Vec<String> {
    let sql = match s.driver.dialect() {
        Dialect::Sqlite => "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
        Dialect::Postgres => {
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = ?1 ORDER BY ordinal_position"
        }
    };
    s.driver
        .query_map(sql, params![table], |r| r.get(0))
        .unwrap()
}

fn insert(db: &dyn Driver, table: &str, row: &[(&str, Value)]) -> Result<usize, DbError> {
    let names: Vec<&str> = row.iter().map(|c| c.0).collect();
    let marks: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    );
    let values: Vec<Value> = row.iter().map(|c| c.1.clone()).collect();
    db.execute(&sql, &values)
}

#[test]
fn fleet_tables_have_sqlites_columns_and_take_a_row_each() {
    for s in fleet_stores() {
        let name = s.name();
        for (table, row) in rows() {
            let mut want: Vec<&str> = row.iter().map(|c| c.0).collect();
            if table == "images" && s.driver.dialect() == Dialect::Postgres {
                want.push("seq"); // its rowid
            }
            assert_eq!(columns(&s, table), want, "{name}: {table}'s columns");
            insert(&*s.driver, table, &row).unwrap_or_else(|e| panic!("{name}: {table}: {e}"));
            let names: Vec<&str> = row.iter().map(|c| c.0).collect();
            let back: Vec<Value> = s
                .driver
                .query_row(
                    &format!("SELECT {} FROM {table}", names.join(", ")),
                    params![],
                    |r| (0..names.len()).map(|i| r.get::<Value>(i)).collect(),
                )
                .unwrap();
            let sent: Vec<Value> = row.into_iter().map(|c| c.1).collect();
            assert_eq!(back, sent, "{name}: {table}");
        }
    }
}

#[test]
fn fleet_constraints_hold_on_both() {
    for s in fleet_stores() {
        let name = s.name();
        let db = &*s.driver;
        for (table, row) in rows() {
            insert(db, table, &row).unwrap_or_else(|e| panic!("{name}: {table}: {e}"));
        }
        // A second row refused by each kind of key, named as SQLite names it.
        let refused = [
            ("uplinks", "name", "up", "uplinks.name"),
            ("builders", "digest", "sha256:00", "builders.digest"),
            ("launches", "pod_id", "p1", "launches.pod_id"),
        ];
        for (table, column, value, want) in refused {
            let mut row = rows().into_iter().find(|r| r.0 == table).unwrap().1;
            for c in row.iter_mut() {
                match c.0 {
                    // A fresh key, the same `column`.
                    "id" | "instance_id" => c.1 = t("fresh"),
                    "base_id" => c.1 = t("base1"),
                    _ => {}
                }
            }
            assert!(row.iter().any(|c| c.0 == column && c.1 == t(value)));
            match insert(db, table, &row) {
                Err(DbError::Unique { columns }) if columns == want => {}
                Err(DbError::Unique { columns })
                    if table == "builders" && columns == "builders.base_id" => {}
                other => panic!(
                    "{name}: {table}.{column}: {:?}",
                    other.map_err(|e| e.to_string())
                ),
            }
        }
        let bootfile = rows().into_iter().find(|r| r.0 == "bootfiles").unwrap().1;
        match insert(db, "bootfiles", &bootfile) {
            Err(DbError::Unique { columns }) => {
                assert_eq!(columns, "bootfiles.kind, bootfiles.name", "{name}")
            }
            other => panic!("{name}: bootfiles: {:?}", other.map_err(|e| e.to_string())),
        }
        // netboot: exactly one of image_id and tag.
        for (image, tag) in [(Value::Null, Value::Null), (t("x"), t("y"))] {
            let e = db.execute(
                "INSERT INTO netboot (mac, image_id, tag, created_at, updated_at)
                 VALUES ('00:00:00:00:00:01', ?1, ?2, 1, 1)",
                &[image, tag],
            );
            assert!(e.is_err(), "{name}: netboot's CHECK let a row in");
        }
        let append: String = db
            .query_row(
                "INSERT INTO netboot (mac, tag, created_at, updated_at)
                 VALUES ('00:00:00:00:00:02', 't', 1, 1) RETURNING append",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(append, "", "{name}: netboot.append's default");
        // An instance's panics go with it.
        assert_eq!(count(db, "SELECT count(*) FROM panics"), 1);
        db.execute("DELETE FROM instances WHERE id = ?1", params!["i1"])
            .unwrap();
        assert_eq!(
            count(db, "SELECT count(*) FROM panics"),
            0,
            "{name}: cascade"
        );
        // A panic of no instance is refused.
        let orphan = db.execute(
            "INSERT INTO panics (id, instance_id, text, created_at) VALUES ('p', 'none', '', 1)",
            params![],
        );
        assert!(orphan.is_err(), "{name}: panics' foreign key");
        // The store's upsert, as the shared dialect writes it.
        db.execute(
            "INSERT INTO bob_lists (provider_id, bobs, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (provider_id) DO UPDATE SET bobs = excluded.bobs, updated_at = excluded.updated_at",
            params!["local", "[1]", 2],
        )
        .unwrap();
        assert_eq!(count(db, "SELECT updated_at FROM bob_lists"), 2, "{name}");
    }
}

#[test]
fn fleet_schema_on_postgres_is_bigint_keeps_insertion_order_and_has_no_runtime_tables() {
    let Some(s) = fleet_stores().into_iter().find(|s| s.name() == "postgres") else {
        return;
    };
    let db = &*s.driver;
    let narrow: Vec<String> = db
        .query_map(
            "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> 'jetpack_migrations'
               AND data_type NOT IN ('bigint', 'text', 'double precision')",
            params![],
            |r| r.get(0),
        )
        .unwrap();
    assert!(narrow.is_empty(), "columns of other types: {narrow:?}");
    let tables: Vec<String> = db
        .query_map(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            params![],
            |r| r.get(0),
        )
        .unwrap();
    let mut want: Vec<&str> = rows().iter().map(|r| r.0).collect();
    want.push("jetpack_migrations");
    want.sort();
    assert_eq!(tables, want, "the fleet's tables, and no runtime ones");
    let indexes: Vec<String> = db
        .query_map(
            "SELECT indexname::text FROM pg_indexes WHERE indexname IN
             ('images_created', 'images_sha256', 'jobs_created') ORDER BY 1",
            params![],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, ["images_created", "images_sha256", "jobs_created"]);

    // Two images with a tag stored in the same second: the newest is the
    // one stored last (what netboot.rs asks of SQLite's rowid).
    let image = rows().into_iter().find(|r| r.0 == "images").unwrap().1;
    for id in ["f".repeat(40), "0".repeat(40)] {
        let mut row = image.clone();
        row[0].1 = t(&id);
        insert(db, "images", &row).unwrap();
    }
    let newest: String = db
        .query_row(
            "SELECT id FROM images WHERE tag = ?1 ORDER BY created_at DESC, seq DESC LIMIT 1",
            params!["v1"],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(newest, "0".repeat(40));
}
