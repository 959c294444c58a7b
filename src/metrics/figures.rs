//! The figures kept while the server runs: counters and histograms that the
//! API, the hangar and the jobs count into. One process-wide value
//! (`figures()`), because these are facts about the process, like its CPU
//! time: handing a registry to every layer would touch every constructor
//! for a counter increment. Everything here is atomics; the few maps
//! (API routes, which are a fixed set) are read-locked per request and
//! written once per new route, method and status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, RwLock};

use super::snapshot::{text, Family, Histogram, Kind, Snapshot, Value};
use crate::hangar::frame::Code;
use crate::model::jobs::{JobKind, JobState};

/// The process's figures.
pub fn figures() -> &'static Figures {
    static FIGURES: LazyLock<Figures> = LazyLock::new(Figures::default);
    &FIGURES
}

#[derive(Default)]
pub struct Figures {
    pub api: ApiFigures,
    pub hangar: HangarFigures,
    pub jobs: JobFigures,
    pub pods: PodFigures,
}

/// A histogram over fixed bounds, lock-free: one atomic per bucket, the
/// sum as the bits of an f64 updated by compare-and-swap.
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One per bound, then the overflow (+Inf).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Relaxed);
        }
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + v).to_bits())
        });
    }

    pub fn read(&self) -> Histogram {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .zip(counts.iter().copied())
            .collect();
        buckets.push((f64::INFINITY, counts.last().copied().unwrap_or(0)));
        Histogram {
            count: counts.iter().sum(),
            sum: f64::from_bits(self.sum.load(Relaxed)),
            buckets,
        }
    }
}

/// Request latencies, seconds: from 1 ms to a minute (uploads).
pub const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Job durations, seconds: from a second to an hour (builds, imports).
pub const JOB_BOUNDS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];
/// Writes per store transaction of the hangar's writer (at most 1024).
pub const BATCH_BOUNDS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Pod starts, seconds: from 5 ms (a jail) to a minute.
pub const POD_START_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Why an API request was refused before its handler.
#[derive(Debug, Clone, Copy)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// A bad user or password.
    Refused,
    /// Too many failures from the address or for the name (429).
    Throttled,
    /// A session cookie that no longer names a session.
    SessionEnded,
    /// A session's request that changes something without its CSRF token.
    Csrf,
}

impl AuthFailure {
    const ALL: [AuthFailure; 5] = [
        AuthFailure::Missing,
        AuthFailure::Refused,
        AuthFailure::Throttled,
        AuthFailure::SessionEnded,
        AuthFailure::Csrf,
    ];

    fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Refused => "refused",
            AuthFailure::Throttled => "throttled",
            AuthFailure::SessionEnded => "session_ended",
            AuthFailure::Csrf => "csrf",
        }
    }
}

