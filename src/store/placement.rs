//! What placement reads and writes in the fleet's tables: which host's
//! pod runs each launched instance (`instances.launched_on`) and the spread
//! tag it was launched with, counted per host; and the launches hosts have
//! taken and not finished, which count too (a host's count in the
//! instances table lags its work by one launch). How to place is the
//! `hosts::placement` module's business.

use super::jobs::{job_row, JobRow};
use super::sql::{params, Sql};
use super::{Store, StoreError};
use crate::jobs::{JobKind, JobState};

/// How many launched instances run on `host` with spread tag `spread`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchedCount {
    pub host: String,
    pub spread: Option<String>,
    pub n: u64,
}

impl Store {
    /// Records that `host`'s pod runs instance `id` (launched with `spread`).
    pub fn set_instance_launched(
        &self,
        id: &str,
        host: &str,
        spread: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE instances SET launched_on = ?2, spread = ?3 WHERE id = ?1",
            params![id, host, spread],
        )?;
        Ok(())
    }

    /// `host`'s pod no longer runs instance `id`; a host that launched it
    /// since keeps it. False when `host` was not its host.
    pub fn clear_instance_launched(&self, id: &str, host: &str) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            "UPDATE instances SET launched_on = NULL WHERE id = ?1 AND launched_on = ?2",
            params![id, host],
        )? > 0)
    }

    /// The host whose pod runs instance `id`, if jetpack launched it.
    pub fn instance_launched_on(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT launched_on FROM instances WHERE id = ?1",
                params![id],
                |r| r.get::<Option<String>>(0),
            )?
            .flatten())
    }

    /// The spread tag instance `id` was launched with.
    pub fn instance_spread(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT spread FROM instances WHERE id = ?1",
                params![id],
                |r| r.get::<Option<String>>(0),
            )?
            .flatten())
    }

    /// (instance, host) of every instance launched on another host than `me`.
    pub fn launched_elsewhere(&self, me: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.db.query_map(
            "SELECT id, launched_on FROM instances
             WHERE launched_on IS NOT NULL AND launched_on <> ?1",
            params![me],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Launched instances per host and spread tag.
    pub fn launched_counts(&self) -> Result<Vec<LaunchedCount>, StoreError> {
        Ok(self.db.query_map(
            "SELECT launched_on, spread, count(*) FROM instances
             WHERE launched_on IS NOT NULL GROUP BY launched_on, spread",
            params![],
            |r| {
                Ok(LaunchedCount {
                    host: r.get(0)?,
                    spread: r.get(1)?,
                    n: r.get::<i64>(2)?.max(0) as u64,
                })
            },
        )?)
    }

    /// Launch jobs a host has taken and not finished.
    pub fn placed_launches(&self) -> Result<Vec<JobRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM jobs WHERE kind = ?1 AND host IS NOT NULL AND state IN (?2, ?3)",
            params![JobKind::Launch, JobState::Queued, JobState::Running],
            job_row,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::instances::InstanceWrite;

    #[test]
    fn launched_instances_count_per_host_and_spread_and_move_once() {
        let s = Store::in_memory();
        for id in ["a", "b", "c"] {
            s.apply_instance_writes(&[InstanceWrite::Docked {
                id: id.into(),
                uplink_id: None,
                host: None,
                at: 1,
            }])
            .unwrap();
        }
        s.set_instance_launched("a", "h0", Some("web")).unwrap();
        s.set_instance_launched("b", "h0", None).unwrap();
        s.set_instance_launched("c", "h1", Some("web")).unwrap();
        let mut counts = s.launched_counts().unwrap();
        counts.sort_by(|x, y| (&x.host, &x.spread).cmp(&(&y.host, &y.spread)));
        let seen: Vec<(&str, Option<&str>, u64)> = counts
            .iter()
            .map(|c| (c.host.as_str(), c.spread.as_deref(), c.n))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("h0", None, 1),
                ("h0", Some("web"), 1),
                ("h1", Some("web"), 1)
            ]
        );
        assert_eq!(
            s.launched_elsewhere("h0").unwrap(),
            vec![("c".to_string(), "h1".to_string())]
        );
        // Launched again on h1: h0's late clear changes nothing.
        s.set_instance_launched("a", "h1", Some("web")).unwrap();
        assert!(!s.clear_instance_launched("a", "h0").unwrap());
        assert_eq!(s.instance_launched_on("a").unwrap().as_deref(), Some("h1"));
        assert!(s.clear_instance_launched("a", "h1").unwrap());
        assert_eq!(s.instance_launched_on("a").unwrap(), None);
        assert_eq!(s.instance_launched_on("nope").unwrap(), None);
    }
}
