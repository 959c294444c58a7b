//! The store: jetpack's state in a database, through a driver (`sql`):
//! SQLite (WAL) on one host, PostgreSQL for the fleet's tables when
//! several hosts share them. It owns the schemas and their migrations (one
//! set per driver) and offers typed reads and transactional writes of
//! bases and pods (here), of the server's documents (`catalog`), jobs
//! (`jobs`), builders (`builders`) and instances (`instances`), and blobs
//! on disk (`blobs`); it knows nothing of datasets, jails or HTTP.

pub mod backup;
pub mod blobs;
pub mod bootfiles;
pub mod builders;
pub mod catalog;
pub mod hosts;
pub mod instances;
pub mod jobs;
pub mod launches;
pub mod metrics;
pub mod netboot;
pub mod placement;
pub mod pod_policy;
pub mod private;
pub mod sql;
pub mod volumes;

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;

use sql::{params, DbError, DbResult, Driver, Row, Sql};

use crate::names::{BaseId, Name, NameError, PodId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database: {0}")]
    Db(#[from] DbError),
    #[error("state database {path}: {source}")]
    Open { path: String, source: DbError },
    #[error("state database {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("state database holds a bad value: {0}")]
    Corrupt(String),
    #[error("no free address left in {0}")]
    NoAddress(String),
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    #[error("no volume {0:?}")]
    NoSuchVolume(String),
    #[error("making a random secret: {0}")]
    Random(String),
    #[error("the database password file {path}: {source}")]
    Secret {
        path: String,
        source: std::io::Error,
    },
}

/// The SQLite schema's migrations, applied in order; `PRAGMA user_version`
/// counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_runtime.sql"),
    include_str!("migrations/sqlite/0002_server.sql"),
    include_str!("migrations/sqlite/0003_instances.sql"),
    include_str!("migrations/sqlite/0004_builders.sql"),
    include_str!("migrations/sqlite/0005_launches.sql"),
    include_str!("migrations/sqlite/0006_bootfiles.sql"),
    include_str!("migrations/sqlite/0007_netboot.sql"),
    include_str!("migrations/sqlite/0008_volumes.sql"),
    include_str!("migrations/sqlite/0009_pod_policy.sql"),
    include_str!("migrations/sqlite/0010_limits.sql"),
    include_str!("migrations/sqlite/0011_hosts.sql"),
    include_str!("migrations/sqlite/0012_spread.sql"),
    include_str!("migrations/sqlite/0013_queue.sql"),
    include_str!("migrations/sqlite/0014_placement.sql"),
    include_str!("migrations/sqlite/0015_bootfile_hosts.sql"),
    include_str!("migrations/sqlite/0016_host_size.sql"),
];

/// The PostgreSQL schema's migrations (the fleet's tables only: bases,
/// pods and volumes stay in each host's SQLite).
const PG_MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_fleet.sql"),
    include_str!("migrations/postgres/0002_hosts.sql"),
    include_str!("migrations/postgres/0003_spread.sql"),
    include_str!("migrations/postgres/0004_queue.sql"),
    include_str!("migrations/postgres/0005_placement.sql"),
    include_str!("migrations/postgres/0006_bootfile_hosts.sql"),
    include_str!("migrations/postgres/0007_host_size.sql"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseState {
    Importing,
    Ready,
    Removing,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaseRow {
    pub id: BaseId,
    pub name: Name,
    pub source: String,
    pub size: u64,
    pub state: BaseState,
    pub created_at: i64,
}

/// A pod's life-cycle state, as stored. `created|running|stopping|exited|dead`
/// are the states users see; `creating` and `removing` mark work in flight
/// (a crash leaves them visible so that `pod rm` can finish the job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PodState {
    Creating,
    Created,
    Running,
    Stopping,
    Exited,
    Dead,
    Removing,
}

impl PodState {
    fn as_str(self) -> &'static str {
        match self {
            PodState::Creating => "creating",
            PodState::Created => "created",
            PodState::Running => "running",
            PodState::Stopping => "stopping",
            PodState::Exited => "exited",
            PodState::Dead => "dead",
            PodState::Removing => "removing",
        }
    }

    fn parse(s: &str) -> Result<PodState, StoreError> {
        Ok(match s {
            "creating" => PodState::Creating,
            "created" => PodState::Created,
            "running" => PodState::Running,
            "stopping" => PodState::Stopping,
            "exited" => PodState::Exited,
            "dead" => PodState::Dead,
            "removing" => PodState::Removing,
            _ => return Err(StoreError::Corrupt(format!("pod state {s:?}"))),
        })
    }

    /// A pod whose cell may hold processes.
    pub fn is_active(self) -> bool {
        matches!(self, PodState::Running | PodState::Stopping)
    }

    /// A pod that can be started: it has a finished clone and no cell.
    pub fn can_start(self) -> bool {
        matches!(self, PodState::Created | PodState::Exited | PodState::Dead)
    }

    /// A pod whose cell processes can be run in (exec, run, attach): one
    /// that has a cell, even while it is being stopped.
    pub fn can_exec(self) -> bool {
        self.is_active()
    }

    /// A pod that can be stopped: its cell may hold processes.
    pub fn can_stop(self) -> bool {
        self.is_active()
    }

    /// A pod that can be removed as it is, without stopping it first
    /// (`force`); a pod being created or removed counts, so that a half-made
    /// or half-removed pod can be cleaned up.
    pub fn can_remove(self) -> bool {
        !self.is_active()
    }
}

