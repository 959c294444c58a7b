//! Instances and their panics in the state database. What changes on every
//! message (status, logs, stats) lives in memory in the hangar; what must
//! survive a restart (identity, alias, IDENT, panics) is written here.

use super::sql::{params, DbResult, Row, Sql};

use super::{json_col, Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    pub id: String,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub ident: Option<serde_json::Value>,
    pub uplink: Option<serde_json::Value>,
    pub uplink_id: Option<String>,
    pub image_id: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// What the hangar persists about instances (JSON as text).
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceWrite {
    /// Made on first sight; `uplink_id`: whose token it authenticated with.
    Docked {
        id: String,
        uplink_id: Option<String>,
        at: i64,
    },
    Ident {
        id: String,
        ident: String,
        image_id: Option<String>,
        at: i64,
    },
    Uplink {
        id: String,
        uplink: String,
    },
    Image {
        id: String,
        image_id: String,
    },
    Panic(PanicRow),
    /// Forgets an instance and its panics.
    Delete {
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PanicRow {
    pub id: String,
    pub instance_id: String,
    pub text: String,
    pub created_at: i64,
}

fn instance_row(r: &Row) -> DbResult<InstanceRow> {
    Ok(InstanceRow {
        id: r.get("id")?,
        alias: r.get("alias")?,
        description: r.get("description")?,
        ident: json_col(r, "ident")?,
        uplink: json_col(r, "uplink")?,
        uplink_id: r.get("uplink_id")?,
        image_id: r.get("image_id")?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
    })
}

fn panic_row(r: &Row) -> DbResult<PanicRow> {
    Ok(PanicRow {
        id: r.get("id")?,
        instance_id: r.get("instance_id")?,
        text: r.get("text")?,
        created_at: r.get("created_at")?,
    })
}

impl Store {
    pub fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM instances ORDER BY id",
            params![],
            instance_row,
        )?)
    }

    pub fn instance(&self, id: &str) -> Result<Option<InstanceRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM instances WHERE id = ?1",
            params![id],
            instance_row,
        )?)
    }

    /// Applies the hangar's writes in one transaction: the fleet batches
    /// what thousands of sessions report so that a docking storm costs a
    /// commit per batch, not per message.
    pub fn apply_instance_writes(&self, writes: &[InstanceWrite]) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        for w in writes {
            match w {
                InstanceWrite::Docked { id, uplink_id, at } => {
                    tx.execute("INSERT INTO instances (id, uplink_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                         ON CONFLICT(id) DO UPDATE SET last_seen = ?3, uplink_id = COALESCE(?2, instances.uplink_id)", params![id, uplink_id, at])?;
                }
                InstanceWrite::Ident {
                    id,
                    ident,
                    image_id,
                    at,
                } => {
                    tx.execute("UPDATE instances SET ident = ?2, image_id = COALESCE(?3, image_id), last_seen = ?4
                         WHERE id = ?1", params![id, ident, image_id, at])?;
                }
                InstanceWrite::Uplink { id, uplink } => {
                    tx.execute(
                        "UPDATE instances SET uplink = ?2 WHERE id = ?1",
                        params![id, uplink],
                    )?;
                }
                InstanceWrite::Image { id, image_id } => {
                    tx.execute(
                        "UPDATE instances SET image_id = ?2 WHERE id = ?1",
                        params![id, image_id],
                    )?;
                }
                InstanceWrite::Panic(p) => {
                    tx.execute(
                        "INSERT INTO panics (id, instance_id, text, created_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (instance_id, id) DO UPDATE SET text = ?3, created_at = ?4",
                        params![p.id, p.instance_id, p.text, p.created_at],
                    )?;
                }
                InstanceWrite::Delete { id } => {
                    tx.execute("DELETE FROM panics WHERE instance_id = ?1", params![id])?;
                    tx.execute("DELETE FROM instances WHERE id = ?1", params![id])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn set_instance_names(
        &self,
        id: &str,
        alias: Option<&str>,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            "UPDATE instances SET alias = ?2, description = ?3 WHERE id = ?1",
            params![id, alias, description],
        )? > 0)
    }

    /// Instances that have reported a panic (their `panicked` flag
    /// survives a restart with them).
    pub fn instances_with_panics(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db
            .query_map("SELECT DISTINCT instance_id FROM panics", params![], |r| {
                r.get(0)
            })?)
    }

    pub fn panics(&self, instance_id: &str) -> Result<Vec<PanicRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM panics WHERE instance_id = ?1 ORDER BY created_at DESC, id DESC",
            params![instance_id],
            panic_row,
        )?)
    }

    pub fn panic(&self, instance_id: &str, id: &str) -> Result<Option<PanicRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM panics WHERE instance_id = ?1 AND id = ?2",
            params![instance_id, id],
            panic_row,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_made_on_first_sight_and_forget_their_panics() {
        let s = Store::in_memory();
        let docked = |at| InstanceWrite::Docked {
            id: "abc".into(),
            uplink_id: Some("u1".into()),
            at,
        };
        s.apply_instance_writes(&[docked(1), docked(2)]).unwrap();
        let row = s.instance("abc").unwrap().unwrap();
        assert_eq!((row.first_seen, row.last_seen), (1, 2));
        assert_eq!(row.uplink_id.as_deref(), Some("u1"));
        s.apply_instance_writes(&[
            InstanceWrite::Ident {
                id: "abc".into(),
                ident: r#"{"uuid":"abc","binary":"ff"}"#.into(),
                image_id: Some("ff".into()),
                at: 3,
            },
            InstanceWrite::Panic(PanicRow {
                id: "panic_1.txt".into(),
                instance_id: "abc".into(),
                text: "boom".into(),
                created_at: 4,
            }),
        ])
        .unwrap();
        assert!(s.set_instance_names("abc", Some("edge"), None).unwrap());
        let row = s.instance("abc").unwrap().unwrap();
        assert_eq!(row.alias.as_deref(), Some("edge"));
        assert_eq!(row.image_id.as_deref(), Some("ff"));
        assert_eq!(row.ident.unwrap()["binary"], "ff");
        assert_eq!(s.panics("abc").unwrap().len(), 1);
        s.apply_instance_writes(&[InstanceWrite::Delete { id: "abc".into() }])
            .unwrap();
        assert!(s.instance("abc").unwrap().is_none());
        assert!(s.panics("abc").unwrap().is_empty());
    }

    #[test]
    fn a_failed_batch_changes_nothing() {
        let s = Store::in_memory();
        let bad = InstanceWrite::Panic(PanicRow {
            id: "p".into(),
            instance_id: "nobody".into(),
            text: "x".into(),
            created_at: 1,
        });
        let docked = InstanceWrite::Docked {
            id: "abc".into(),
            uplink_id: None,
            at: 1,
        };
        // The panic's instance does not exist: the foreign key fails the batch.
        assert!(s.apply_instance_writes(&[docked, bad]).is_err());
        assert!(s.instance("abc").unwrap().is_none());
    }
}
