//! The hosts table: each jetpack server's row (where its API and hangar
//! are, its pool, what it can take, what it held at its last heartbeat).
//! Heartbeats are stamped with the database's clock and ages read with
//! it, so hosts whose clocks disagree never see each other as down. When
//! a host counts as down is the `hosts` service's business.

use super::sql::{params, DbResult, Dialect, Row, Sql};
use super::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    Up,
    /// Takes no new work; what it runs moves elsewhere.
    Draining,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Up => "up",
            HostState::Draining => "draining",
        }
    }
}

/// What a host says of itself at each heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBeat {
    pub name: String,
    pub api_url: String,
    pub hangar_url: String,
    pub pool: String,
    pub capacity: u32,
    pub version: String,
    pub instances: u64,
    pub pods: u64,
    pub started_at: i64,
    /// SHA-256 of its API certificate (colon-separated hex; empty: no TLS).
    pub api_pin: String,
    /// The hypervisors it can launch instances with, comma-separated
    /// (empty: none, as without the hypervisor base).
    pub launch: String,
    /// Its memory in MiB and its cpus: the most one launch may have there
    /// (0: not said, by a host of an older jetpack).
    pub memory_mib: u64,
    pub cpus: u32,
}

impl HostBeat {
    /// The hypervisors it said it can launch with (`launch`, split).
    pub fn hypervisors(&self) -> impl Iterator<Item = &str> {
        self.launch.split(',').filter(|k| !k.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub beat: HostBeat,
    pub state: HostState,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub silent_ms: i64,
}

/// The database's clock in ms: the one clock every host shares.
fn now_ms(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

fn host_row(r: &Row) -> DbResult<HostRow> {
    Ok(HostRow {
        beat: HostBeat {
            name: r.get("name")?,
            api_url: r.get("api_url")?,
            hangar_url: r.get("hangar_url")?,
            pool: r.get("pool")?,
            capacity: r.get("capacity")?,
            version: r.get("version")?,
            instances: r.get("instances")?,
            pods: r.get("pods")?,
            started_at: r.get("started_at")?,
            api_pin: r.get("api_pin")?,
            launch: r.get("launch")?,
            memory_mib: r.get("memory_mib")?,
            cpus: r.get("cpus")?,
        },
        state: match r.get::<String>("state")?.as_str() {
            "up" => HostState::Up,
            "draining" => HostState::Draining,
            other => return Err(super::corrupt(format!("host state {other:?}"))),
        },
        silent_ms: r.get::<i64>("silent_ms")?.max(0),
    })
}

impl Store {
    /// Records a heartbeat: the row made on the first, refreshed after.
    /// A host that starts again keeps its state (a draining host stays
    /// draining until it is told otherwise).
    pub fn host_heartbeat(&self, b: &HostBeat) -> Result<(), StoreError> {
        let now = now_ms(self.dialect());
        self.db.execute(
            &format!(
                "INSERT INTO hosts (name, api_url, hangar_url, pool, capacity, version, state,
                     instances, pods, started_at, heartbeat_at, api_pin, launch, memory_mib, cpus)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'up', ?7, ?8, ?9, {now}, ?10, ?11, ?12, ?13)
                 ON CONFLICT (name) DO UPDATE SET api_url = ?2, hangar_url = ?3, pool = ?4,
                     capacity = ?5, version = ?6, instances = ?7, pods = ?8, started_at = ?9,
                     heartbeat_at = {now}, api_pin = ?10, launch = ?11, memory_mib = ?12,
                     cpus = ?13"
            ),
            params![
                b.name,
                b.api_url,
                b.hangar_url,
                b.pool,
                b.capacity,
                b.version,
                b.instances as i64,
                b.pods as i64,
                b.started_at,
                b.api_pin,
                b.launch,
                b.memory_mib as i64,
                b.cpus
            ],
        )?;
        Ok(())
    }

    /// The secret hosts sharing this store present to each other: made
    /// by whichever asks first, the same for all after.
    pub fn fleet_secret(&self) -> Result<String, StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Random(e.to_string()))?;
        self.db.execute(
            "INSERT INTO fleet_secret (id, secret) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
            params![hex::encode(fresh)],
        )?;
        Ok(self
            .db
            .query_row("SELECT secret FROM fleet_secret", params![], |r| r.get(0))?)
    }

    pub fn hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let sql = format!(
            "SELECT *, {} - heartbeat_at AS silent_ms FROM hosts ORDER BY name",
            now_ms(self.dialect())
        );
        Ok(self.db.query_map(&sql, params![], host_row)?)
    }

    /// Sets a host's state; false when there is no such host.
    pub fn set_host_state(&self, name: &str, state: HostState) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            "UPDATE hosts SET state = ?2 WHERE name = ?1",
            params![name, state.as_str()],
        )? > 0)
    }

    /// Forgets a host, only if it has been silent for `silent_ms` at least
    /// (checked in the statement: a host that beats meanwhile stays).
    /// Some(false): it is not silent long enough; None: no such host.
    pub fn delete_silent_host(
        &self,
        name: &str,
        silent_ms: i64,
    ) -> Result<Option<bool>, StoreError> {
        let tx = self.write_tx()?;
        let now = now_ms(self.dialect());
        let exists: Option<i64> =
            tx.query_opt("SELECT 1 FROM hosts WHERE name = ?1", params![name], |r| {
                r.get(0)
            })?;
        if exists.is_none() {
            return Ok(None);
        }
        let n = tx.execute(
            &format!("DELETE FROM hosts WHERE name = ?1 AND {now} - heartbeat_at >= ?2"),
            params![name, silent_ms],
        )?;
        tx.commit()?;
        Ok(Some(n > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(name: &str) -> HostBeat {
        HostBeat {
            name: name.into(),
            api_url: "https://a:8080".into(),
            hangar_url: "https://a:9090".into(),
            pool: "zroot/jetpack".into(),
            capacity: 2,
            version: "0.1.0".into(),
            instances: 3,
            pods: 1,
            started_at: 7,
            api_pin: "AB:CD".into(),
            launch: "qemu".into(),
            memory_mib: 4096,
            cpus: 2,
        }
    }

    #[test]
    fn the_fleet_secret_is_made_once() {
        let s = Store::in_memory();
        let first = s.fleet_secret().unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(s.fleet_secret().unwrap(), first);
    }

    #[test]
    fn hosts_beat_keep_their_state_and_go_only_when_silent() {
        let s = Store::in_memory();
        s.host_heartbeat(&beat("b")).unwrap();
        s.host_heartbeat(&beat("a")).unwrap();
        let hosts = s.hosts().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].beat, beat("a"));
        assert_eq!(hosts[0].state, HostState::Up);
        assert!(hosts[0].silent_ms < 5_000, "{}", hosts[0].silent_ms);
        assert!(s.set_host_state("a", HostState::Draining).unwrap());
        assert!(!s.set_host_state("nobody", HostState::Draining).unwrap());
        let mut again = beat("a");
        again.instances = 9;
        s.host_heartbeat(&again).unwrap();
        let a = &s.hosts().unwrap()[0];
        assert_eq!((a.state, a.beat.instances), (HostState::Draining, 9));
        assert_eq!(s.delete_silent_host("a", 60_000).unwrap(), Some(false));
        assert_eq!(s.delete_silent_host("nobody", 0).unwrap(), None);
        assert_eq!(s.delete_silent_host("a", 0).unwrap(), Some(true));
        assert_eq!(s.hosts().unwrap().len(), 1);
    }
}
