//! The reporter's thread: STATS documents from the queue become points in
//! a batch, sent at least every second (or when the batch is full); the
//! server's figures are read and sent every `metrics.interval`. A write
//! that fails (InfluxDB down, slow past the timeout, or refusing) drops
//! its points: keeping them would only grow memory while InfluxDB is away,
//! and the next STATS round carries newer figures anyway.

use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::line::{self, FieldValue};
use super::{counters, Settings, StatsDoc, Target};
use crate::metrics::collect::{self, Scrape};
use crate::metrics::instances::{self, Selection};
use crate::metrics::snapshot::{Kind, Snapshot, Value};

/// The measurement of every STATS point in `instance_stats` (not
/// `stats`: a keyword of InfluxQL, which every query would have to quote).
pub const STATS_MEASUREMENT: &str = "includeos_stats";
/// Points per write at most (InfluxDB's advice: 5,000 to 10,000).
const MAX_BATCH: usize = 5_000;
/// STATS points wait this long at most before they are sent.
const FLUSH: Duration = Duration::from_secs(1);
/// A write that takes longer is abandoned and its points dropped.
const TIMEOUT: Duration = Duration::from_secs(5);

struct Writer {
    agent: ureq::Agent,
    target: Target,
    authorization: Option<String>,
}

/// Why one write failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("compressing the batch: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("{0}")]
    Http(#[from] ureq::Error),
    #[error("InfluxDB answered {status}: {body}")]
    Status { status: u16, body: String },
}

