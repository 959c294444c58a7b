//! Named volumes in the state database (`volumes`: a name and when it was
//! made; the data is the dataset `volumes/NAME`), and the volumes a pod
//! row names. Removing a volume and inserting a pod that names one each
//! read the other side in their own write transaction, so a volume in use
//! can never be removed.

use super::sql::{params, DbResult, Executor, Row, Sql};
use serde::{Deserialize, Serialize};

use super::{corrupt, name_taken, Store, StoreError};
use crate::names::Name;

/// A volume of a pod: `source` is an absolute host path (canonical) or the
/// name of a named volume; `target` is an absolute path in the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodVolume {
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

impl PodVolume {
    /// The named volume it is, if it is not a host path.
    pub fn named(&self) -> Option<&str> {
        (!self.source.starts_with('/')).then_some(self.source.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VolumeRow {
    pub name: Name,
    pub created_at: i64,
}

fn volume_row(r: &Row) -> DbResult<VolumeRow> {
    Ok(VolumeRow {
        name: Name::new("volume name", &r.get::<String>("name")?).map_err(corrupt)?,
        created_at: r.get("created_at")?,
    })
}

/// Every named volume of `volumes` exists (inside the pod's insert).
pub(super) fn check_named<E: Executor + ?Sized>(
    tx: &E,
    volumes: &[PodVolume],
) -> Result<(), StoreError> {
    for name in volumes.iter().filter_map(PodVolume::named) {
        let found: Option<i64> = tx.query_opt(
            "SELECT 1 FROM volumes WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        if found.is_none() {
            return Err(StoreError::NoSuchVolume(name.to_string()));
        }
    }
    Ok(())
}

impl Store {
    pub fn insert_volume(&self, v: &VolumeRow) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO volumes (name, created_at) VALUES (?1, ?2)",
                params![v.name.as_str(), v.created_at],
            )
            .map_err(|e| name_taken(e, v.name.as_str()))?;
        Ok(())
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRow>, StoreError> {
        let rows =
            self.db
                .query_map("SELECT * FROM volumes ORDER BY name", params![], volume_row)?;
        Ok(rows)
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM volumes WHERE name = ?1",
            params![name],
            volume_row,
        )?)
    }

    /// Deletes the row of volume `name` unless a pod names it; `Err` holds
    /// the ids of the pods that do.
    pub fn delete_volume_unused(&self, name: &str) -> Result<Result<(), Vec<String>>, StoreError> {
        let tx = self.write_tx()?;
        let users: Vec<String> = {
            let rows = tx.query_map("SELECT id, volumes FROM pods", params![], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })?;
            let mut users = Vec::new();
            for (id, volumes) in rows {
                let volumes: Vec<PodVolume> = serde_json::from_str(&volumes)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if volumes.iter().any(|v| v.named() == Some(name)) {
                    users.push(id);
                }
            }
            users
        };
        if !users.is_empty() {
            return Ok(Err(users));
        }
        tx.execute("DELETE FROM volumes WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    #[test]
    fn a_volume_row_round_trips_and_names_are_unique() {
        let s = Store::in_memory();
        let v = VolumeRow {
            name: Name::new("volume", "data").unwrap(),
            created_at: now(),
        };
        s.insert_volume(&v).unwrap();
        assert!(matches!(s.insert_volume(&v), Err(StoreError::NameTaken(_))));
        assert_eq!(s.volumes().unwrap().len(), 1);
        assert!(s.volume("data").unwrap().is_some());
        assert_eq!(s.delete_volume_unused("data").unwrap(), Ok(()));
        assert!(s.volume("data").unwrap().is_none());
    }

    #[test]
    fn named_is_what_is_not_a_path() {
        let v = |s: &str| PodVolume {
            source: s.into(),
            target: "/d".into(),
            read_only: false,
        };
        assert_eq!(v("data").named(), Some("data"));
        assert_eq!(v("/srv").named(), None);
    }
}