type RouteKey = (Arc<str>, &'static str);

/// The API's requests by route template, method and status, their
/// latency, and auth failures.
#[derive(Default)]
pub struct ApiFigures {
    requests: RwLock<HashMap<(RouteKey, u16), AtomicU64>>,
    latency: RwLock<HashMap<RouteKey, AtomicHistogram>>,
    auth_failures: [AtomicU64; 5],
}

/// The methods counted by name; any other is `other`, so that a client
/// cannot make new series with made-up methods.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 8] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

impl ApiFigures {
    /// One answered request. `route` is the route's template (never the
    /// raw path, whose ids would make a series per resource).
    pub fn request(&self, route: &Arc<str>, method: &'static str, status: u16, seconds: f64) {
        let key = (route.clone(), method);
        {
            let requests = self.requests.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = requests.get(&(key.clone(), status)) {
                c.fetch_add(1, Relaxed);
            } else {
                drop(requests);
                self.requests
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry((key.clone(), status))
                    .or_default()
                    .fetch_add(1, Relaxed);
            }
        }
        let latency = self.latency.read().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = latency.get(&key) {
            h.observe(seconds);
            return;
        }
        drop(latency);
        self.latency
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert_with(|| AtomicHistogram::new(LATENCY_BOUNDS))
            .observe(seconds);
    }

    pub fn auth_failed(&self, why: AuthFailure) {
        self.auth_failures[why as usize].fetch_add(1, Relaxed);
    }

    fn read(&self, out: &mut Snapshot) {
        let mut requests = Family::new(
            "jetpack_api_requests",
            "API requests answered, by route template, method and status",
            Kind::Counter,
        );
        let mut rows: Vec<_> = {
            let map = self.requests.read().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .map(|(((route, method), status), c)| {
                    (route.clone(), *method, *status, c.load(Relaxed))
                })
                .collect()
        };
        rows.sort();
        for (route, method, status, n) in rows {
            requests.push(
                vec![
                    ("route", route),
                    ("method", text(method)),
                    ("status", text(&status.to_string())),
                ],
                Value::Int(n),
            );
        }
        out.add(requests);
        let mut latency = Family::new(
            "jetpack_api_request_duration_seconds",
            "API request latency until the response head, by route template and method",
            Kind::Histogram,
        );
        let mut rows: Vec<_> = {
            let map = self.latency.read().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .map(|((route, method), h)| (route.clone(), *method, h.read()))
                .collect()
        };
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        for (route, method, h) in rows {
            latency.push(
                vec![("route", route), ("method", text(method))],
                Value::Histogram(h),
            );
        }
        out.add(latency);
        let mut auth = Family::new(
            "jetpack_api_auth_failures",
            "API requests refused by auth, by reason",
            Kind::Counter,
        );
        for why in AuthFailure::ALL {
            auth.push(
                vec![("reason", text(why.as_str()))],
                Value::Int(self.auth_failures[why as usize].load(Relaxed)),
            );
        }
        out.add(auth);
    }
}

/// How a hangar auth ended.
#[derive(Debug, Clone, Copy)]
pub enum AuthOutcome {
    Accepted,
    /// A wrong key, a malformed request, a bad token.
    Refused,
    RateLimited,
    /// Our own fault (the store).
    Error,
}

impl AuthOutcome {
    const ALL: [AuthOutcome; 4] = [
        AuthOutcome::Accepted,
        AuthOutcome::Refused,
        AuthOutcome::RateLimited,
        AuthOutcome::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Accepted => "accepted",
            AuthOutcome::Refused => "refused",
            AuthOutcome::RateLimited => "rate_limited",
            AuthOutcome::Error => "error",
        }
    }
}

/// Why a dock ended; read from the session's reason (session.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The instance closed the connection or sent a close frame.
    Closed,
    /// Nothing heard for three ping intervals.
    Heartbeat,
    /// A bad frame or transport.
    Protocol,
    /// The instance stopped reading, or a write failed.
    Write,
    /// The server closed it: the instance was deleted or docked again.
    Replaced,
    /// The server stopped.
    ServerStop,
}

impl Disconnect {
    const ALL: [Disconnect; 6] = [
        Disconnect::Closed,
        Disconnect::Heartbeat,
        Disconnect::Protocol,
        Disconnect::Write,
        Disconnect::Replaced,
        Disconnect::ServerStop,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Disconnect::Closed => "closed",
            Disconnect::Heartbeat => "heartbeat",
            Disconnect::Protocol => "protocol",
            Disconnect::Write => "write",
            Disconnect::Replaced => "replaced",
            Disconnect::ServerStop => "server_stop",
        }
    }
}

/// One counter per transport code (a byte): no map, no lock per frame.
struct PerCode([AtomicU64; 256]);

