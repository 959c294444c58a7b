//! Mothership's InfluxDB reporter (`metrics.reporter = influxdb`): every
//! STATS document an instance sends becomes a point in the database
//! `instance_stats`, and the server's figures (the registry's `Snapshot`)
//! go to `mothership` every `metrics.interval` seconds, as line protocol
//! to InfluxDB 1.x's `/write`. Set up as Mothership's was: `INFLUXDB_ADDR`,
//! `INFLUXDB_USERNAME`, `INFLUXDB_PASSWORD`, databases created beforehand.
//!
//! The hangar hands a STATS document over with `try_send` into a bounded
//! queue and never waits: when the queue is full (InfluxDB slow or down,
//! the reporter busy), the document is dropped and counted. One thread of
//! its own batches, gzips and POSTs (blocking ureq, with a timeout), so a
//! dead InfluxDB costs that thread's time alone, never the async workers'.
//!
//! - `line`: the line protocol and its escaping
//! - `worker`: the reporter's thread

pub mod line;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

use super::collect::Sources;
use super::instances::StatLimits;
use super::snapshot::{Family, Kind, Snapshot, Value};
use crate::hangar::fleet::{IdentFields, Live};
use crate::hangar::token::InstanceId;

/// STATS documents waiting for the reporter at most. At 20,000 instances
/// sending every 5 s that is 4,000 a second: a few seconds of them, a few
/// megabytes, before the hangar starts dropping.
pub const QUEUE: usize = 16_384;

/// Why the reporter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    #[error("metrics.reporter = influxdb needs INFLUXDB_ADDR (e.g. http://127.0.0.1:8086)")]
    NoAddress,
    #[error("INFLUXDB_ADDR {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    BadAddress(String),
    #[error("starting the InfluxDB reporter thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Where to write, and as whom. The password is kept out of `Debug`.
#[derive(Clone)]
pub struct Target {
    /// `http(s)://host:port`, without a trailing slash.
    pub addr: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Target {
    /// Mothership's variables. A bare `host:port` is taken as http.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Target, InfluxError> {
        let addr = get("INFLUXDB_ADDR")
            .filter(|a| !a.trim().is_empty())
            .ok_or(InfluxError::NoAddress)?;
        let addr = addr.trim();
        let (scheme, rest) = match addr.split_once("://") {
            Some((s @ ("http" | "https"), rest)) => (s, rest),
            Some(_) => return Err(InfluxError::BadAddress(addr.to_string())),
            None => ("http", addr),
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(InfluxError::BadAddress(addr.to_string()));
        }
        let addr = format!("{scheme}://{rest}");
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        Ok(Target {
            addr,
            username: nonempty("INFLUXDB_USERNAME"),
            password: nonempty("INFLUXDB_PASSWORD"),
        })
    }
}

/// What the reporter is started with.
pub struct Settings {
    pub target: Target,
    /// `metrics.interval`: the server's figures this often, and at most
    /// one log line about failures per interval.
    pub interval: Duration,
    /// `metrics.instances.stats`: fields per STATS point, as /metrics.
    pub stats: StatLimits,
    pub sources: Sources,
}

/// One STATS document, as the hangar hands it over (copied under the
/// instance's lock; parsed on the reporter's thread).
pub struct StatsDoc {
    pub at_ms: i64,
    pub instance_id: Box<str>,
    pub alias: Box<str>,
    pub tag: Box<str>,
    pub service: Box<str>,
    pub version: Box<str>,
    pub json: Box<str>,
}

/// The reporter's counters, shown on /metrics whether it runs or not.
#[derive(Default)]
pub struct Counters {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed_writes: AtomicU64,
    pub queue_full: AtomicU64,
}

pub fn counters() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(Counters::default)
}

static QUEUE_TX: OnceLock<SyncSender<StatsDoc>> = OnceLock::new();

