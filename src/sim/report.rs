//! The simulator's counters, shared by every instance task (atomics: the
//! hot path takes no lock), and the two kinds of line printed from them:
//! a progress line every `--report-ms`, and the `summary` at the end.
//! Both are space-separated `key=value`, so scripts can parse them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Counters {
    start: Instant,
    count: u64,
    /// Docked now (a gauge).
    connected: AtomicU64,
    /// Instances that have docked at least once.
    docked_once: AtomicU64,
    /// Microseconds from the start until every instance had docked once;
    /// `u64::MAX` until then.
    all_docked_us: AtomicU64,
    docks: AtomicU64,
    auth_fail: AtomicU64,
    dock_fail: AtomicU64,
    disconnects: AtomicU64,
    heartbeat_lost: AtomicU64,
    /// WebSocket frames, both ways (transports, pings, pongs).
    sent: AtomicU64,
    recv: AtomicU64,
    updates: AtomicU64,
    panics: AtomicU64,
    stats_requests: AtomicU64,
    /// One failure's description, shown at the next report (not every
    /// failure of 20,000 instances is worth a line).
    last_error: Mutex<Option<String>>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub connected: u64,
    pub docked_once: u64,
    pub docks: u64,
    pub auth_fail: u64,
    pub dock_fail: u64,
    pub disconnects: u64,
    pub heartbeat_lost: u64,
    pub sent: u64,
    pub recv: u64,
    pub updates: u64,
    pub panics: u64,
    pub stats_requests: u64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn new(count: u64) -> Counters {
        Counters {
            start: Instant::now(),
            count,
            connected: AtomicU64::new(0),
            docked_once: AtomicU64::new(0),
            all_docked_us: AtomicU64::new(u64::MAX),
            docks: AtomicU64::new(0),
            auth_fail: AtomicU64::new(0),
            dock_fail: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            heartbeat_lost: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            recv: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            stats_requests: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// How many instances the run has.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A dock opened; `first`: this instance's first.
    pub fn docked(&self, first: bool) {
        bump(&self.docks);
        bump(&self.connected);
        if first && self.docked_once.fetch_add(1, Ordering::Relaxed) + 1 == self.count {
            let us = self.start.elapsed().as_micros().min(u64::MAX as u128 - 1) as u64;
            self.all_docked_us.store(us, Ordering::Relaxed);
        }
    }

    /// A dock ended; `heartbeat`: because pongs stopped coming.
    pub fn undocked(&self, heartbeat: bool) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
        bump(&self.disconnects);
        if heartbeat {
            bump(&self.heartbeat_lost);
        }
    }

    pub fn auth_failed(&self, why: impl FnOnce() -> String) {
        bump(&self.auth_fail);
        self.note(why);
    }

    pub fn dock_failed(&self, why: impl FnOnce() -> String) {
        bump(&self.dock_fail);
        self.note(why);
    }

    pub fn sent(&self) {
        bump(&self.sent);
    }

    pub fn received(&self) {
        bump(&self.recv);
    }

    pub fn updated(&self) {
        bump(&self.updates);
    }

    pub fn panicked(&self) {
        bump(&self.panics);
    }

    pub fn stats_requested(&self) {
        bump(&self.stats_requests);
    }

    /// Keeps `why` for the next report unless one is kept already.
    pub fn note(&self, why: impl FnOnce() -> String) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none() {
            *last = Some(why());
        }
    }

    pub fn take_note(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// When every instance had docked once, counted from the start.
    pub fn all_docked(&self) -> Option<Duration> {
        match self.all_docked_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            connected: get(&self.connected),
            docked_once: get(&self.docked_once),
            docks: get(&self.docks),
            auth_fail: get(&self.auth_fail),
            dock_fail: get(&self.dock_fail),
            disconnects: get(&self.disconnects),
            heartbeat_lost: get(&self.heartbeat_lost),
            sent: get(&self.sent),
            recv: get(&self.recv),
            updates: get(&self.updates),
            panics: get(&self.panics),
            stats_requests: get(&self.stats_requests),
        }
    }
}

