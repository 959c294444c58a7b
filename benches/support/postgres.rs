//! A PostgreSQL for the benches that run jetpack on the postgres store
//! driver: the test command's (JETPACK_TEST_PG_*), or a throwaway cluster
//! on loopback started with scripts/pg-test-cluster.sh and stopped on drop.

use std::path::PathBuf;
use std::process::Command;

use super::measure;

/// A PostgreSQL to bench against: the test command's, or one of our own.
pub struct Postgres {
    url: String,
    password_file: PathBuf,
    own: Option<tempfile::TempDir>,
}

impl Postgres {
    pub fn find() -> Postgres {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(url), Some(pw)) = (
            var("JETPACK_TEST_PG_URL"),
            var("JETPACK_TEST_PG_PASSWORD_FILE"),
        ) {
            return Postgres {
                url,
                password_file: pw.into(),
                own: None,
            };
        }
        let dir = tempfile::Builder::new()
            .prefix("jetpack-bench-pg-")
            .tempdir()
            .expect("a temporary folder");
        // The postgres user runs the server in it.
        std::process::Command::new("chmod")
            .arg("0755")
            .arg(dir.path())
            .status()
            .expect("chmod");
        let port = measure::free_port().to_string();
        let cluster = dir.path().join("cluster");
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-cluster.sh"
        ))
        .arg("start")
        .arg(&cluster)
        .arg(&port)
        .output()
        .expect("scripts/pg-test-cluster.sh");
        assert!(
            out.status.success(),
            "starting PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres {
            url: format!("postgres://jetpack@127.0.0.1:{port}/postgres"),
            password_file: cluster.join("password"),
            own: Some(dir),
        }
    }

    /// Runs each of `sql` on `url`, each its own transaction (as DROP
    /// DATABASE needs).
    pub fn psql(&self, url: &str, sql: &[&str]) {
        let password = std::fs::read_to_string(&self.password_file).expect("the password");
        let mut psql = Command::new("psql");
        psql.arg(url).args(["-v", "ON_ERROR_STOP=1", "-q"]);
        for statement in sql {
            psql.arg("-c").arg(statement);
        }
        let out = psql
            .env("PGPASSWORD", password.trim())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fresh database's `store.*` options.
    pub fn database(&self, name: &str) -> Vec<String> {
        self.psql(
            &self.url,
            &[
                &format!("DROP DATABASE IF EXISTS {name}"),
                &format!("CREATE DATABASE {name}"),
            ],
        );
        let url = match self.url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("bad url {}", self.url),
        };
        vec![
            "store.driver=postgres".into(),
            format!("store.url={url}"),
            format!("store.password.file={}", self.password_file.display()),
        ]
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/pg-test-cluster.sh"
            ))
            .arg("stop")
            .arg(dir.path().join("cluster"))
            .status();
        }
    }
}