impl Default for PerCode {
    fn default() -> Self {
        PerCode(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// The hangar: docks, auths, transports and bytes by code, disconnects,
/// the store writer's batches.
pub struct HangarFigures {
    docks: AtomicU64,
    auths: [AtomicU64; 4],
    disconnects: [AtomicU64; 6],
    in_count: PerCode,
    in_bytes: PerCode,
    out_count: PerCode,
    out_bytes: PerCode,
    batches: AtomicHistogram,
}

impl Default for HangarFigures {
    fn default() -> Self {
        HangarFigures {
            docks: AtomicU64::new(0),
            auths: Default::default(),
            disconnects: Default::default(),
            in_count: PerCode::default(),
            in_bytes: PerCode::default(),
            out_count: PerCode::default(),
            out_bytes: PerCode::default(),
            batches: AtomicHistogram::new(BATCH_BOUNDS),
        }
    }
}

/// A transport code's label: its name, or `other` for codes the protocol
/// does not define (one series for all of them).
fn code_label(code: u8) -> &'static str {
    match Code::from_u8(code) {
        Code::Ident => "ident",
        Code::Log => "log",
        Code::Update => "update",
        Code::AppData => "app_data",
        Code::Panic => "panic",
        Code::Stats => "stats",
        Code::Uplink => "uplink",
        Code::Error => "error",
        Code::Unknown(_) => "other",
    }
}

impl HangarFigures {
    pub fn docked(&self) {
        self.docks.fetch_add(1, Relaxed);
    }

    pub fn auth(&self, outcome: AuthOutcome) {
        self.auths[outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn disconnected(&self, why: Disconnect) {
        self.disconnects[why as usize].fetch_add(1, Relaxed);
    }

    /// A transport received (its payload's bytes).
    pub fn received(&self, code: u8, bytes: usize) {
        self.in_count.0[code as usize].fetch_add(1, Relaxed);
        self.in_bytes.0[code as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// A transport queued to an instance: its code (the encoding's first
    /// byte) and its encoded length.
    pub fn sent(&self, code: Option<u8>, encoded_len: usize) {
        if let Some(code) = code {
            let payload = encoded_len.saturating_sub(crate::hangar::frame::HEADER_LEN);
            self.out_count.0[code as usize].fetch_add(1, Relaxed);
            self.out_bytes.0[code as usize].fetch_add(payload as u64, Relaxed);
        }
    }

    /// One transaction of the store writer, of `writes` writes.
    pub fn batch(&self, writes: usize) {
        self.batches.observe(writes as f64);
    }

    fn read(&self, out: &mut Snapshot) {
        out.add(Family::single(
            "jetpack_hangar_docks",
            "Docks accepted (WebSocket sessions opened by instances)",
            Kind::Counter,
            Value::Int(self.docks.load(Relaxed)),
        ));
        let mut auths = Family::new(
            "jetpack_hangar_auths",
            "Instance auths (POST /auth), by outcome",
            Kind::Counter,
        );
        for o in AuthOutcome::ALL {
            auths.push(
                vec![("outcome", text(o.as_str()))],
                Value::Int(self.auths[o as usize].load(Relaxed)),
            );
        }
        out.add(auths);
        let mut gone = Family::new(
            "jetpack_hangar_disconnects",
            "Docks that ended, by cause",
            Kind::Counter,
        );
        for d in Disconnect::ALL {
            gone.push(
                vec![("cause", text(d.as_str()))],
                Value::Int(self.disconnects[d as usize].load(Relaxed)),
            );
        }
        out.add(gone);
        for (name, help, per) in [
            (
                "jetpack_hangar_transports_received",
                "Transports received from instances, by code",
                &self.in_count,
            ),
            (
                "jetpack_hangar_received_bytes",
                "Payload bytes of transports received from instances, by code",
                &self.in_bytes,
            ),
            (
                "jetpack_hangar_transports_sent",
                "Transports queued to instances, by code",
                &self.out_count,
            ),
            (
                "jetpack_hangar_sent_bytes",
                "Payload bytes of transports queued to instances, by code",
                &self.out_bytes,
            ),
        ] {
            let mut f = Family::new(name, help, Kind::Counter);
            let mut by_label: Vec<(&'static str, u64)> = Vec::new();
            for (code, c) in per.0.iter().enumerate() {
                let label = code_label(code as u8);
                let n = c.load(Relaxed);
                match by_label.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, sum)) => *sum += n,
                    None => by_label.push((label, n)),
                }
            }
            // Named codes always, `other` only once seen.
            for (label, n) in by_label {
                if label != "other" || n > 0 {
                    f.push(vec![("code", text(label))], Value::Int(n));
                }
            }
            out.add(f);
        }
        out.add(Family::single(
            "jetpack_hangar_writer_batch_writes",
            "Writes per store transaction of the hangar's writer",
            Kind::Histogram,
            Value::Histogram(self.batches.read()),
        ));
    }
}

/// Jobs that ended, by kind and state, and their durations by kind.
pub struct JobFigures {
    ended: [[AtomicU64; JobState::ALL.len()]; JobKind::ALL.len()],
    durations: [AtomicHistogram; JobKind::ALL.len()],
}

impl Default for JobFigures {
    fn default() -> Self {
        JobFigures {
            ended: Default::default(),
            durations: std::array::from_fn(|_| AtomicHistogram::new(JOB_BOUNDS)),
        }
    }
}

fn kind_index(kind: JobKind) -> usize {
    JobKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

fn state_index(state: JobState) -> usize {
    JobState::ALL.iter().position(|s| *s == state).unwrap_or(0)
}

impl JobFigures {
    /// A job ended in `state` after running `seconds` (0 if it never ran).
    pub fn ended(&self, kind: JobKind, state: JobState, seconds: f64) {
        let k = kind_index(kind);
        self.ended[k][state_index(state)].fetch_add(1, Relaxed);
        self.durations[k].observe(seconds);
    }

    /// Ended jobs of `kind` in `state`.
    pub fn ended_count(&self, kind: JobKind, state: JobState) -> u64 {
        self.ended[kind_index(kind)][state_index(state)].load(Relaxed)
    }

    fn read(&self, out: &mut Snapshot) {
        let mut ended = Family::new(
            "jetpack_jobs_ended",
            "Jobs that ended since the server started, by kind and final state",
            Kind::Counter,
        );
        let mut durations = Family::new(
            "jetpack_job_duration_seconds",
            "How long jobs ran (from their start, not their queueing), by kind",
            Kind::Histogram,
        );
        for kind in JobKind::ALL {
            for state in JobState::ALL.into_iter().filter(|s| s.is_finished()) {
                ended.push(
                    vec![
                        ("kind", text(kind.as_str())),
                        ("state", text(state.as_str())),
                    ],
                    Value::Int(self.ended_count(kind, state)),
                );
            }
            durations.push(
                vec![("kind", text(kind.as_str()))],
                Value::Histogram(self.durations[kind_index(kind)].read()),
            );
        }
        out.add(ended);
        out.add(durations);
        let mut deploys = Family::new(
            "jetpack_hangar_deploys",
            "Live updates (deploy jobs, upgrades included) that ended, by outcome",
            Kind::Counter,
        );
        for state in JobState::ALL.into_iter().filter(|s| s.is_finished()) {
            let n = self.ended_count(JobKind::Deploy, state)
                + self.ended_count(JobKind::Upgrade, state);
            deploys.push(vec![("outcome", text(state.as_str()))], Value::Int(n));
        }
        out.add(deploys);
    }
}

/// Pod starts: how long making a pod's cell took, and how many failed.
pub struct PodFigures {
    starts: AtomicHistogram,
    failed: AtomicU64,
}

impl Default for PodFigures {
    fn default() -> Self {
        PodFigures {
            starts: AtomicHistogram::new(POD_START_BOUNDS),
            failed: AtomicU64::new(0),
        }
    }
}

impl PodFigures {
    pub fn started(&self, seconds: f64) {
        self.starts.observe(seconds);
    }

    pub fn start_failed(&self) {
        self.failed.fetch_add(1, Relaxed);
    }

    fn read(&self, out: &mut Snapshot) {
        out.add(Family::single(
            "jetpack_pod_start_seconds",
            "How long starting a pod took: its cell made (jail or namespaces) and recorded",
            Kind::Histogram,
            Value::Histogram(self.starts.read()),
        ));
        out.add(Family::single(
            "jetpack_pod_start_failures",
            "Pod starts that failed (the cell could not be made or recorded)",
            Kind::Counter,
            Value::Int(self.failed.load(Relaxed)),
        ));
    }
}

impl Figures {
    /// Every kept figure, read now.
    pub fn read(&self, out: &mut Snapshot) {
        self.api.read(out);
        self.hangar.read(out);
        self.jobs.read(out);
        self.pods.read(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_bucket_and_sum() {
        let h = AtomicHistogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 5.0, 50.0] {
            h.observe(v);
        }
        let r = h.read();
        assert_eq!(r.count, 4);
        assert_eq!(r.sum, 56.5);
        assert_eq!(r.buckets, vec![(1.0, 2), (10.0, 1), (f64::INFINITY, 1)]);
    }

    #[test]
    fn unknown_methods_and_codes_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(code_label(8), "stats");
        assert_eq!(code_label(3), "other");
        assert_eq!(code_label(4), "other");
    }
}