impl std::fmt::Display for PodState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PodRow {
    pub id: PodId,
    pub name: Option<Name>,
    pub base_id: BaseId,
    pub command: Vec<String>,
    pub address: Option<Ipv4Addr>,
    pub state: PodState,
    #[serde(skip)]
    pub cell: Option<String>,
    pub exit_code: Option<i32>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The pod's own environment variables.
    pub env: std::collections::BTreeMap<String, String>,
    pub volumes: Vec<PodVolume>,
    /// Its resource limits (`runtime::limits`), checked when made.
    pub limits: crate::runtime::limits::Limits,
    /// Why it ended when the kernel ended it (its memory limit).
    pub exit_reason: Option<String>,
    #[serde(flatten)]
    pub policy: PodPolicy,
    /// How often its supervisor ran its command again since it started.
    pub restarts: u32,
}

pub use pod_policy::PodPolicy;
pub use volumes::{PodVolume, VolumeRow};

pub struct Store {
    db: Box<dyn Driver>,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn corrupt<E: std::fmt::Display>(e: E) -> DbError {
    DbError::Corrupt(e.to_string())
}

/// A JSON column read back; text that does not parse is a corrupt row.
pub(super) fn json_col(r: &Row, col: &str) -> DbResult<Option<serde_json::Value>> {
    let text: Option<String> = r.get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(corrupt))
        .transpose()
}

/// A typed id read back: checked again, a bad one is a corrupt row.
pub(super) fn id_of<T>(r: &Row, col: &str, make: fn(&str) -> Result<T, NameError>) -> DbResult<T> {
    make(&r.get::<String>(col)?).map_err(corrupt)
}

/// The same for a column that may be NULL.
pub(super) fn id_col<T>(
    r: &Row,
    col: &str,
    make: fn(&str) -> Result<T, NameError>,
) -> DbResult<Option<T>> {
    r.get::<Option<String>>(col)?
        .map(|s| make(&s).map_err(corrupt))
        .transpose()
}

fn base_row(r: &Row) -> DbResult<BaseRow> {
    let state: String = r.get("state")?;
    Ok(BaseRow {
        id: id_of(r, "id", BaseId::new)?,
        name: Name::new("base name", &r.get::<String>("name")?).map_err(corrupt)?,
        source: r.get("source")?,
        size: r.get::<i64>("size")? as u64,
        state: match state.as_str() {
            "importing" => BaseState::Importing,
            "ready" => BaseState::Ready,
            "removing" => BaseState::Removing,
            other => return Err(corrupt(format!("base state {other:?}"))),
        },
        created_at: r.get("created_at")?,
    })
}

