//! The counts a metrics scrape reads from the store: jobs by kind and
//! state, pods by state. One grouped query each, so a scrape costs the
//! same whatever the number of rows.

use super::{Store, StoreError};

impl Store {
    /// (kind, state, count) of every job row.
    pub fn job_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (state, count) of every pod row, as stored: a pod whose cell died
    /// is `running` here until something reads it through the runtime.
    pub fn pod_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM pods GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
