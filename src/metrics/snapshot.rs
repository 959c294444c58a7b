//! One scrape's figures in a neutral form (families of samples with their
//! labels), so that every exporter encodes the same numbers: Prometheus
//! text here, InfluxDB line protocol later.

use std::sync::Arc;

/// Counter, gauge or histogram, as Prometheus types them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A histogram's buckets (upper bound, observations in that bucket alone,
/// not cumulative), sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Histogram(Histogram),
}

/// A label value. Shared: one instance id labels every stat of it.
pub type Text = Arc<str>;

#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Vec<(&'static str, Text)>,
    pub value: Value,
}

/// One metric family. `name` has no `_total`: the encoder adds it to
/// counters, as Prometheus and OpenMetrics name them.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// A family of one sample without labels.
    pub fn single(name: &'static str, help: &'static str, kind: Kind, value: Value) -> Family {
        let mut f = Family::new(name, help, kind);
        f.push(Vec::new(), value);
        f
    }

    pub fn push(&mut self, labels: Vec<(&'static str, Text)>, value: Value) {
        self.samples.push(Sample { labels, value });
    }
}

/// Everything one scrape saw, and the comments the text format carries
/// (OpenMetrics has no comments; its readers get the figures alone).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub families: Vec<Family>,
    pub comments: Vec<String>,
}

impl Snapshot {
    pub fn add(&mut self, family: Family) {
        self.families.push(family);
    }

    /// The family named `name`, for tests and reporters.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// A label value from text.
pub fn text(s: &str) -> Text {
    Arc::from(s)
}
