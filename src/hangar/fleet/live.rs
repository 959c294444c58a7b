//! One instance as the fleet holds it in memory: its status, what it last
//! said about itself (IDENT, UPLINK echo), the bounded rings of log bytes,
//! stats and events, and the way to its session. The types the rest of the
//! hangar and the API read; how they change is receive.rs's.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Connected,
    Disconnected,
    Connecting,
    Unknown,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Connected,
        Status::Disconnected,
        Status::Connecting,
        Status::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connected => "connected",
            Status::Disconnected => "disconnected",
            Status::Connecting => "connecting",
            Status::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// An instance with an open dock: transports can be sent to it.
    pub fn is_docked(self) -> bool {
        self == Status::Connected
    }

    /// An instance that can take a live update (UPDATE goes over its dock).
    pub fn can_deploy(self) -> bool {
        self.is_docked()
    }

    /// The status after the instance authenticates: a docked one stays
    /// connected (it re-authed before its old dock was seen to die, and the
    /// new dock replaces it), any other is connecting until it docks.
    pub fn on_auth(self) -> Status {
        if self.is_docked() {
            self
        } else {
            Status::Connecting
        }
    }
}

/// How much of each instance is kept in memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of LOG text per instance (a ring: the oldest go first).
    pub log_bytes: usize,
    /// STATS documents kept besides the latest.
    pub stats_history: usize,
    /// Events (docked, disconnected, panicked, updated...) per instance.
    pub events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            log_bytes: 16 * 1024,
            stats_history: 10,
            events: 32,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unix time, milliseconds.
    pub at_ms: i64,
    pub event: &'static str,
    pub detail: String,
}

/// One STATS document as received: a JSON array, kept as its text (a
/// parsed value would cost several times the memory, for 20,000 instances).
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub at_ms: i64,
    pub json: Box<str>,
}

/// What the hangar may send to a docked instance.
#[derive(Debug)]
pub enum Outgoing {
    /// A transport (UPDATE with an image, a STATS request), encoded.
    Transport(Vec<u8>),
    /// End the session (the instance was deleted, or re-docked elsewhere).
    Close(&'static str),
}

/// The way to a docked instance's session task.
#[derive(Debug, Clone)]
pub(super) struct SessionHandle {
    pub(super) generation: u64,
    pub(super) tx: mpsc::Sender<Outgoing>,
}

/// One instance as the hangar sees it now.
#[derive(Debug)]
pub struct Live {
    pub status: Status,
    pub panicked: bool,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub ident: Option<serde_json::Value>,
    pub uplink: Option<serde_json::Value>,
    pub uplink_id: Option<String>,
    pub image_id: Option<String>,
    pub remote: Option<SocketAddr>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// LOG bytes ever received (`since` offsets count these), and the
    /// newest `log_bytes` of them.
    pub log_total: u64,
    pub log: VecDeque<u8>,
    pub stats: Option<StatsSample>,
    pub stats_history: VecDeque<StatsSample>,
    /// Counts IDENTs and STATS, so that a waiter can tell a new one.
    pub ident_seq: u64,
    pub stats_seq: u64,
    /// The last UPDATE acknowledgement (a SHA-1 hex) since a deploy sent one.
    pub update_ack: Option<String>,
    pub events: VecDeque<Event>,
    pub(super) session: Option<SessionHandle>,
    /// The host whose hangar holds (or last held) its dock: this one, or
    /// another sharing the store; None while none has since this start.
    pub host: Option<Arc<str>>,
    /// Set while another host holds it: its status as that host last
    /// wrote it, which `status` shows while that host is up.
    pub(super) elsewhere: Option<Status>,
}

impl Live {
    pub(super) fn new(now: i64) -> Live {
        Live {
            status: Status::Unknown,
            panicked: false,
            alias: None,
            description: None,
            ident: None,
            uplink: None,
            uplink_id: None,
            image_id: None,
            remote: None,
            first_seen: now,
            last_seen: now,
            log_total: 0,
            log: VecDeque::new(),
            stats: None,
            stats_history: VecDeque::new(),
            ident_seq: 0,
            stats_seq: 0,
            update_ack: None,
            events: VecDeque::new(),
            session: None,
            host: None,
            elsewhere: None,
        }
    }

    pub(super) fn event(&mut self, limits: &Limits, event: &'static str, detail: String) {
        if self.events.len() >= limits.events {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            at_ms: super::now_ms(),
            event,
            detail,
        });
    }

    /// A string field of the last IDENT.
    pub fn ident_str(&self, key: &str) -> Option<&str> {
        self.ident.as_ref()?.get(key)?.as_str()
    }

    /// IDENT's `binary`: the SHA-1 of the running image, only after a live update.
    pub fn binary(&self) -> Option<&str> {
        self.ident_str("binary")
    }

