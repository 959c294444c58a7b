//! Instances and their panics in the state database. What changes on every
//! message (status, logs, stats) lives in memory in the hangar; what must
//! survive a restart (identity, alias, IDENT, panics) is written here,
//! with which host's hangar holds its dock. Each transaction that changes
//! instances takes the next number of the fleet's clock, so that hosts
//! sharing the store read what the others changed since they last looked.

use super::sql::{params, DbResult, Executor, Row, Sql};

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
    /// The host whose hangar holds its dock (None: none does).
    pub host: Option<String>,
    /// Its status as that host last wrote it (the hangar's words).
    pub status: String,
    /// The fleet clock's number of its last change.
    pub changed: i64,
    pub panicked: bool,
}

/// What changed in the fleet since a clock number: the rows, the ids
/// deleted, and the number to ask from next.
#[derive(Debug, Default)]
pub struct FleetChanges {
    pub rows: Vec<InstanceRow>,
    pub deleted: Vec<String>,
    pub clock: i64,
}

/// What the hangar persists about instances (JSON as text).
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceWrite {
    /// Made on first sight; `uplink_id`: whose token it authenticated
    /// with; `host`: this host, whose hangar holds it now (None: it is
    /// known before it docks, as a launch makes it).
    Docked {
        id: String,
        uplink_id: Option<String>,
        host: Option<String>,
        at: i64,
    },
    /// Its dock at `host` ended; a host that has lost it to another
    /// meanwhile changes nothing.
    Undocked {
        id: String,
        host: String,
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
        host: r.get("host")?,
        status: r.get("status")?,
        changed: r.get("changed")?,
        panicked: r.get::<i64>("panicked")? != 0,
    })
}

/// Every instance column, with whether it has panics.
const SELECT_INSTANCES: &str = "SELECT i.*, CASE WHEN EXISTS (SELECT 1 FROM panics p WHERE p.instance_id = i.id) THEN 1 ELSE 0 END AS panicked FROM instances i";