fn per_second(n: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        n as f64 / over.as_secs_f64()
    }
}

/// `t=12s connected=19987/20000 docks=20011 ... sent=21034/s recv=4012/s updates=0`:
/// the rates are over the interval since `before`.
pub fn progress_line(
    t: Duration,
    count: u64,
    now: &Snapshot,
    before: &Snapshot,
    interval: Duration,
) -> String {
    format!(
        "t={}s connected={}/{count} docks={} auth_fail={} dock_fail={} disconnects={} sent={:.0}/s recv={:.0}/s updates={}",
        t.as_secs(),
        now.connected,
        now.docks,
        now.auth_fail,
        now.dock_fail,
        now.disconnects,
        per_second(now.sent - before.sent, interval),
        per_second(now.recv - before.recv, interval),
        now.updates,
    )
}

/// The last line: totals, whole-run rates, and the docking rate (instances
/// per second from the start until all of them had docked once; `none`
/// if they never all did).
pub fn summary_line(
    elapsed: Duration,
    count: u64,
    s: &Snapshot,
    all_docked: Option<Duration>,
) -> String {
    let mut line = format!(
        "summary elapsed_s={:.3} count={count} connected={} docked_once={} docks={} auth_fail={} dock_fail={} \
         disconnects={} heartbeat_lost={} sent={} recv={} sent_per_s={:.1} recv_per_s={:.1} updates={} panics={} \
         stats_requests={}",
        elapsed.as_secs_f64(),
        s.connected,
        s.docked_once,
        s.docks,
        s.auth_fail,
        s.dock_fail,
        s.disconnects,
        s.heartbeat_lost,
        s.sent,
        s.recv,
        per_second(s.sent, elapsed),
        per_second(s.recv, elapsed),
        s.updates,
        s.panics,
        s.stats_requests,
    );
    let _ = match all_docked {
        Some(at) => write!(
            line,
            " all_docked_s={:.3} dock_rate_per_s={:.1}",
            at.as_secs_f64(),
            per_second(count, at)
        ),
        None => write!(line, " all_docked_s=none dock_rate_per_s=none"),
    };
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_key_value() {
        let before = Snapshot {
            sent: 100,
            recv: 10,
            ..Snapshot::default()
        };
        let now = Snapshot {
            connected: 3,
            docks: 4,
            disconnects: 1,
            sent: 300,
            recv: 30,
            ..Snapshot::default()
        };
        assert_eq!(
            progress_line(Duration::from_millis(12_400), 5, &now, &before, Duration::from_secs(2)),
            "t=12s connected=3/5 docks=4 auth_fail=0 dock_fail=0 disconnects=1 sent=100/s recv=10/s updates=0"
        );
        let line = summary_line(
            Duration::from_secs(10),
            5,
            &now,
            Some(Duration::from_millis(500)),
        );
        let pairs: Vec<(&str, &str)> = line
            .strip_prefix("summary ")
            .unwrap()
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).unwrap().1;
        assert_eq!(get("dock_rate_per_s"), "10.0");
        assert_eq!(get("all_docked_s"), "0.500");
        assert_eq!(get("sent_per_s"), "30.0");
        assert!(summary_line(Duration::from_secs(1), 5, &now, None)
            .ends_with("all_docked_s=none dock_rate_per_s=none"));
    }

    #[test]
    fn the_docking_time_is_taken_when_the_last_instance_docks() {
        let c = Counters::new(2);
        c.docked(true);
        assert_eq!(c.all_docked(), None);
        c.docked(false);
        assert_eq!(c.all_docked(), None, "a second dock of the same instance");
        c.docked(true);
        assert!(c.all_docked().is_some());
        c.undocked(true);
        let s = c.snapshot();
        assert_eq!(
            (s.connected, s.docks, s.docked_once, s.heartbeat_lost),
            (2, 3, 2, 1)
        );
        c.auth_failed(|| "first".into());
        c.dock_failed(|| "second".into());
        assert_eq!(c.take_note().as_deref(), Some("first"));
        assert_eq!(c.take_note(), None);
    }
}
