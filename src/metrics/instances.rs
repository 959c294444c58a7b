//! Instance STATS as gauges: `jetpack_instance_stat{instance_id, stat}`
//! and `jetpack_instance_up{instance_id, alias, tag}`, computed at scrape
//! time from the STATS text the fleet keeps (parsed here, never on the
//! hangar's path). STATS come from instances, so they are hostile input:
//! a document gives at most `max_keys` stats, nesting deeper than
//! `max_depth` and names longer than `MAX_NAME` are dropped, and every
//! drop is counted (`jetpack_instance_stats_dropped{reason}`). Label
//! values are escaped by the encoder, so quotes and newlines in names
//! cannot break the exposition. Series per instance are many: at most
//! `metrics.instances.max` instances are shown unless the scrape asks for
//! all, and the exposition says how many were left out.

use std::collections::HashSet;

use serde_json::Value as Json;

use super::snapshot::{text, Family, Kind, Snapshot, Text, Value};
use crate::hangar::fleet::{Fleet, IdentFields, Live};
use crate::hangar::token::InstanceId;

/// The longest stat name kept, in bytes.
pub const MAX_NAME: usize = 200;

/// Which instances a scrape shows (`?instances=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Up to the configured cap (docked ones first, then by id).
    Capped,
    None,
    All,
}

impl Selection {
    pub fn parse(s: &str) -> Option<Selection> {
        match s {
            "none" => Some(Selection::None),
            "all" => Some(Selection::All),
            "" | "default" => Some(Selection::Capped),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct StatLimits {
    /// Stats kept per instance.
    pub max_keys: usize,
    /// Objects inside objects, below a STATS entry.
    pub max_depth: usize,
}

impl Default for StatLimits {
    fn default() -> Self {
        StatLimits {
            max_keys: 500,
            max_depth: 8,
        }
    }
}

/// What was left out of one instance's STATS, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Beyond `max_keys`.
    pub keys: u64,
    /// Deeper than `max_depth`.
    pub depth: u64,
    /// Empty, too long, or the same as an earlier stat.
    pub names: u64,
    /// Not a number (strings, booleans, null).
    pub values: u64,
    /// Documents that are not JSON (never kept by the fleet, but a
    /// scrape does not trust that).
    pub documents: u64,
}

impl Dropped {
    fn add(&mut self, o: Dropped) {
        self.keys += o.keys;
        self.depth += o.depth;
        self.names += o.names;
        self.values += o.values;
        self.documents += o.documents;
    }
}

/// One instance's STATS, flattened.
#[derive(Debug, Default)]
pub struct Flat {
    pub stats: Vec<(String, f64)>,
    pub dropped: Dropped,
}

struct Walk<'a> {
    limits: &'a StatLimits,
    seen: HashSet<String>,
    out: Flat,
}

impl Walk<'_> {
    fn value(&mut self, name: &mut String, v: &Json, depth: usize) {
        match v {
            Json::Number(n) => self.number(name, n.as_f64()),
            Json::Object(map) => {
                if depth >= self.limits.max_depth {
                    self.out.dropped.depth += 1;
                    return;
                }
                for (key, v) in map {
                    let len = name.len();
                    if !name.is_empty() {
                        name.push('.');
                    }
                    name.push_str(key);
                    self.value(name, v, depth + 1);
                    name.truncate(len);
                }
            }
            _ => self.out.dropped.values += 1,
        }
    }

    fn number(&mut self, name: &str, v: Option<f64>) {
        let Some(v) = v.filter(|v| v.is_finite()) else {
            self.out.dropped.values += 1;
            return;
        };
        if self.out.stats.len() >= self.limits.max_keys {
            self.out.dropped.keys += 1;
            return;
        }
        if name.is_empty() || name.len() > MAX_NAME || !self.seen.insert(name.to_string()) {
            self.out.dropped.names += 1;
            return;
        }
        self.out.stats.push((name.to_string(), v));
    }
}

/// Flattens a STATS document: IncludeOS sends an array of
/// `{"name": "eth0.ethernet.packets_rx", "value": n}`; a value that is an
/// object, or a document that is one object, gives dotted names.
pub fn flatten(json: &str, limits: &StatLimits) -> Flat {
    let mut walk = Walk {
        limits,
        seen: HashSet::new(),
        out: Flat::default(),
    };
    // serde_json refuses nesting deeper than 128 itself, so a hostile
    // document cannot recurse this far either.
    let doc: Json = match serde_json::from_str(json) {
        Ok(d) => d,
        Err(_) => {
            walk.out.dropped.documents += 1;
            return walk.out;
        }
    };
    match &doc {
        Json::Array(entries) => {
            for e in entries {
                match (e.get("name").and_then(Json::as_str), e.get("value")) {
                    (Some(name), Some(v)) => {
                        let mut name = name.to_string();
                        walk.value(&mut name, v, 0);
                    }
                    _ => walk.out.dropped.values += 1,
                }
            }
        }
        Json::Object(_) => walk.value(&mut String::new(), &doc, 0),
        _ => walk.out.dropped.documents += 1,
    }
    walk.out
}

/// One instance as a scrape copies it out of the fleet (under its lock,
/// briefly); parsing happens after.
struct Copied {
    id: Text,
    alias: Text,
    tag: Text,
    up: bool,
    stats: Option<Box<str>>,
}