impl Writer {
    fn new(target: Target) -> Writer {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .timeout_connect(Some(Duration::from_secs(2)))
            .max_redirects(0)
            .user_agent(format!("jetpack/{}", env!("CARGO_PKG_VERSION")))
            .build();
        // The password travels in a header only, never in the URL (which
        // ureq's errors quote) or a log line.
        let authorization = target.username.as_ref().map(|u| {
            let pair = format!("{u}:{}", target.password.as_deref().unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Writer {
            agent: config.new_agent(),
            target,
            authorization,
        }
    }

    fn write(&self, db: &str, body: &str) -> Result<(), WriteError> {
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        gz.write_all(body.as_bytes()).map_err(WriteError::Gzip)?;
        let gz = gz.finish().map_err(WriteError::Gzip)?;
        let url = format!("{}/write?db={db}&precision=ms", self.target.addr);
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Encoding", "gzip")
            .header("Content-Type", "text/plain; charset=utf-8");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.send(&gz[..])?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        Err(WriteError::Status {
            status,
            body: body.trim().chars().take(300).collect(),
        })
    }
}

/// Failures, told at most once per interval.
struct Failures {
    every: Duration,
    last_told: Option<Instant>,
    dropped_at_last: u64,
    error: Option<String>,
    failing: bool,
}

impl Failures {
    fn failed(&mut self, e: String) {
        self.error = Some(e);
        self.failing = true;
    }

    fn succeeded(&mut self) {
        if self.failing {
            self.failing = false;
            tracing::info!("metrics: InfluxDB writes resumed");
        }
    }

    fn tell(&mut self, now: Instant) {
        if self.last_told.is_some_and(|t| now - t < self.every) {
            return;
        }
        let dropped = counters().dropped.load(Relaxed);
        let n = dropped - self.dropped_at_last.min(dropped);
        if n == 0 && self.error.is_none() {
            return;
        }
        self.last_told = Some(now);
        self.dropped_at_last = dropped;
        match self.error.take() {
            Some(e) => tracing::warn!("metrics: InfluxDB: {n} point(s) dropped: {e}"),
            None => tracing::warn!("metrics: InfluxDB: {n} point(s) dropped (reporter queue full)"),
        }
    }
}

struct Batch {
    db: &'static str,
    body: String,
    points: usize,
}

impl Batch {
    fn send(&mut self, writer: &Writer, failures: &mut Failures) {
        if self.points == 0 {
            return;
        }
        let c = counters();
        match writer.write(self.db, &self.body) {
            Ok(()) => {
                c.written.fetch_add(self.points as u64, Relaxed);
                failures.succeeded();
            }
            Err(e) => {
                c.failed_writes.fetch_add(1, Relaxed);
                c.dropped.fetch_add(self.points as u64, Relaxed);
                failures.failed(format!("writing to {}: {e}", self.db));
            }
        }
        self.body.clear();
        self.points = 0;
    }
}

/// One STATS document as one point; false when it has no numeric stat.
pub fn stats_point(out: &mut String, doc: &StatsDoc, limits: &instances::StatLimits) -> bool {
    let flat = instances::flatten(&doc.json, limits);
    line::point(
        out,
        STATS_MEASUREMENT,
        &[
            ("instance_id", &doc.instance_id),
            ("alias", &doc.alias),
            ("tag", &doc.tag),
            ("service", &doc.service),
            ("version", &doc.version),
        ],
        flat.stats
            .iter()
            .map(|(k, v)| (k.as_str(), FieldValue::Float(*v))),
        doc.at_ms,
    )
}

/// The server's figures as points: a measurement per family (counters
/// named with `_total`, as /metrics names them), its labels as tags,
/// `value` (or a histogram's `count` and `sum`) as fields.
pub fn figure_points(out: &mut String, snapshot: &Snapshot, at_ms: i64) -> usize {
    let mut n = 0;
    for f in &snapshot.families {
        let name = match f.kind {
            Kind::Counter => format!("{}_total", f.name),
            _ => f.name.to_string(),
        };
        for s in &f.samples {
            let tags: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (*k, &**v)).collect();
            let int = |v: u64| FieldValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
            let fields = match &s.value {
                Value::Int(v) => vec![("value", int(*v))],
                Value::Float(v) => vec![("value", FieldValue::Float(*v))],
                Value::Histogram(h) => {
                    vec![("count", int(h.count)), ("sum", FieldValue::Float(h.sum))]
                }
            };
            if line::point(out, &name, &tags, fields, at_ms) {
                n += 1;
            }
        }
    }
    n
}

pub(super) fn run(settings: Settings, rx: Receiver<StatsDoc>) {
    let writer = Writer::new(settings.target.clone());
    let interval = settings.interval;
    let flush = FLUSH.min(interval);
    let scrape = Scrape {
        // Per-instance figures go to instance_stats, as STATS arrive.
        instances: Selection::None,
        cap: 0,
        stats: settings.stats,
    };
    let mut failures = Failures {
        every: interval,
        last_told: None,
        dropped_at_last: 0,
        error: None,
        failing: false,
    };
    let mut stats = Batch {
        db: "instance_stats",
        body: String::new(),
        points: 0,
    };
    let mut figures = Batch {
        db: "mothership",
        body: String::new(),
        points: 0,
    };
    let mut next_flush = Instant::now() + flush;
    // The first figures right away: a fresh server shows up at once.
    let mut next_figures = Instant::now();
    loop {
        let wait = next_flush
            .min(next_figures)
            .saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(doc) => {
                if stats_point(&mut stats.body, &doc, &settings.stats) {
                    stats.points += 1;
                }
                if stats.points >= MAX_BATCH {
                    stats.send(&writer, &mut failures);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if now >= next_flush {
            stats.send(&writer, &mut failures);
            next_flush = Instant::now() + flush;
        }
        if now >= next_figures {
            let snapshot = collect::snapshot(&settings.sources, &scrape);
            figures.points =
                figure_points(&mut figures.body, &snapshot, crate::hangar::fleet::now_ms());
            figures.send(&writer, &mut failures);
            next_figures = Instant::now() + interval;
        }
        failures.tell(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::{text, Family, Histogram};

    fn doc(json: &str) -> StatsDoc {
        StatsDoc {
            at_ms: 7,
            instance_id: "i-1".into(),
            alias: "web server, \"a\"".into(),
            tag: "".into(),
            service: "svc=x".into(),
            version: "v1\n".into(),
            json: json.into(),
        }
    }

    #[test]
    fn a_stats_document_is_one_tagged_point() {
        let mut s = String::new();
        let limits = instances::StatLimits::default();
        assert!(stats_point(
            &mut s,
            &doc(r#"[{"name":"eth0.ethernet.packets_rx","value":3},{"name":"x","value":"no"}]"#),
            &limits
        ));
        assert_eq!(
            s,
            "includeos_stats,instance_id=i-1,alias=web\\ server\\,\\ \"a\",service=svc\\=x,version=v1_ \
             eth0.ethernet.packets_rx=3 7\n"
        );
        assert!(!stats_point(&mut String::new(), &doc("[]"), &limits));
    }

    #[test]
    fn hostile_documents_are_capped_like_the_exposition() {
        let many: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"name":"k\"\n,= {i}","value":{i}}}"#))
            .collect();
        let limits = instances::StatLimits {
            max_keys: 100,
            max_depth: 8,
        };
        let mut s = String::new();
        assert!(stats_point(
            &mut s,
            &doc(&format!("[{}]", many.join(","))),
            &limits
        ));
        assert_eq!(s.matches('\n').count(), 1);
        assert_eq!(s.matches("=").count() - s.matches("\\=").count(), 100 + 4);
    }

    #[test]
    fn figures_become_points() {
        let mut snap = Snapshot::default();
        snap.add(Family::single(
            "jetpack_hangar_docks",
            "",
            Kind::Counter,
            Value::Int(u64::MAX),
        ));
        let mut f = Family::new("jetpack_instances", "", Kind::Gauge);
        f.push(vec![("status", text("connected"))], Value::Int(2));
        snap.add(f);
        snap.add(Family::single(
            "jetpack_api_request_duration_seconds",
            "",
            Kind::Histogram,
            Value::Histogram(Histogram {
                buckets: vec![],
                sum: 0.5,
                count: 3,
            }),
        ));
        let mut s = String::new();
        assert_eq!(figure_points(&mut s, &snap, 9), 3);
        assert_eq!(
            s,
            "jetpack_hangar_docks_total value=9223372036854775807i 9\n\
             jetpack_instances,status=connected value=2i 9\n\
             jetpack_api_request_duration_seconds count=3i,sum=0.5 9\n"
        );
    }
}
