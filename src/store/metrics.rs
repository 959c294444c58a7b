//! The counts a metrics scrape reads from the store: jobs by kind and
//! state, pods by state. One grouped query each, so a scrape costs the
//! same whatever the number of rows.

use super::sql::{params, Sql};
use super::{Store, StoreError};

impl Store {
    /// (kind, state, count) of every job row.
    pub fn job_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        Ok(self.db.query_map(
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)?.max(0) as u64)),
        )?)
    }

    /// (state, count) of every pod row, as stored: a pod whose cell died
    /// is `running` here until something reads it through the runtime.
    pub fn pod_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self.db.query_map(
            "SELECT state, COUNT(*) FROM pods GROUP BY state",
            params![],
            |r| Ok((r.get(0)?, r.get::<i64>(1)?.max(0) as u64)),
        )?)
    }
}