fn copy(id: &InstanceId, l: &Live) -> Copied {
    Copied {
        id: text(id.as_str()),
        alias: text(l.alias.as_deref().unwrap_or("")),
        tag: text(IdentFields::of(l).tag.unwrap_or("")),
        up: l.status.is_docked(),
        stats: l.stats.as_ref().map(|s| s.json.clone()),
    }
}

/// Adds the per-instance families to `out`.
pub fn read(
    fleet: &Fleet,
    selection: Selection,
    cap: usize,
    limits: &StatLimits,
    out: &mut Snapshot,
) {
    let mut copied: Vec<Copied> = Vec::new();
    let mut left_out = 0usize;
    match selection {
        Selection::None => left_out = fleet.len(),
        Selection::All => fleet.each(|id, l| copied.push(copy(id, l))),
        Selection::Capped => {
            // Which ones first (docked, then by id), without copying any
            // STATS of those left out.
            let mut keys: Vec<(bool, InstanceId)> = Vec::new();
            fleet.each(|id, l| keys.push((!l.status.is_docked(), id.clone())));
            if keys.len() > cap {
                keys.select_nth_unstable(cap);
                left_out = keys.len() - cap;
                keys.truncate(cap);
            }
            for (_, id) in keys {
                if let Ok(c) = fleet.with(&id, |l| copy(&id, l)) {
                    copied.push(c);
                }
            }
        }
    }
    copied.sort_by(|a, b| a.id.cmp(&b.id));
    let mut up = Family::new(
        "jetpack_instance_up",
        "1 while the instance is docked, else 0",
        Kind::Gauge,
    );
    let mut stat = Family::new(
        "jetpack_instance_stat",
        "The instance's latest STATS, one series per numeric stat (dotted names)",
        Kind::Gauge,
    );
    let mut dropped = Dropped::default();
    for c in copied {
        up.push(
            vec![
                ("instance_id", c.id.clone()),
                ("alias", c.alias),
                ("tag", c.tag),
            ],
            Value::Int(u64::from(c.up)),
        );
        let Some(json) = c.stats else { continue };
        let flat = flatten(&json, limits);
        dropped.add(flat.dropped);
        for (name, v) in flat.stats {
            stat.push(
                vec![("instance_id", c.id.clone()), ("stat", text(&name))],
                Value::Float(v),
            );
        }
    }
    out.add(up);
    out.add(stat);
    let mut d = Family::new(
        "jetpack_instance_stats_dropped",
        "STATS entries left out of this scrape's jetpack_instance_stat, by reason",
        Kind::Gauge,
    );
    for (reason, n) in [
        ("keys", dropped.keys),
        ("depth", dropped.depth),
        ("name", dropped.names),
        ("value", dropped.values),
        ("document", dropped.documents),
    ] {
        d.push(vec![("reason", text(reason))], Value::Int(n));
    }
    out.add(d);
    out.add(Family::single(
        "jetpack_metrics_instances_left_out",
        "Instances whose per-instance series this scrape left out (metrics.instances.max, ?instances=)",
        Kind::Gauge,
        Value::Int(left_out as u64),
    ));
    if left_out > 0 {
        out.comments.push(format!(
            "jetpack: {left_out} instance(s) left out of jetpack_instance_up and jetpack_instance_stat \
             (metrics.instances.max = {cap}); ?instances=all shows every one"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includeos_stats_flatten_to_their_names() {
        let f = flatten(
            r#"[{"name":"monotonic_ts_ms","value":12},{"name":"eth0.ethernet.packets_rx","value":3.5},
                {"name":"s","value":"text"},{"name":"eth0.ethernet.packets_rx","value":1}]"#,
            &StatLimits::default(),
        );
        assert_eq!(
            f.stats,
            vec![
                ("monotonic_ts_ms".to_string(), 12.0),
                ("eth0.ethernet.packets_rx".to_string(), 3.5)
            ]
        );
        assert_eq!(
            f.dropped,
            Dropped {
                values: 1,
                names: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn nested_objects_get_dotted_names_up_to_the_depth() {
        let limits = StatLimits {
            max_keys: 10,
            max_depth: 2,
        };
        let f = flatten(r#"{"a":{"b":1,"c":{"d":2}},"e":3}"#, &limits);
        assert_eq!(
            f.stats,
            vec![("a.b".to_string(), 1.0), ("e".to_string(), 3.0)]
        );
        assert_eq!(f.dropped.depth, 1);
    }

    #[test]
    fn hostile_documents_are_bounded() {
        let limits = StatLimits::default();
        let many: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"name":"k\"\n{i}","value":{i}}}"#))
            .collect();
        let f = flatten(&format!("[{}]", many.join(",")), &limits);
        assert_eq!(f.stats.len(), limits.max_keys);
        assert_eq!(f.dropped.keys, 10_000 - limits.max_keys as u64);
        let deep = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));
        assert_eq!(flatten(&deep, &limits).dropped.documents, 1);
        let long = format!(r#"[{{"name":"{}","value":1}}]"#, "x".repeat(MAX_NAME + 1));
        assert_eq!(flatten(&long, &limits).dropped.names, 1);
        assert_eq!(flatten("not json", &limits).dropped.documents, 1);
    }
}
