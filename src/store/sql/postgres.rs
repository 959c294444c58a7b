//! The `postgres` driver: the shared store of several jetpack hosts. A
//! bounded pool of tokio-postgres connections whose I/O runs on a small
//! runtime of its own, so that the store's callers (async handlers, job
//! threads, the hangar's writer) call it as they call SQLite: a statement
//! goes to that runtime and the caller waits for its answer, never
//! entering a runtime from inside another. Prepared statements are cached
//! per connection; writers serialize on one advisory lock that every host
//! shares, as SQLite's single writer does on one host.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use super::pg_types::{column_values, PgParam};
use super::{rewrite, DbError, Dialect, Driver, Executor, Row, Tx, Value};

/// The advisory lock every write transaction takes (fleet-wide).
const WRITE_LOCK: i64 = 0x6a65_7470_6163_6b01; // "jetpack" 1
/// The advisory lock migrations are applied under.
const MIGRATE_LOCK: i64 = 0x6a65_7470_6163_6b02;
/// Prepared statements kept per connection (the store's texts are a
/// bounded set; the cache is emptied if it ever fills).
const STATEMENTS: usize = 512;

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db` (a password in it is taken but never
    /// shown; `password` overrides it).
    pub url: String,
    pub password: Option<String>,
    /// TLS to the server, verified against `ca` (or the system's roots).
    pub tls: bool,
    pub ca: Option<std::path::PathBuf>,
    /// Connections at most.
    pub pool: usize,
    /// How long a statement, or a wait for a free connection, may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("tls", &self.tls)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

struct PgConn {
    /// Shared with the statement in flight on the driver's runtime.
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
}

struct Pool {
    idle: Vec<PgConn>,
    open: usize,
}

pub struct PgDriver {
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    tls: Option<postgres_openssl::MakeTlsConnector>,
    pool: Mutex<Pool>,
    freed: Condvar,
    max: usize,
    timeout: Duration,
}

impl Drop for PgDriver {
    fn drop(&mut self) {
        // Dropped from inside the server's runtime at exit: a runtime may
        // not be dropped (blocking) there, only let go.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn pg_err(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            // DETAIL reads "Key (a, b)=(value) already exists.": keep the
            // columns, never the value (client input), each named
            // `table.column` as SQLite names them.
            let table = db.table().unwrap_or("?");
            let columns = db
                .detail()
                .and_then(|d| d.strip_prefix("Key ("))
                .and_then(|d| d.split_once(")="))
                .map(|(c, _)| c)
                .unwrap_or_default()
                .split(", ")
                .map(|c| format!("{table}.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            return DbError::Unique { columns };
        }
        return DbError::Postgres(format!(
            "{}: {} ({})",
            db.severity(),
            db.message(),
            db.code().code()
        ));
    }
    // The client's own errors (TLS, I/O) say what failed only in their
    // sources ("error performing TLS handshake": certificate verify failed).
    let mut why = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    DbError::Postgres(why)
}

impl PgDriver {
    pub fn connect(options: &PgOptions) -> Result<PgDriver, DbError> {
        let mut config: tokio_postgres::Config = options.url.parse().map_err(|_| {
            DbError::Postgres(format!(
                "store.url {}: not a postgres:// URL",
                redact(&options.url)
            ))
        })?;
        if let Some(pw) = &options.password {
            config.password(pw);
        }
        config.connect_timeout(options.timeout);
        config.application_name("jetpack");
        let tls = if options.tls {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
                .map_err(|e| DbError::Postgres(format!("TLS: {e}")))?;
            if let Some(ca) = &options.ca {
                builder
                    .set_ca_file(ca)
                    .map_err(|e| DbError::Postgres(format!("TLS CA {}: {e}", ca.display())))?;
            }
            Some(postgres_openssl::MakeTlsConnector::new(builder.build()))
        } else {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            None
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jetpack-pg")
            .enable_all()
            .build()
            .map_err(|e| DbError::Postgres(format!("starting the database runtime: {e}")))?;
        let driver = PgDriver {
            runtime: Some(runtime),
            config,
            tls,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: options.pool.max(1),
            timeout: options.timeout,
        };
        // Fail at start, with the reason, rather than at the first request.
        let conn = driver.acquire()?;
        driver.release(conn);
        Ok(driver)
    }

    /// Runs `fut` on the driver's runtime and waits for it, at most the
    /// statement timeout.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, DbError> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| DbError::Unavailable("the store is closed".into()))?;
        let (tx, rx) = mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(self.timeout)
            .map_err(|_| DbError::Unavailable(format!("no answer within {:?}", self.timeout)))
    }

    fn open(&self) -> Result<PgConn, DbError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| DbError::Unavailable("the store is closed".into()))?
            .handle()
            .clone();
        let client = self.run(async move {
            let client = match tls {
                Some(tls) => {
                    let (client, conn) = config.connect(tls).await?;
                    rt.spawn(conn);
                    client
                }
                None => {
                    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                    rt.spawn(conn);
                    client
                }
            };
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        let client = client.map_err(|e| DbError::Unavailable(pg_err(e).to_string()))?;
        Ok(PgConn {
            client: Arc::new(client),
            statements: HashMap::new(),
        })
    }

    /// A connection from the pool, a new one while under the cap, or the
    /// next one freed (at most the timeout).
    fn acquire(&self) -> Result<PgConn, DbError> {
        let deadline = Instant::now() + self.timeout;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while let Some(conn) = pool.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                pool.open -= 1;
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                let made = self.open();
                if made.is_err() {
                    let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
                    pool.open -= 1;
                    self.freed.notify_one();
                }
                return made;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbError::Unavailable(format!(
                    "all {} connections busy for {:?}",
                    self.max, self.timeout
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn release(&self, conn: PgConn) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if conn.client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(conn);
        }
        self.freed.notify_one();
    }

    /// Forgets a connection whose state is unknown (a statement timed out
    /// on it, or a rollback failed).
    fn discard(&self, conn: PgConn) {
        drop(conn);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.open -= 1;
        self.freed.notify_one();
    }

    fn statement(&self, conn: &mut PgConn, sql: &str) -> Result<Statement, DbError> {
        if let Some(st) = conn.statements.get(sql) {
            return Ok(st.clone());
        }
        let text = rewrite::placeholders(sql);
        let client = conn.client.clone();
        let st = self
            .run(async move { client.prepare(&text).await })?
            .map_err(pg_err)?;
        if conn.statements.len() >= STATEMENTS {
            conn.statements.clear();
        }
        conn.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn execute_on(&self, conn: &mut PgConn, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        let st = self.statement(conn, sql)?;
        let client = conn.client.clone();
        let params: Vec<PgParam> = params.iter().cloned().map(PgParam).collect();
        let n = self
            .run(async move {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as _).collect();
                client.execute(&st, &refs).await
            })?
            .map_err(pg_err)?;
        Ok(n as usize)
    }

    fn query_on(
        &self,
        conn: &mut PgConn,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Row>, DbError> {
        let st = self.statement(conn, sql)?;
        let client = conn.client.clone();
        let columns: Arc<[String]> = st.columns().iter().map(|c| c.name().to_string()).collect();
        let params: Vec<PgParam> = params.iter().cloned().map(PgParam).collect();
        let rows = self
            .run(async move {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as _).collect();
                client.query(&st, &refs).await
            })?
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| Ok(Row::new(columns.clone(), column_values(r)?)))
            .collect()
    }

    fn batch_on(&self, conn: &PgConn, sql: &str) -> Result<(), DbError> {
        let client = conn.client.clone();
        let sql = sql.to_string();
        self.run(async move { client.batch_execute(&sql).await })?
            .map_err(pg_err)
    }

    /// Runs `f` on a pooled connection; one whose statement timed out is
    /// not given back.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut PgConn) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.acquire()?;
        let out = f(&mut conn);
        match &out {
            Err(DbError::Unavailable(_)) => self.discard(conn),
            _ => self.release(conn),
        }
        out
    }

    /// Applies the migrations the database lacks, under an advisory lock:
    /// two servers starting at once on an empty database migrate it once
    /// (the second waits, then finds nothing to do). Each migration is a
    /// transaction with its row in `jetpack_migrations`. Returns the
    /// version found.
    pub fn migrate(&self, migrations: &[&str], by: &str) -> Result<i64, DbError> {
        self.with_conn(|conn| {
            self.batch_on(conn, &format!("SELECT pg_advisory_lock({MIGRATE_LOCK})"))?;
            let out = self.migrate_locked(conn, migrations, by);
            let unlocked =
                self.batch_on(conn, &format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"));
            let found = out?;
            unlocked?;
            Ok(found)
        })
    }

    fn migrate_locked(
        &self,
        conn: &mut PgConn,
        migrations: &[&str],
        by: &str,
    ) -> Result<i64, DbError> {
        self.batch_on(
            conn,
            "CREATE TABLE IF NOT EXISTS jetpack_migrations (
                 version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, applied_by TEXT NOT NULL)",
        )?;
        let rows = self.query_on(
            conn,
            "SELECT COALESCE(MAX(version), 0) AS v FROM jetpack_migrations",
            &[],
        )?;
        let version: i64 = rows.first().map(|r| r.get("v")).transpose()?.unwrap_or(0);
        if version as usize > migrations.len() {
            return Err(DbError::TooNew(version));
        }
        for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
            self.batch_on(conn, "BEGIN")?;
            let applied = self.batch_on(conn, sql).and_then(|_| {
                self.execute_on(
                    conn,
                    "INSERT INTO jetpack_migrations (version, applied_at, applied_by) VALUES (?1, ?2, ?3)",
                    &[
                        Value::Int(i as i64 + 1),
                        Value::Int(crate::store::now()),
                        Value::Text(by.to_string()),
                    ],
                )
            });
            match applied {
                Ok(_) => self.batch_on(conn, "COMMIT")?,
                Err(e) => {
                    let _ = self.batch_on(conn, "ROLLBACK");
                    return Err(e);
                }
            }
        }
        Ok(version)
    }
}

impl Executor for PgDriver {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        self.with_conn(|c| self.execute_on(c, sql, params))
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.with_conn(|c| self.query_on(c, sql, params))
    }
}

impl Driver for PgDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn write_tx(&self) -> Result<Box<dyn Tx + '_>, DbError> {
        let conn = self.acquire()?;
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})");
        if let Err(e) = self.batch_on(&conn, &begin) {
            self.discard(conn);
            return Err(e);
        }
        Ok(Box::new(PgTx {
            driver: self,
            conn: Mutex::new(Some(conn)),
        }))
    }
}

/// An open transaction on one pooled connection.
struct PgTx<'a> {
    driver: &'a PgDriver,
    conn: Mutex<Option<PgConn>>,
}

impl PgTx<'_> {
    fn with<T>(&self, f: impl FnOnce(&mut PgConn) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = guard
            .as_mut()
            .ok_or_else(|| DbError::Unavailable("the transaction has ended".into()))?;
        f(conn)
    }
}

impl Executor for PgTx<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        self.with(|c| self.driver.execute_on(c, sql, params))
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.with(|c| self.driver.query_on(c, sql, params))
    }
}

impl Tx for PgTx<'_> {
    fn commit(self: Box<Self>) -> Result<(), DbError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| DbError::Unavailable("the transaction has ended".into()))?;
        match self.driver.batch_on(&conn, "COMMIT") {
            Ok(()) => {
                self.driver.release(conn);
                Ok(())
            }
            Err(e) => {
                self.driver.discard(conn);
                Err(e)
            }
        }
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        let taken = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(conn) = taken {
            match self.driver.batch_on(&conn, "ROLLBACK") {
                Ok(()) => self.driver.release(conn),
                Err(_) => self.driver.discard(conn),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://jet:s3cret@db.example:5432/fleet"),
            "postgres://jet@db.example:5432/fleet"
        );
        assert_eq!(redact("postgres://db/fleet"), "postgres://db/fleet");
        let o = PgOptions {
            url: "postgres://jet:s3cret@db/fleet".into(),
            password: Some("other".into()),
            tls: false,
            ca: None,
            pool: 4,
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
    }
}