fn pod_row(r: &Row) -> DbResult<PodRow> {
    let name: Option<String> = r.get("name")?;
    let address: Option<String> = r.get("address")?;
    let command: String = r.get("command")?;
    Ok(PodRow {
        id: id_of(r, "id", PodId::new)?,
        name: name
            .map(|n| Name::new("pod name", &n))
            .transpose()
            .map_err(corrupt)?,
        base_id: id_of(r, "base_id", BaseId::new)?,
        command: serde_json::from_str(&command).map_err(corrupt)?,
        address: address.map(|a| a.parse()).transpose().map_err(corrupt)?,
        state: PodState::parse(&r.get::<String>("state")?).map_err(corrupt)?,
        cell: r.get("cell")?,
        exit_code: r.get("exit_code")?,
        created_at: r.get("created_at")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        env: serde_json::from_str(&r.get::<String>("env")?).map_err(corrupt)?,
        volumes: serde_json::from_str(&r.get::<String>("volumes")?).map_err(corrupt)?,
        limits: serde_json::from_str(&r.get::<String>("limits")?).map_err(corrupt)?,
        exit_reason: r.get("exit_reason")?,
        policy: PodPolicy::from_row(r)?,
        restarts: r.get("restarts")?,
    })
}

fn base_state_str(s: BaseState) -> &'static str {
    match s {
        BaseState::Importing => "importing",
        BaseState::Ready => "ready",
        BaseState::Removing => "removing",
    }
}

/// A UNIQUE refusal on a `name` column is a taken name; anything else
/// stays the driver's error.
pub(crate) fn name_taken(e: DbError, name: &str) -> StoreError {
    match &e {
        DbError::Unique { columns } if columns.contains(".name") => {
            StoreError::NameTaken(name.to_string())
        }
        _ => StoreError::Db(e),
    }
}

