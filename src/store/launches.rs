//! Launched instances in the state database: which pod each runs in, the
//! launch record its supervisor boots from (JSON, the launch layer's
//! business), what the operator asked last and the supervisor's pid.

use super::sql::{params, DbResult, Row, Sql};

use super::{id_of, Store, StoreError};
use crate::names::PodId;

/// What the operator asked for a launched instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Running,
    Stopped,
}

impl Wanted {
    pub fn as_str(self) -> &'static str {
        match self {
            Wanted::Running => "running",
            Wanted::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Result<Wanted, String> {
        match s {
            "running" => Ok(Wanted::Running),
            "stopped" => Ok(Wanted::Stopped),
            other => Err(format!("unknown wanted state {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRow {
    pub instance_id: String,
    pub pod_id: PodId,
    /// The launch record, as JSON text.
    pub spec: String,
    pub wanted: Wanted,
    pub supervisor: Option<i32>,
    pub created_at: i64,
}

fn launch_row(r: &Row) -> DbResult<LaunchRow> {
    Ok(LaunchRow {
        instance_id: r.get("instance_id")?,
        pod_id: id_of(r, "pod_id", PodId::new)?,
        spec: r.get("spec")?,
        wanted: Wanted::parse(&r.get::<String>("wanted")?).map_err(super::corrupt)?,
        supervisor: r.get("supervisor")?,
        created_at: r.get("created_at")?,
    })
}

impl Store {
    pub fn insert_launch(&self, row: &LaunchRow) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO launches (instance_id, pod_id, spec, wanted, supervisor, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                row.instance_id,
                row.pod_id.as_str(),
                row.spec,
                row.wanted.as_str(),
                row.supervisor,
                row.created_at
            ],
        )?;
        Ok(())
    }

    pub fn launch(&self, instance_id: &str) -> Result<Option<LaunchRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM launches WHERE instance_id = ?1",
            params![instance_id],
            launch_row,
        )?)
    }

    pub fn launches(&self) -> Result<Vec<LaunchRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM launches ORDER BY created_at, instance_id",
            params![],
            launch_row,
        )?)
    }

    pub fn set_launch_spec(&self, instance_id: &str, spec: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE launches SET spec = ?2 WHERE instance_id = ?1",
            params![instance_id, spec],
        )?;
        Ok(())
    }

    pub fn set_launch_wanted(&self, instance_id: &str, wanted: Wanted) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE launches SET wanted = ?2 WHERE instance_id = ?1",
            params![instance_id, wanted.as_str()],
        )?;
        Ok(())
    }

    /// Records the supervisor's pid, or its end (`None`) when `pid` is
    /// still the one recorded, so that an old supervisor's last words
    /// never clear a newer one's pid.
    pub fn set_launch_supervisor(
        &self,
        instance_id: &str,
        pid: Option<i32>,
        was: Option<i32>,
    ) -> Result<(), StoreError> {
        match pid {
            Some(pid) => self.db.execute(
                "UPDATE launches SET supervisor = ?2 WHERE instance_id = ?1",
                params![instance_id, pid],
            )?,
            None => self.db.execute(
                "UPDATE launches SET supervisor = NULL WHERE instance_id = ?1 AND supervisor IS ?2",
                params![instance_id, was],
            )?,
        };
        Ok(())
    }

    pub fn delete_launch(&self, instance_id: &str) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM launches WHERE instance_id = ?1",
            params![instance_id],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_keep_their_pod_spec_wish_and_supervisor() {
        let s = Store::in_memory();
        let row = LaunchRow {
            instance_id: "44332211665588779900aabbccddeeff".into(),
            pod_id: PodId::random(),
            spec: "{}".into(),
            wanted: Wanted::Running,
            supervisor: None,
            created_at: 7,
        };
        s.insert_launch(&row).unwrap();
        assert!(s.insert_launch(&row).is_err(), "one launch per instance");
        s.set_launch_supervisor(&row.instance_id, Some(41), None)
            .unwrap();
        // An older supervisor's end does not clear the newer pid.
        s.set_launch_supervisor(&row.instance_id, None, Some(40))
            .unwrap();
        assert_eq!(
            s.launch(&row.instance_id).unwrap().unwrap().supervisor,
            Some(41)
        );
        s.set_launch_supervisor(&row.instance_id, None, Some(41))
            .unwrap();
        s.set_launch_wanted(&row.instance_id, Wanted::Stopped)
            .unwrap();
        s.set_launch_spec(&row.instance_id, "{\"a\":1}").unwrap();
        let got = s.launch(&row.instance_id).unwrap().unwrap();
        assert_eq!(got.supervisor, None);
        assert_eq!(got.wanted, Wanted::Stopped);
        assert_eq!(got.spec, "{\"a\":1}");
        assert_eq!(s.launches().unwrap().len(), 1);
        s.delete_launch(&row.instance_id).unwrap();
        assert!(s.launch(&row.instance_id).unwrap().is_none());
    }
}
