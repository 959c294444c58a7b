//! `top`: a live terminal view of the fleet. The counts per status come
//! from the event stream (`GET /v1/events`, its `counts` events) once it
//! answers, from `GET /v1/instances/summary` before that or without it;
//! the busiest docked instances by a stat from `GET /v1/instances` and each
//! shown row's `GET .../stats` (at most every `REFRESH`, only for the shown
//! rows, so a big fleet costs `--limit` requests per refresh); recent panics
//! from `panic` events, seeded from the panicked instances' panic lists.
//!
//! Plain ANSI (clear screen, home) redraws only when stdout is a terminal;
//! otherwise, or with `--once`, one frame is printed and the command ends.
//! Ctrl-C keeps SIGINT's default action: nothing is hidden or switched on
//! the terminal that would need restoring, so dying quietly is right.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::args::ServerFlags;
use super::events::{Lines, Pending, SseReader};
use super::CliError;
use crate::cli::output::{self, Format};
use crate::client::{enc, Client, ClientError};
use crate::model::instances::{Instance, InstancePanic, InstanceStats, InstanceSummary};

/// The rows' stats are read again at most this often.
const REFRESH: Duration = Duration::from_secs(2);
/// Recent panics kept on screen.
const PANICS_SHOWN: usize = 5;

/// One ranked instance.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: String,
    alias: Option<String>,
    status: String,
    panicked: bool,
    /// The stat in the latest STATS, when it has it
    value: Option<f64>,
    /// Per second between the two latest STATS that have it
    rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PanicRow {
    instance_id: String,
    panic_id: String,
    /// RFC 3339 when the server has it, else when this view heard of it
    at: Option<String>,
}

/// What one frame shows (`-o json` prints it as is).
#[derive(Debug, Serialize)]
struct Frame {
    counts: InstanceSummary,
    stat: String,
    instances: Vec<Row>,
    panics: Vec<PanicRow>,
}

/// `top`: `(stat, limit, once)`.
pub fn top(
    c: &Client,
    flags: &ServerFlags,
    (stat, limit, once): (&str, u32, bool),
    format: Format,
) -> Result<i32, CliError> {
    let mut frame = Frame {
        counts: c.get_json("/v1/instances/summary")?,
        stat: stat.to_string(),
        instances: rows(c, stat, limit)?,
        panics: seed_panics(c)?,
    };
    let live = !once && std::io::stdout().is_terminal();
    if !live {
        return Ok(show(&frame, format, false).map_or_else(quiet, |()| 0));
    }
    // A second connection for the stream, on its own thread: the stream
    // blocks, and the rows are refreshed on this one meanwhile.
    let mut events = flags.connect().ok().map(stream);
    let mut next_rows = Instant::now() + REFRESH;
    let mut dirty = true;
    loop {
        if dirty {
            if let Err(e) = show(&frame, format, true) {
                return Ok(quiet(e));
            }
            dirty = false;
        }
        let wait = next_rows.saturating_duration_since(Instant::now());
        match events.as_ref().map(|rx| rx.recv_timeout(wait)) {
            Some(Ok(event)) => dirty = apply(c, &mut frame, event),
            Some(Err(mpsc::RecvTimeoutError::Disconnected)) => {
                // No stream (an older server, or it ended): poll the counts
                // with the rows instead.
                events = None;
            }
            Some(Err(mpsc::RecvTimeoutError::Timeout)) => {}
            None => std::thread::sleep(wait),
        }
        if Instant::now() >= next_rows {
            if events.is_none() {
                frame.counts = c.get_json("/v1/instances/summary")?;
            }
            frame.instances = rows(c, stat, limit)?;
            next_rows = Instant::now() + REFRESH;
            dirty = true;
        }
    }
}

/// A write error ends the view: a closed pipe quietly (SIGPIPE's default
/// usually ends us first), anything else with the pipe's exit status too,
/// because there is nowhere left to report it.
fn quiet(_e: std::io::Error) -> i32 {
    crate::cli::pipe::BROKEN_PIPE_STATUS
}

/// Follows `GET /v1/events` on a thread; the receiver disconnects when the
/// stream ends or fails.
fn stream(c: Client) -> mpsc::Receiver<Pending> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = SseReader::default();
        let mut gone = false;
        let mut out = Lines(&mut |chunk: &[u8]| {
            reader.feed(chunk, &mut |event| gone |= tx.send(event).is_err());
            if gone {
                // The view ended: stop reading the stream.
                return Err(std::io::Error::other("view closed"));
            }
            Ok(())
        });
        let _ = c.stream_text("/v1/events", &mut out);
    });
    rx
}