/// Starts the reporter's thread (once per process); from then on the
/// hangar's STATS reach it.
pub fn start(settings: Settings) -> Result<(), InfluxError> {
    let (tx, rx) = sync_channel(QUEUE);
    tracing::info!(
        "metrics: reporting to InfluxDB at {} (databases instance_stats and mothership, every {} s{})",
        settings.target.addr,
        settings.interval.as_secs(),
        if settings.target.username.is_some() {
            ", with a user"
        } else {
            ""
        }
    );
    std::thread::Builder::new()
        .name("influx-reporter".into())
        .spawn(move || worker::run(settings, rx))
        .map_err(InfluxError::Thread)?;
    // A second start (tests in one process) keeps the first queue.
    let _ = QUEUE_TX.set(tx);
    Ok(())
}

/// The hangar's hook: a STATS document just kept for `id`. Never blocks;
/// nothing to do when no reporter runs.
pub fn stats(id: &InstanceId, live: &Live, at_ms: i64, json: &str) {
    let Some(tx) = QUEUE_TX.get() else {
        return;
    };
    let ident = IdentFields::of(live);
    let doc = StatsDoc {
        at_ms,
        instance_id: id.as_str().into(),
        alias: live.alias.as_deref().unwrap_or("").into(),
        tag: ident.tag.unwrap_or("").into(),
        service: ident.service.unwrap_or("").into(),
        version: ident.version.unwrap_or("").into(),
        json: json.into(),
    };
    match tx.try_send(doc) {
        Ok(()) => {}
        // One document is one point.
        Err(TrySendError::Full(_)) => {
            let c = counters();
            c.dropped.fetch_add(1, Relaxed);
            c.queue_full.fetch_add(1, Relaxed);
        }
        Err(TrySendError::Disconnected(_)) => {
            counters().dropped.fetch_add(1, Relaxed);
        }
    }
}

/// The reporter's families, for every exporter.
pub fn read(out: &mut Snapshot) {
    let c = counters();
    for (name, help, v) in [
        (
            "jetpack_influx_written_points",
            "Points InfluxDB accepted from the reporter",
            &c.written,
        ),
        (
            "jetpack_influx_dropped_points",
            "Points the InfluxDB reporter dropped (queue full, InfluxDB down, slow or refusing)",
            &c.dropped,
        ),
        (
            "jetpack_influx_failed_writes",
            "Writes to InfluxDB that failed (unreachable, timed out, or an error status)",
            &c.failed_writes,
        ),
    ] {
        out.add(Family::single(
            name,
            help,
            Kind::Counter,
            Value::Int(v.load(Relaxed)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
    }

    #[test]
    fn the_target_comes_from_mothership_s_variables() {
        let t = Target::from_env(env(&[
            ("INFLUXDB_ADDR", "http://127.0.0.1:8086/"),
            ("INFLUXDB_USERNAME", "u"),
            ("INFLUXDB_PASSWORD", "secret"),
        ]))
        .unwrap();
        assert_eq!(t.addr, "http://127.0.0.1:8086");
        assert_eq!(t.username.as_deref(), Some("u"));
        assert!(!format!("{t:?}").contains("secret"));
        let t = Target::from_env(env(&[("INFLUXDB_ADDR", "influx:8086")])).unwrap();
        assert_eq!(t.addr, "http://influx:8086");
        assert!(t.password.is_none());
        assert!(matches!(
            Target::from_env(env(&[])),
            Err(InfluxError::NoAddress)
        ));
        for bad in ["ftp://x:1", "http://", "http://a/b", "http://u:p@h:1"] {
            assert!(
                Target::from_env(env(&[("INFLUXDB_ADDR", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_counters_are_in_the_snapshot() {
        let mut s = Snapshot::default();
        read(&mut s);
        assert!(s.family("jetpack_influx_dropped_points").is_some());
        assert!(s.family("jetpack_influx_written_points").is_some());
        assert!(s.family("jetpack_influx_failed_writes").is_some());
    }
}
