//! `metrics.*`: who may read `/metrics`, where it is served besides the
//! API, and how many per-instance series a scrape shows.

use std::net::SocketAddr;

use super::values::Values;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Whether /metrics asks for the API's credentials (`metrics.auth = api`).
    pub auth: bool,
    /// A separate plain-HTTP listener for /metrics alone.
    pub listen: Option<SocketAddr>,
    pub instances_max: usize,
    pub stats_max: usize,
    /// `metrics.reporter = influxdb`: push to InfluxDB.
    pub influxdb: bool,
    /// `metrics.interval`, seconds.
    pub interval: u64,
}

pub(super) fn read(v: &Values) -> Result<MetricsConfig, ConfigError> {
    Ok(MetricsConfig {
        auth: match v.str("metrics.auth") {
            "api" => true,
            "none" => false,
            _ => return Err(v.bad("metrics.auth", "expected api or none".into())),
        },
        listen: match v.str("metrics.listen") {
            "" => None,
            s => Some(s.parse().map_err(|_| {
                v.bad(
                    "metrics.listen",
                    "expected ADDR:PORT (e.g. 127.0.0.1:9100)".into(),
                )
            })?),
        },
        instances_max: v.number("metrics.instances.max")? as usize,
        stats_max: v.positive("metrics.instances.stats")? as usize,
        influxdb: match v.str("metrics.reporter") {
            "none" | "" => false,
            "influxdb" => true,
            _ => return Err(v.bad("metrics.reporter", "expected none or influxdb".into())),
        },
        interval: v.positive("metrics.interval")?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::load_text;

    #[test]
    fn metrics_keys_are_typed() {
        let c = load_text("", &[]).unwrap();
        assert!(c.metrics.auth);
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.metrics.instances_max, 1000);
        let c = load_text(
            "metrics.auth = none\nmetrics.listen = 127.0.0.1:9100\n",
            &[],
        )
        .unwrap();
        assert!(!c.metrics.auth);
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert!(load_text("metrics.auth = basic\n", &[]).is_err());
        let e = load_text("metrics.listen = 9100\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.listen"), "{e}");
        assert!(!c.metrics.influxdb);
        let c = load_text("metrics.reporter = influxdb\nmetrics.interval = 2\n", &[]).unwrap();
        assert!(c.metrics.influxdb);
        assert_eq!(c.metrics.interval, 2);
        assert!(load_text("metrics.reporter = graphite\n", &[]).is_err());
        assert!(load_text("metrics.interval = 0\n", &[]).is_err());
    }
}
