//! A PostgreSQL for the tests of the postgres store driver: the cluster
//! scripts/test.sh starts (found through the JETPACK_TEST_PG_* variables),
//! else one of our own, and a fresh database on it per call.
//!
//! Without the variables (a developer's `cargo test`), the first test
//! that asks starts a cluster with scripts/pg-test-cluster.sh in
//! /var/tmp/jetpack-test-pg-UID and LEAVES IT RUNNING: a test process
//! cannot stop anything when it exits (no destructor runs for statics),
//! and the next test binary reuses it (under a lock) instead of starting
//! one more. `scripts/pg-test-cluster.sh stop /var/tmp/jetpack-test-pg-UID`
//! ends it; its path is printed when it is made or found. Under CI the
//! variables must be set; without PostgreSQL installed, tests skip.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use jetpack::store::sql::postgres::{PgDriver, PgOptions};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running cluster: where it is and how to log in as `jetpack`.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// `postgres://jetpack@127.0.0.1:PORT/postgres`.
    pub url: String,
    pub password_file: PathBuf,
    pub ca: PathBuf,
}

/// The cluster, or None (with the reason printed) where PostgreSQL is not
/// installed. Panics under CI without the JETPACK_TEST_PG_* variables.
pub fn cluster() -> Option<Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let found = CLUSTER.get_or_init(|| {
        if let Some(c) = from_env() {
            return Ok(c);
        }
        if super::in_ci() {
            panic!(
                "CI: JETPACK_TEST_PG_URL, JETPACK_TEST_PG_PASSWORD_FILE and JETPACK_TEST_PG_CA \
                 are not set (scripts/test.sh starts the test cluster and sets them)"
            );
        }
        own_cluster()
    });
    match found {
        Ok(c) => Some(c.clone()),
        Err(why) => {
            eprintln!("SKIPPED: PostgreSQL unavailable: {why}");
            None
        }
    }
}

fn from_env() -> Option<Cluster> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(Cluster {
        url: var("JETPACK_TEST_PG_URL")?,
        password_file: var("JETPACK_TEST_PG_PASSWORD_FILE")?.into(),
        ca: var("JETPACK_TEST_PG_CA")?.into(),
    })
}

/// This user's long-lived cluster: found running, or started (see the
/// module's comment). Test binaries run at once: a lock file keeps a
/// second from starting another in the same folder.
fn own_cluster() -> Result<Cluster, String> {
    if !Path::new(PG_BIN).join("initdb").exists() {
        return Err(format!(
            "{PG_BIN}/initdb is missing (apt-get install postgresql)"
        ));
    }
    let uid = nix::unistd::getuid();
    let dir = PathBuf::from(format!("/var/tmp/jetpack-test-pg-{uid}"));
    let lock = File::create(format!("/var/tmp/jetpack-test-pg-{uid}.lock"))
        .map_err(|e| format!("the cluster's lock file: {e}"))?;
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking the cluster's lock file: {e}"))?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-cluster.sh");
    if let Ok(c) = read_env_file(&dir.join("env")) {
        if answers(&c) {
            eprintln!(
                "using the test PostgreSQL in {} (left running; `{} stop {}` ends it)",
                dir.display(),
                script.display(),
                dir.display()
            );
            return Ok(c);
        }
        // Left from before a reboot, or half made: made again.
        run(Command::new(&script).arg("stop").arg(&dir))?;
    }
    let port = super::server::free_port();
    run(Command::new(&script)
        .arg("start")
        .arg(&dir)
        .arg(port.to_string()))?;
    let c = read_env_file(&dir.join("env"))?;
    eprintln!(
        "started a test PostgreSQL in {} on port {port}; it is left running for the next \
         test binaries (`{} stop {}` ends it)",
        dir.display(),
        script.display(),
        dir.display()
    );
    Ok(c)
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The script's `export K=V K=V K=V` line (values it wrote unquoted:
/// the folder has no spaces).
fn read_env_file(path: &Path) -> Result<Cluster, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value = |key: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no {key}", path.display()))
    };
    Ok(Cluster {
        url: value("JETPACK_TEST_PG_URL")?,
        password_file: value("JETPACK_TEST_PG_PASSWORD_FILE")?.into(),
        ca: value("JETPACK_TEST_PG_CA")?.into(),
    })
}

fn answers(c: &Cluster) -> bool {
    c.psql("postgres", "SELECT 1").is_ok()
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// The role's password (from the 0600 file).
    pub fn password(&self) -> String {
        std::fs::read_to_string(&self.password_file)
            .unwrap_or_else(|e| panic!("{}: {e}", self.password_file.display()))
            .trim()
            .to_string()
    }

    /// The cluster's URL for database `db`.
    pub fn url_of(&self, db: &str) -> String {
        let (server, _) = self.url.rsplit_once('/').expect("a URL with a database");
        format!("{server}/{db}")
    }

    /// Runs `sql` with psql on database `db`: the password in the
    /// child's environment only, the statement as one argument.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let password = std::fs::read_to_string(&self.password_file)
            .map_err(|e| format!("{}: {e}", self.password_file.display()))?;
        let psql = Path::new(PG_BIN).join("psql");
        let out = Command::new(if psql.exists() { psql } else { "psql".into() })
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_of(db))
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", password.trim())
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "psql {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A fresh, empty database, dropped with the returned value.
    pub fn database(&self) -> TestDb {
        // Unique per process and call; the time keeps a reused pid on a
        // long-lived cluster from meeting a database left by a crash.
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
            % 1_000_000_000;
        let name = format!("jt_{}_{n}_{t}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating a test database: {e}"));
        TestDb {
            url: self.url_of(&name),
            name,
            cluster: self.clone(),
        }
    }
}

/// One test's database on the cluster.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    /// `postgres://jetpack@127.0.0.1:PORT/NAME`.
    pub url: String,
    pub cluster: Cluster,
}

impl TestDb {
    pub fn password_file(&self) -> &Path {
        &self.cluster.password_file
    }

    pub fn ca(&self) -> &Path {
        &self.cluster.ca
    }

    /// The `store.*` options of a `jetpack serve` on this database (TLS
    /// on, verified against the cluster's CA).
    pub fn store_options(&self) -> Vec<String> {
        vec![
            "store.driver=postgres".to_string(),
            format!("store.url={}", self.url),
            format!("store.password.file={}", self.password_file().display()),
            "store.tls=on".to_string(),
            format!("store.tls.ca={}", self.ca().display()),
        ]
    }

    /// The driver's options for this database: plain TCP, `pool`
    /// connections, a 10 s timeout.
    pub fn options(&self, pool: usize) -> PgOptions {
        PgOptions {
            url: self.url.clone(),
            password: Some(self.cluster.password()),
            tls: false,
            ca: None,
            pool,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn connect(&self, pool: usize) -> PgDriver {
        PgDriver::connect(&self.options(pool))
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url))
    }

    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.cluster.psql(&self.name, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE: a driver or server still connected is cut off; the
        // cluster outlives many test binaries, which should not fill it.
        let _ = self.cluster.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
