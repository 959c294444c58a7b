//! A private InfluxDB 1.x (Debian's `influxd` and `influx`) for the tests
//! and benches that need a real one: its own config, directories and
//! loopback ports, killed when dropped. Include it with
//! `#[path = ".../support/influxd.rs"] mod influxd;`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Influxd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Influxd {
    /// A fresh influxd on free ports, answering queries.
    pub fn start(http_port: u16, rpc_port: u16) -> Influxd {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-influxd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().display();
        let conf = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc_port}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n"
        );
        std::fs::write(dir.path().join("influxd.conf"), conf).expect("writing influxd.conf");
        let mut i = Influxd {
            dir,
            port: http_port,
            child: None,
        };
        i.spawn();
        i
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("influxd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts (or restarts: same directories, same port) and waits until
    /// it answers queries.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("influxd log");
        let child = Command::new("influxd")
            .arg("-config")
            .arg(self.dir.path().join("influxd.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting influxd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.query("", "SHOW DATABASES").is_err() {
            assert!(
                Instant::now() < deadline,
                "influxd did not answer within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Creates the databases Mothership's users create beforehand.
    pub fn create_databases(&self, names: &[&str]) {
        for db in names {
            self.query("", &format!("CREATE DATABASE {db}"))
                .unwrap_or_else(|e| panic!("creating {db}: {e}"));
        }
    }

    /// `influx -execute`, as JSON.
    pub fn query(&self, db: &str, q: &str) -> Result<Value, String> {
        let mut cmd = Command::new("influx");
        cmd.args(["-host", "127.0.0.1", "-port", &self.port.to_string()])
            .args(["-format", "json", "-execute", q]);
        if !db.is_empty() {
            cmd.args(["-database", db]);
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// The largest number in the first series of a query's answer (for
    /// `count(*)`, the count of the most frequent field).
    pub fn number(&self, db: &str, q: &str) -> Option<f64> {
        let v = self.query(db, q).ok()?;
        let values = v["results"][0]["series"][0]["values"].as_array()?.clone();
        values
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .skip(1)
            })
            .filter_map(|x| x.as_f64())
            .reduce(f64::max)
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.kill();
    }
}
