//! The `sqlite` driver: one connection to a file in WAL mode (or memory,
//! for tests), behind a mutex so that the driver is shared between threads
//! as the postgres driver's pool is. Several jetpack processes share the
//! file (the CLI, pod supervisors, the server), so writers take the lock
//! at once and wait out a busy timeout instead of failing.

use std::path::Path;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::{DbError, Dialect, Driver, Executor, Row, Tx, Value};

/// How long a statement waits for another connection's lock.
const BUSY: Duration = Duration::from_secs(10);

pub struct SqliteDriver {
    conn: Mutex<Connection>,
}

impl SqliteDriver {
    pub fn open(path: &Path) -> Result<SqliteDriver, DbError> {
        Self::setup(Connection::open(path)?)
    }

    pub fn in_memory() -> Result<SqliteDriver, DbError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<SqliteDriver, DbError> {
        // WAL lets readers go on during a write; the busy timeout turns a
        // brief lock into a wait instead of an error.
        conn.busy_timeout(BUSY)?;
        // Switching a new file to WAL takes its exclusive lock without the
        // busy handler: processes opening a new file at once get
        // SQLITE_BUSY at once. Retried for as long as the busy timeout.
        let deadline = Instant::now() + BUSY;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                done => break done?,
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Each CLI command is a short process: checkpointing and deleting
        // the WAL when its connection closes cost it an fsync (about 8 ms a
        // `pod run --rm`). Left in the WAL, commits are as durable
        // (synchronous=NORMAL) and the next automatic checkpoint folds them in.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        Ok(SqliteDriver {
            conn: Mutex::new(conn),
        })
    }

    /// Applies the migrations past the file's `user_version`, in one
    /// transaction that holds the write lock (two processes opening a new
    /// file migrate it once). Returns the version found, or `TooNew`.
    pub fn migrate(&mut self, migrations: &[&str]) -> Result<i64, DbError> {
        let tx = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version as usize > migrations.len() {
            return Err(DbError::TooNew(version));
        }
        for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(version)
    }
}

fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<usize, DbError> {
    let mut st = conn.prepare_cached(sql)?;
    st.execute(rusqlite::params_from_iter(params.iter().map(bind)))
        .map_err(unique)
}

fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
    let mut st = conn.prepare_cached(sql)?;
    let columns: Arc<[String]> = st.column_names().into_iter().map(String::from).collect();
    let mut rows = st.query(rusqlite::params_from_iter(params.iter().map(bind)))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Int(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                })
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        out.push(Row::new(columns.clone(), values));
    }
    Ok(out)
}

fn bind(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Int(i) => V::Integer(*i),
        Value::Real(f) => V::Real(*f),
        Value::Text(s) => V::Text(s.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

/// SQLite says which columns a UNIQUE constraint refused in its message
/// (`UNIQUE constraint failed: bases.name`), never the value.
fn unique(e: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e {
        if f.code == ErrorCode::ConstraintViolation {
            if let Some(columns) = msg.strip_prefix("UNIQUE constraint failed: ") {
                return DbError::Unique {
                    columns: columns.to_string(),
                };
            }
        }
    }
    DbError::Sqlite(e)
}

impl SqliteDriver {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding it leaves SQLite consistent (every mutation
        // is one statement or transaction, rolled back by SqliteTx's drop).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Executor for SqliteDriver {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        execute(&self.lock(), sql, params)
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        query(&self.lock(), sql, params)
    }
}

impl Driver for SqliteDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn write_tx(&self) -> Result<Box<dyn Tx + '_>, DbError> {
        // IMMEDIATE: a deferred transaction that reads and then writes
        // fails at once with SQLITE_BUSY when another connection wrote in
        // between (its snapshot is stale).
        let conn = self.lock();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Box::new(SqliteTx { conn, open: true }))
    }
}

/// A transaction on the driver's connection, which it holds (the mutex)
/// until it ends: rolled back when dropped open.
struct SqliteTx<'a> {
    conn: MutexGuard<'a, Connection>,
    open: bool,
}

impl Executor for SqliteTx<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        execute(&self.conn, sql, params)
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        query(&self.conn, sql, params)
    }
}

impl Tx for SqliteTx<'_> {
    fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        self.open = false;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            // A failed COMMIT may leave the transaction open: end it.
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{params, Sql};
    use super::*;

    #[test]
    fn a_dropped_transaction_changes_nothing_and_unique_names_its_columns() {
        let mut db = SqliteDriver::in_memory().unwrap();
        db.migrate(&["CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT UNIQUE, n INTEGER)"])
            .unwrap();
        {
            let tx = db.write_tx().unwrap();
            tx.execute("INSERT INTO t VALUES (?1, ?2, ?3)", params!["a", "x", 1])
                .unwrap();
        }
        assert!(db.query("SELECT * FROM t", params![]).unwrap().is_empty());
        let tx = db.write_tx().unwrap();
        tx.execute("INSERT INTO t VALUES (?1, ?2, ?3)", params!["a", "x", 1])
            .unwrap();
        tx.commit().unwrap();
        let e = db
            .execute("INSERT INTO t VALUES (?1, ?2, ?3)", params!["b", "x", 2])
            .unwrap_err();
        assert!(matches!(e, DbError::Unique { columns } if columns == "t.name"));
        let n: i64 = db
            .query_row("SELECT n FROM t WHERE id = ?1", params!["a"], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            db.migrate(&[]).unwrap_err().to_string(),
            DbError::TooNew(1).to_string()
        );
    }
}