/// Takes one event into the frame; whether it changed what is shown.
fn apply(c: &Client, frame: &mut Frame, event: Pending) -> bool {
    let data: Value = serde_json::from_str(&event.data.join("\n")).unwrap_or(Value::Null);
    match event.event.as_deref() {
        Some("counts") => match serde_json::from_value(data) {
            Ok(counts) => {
                frame.counts = counts;
                true
            }
            Err(_) => false,
        },
        Some("panic") => {
            let field = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(instance_id), Some(panic_id)) = (field("instanceId"), field("panicId"))
            else {
                return false;
            };
            let at = std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| humantime::format_rfc3339_seconds(UNIX_EPOCH + d).to_string());
            let row = PanicRow {
                instance_id,
                panic_id,
                at,
            };
            frame.panics.insert(0, row);
            frame.panics.truncate(PANICS_SHOWN);
            true
        }
        // Events were lost: read the counts again rather than trust them.
        Some("resync") => match c.get_json("/v1/instances/summary") {
            Ok(counts) => {
                frame.counts = counts;
                true
            }
            Err(_) => false,
        },
        _ => false,
    }
}

/// The docked instances (at most `limit`) with the stat, busiest first.
fn rows(c: &Client, stat: &str, limit: u32) -> Result<Vec<Row>, ClientError> {
    let list: Vec<Instance> =
        c.get_json(&format!("/v1/instances?status=connected&limit={limit}"))?;
    let mut rows = Vec::with_capacity(list.len());
    for i in list {
        // An instance that went away between the list and its stats is
        // shown without them rather than failing the frame.
        let stats: Option<InstanceStats> =
            match c.get_json(&format!("/v1/instances/{}/stats", enc(&i.id))) {
                Ok(s) => Some(s),
                Err(e) if e.status() == Some(404) => None,
                Err(e) => return Err(e),
            };
        let (value, rate) = stats.map_or((None, None), |s| reading(&s, stat));
        rows.push(Row {
            id: i.id,
            alias: i.alias,
            status: i.status.as_str().to_string(),
            panicked: i.panicked,
            value,
            rate,
        });
    }
    // Ranked by rate (what "busy" means for a counter), then by value for
    // instances with a single reading so far.
    let key = |r: &Row| {
        (
            r.rate.unwrap_or(f64::NEG_INFINITY),
            r.value.unwrap_or(f64::NEG_INFINITY),
        )
    };
    rows.sort_by(|a, b| {
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(rows)
}

/// The stat's latest value, and its rate from the reading before.
fn reading(s: &InstanceStats, stat: &str) -> (Option<f64>, Option<f64>) {
    let Some(latest) = &s.latest else {
        return (None, None);
    };
    let value = lookup(&latest.stats, stat);
    let earlier = s
        .history
        .iter()
        .rev()
        .find_map(|r| lookup(&r.stats, stat).map(|v| (v, r.at.as_str())));
    let rate = match (value, earlier) {
        (Some(now), Some((before, at))) => {
            let secs = seconds(&latest.at).zip(seconds(at)).map(|(a, b)| a - b);
            secs.filter(|s| *s > 0.0).map(|s| (now - before) / s)
        }
        _ => None,
    };
    (value, rate)
}

fn seconds(rfc3339: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(rfc3339).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// A stat by its dotted name in a STATS document: IncludeOS's array of
/// `{"name", "value"}`, or nested objects whose keys join with dots.
fn lookup(doc: &Value, name: &str) -> Option<f64> {
    match doc {
        Value::Array(entries) => entries.iter().find_map(|e| {
            let n = e.get("name")?.as_str()?;
            let v = e.get("value")?;
            if n == name {
                v.as_f64()
            } else {
                name.strip_prefix(n)?
                    .strip_prefix('.')
                    .and_then(|rest| lookup(v, rest))
            }
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k == name {
                v.as_f64()
            } else {
                name.strip_prefix(k.as_str())?
                    .strip_prefix('.')
                    .and_then(|rest| lookup(v, rest))
            }
        }),
        _ => None,
    }
}

/// The newest panic of each panicked instance (a few), newest first: what
/// was already known before this view started listening.
fn seed_panics(c: &Client) -> Result<Vec<PanicRow>, ClientError> {
    let path = format!("/v1/instances?panicked=true&sort=-lastSeen&limit={PANICS_SHOWN}");
    let list: Vec<Instance> = c.get_json(&path)?;
    let mut out = Vec::new();
    for i in list {
        let panics: Vec<InstancePanic> =
            match c.get_json(&format!("/v1/instances/{}/panics", enc(&i.id))) {
                Ok(p) => p,
                Err(e) if e.status() == Some(404) => continue,
                Err(e) => return Err(e),
            };
        if let Some(p) = panics.into_iter().next() {
            out.push(PanicRow {
                instance_id: i.id,
                panic_id: p.id,
                at: Some(p.created),
            });
        }
    }
    out.sort_by(|a, b| b.at.cmp(&a.at));
    Ok(out)
}

/// Prints a frame; `redraw` clears the terminal first.
fn show(frame: &Frame, format: Format, redraw: bool) -> std::io::Result<()> {
    let mut text = String::new();
    if redraw && format == Format::Table {
        text.push_str("\x1b[2J\x1b[H");
    }
    match format {
        Format::Json => {
            let json = serde_json::to_string(frame).map_err(std::io::Error::other)?;
            text.push_str(&json);
            text.push('\n');
        }
        Format::Id => {
            for r in &frame.instances {
                text.push_str(&r.id);
                text.push('\n');
            }
        }
        Format::Table => text.push_str(&table(frame)),
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn number(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.1}"),
    }
}

fn table(frame: &Frame) -> String {
    let c = &frame.counts;
    let mut s = format!(
        "instances: {} total, {} connected, {} connecting, {} disconnected, {} unknown, {} panicked\n\n",
        c.total, c.connected, c.connecting, c.disconnected, c.unknown, c.panicked
    );
    s.push_str(&format!("busiest docked instances by {}\n", frame.stat));
    let rows = frame
        .instances
        .iter()
        .map(|r| {
            vec![
                output::short(&r.id),
                output::text(r.alias.as_deref()).chars().take(24).collect(),
                r.status.clone(),
                if r.panicked { "yes" } else { "-" }.into(),
                number(r.value),
                number(r.rate),
            ]
        })
        .collect();
    s.push_str(&output::table(
        &["ID", "ALIAS", "STATUS", "PANICKED", "VALUE", "PER SEC"],
        rows,
    ));
    s.push_str("\nrecent panics\n");
    let panics: Vec<Vec<String>> = frame
        .panics
        .iter()
        .map(|p| {
            vec![
                output::ago_at(p.at.as_deref()),
                output::short(&p.instance_id),
                p.panic_id.clone(),
            ]
        })
        .collect();
    s.push_str(&output::table(&["WHEN", "INSTANCE", "PANIC"], panics));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_found_by_dotted_name_in_either_shape() {
        let array = serde_json::json!([
            {"name": "monotonic_ts_ms", "value": 12},
            {"name": "eth0.ethernet.packets_rx", "value": 7},
            {"name": "eth1", "value": {"ethernet": {"packets_rx": 3.5}}}
        ]);
        assert_eq!(lookup(&array, "eth0.ethernet.packets_rx"), Some(7.0));
        assert_eq!(lookup(&array, "eth1.ethernet.packets_rx"), Some(3.5));
        assert_eq!(lookup(&array, "eth0.ethernet"), None);
        let object = serde_json::json!({"eth0": {"ethernet.packets_rx": 4}});
        assert_eq!(lookup(&object, "eth0.ethernet.packets_rx"), Some(4.0));
        assert_eq!(lookup(&Value::Null, "x"), None);
    }

    #[test]
    fn the_rate_comes_from_the_reading_before() {
        use crate::model::instances::StatsReading;
        let at = |t: &str, v: u64| StatsReading {
            at: t.into(),
            stats: serde_json::json!([{"name": "p", "value": v}]),
        };
        let s = InstanceStats {
            latest: Some(at("2024-01-01T00:00:04.000Z", 30)),
            history: vec![
                at("2024-01-01T00:00:00.000Z", 0),
                at("2024-01-01T00:00:02.000Z", 10),
            ],
        };
        assert_eq!(reading(&s, "p"), (Some(30.0), Some(10.0)));
        assert_eq!(reading(&s, "q"), (None, None));
    }
}
