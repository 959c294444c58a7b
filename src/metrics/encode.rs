//! A snapshot as text, with `prometheus-client`'s encoders: the Prometheus
//! text format 0.0.4 (what Prometheus asks for by default), or OpenMetrics
//! 1.0 when the scraper's Accept asks for it. The encoders write names,
//! `_total` and `le` and escape label values; a `Collector` hands them the
//! snapshot's families.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::snapshot::{Kind, Snapshot, Text, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// text/plain; version=0.0.4
    Prometheus,
    /// application/openmetrics-text; version=1.0.0
    OpenMetrics,
}

impl Format {
    /// OpenMetrics only when the Accept header names it (Prometheus does
    /// when scrape_protocols allow it); anything else gets 0.0.4.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug)]
struct Label(Text);

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

/// The snapshot, handed to the encoder once per scrape.
#[derive(Debug)]
struct Families(std::sync::Mutex<Option<Snapshot>>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.0.lock().map_err(|_| std::fmt::Error)?;
        let Some(snapshot) = snapshot.as_ref() else {
            return Ok(());
        };
        for family in &snapshot.families {
            let kind = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for sample in &family.samples {
                let labels: Vec<(&str, Label)> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, Label(v.clone())))
                    .collect();
                let mut m = metric.encode_family(&labels)?;
                match (&sample.value, family.kind) {
                    (Value::Int(v), Kind::Counter) => {
                        m.encode_counter::<NoLabelSet, _, u64>(v, None)?
                    }
                    (Value::Float(v), Kind::Counter) => {
                        m.encode_counter::<NoLabelSet, _, f64>(v, None)?
                    }
                    (Value::Int(v), _) => m.encode_gauge(v)?,
                    (Value::Float(v), _) => m.encode_gauge(v)?,
                    (Value::Histogram(h), _) => {
                        m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// The exposition of `snapshot` in `format`.
pub fn encode(snapshot: Snapshot, format: Format) -> Result<String, std::fmt::Error> {
    let comments = snapshot.comments.clone();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(std::sync::Mutex::new(Some(snapshot)))));
    let mut out = String::new();
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
            // Plain comments are allowed in 0.0.4 (and not in OpenMetrics).
            for c in comments {
                out.push_str("# ");
                out.push_str(&c.replace('\n', " "));
                out.push('\n');
            }
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{text, Family, Histogram};
    use super::*;

    fn sample() -> Snapshot {
        let mut s = Snapshot::default();
        let mut f = Family::new("jetpack_test_requests", "Requests", Kind::Counter);
        f.push(vec![("route", text("/v1/x\"\n\\"))], Value::Int(3));
        s.add(f);
        s.add(Family::single(
            "jetpack_test_seconds",
            "Latency",
            Kind::Histogram,
            Value::Histogram(Histogram {
                buckets: vec![(0.5, 1), (f64::INFINITY, 1)],
                sum: 1.2,
                count: 2,
            }),
        ));
        s.comments.push("left out".into());
        s
    }

    #[test]
    fn prometheus_text_escapes_labels_and_carries_comments() {
        let t = encode(sample(), Format::Prometheus).unwrap();
        assert!(
            t.contains("# TYPE jetpack_test_requests_total counter"),
            "{t}"
        );
        assert!(
            t.contains(r#"jetpack_test_requests_total{route="/v1/x\"\n\\"} 3"#),
            "{t}"
        );
        assert!(
            t.contains(r#"jetpack_test_seconds_bucket{le="+Inf"} 2"#),
            "{t}"
        );
        assert!(t.ends_with("# left out\n"), "{t}");
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let t = encode(sample(), Format::OpenMetrics).unwrap();
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert!(!t.contains("left out"));
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    }
}
