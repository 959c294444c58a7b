//! The store's one backend seam: a database driver that runs SQL. The
//! store's modules write their queries once, in the dialect both engines
//! share (`?N` placeholders, `INSERT ... ON CONFLICT`, `COALESCE`), and a
//! driver runs them: `sqlite` (one file, the embedded default) or
//! `postgres` (the shared store of several jetpack hosts). Values cross
//! the seam as [`Value`]s and come back as [`Row`]s, so no module above
//! names an engine's types.

mod pg_types;
pub mod postgres;
mod rewrite;
pub mod sqlite;
mod value;

pub use value::{FromValue, Row, ToValue, Value};

/// What a driver reports; mapped to `StoreError::Db` by the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Postgres(String),
    /// A UNIQUE constraint refused a row; `columns` is `table.column[, ...]`
    /// (never the refused value, which is client input).
    #[error("UNIQUE constraint failed: {columns}")]
    Unique { columns: String },
    #[error("no row")]
    NoRow,
    /// A row's column could not be read as the type asked for.
    #[error("column {column}: {why}")]
    Column { column: String, why: String },
    /// A value the store refuses to write or read back.
    #[error("{0}")]
    Corrupt(String),
    #[error("the database did not answer: {0}")]
    Unavailable(String),
    #[error("the database has schema version {0}, newer than this jetpack knows; upgrade jetpack")]
    TooNew(i64),
}

pub type DbResult<T> = Result<T, DbError>;

/// Which engine a driver speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Runs statements: a driver outside any transaction (each statement its
/// own), or an open transaction.
pub trait Executor {
    /// Runs a statement; the rows it changed.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError>;
    /// Runs a query; every row it returns.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
}

/// A write transaction: rolled back when dropped without `commit`.
pub trait Tx: Executor {
    fn commit(self: Box<Self>) -> Result<(), DbError>;
}

/// A database the store runs on, shared between threads (SQLite's one
/// connection behind a mutex, PostgreSQL's pool).
pub trait Driver: Executor + Send + Sync {
    fn dialect(&self) -> Dialect;
    /// A transaction that takes the write lock at once, so that one that
    /// reads and then writes never works from a stale read (SQLite's
    /// IMMEDIATE; on PostgreSQL an advisory lock every host shares).
    fn write_tx(&self) -> Result<Box<dyn Tx + '_>, DbError>;
}

/// The store's ways of reading rows, on any executor.
pub trait Sql: Executor {
    /// The first row, mapped; `DbError::NoRow` when there is none.
    fn query_row<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, f)?.ok_or(DbError::NoRow)
    }

    /// The first row, mapped, if there is one.
    fn query_opt<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        self.query(sql, params)?.first().map(f).transpose()
    }

    /// Every row, mapped.
    fn query_map<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        self.query(sql, params)?.iter().map(f).collect()
    }
}

impl<E: Executor + ?Sized> Sql for E {}

/// The parameters of a statement, in order: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::store::sql::Value] };
    ($($v:expr),+ $(,)?) => {
        &[$($crate::store::sql::ToValue::to_value(&$v)),+] as &[$crate::store::sql::Value]
    };
}
pub use crate::params;