    /// The addresses of IDENT's `net` stacks.
    pub fn addresses(&self) -> Vec<String> {
        let net = self
            .ident
            .as_ref()
            .and_then(|i| i.get("net"))
            .and_then(|n| n.as_array());
        net.map(|stacks| {
            stacks
                .iter()
                .filter_map(|s| s.get("addr").and_then(|a| a.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
    }

    pub fn devices(&self) -> Vec<String> {
        let devices = self
            .ident
            .as_ref()
            .and_then(|i| i.get("devices"))
            .and_then(|d| d.as_array());
        devices
            .map(|d| {
                d.iter()
                    .filter_map(|v| v.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The URL the instance reports in its UPLINK echo.
    pub fn uplink_url(&self) -> Option<&str> {
        self.uplink.as_ref()?.get("url")?.as_str()
    }

    /// The other host that holds its dock, if one does.
    pub fn held_elsewhere(&self) -> Option<&str> {
        self.elsewhere.and(self.host.as_deref())
    }

    pub fn session_generation(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.generation)
    }

    /// The newest log bytes after offset `since` (of all bytes ever
    /// received); returns them and the offset after them.
    pub fn log_since(&self, since: u64) -> (Vec<u8>, u64) {
        let first = self.log_total - self.log.len() as u64;
        let skip = since.saturating_sub(first).min(self.log.len() as u64) as usize;
        (
            self.log.iter().skip(skip).copied().collect(),
            self.log_total,
        )
    }
}

/// The IDENT fields lists show, search and upgrades reuse, read in one
/// walk over the object: on a large fleet a lookup per field costs several
/// times more, each one chasing the map's pointers again.
#[derive(Default)]
pub struct IdentFields<'a> {
    /// IDENT's, else the UPLINK echo's
    pub tag: Option<&'a str>,
    pub version: Option<&'a str>,
    pub service: Option<&'a str>,
    pub arch: Option<&'a str>,
    devices: &'a [Value],
    net: &'a [Value],
}

impl<'a> IdentFields<'a> {
    pub fn of(l: &'a Live) -> IdentFields<'a> {
        let text = |v: &'a Value| v.as_str().filter(|t| !t.is_empty());
        let list = |v: &'a Value| v.as_array().map_or(&[][..], Vec::as_slice);
        let mut f = IdentFields::default();
        if let Some(ident) = l.ident.as_ref().and_then(Value::as_object) {
            for (key, value) in ident {
                match key.as_str() {
                    "tag" => f.tag = text(value),
                    "version" => f.version = text(value),
                    "service" => f.service = text(value),
                    "arch" => f.arch = text(value),
                    "devices" => f.devices = list(value),
                    "net" => f.net = list(value),
                    _ => {}
                }
            }
        }
        if f.tag.is_none() {
            f.tag = l.uplink.as_ref().and_then(|u| u.get("tag")).and_then(text);
        }
        f
    }

    pub fn devices(&self) -> impl Iterator<Item = &'a str> {
        self.devices.iter().filter_map(Value::as_str)
    }

    /// The addresses of the network stacks.
    pub fn addresses(&self) -> impl Iterator<Item = &'a str> {
        self.net
            .iter()
            .filter_map(|stack| stack.get("addr")?.as_str())
    }
}

/// Where the last `n` lines of `bytes` start (a final newline ends the
/// last line rather than starting an empty one).
pub fn tail_start(bytes: &[u8], n: usize) -> usize {
    if n == 0 {
        return bytes.len();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instance status predicates over every status, in one table.
    #[test]
    fn status_predicates() {
        use Status::*;
        let which = |p: fn(Status) -> bool| -> Vec<Status> {
            Status::ALL.into_iter().filter(|s| p(*s)).collect()
        };
        assert_eq!(which(Status::is_docked), [Connected]);
        assert_eq!(which(Status::can_deploy), [Connected]);
        let after: Vec<Status> = Status::ALL.into_iter().map(Status::on_auth).collect();
        assert_eq!(after, [Connected, Connecting, Connecting, Connecting]);
    }

    #[test]
    fn tails_count_lines_from_the_end() {
        let log = b"one\ntwo\nthree\n";
        assert_eq!(&log[tail_start(log, 1)..], b"three\n");
        assert_eq!(&log[tail_start(log, 2)..], b"two\nthree\n");
        assert_eq!(&log[tail_start(log, 9)..], log);
        assert_eq!(&log[tail_start(log, 0)..], b"");
        let partial = b"one\ntwo\nthr";
        assert_eq!(&partial[tail_start(partial, 1)..], b"thr");
        assert_eq!(tail_start(b"", 3), 0);
        assert_eq!(tail_start(b"\n\n", 1), 1);
    }
}