impl Store {
    /// A transaction that takes the write lock at once (see `Driver`).
    pub(crate) fn write_tx(&self) -> DbResult<Box<dyn sql::Tx + '_>> {
        self.db.write_tx()
    }

    /// Opens (creating if needed) the SQLite database at `path` and
    /// migrates it. A new database is made 0600 first: SQLite would make
    /// it 0644, and its WAL and SHM files take the database's mode.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        private::precreate(path).map_err(|source| StoreError::File {
            path: path.display().to_string(),
            source,
        })?;
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut db = sql::sqlite::SqliteDriver::open(path).map_err(open_err)?;
        db.migrate(MIGRATIONS)?;
        Ok(Store { db: Box::new(db) })
    }

    /// The fleet's tables on PostgreSQL, migrated under an advisory lock
    /// (`by` names this host in `jetpack_migrations`).
    pub fn open_postgres(
        options: &sql::postgres::PgOptions,
        by: &str,
    ) -> Result<Store, StoreError> {
        let db = sql::postgres::PgDriver::connect(options)?;
        db.migrate(PG_MIGRATIONS, by)?;
        Ok(Store { db: Box::new(db) })
    }

    /// The store of the fleet's tables `driver` names: this host's SQLite
    /// at `db`, or the shared PostgreSQL (`host` names who migrated it).
    pub fn open_shared(
        driver: &crate::config::StoreDriver,
        db: &Path,
        host: &str,
    ) -> Result<Store, StoreError> {
        use crate::config::StoreDriver;
        let pg = match driver {
            StoreDriver::Sqlite => return Store::open(db),
            StoreDriver::Postgres(pg) => pg,
        };
        let password = match &pg.password_file {
            Some(path) => {
                Some(
                    private::read_secret(path).map_err(|source| StoreError::Secret {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            None => std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
        };
        let options = sql::postgres::PgOptions {
            url: pg.url.clone(),
            password,
            tls: pg.tls,
            ca: pg.ca.clone(),
            pool: pg.pool,
            timeout: pg.timeout,
        };
        Store::open_postgres(&options, host)
    }

    pub fn dialect(&self) -> sql::Dialect {
        self.db.dialect()
    }

    #[cfg(test)]
    pub fn in_memory() -> Store {
        let mut db = sql::sqlite::SqliteDriver::in_memory().unwrap();
        db.migrate(MIGRATIONS).unwrap();
        Store { db: Box::new(db) }
    }

    // ---- bases ----

    pub fn insert_base(&self, b: &BaseRow) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO bases (id, name, source, size, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![b.id.as_str(), b.name.as_str(), b.source, b.size as i64, base_state_str(b.state), b.created_at],
            )
            .map_err(|e| name_taken(e, b.name.as_str()))?;
        Ok(())
    }

    pub fn set_base_state(&self, id: &BaseId, state: BaseState) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE bases SET state = ?2 WHERE id = ?1",
            params![id.as_str(), base_state_str(state)],
        )?;
        Ok(())
    }

    pub fn delete_base(&self, id: &BaseId) -> Result<(), StoreError> {
        self.db
            .execute("DELETE FROM bases WHERE id = ?1", params![id.as_str()])?;
        Ok(())
    }

    pub fn bases(&self) -> Result<Vec<BaseRow>, StoreError> {
        let rows = self
            .db
            .query_map("SELECT * FROM bases ORDER BY name", params![], base_row)?;
        Ok(rows)
    }

    pub fn base_by_id(&self, id: &BaseId) -> Result<Option<BaseRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM bases WHERE id = ?1",
            params![id.as_str()],
            base_row,
        )?)
    }

    /// Finds a base by name, full id or unambiguous id prefix (at least 4
    /// hex digits). Returns every match so that the caller can tell "none"
    /// from "ambiguous".
    pub fn find_bases(&self, reference: &str) -> Result<Vec<BaseRow>, StoreError> {
        let by_name = self.db.query_map(
            "SELECT * FROM bases WHERE name = ?1",
            params![reference],
            base_row,
        )?;
        if !by_name.is_empty() {
            return Ok(by_name);
        }
        if reference.len() < 4 || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(vec![]);
        }
        let rows = self.db.query_map(
            "SELECT * FROM bases WHERE substr(id, 1, ?2) = ?1",
            params![reference.to_ascii_lowercase(), reference.len() as i64],
            base_row,
        )?;
        Ok(rows)
    }

    pub fn pods_of_base(&self, id: &BaseId) -> Result<Vec<PodRow>, StoreError> {
        let rows = self.db.query_map(
            "SELECT * FROM pods WHERE base_id = ?1",
            params![id.as_str()],
            pod_row,
        )?;
        Ok(rows)
    }

    // ---- pods ----

    /// Inserts a pod in state `creating` and gives it the lowest free address
    /// of `range`, in one transaction, so two concurrent creations can never
    /// get the same address.
    pub fn insert_pod(
        &self,
        pod: &PodRow,
        range: impl Iterator<Item = Ipv4Addr>,
        range_text: &str,
    ) -> Result<Ipv4Addr, StoreError> {
        let tx = self.write_tx()?;
        let used: std::collections::HashSet<String> = tx
            .query_map(
                "SELECT address FROM pods WHERE address IS NOT NULL",
                params![],
                |r| r.get::<String>(0),
            )?
            .into_iter()
            .collect();
        let address = range
            .into_iter()
            .find(|a| !used.contains(&a.to_string()))
            .ok_or_else(|| StoreError::NoAddress(range_text.to_string()))?;
        // Checked in the transaction: a named volume cannot be removed
        // between this check and the pod's row (`delete_volume` reads
        // the pods in its own).
        volumes::check_named(&*tx, &pod.volumes)?;
        tx.execute(
            "INSERT INTO pods (id, name, base_id, command, address, state, created_at, env, volumes, limits, restart, autostart, publish, vnet) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                pod.id.as_str(),
                pod.name.as_ref().map(|n| n.as_str()),
                pod.base_id.as_str(),
                serde_json::to_string(&pod.command).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                address.to_string(),
                PodState::Creating.as_str(),
                pod.created_at,
                to_json(&pod.env)?,
                to_json(&pod.volumes)?,
                to_json(&pod.limits)?,
                pod.policy.restart.as_str(),
                pod.policy.autostart,
                pod.policy.publish_json()?,
                pod.policy.vnet,
            ],
        )
        .map_err(|e| name_taken(e, pod.name.as_ref().map(|n| n.as_str()).unwrap_or("")))?;
        tx.commit()?;
        Ok(address)
    }

    pub fn set_pod_state(&self, id: &PodId, state: PodState) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE pods SET state = ?2 WHERE id = ?1",
            params![id.as_str(), state.as_str()],
        )?;
        Ok(())
    }

    /// Marks a pod running in `cell` and clears its last exit.
    pub fn pod_started(&self, id: &PodId, cell: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE pods SET state = 'running', cell = ?2, exit_code = NULL, exit_reason = NULL, restarts = 0, started_at = ?3, finished_at = NULL WHERE id = ?1",
            params![id.as_str(), cell, now()],
        )?;
        Ok(())
    }

    /// Records how a pod's run ended: `Exited` (with the exit code when
    /// known) or `Dead` (lost). Only a pod still running or stopping is
    /// changed, so the first of several reporters wins.
    pub fn pod_finished(
        &self,
        id: &PodId,
        state: PodState,
        exit_code: Option<i32>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE pods SET state = ?2, cell = NULL, exit_code = ?3, finished_at = ?4 WHERE id = ?1 AND state IN ('running', 'stopping')",
            params![id.as_str(), state.as_str(), exit_code, now()],
        )?;
        Ok(())
    }

    /// Says why a pod that just ended was ended (by the kernel).
    pub fn set_pod_exit_reason(&self, id: &PodId, reason: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE pods SET exit_reason = ?2 WHERE id = ?1",
            params![id.as_str(), reason],
        )?;
        Ok(())
    }

    pub fn delete_pod(&self, id: &PodId) -> Result<(), StoreError> {
        self.db
            .execute("DELETE FROM pods WHERE id = ?1", params![id.as_str()])?;
        Ok(())
    }

    pub fn pods(&self) -> Result<Vec<PodRow>, StoreError> {
        let rows = self.db.query_map(
            "SELECT * FROM pods ORDER BY created_at, id",
            params![],
            pod_row,
        )?;
        Ok(rows)
    }

    pub fn pod(&self, id: &PodId) -> Result<Option<PodRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM pods WHERE id = ?1",
            params![id.as_str()],
            pod_row,
        )?)
    }

    /// Finds a pod by name, full uuid or unambiguous uuid prefix.
    pub fn find_pods(&self, reference: &str) -> Result<Vec<PodRow>, StoreError> {
        let exact = self.db.query_map(
            "SELECT * FROM pods WHERE name = ?1 OR id = ?1",
            params![reference],
            pod_row,
        )?;
        if !exact.is_empty() {
            return Ok(exact);
        }
        if reference.len() < 4
            || !reference
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Ok(vec![]);
        }
        let rows = self.db.query_map(
            "SELECT * FROM pods WHERE substr(id, 1, ?2) = ?1",
            params![reference.to_ascii_lowercase(), reference.len() as i64],
            pod_row,
        )?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each predicate over every state, so the pod state machine's table
    /// is read (and changed) in one place.
    #[test]
    fn pod_state_predicates() {
        use PodState::*;
        let all = [Creating, Created, Running, Stopping, Exited, Dead, Removing];
        let which = |p: fn(PodState) -> bool| -> Vec<PodState> {
            all.into_iter().filter(|s| p(*s)).collect()
        };
        assert_eq!(which(PodState::is_active), [Running, Stopping]);
        assert_eq!(which(PodState::can_start), [Created, Exited, Dead]);
        assert_eq!(which(PodState::can_exec), [Running, Stopping]);
        assert_eq!(which(PodState::can_stop), [Running, Stopping]);
        assert_eq!(
            which(PodState::can_remove),
            [Creating, Created, Exited, Dead, Removing]
        );
        for s in all {
            assert_eq!(PodState::parse(s.as_str()).unwrap(), s);
        }
    }

    fn base(store: &Store, name: &str) -> BaseRow {
        let b = BaseRow {
            id: BaseId::new(&format!("{:0>64}", hex::encode(name))).unwrap(),
            name: Name::new("base", name).unwrap(),
            source: "test".into(),
            size: 1,
            state: BaseState::Ready,
            created_at: now(),
        };
        store.insert_base(&b).unwrap();
        b
    }

    fn pod(base: &BaseRow, name: Option<&str>) -> PodRow {
        PodRow {
            id: PodId::random(),
            name: name.map(|n| Name::new("pod", n).unwrap()),
            base_id: base.id.clone(),
            command: vec!["/bin/sh".into()],
            address: None,
            state: PodState::Creating,
            cell: None,
            exit_code: None,
            created_at: now(),
            started_at: None,
            finished_at: None,
            env: Default::default(),
            volumes: Vec::new(),
            limits: Default::default(),
            exit_reason: None,
            policy: PodPolicy::default(),
            restarts: 0,
        }
    }

    #[test]
    fn migrations_are_idempotent_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let s = Store::open(&path).unwrap();
        let v: i64 =
            s.db.query_row("PRAGMA user_version", params![], |r| r.get(0))
                .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        s.db.execute("PRAGMA user_version = 99", params![]).unwrap();
        drop(s);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Db(DbError::TooNew(99)))
        ));
    }

    #[test]
    fn addresses_are_unique_and_released() {
        let s = Store::in_memory();
        let b = base(&s, "bb");
        let range = crate::config::Ipv4Net::parse("10.9.0.0/29").unwrap();
        let p1 = pod(&b, None);
        let p2 = pod(&b, None);
        let a1 = s.insert_pod(&p1, range.pod_addresses(), "r").unwrap();
        let a2 = s.insert_pod(&p2, range.pod_addresses(), "r").unwrap();
        assert_ne!(a1, a2);
        s.delete_pod(&p1.id).unwrap();
        let p3 = pod(&b, None);
        assert_eq!(s.insert_pod(&p3, range.pod_addresses(), "r").unwrap(), a1);
        for _ in 0..3 {
            s.insert_pod(&pod(&b, None), range.pod_addresses(), "r")
                .unwrap();
        }
        assert!(matches!(
            s.insert_pod(&pod(&b, None), range.pod_addresses(), "r"),
            Err(StoreError::NoAddress(_))
        ));
    }

    #[test]
    fn names_are_unique_and_lookup_by_prefix() {
        let s = Store::in_memory();
        let b = base(&s, "bb");
        assert!(matches!(
            s.insert_base(&BaseRow {
                id: BaseId::new(&"f".repeat(64)).unwrap(),
                ..b.clone()
            }),
            Err(StoreError::NameTaken(_))
        ));
        let range = crate::config::Ipv4Net::parse("10.9.0.0/24").unwrap();
        let p = pod(&b, Some("web"));
        s.insert_pod(&p, range.pod_addresses(), "r").unwrap();
        assert!(matches!(
            s.insert_pod(&pod(&b, Some("web")), range.pod_addresses(), "r"),
            Err(StoreError::NameTaken(_))
        ));
        assert_eq!(s.find_pods("web").unwrap().len(), 1);
        assert_eq!(s.find_pods(&p.id.as_str()[..6]).unwrap()[0].id, p.id);
        assert!(s.find_pods("nope").unwrap().is_empty());
        assert_eq!(s.find_bases("bb").unwrap().len(), 1);
        assert_eq!(s.find_bases(&b.id.as_str()[..8]).unwrap().len(), 1);
        assert_eq!(s.pods_of_base(&b.id).unwrap().len(), 1);
    }

    #[test]
    fn pod_life_cycle_columns() {
        let s = Store::in_memory();
        let b = base(&s, "bb");
        let range = crate::config::Ipv4Net::parse("10.9.0.0/24").unwrap();
        let p = pod(&b, None);
        s.insert_pod(&p, range.pod_addresses(), "r").unwrap();
        s.set_pod_state(&p.id, PodState::Created).unwrap();
        s.pod_started(&p.id, "cell-1").unwrap();
        let r = s.pod(&p.id).unwrap().unwrap();
        assert_eq!(
            (r.state, r.cell.as_deref()),
            (PodState::Running, Some("cell-1"))
        );
        s.pod_finished(&p.id, PodState::Exited, Some(3)).unwrap();
        let r = s.pod(&p.id).unwrap().unwrap();
        assert_eq!(
            (r.state, r.exit_code, r.cell),
            (PodState::Exited, Some(3), None)
        );
        // A finish recorded twice (supervisor and reaper) keeps the first.
        s.pod_finished(&p.id, PodState::Dead, None).unwrap();
        assert_eq!(s.pod(&p.id).unwrap().unwrap().state, PodState::Exited);
    }
}