/// Tombstones are kept this long (s): a host silent longer than this reads
/// the whole fleet again when it comes back.
const DELETIONS_KEPT: i64 = 24 * 3600;

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
            &format!("{SELECT_INSTANCES} ORDER BY i.id"),
            params![],
            instance_row,
        )?)
    }

    pub fn instance(&self, id: &str) -> Result<Option<InstanceRow>, StoreError> {
        Ok(self.db.query_opt(
            &format!("{SELECT_INSTANCES} WHERE i.id = ?1"),
            params![id],
            instance_row,
        )?)
    }

    /// The fleet clock now: what a reader of every row has seen.
    pub fn fleet_clock(&self) -> Result<i64, StoreError> {
        Ok(self
            .db
            .query_row("SELECT n FROM fleet_clock", params![], |r| r.get(0))?)
    }

    /// What changed after clock number `since`.
    pub fn fleet_changes(&self, since: i64) -> Result<FleetChanges, StoreError> {
        let clock = self.fleet_clock()?;
        let rows = self.db.query_map(
            &format!("{SELECT_INSTANCES} WHERE i.changed > ?1 AND i.changed <= ?2"),
            params![since, clock],
            instance_row,
        )?;
        let deleted = self.db.query_map(
            "SELECT id FROM instance_deletions WHERE changed > ?1 AND changed <= ?2",
            params![since, clock],
            |r| r.get(0),
        )?;
        Ok(FleetChanges {
            rows,
            deleted,
            clock,
        })
    }

    /// A host starting again holds no dock: its instances are `unknown`
    /// to the others until they dock again, wherever they do.
    pub fn release_instances_of(&self, host: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let n = next_change(&*tx)?;
        tx.execute(
            "UPDATE instances SET host = NULL, status = 'unknown', changed = ?2 WHERE host = ?1",
            params![host, n],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Applies the hangar's writes in one transaction: the fleet batches
    /// what thousands of sessions report so that a docking storm costs a
    /// commit per batch, not per message. Returns the batch's clock number.
    pub fn apply_instance_writes(&self, writes: &[InstanceWrite]) -> Result<i64, StoreError> {
        let tx = self.write_tx()?;
        let n = next_change(&*tx)?;
        for w in writes {
            match w {
                InstanceWrite::Docked {
                    id,
                    uplink_id,
                    host,
                    at,
                } => {
                    let status = if host.is_some() {
                        "connected"
                    } else {
                        "unknown"
                    };
                    tx.execute("INSERT INTO instances (id, uplink_id, first_seen, last_seen, host, status, changed)
                         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)
                         ON CONFLICT(id) DO UPDATE SET last_seen = ?3, uplink_id = COALESCE(?2, instances.uplink_id),
                             host = COALESCE(?4, instances.host),
                             status = CASE WHEN ?4 IS NULL THEN instances.status ELSE ?5 END, changed = ?6",
                        params![id, uplink_id, at, host, status, n])?;
                }
                InstanceWrite::Undocked { id, host } => {
                    tx.execute(
                        "UPDATE instances SET status = 'disconnected', changed = ?3
                         WHERE id = ?1 AND host = ?2",
                        params![id, host, n],
                    )?;
                }
                InstanceWrite::Ident {
                    id,
                    ident,
                    image_id,
                    at,
                } => {
                    tx.execute("UPDATE instances SET ident = ?2, image_id = COALESCE(?3, image_id), last_seen = ?4,
                         changed = ?5 WHERE id = ?1", params![id, ident, image_id, at, n])?;
                }
                InstanceWrite::Uplink { id, uplink } => {
                    tx.execute(
                        "UPDATE instances SET uplink = ?2, changed = ?3 WHERE id = ?1",
                        params![id, uplink, n],
                    )?;
                }
                InstanceWrite::Image { id, image_id } => {
                    tx.execute(
                        "UPDATE instances SET image_id = ?2, changed = ?3 WHERE id = ?1",
                        params![id, image_id, n],
                    )?;
                }
                InstanceWrite::Panic(p) => {
                    tx.execute(
                        "INSERT INTO panics (id, instance_id, text, created_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (instance_id, id) DO UPDATE SET text = ?3, created_at = ?4",
                        params![p.id, p.instance_id, p.text, p.created_at],
                    )?;
                    tx.execute(
                        "UPDATE instances SET changed = ?2 WHERE id = ?1",
                        params![p.instance_id, n],
                    )?;
                }
                InstanceWrite::Delete { id } => {
                    tx.execute("DELETE FROM panics WHERE instance_id = ?1", params![id])?;
                    if tx.execute("DELETE FROM instances WHERE id = ?1", params![id])? > 0 {
                        tx.execute(
                            "INSERT INTO instance_deletions (id, changed, at) VALUES (?1, ?2, ?3)",
                            params![id, n, super::now()],
                        )?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Forgets tombstones older than a day (the fleet sync's housekeeping).
    pub fn prune_instance_deletions(&self) -> Result<usize, StoreError> {
        Ok(self.db.execute(
            "DELETE FROM instance_deletions WHERE at < ?1",
            params![super::now() - DELETIONS_KEPT],
        )?)
    }

    pub fn set_instance_names(
        &self,
        id: &str,
        alias: Option<&str>,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let n = next_change(&*tx)?;
        let changed = tx.execute(
            "UPDATE instances SET alias = ?2, description = ?3, changed = ?4 WHERE id = ?1",
            params![id, alias, description, n],
        )? > 0;
        tx.commit()?;
        Ok(changed)
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

/// The fleet clock's next number, for the transaction `tx` (its row lock
/// holds the next taker until this one commits: numbers commit in order).
fn next_change<E: Executor + ?Sized>(tx: &E) -> DbResult<i64> {
    tx.query_row(
        "UPDATE fleet_clock SET n = n + 1 RETURNING n",
        params![],
        |r| r.get(0),
    )
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
            host: Some("h1".into()),
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
            host: None,
            at: 1,
        };
        // The panic's instance does not exist: the foreign key fails the batch.
        assert!(s.apply_instance_writes(&[docked, bad]).is_err());
        assert!(s.instance("abc").unwrap().is_none());
    }
}
