//! Netboot mappings in the state database (`netboot`: a MAC, the image id
//! or tag it boots, the kernel command line), and the one lookup of
//! images netboot needs (the newest with a tag). The rules (MAC and
//! command-line syntax, what a mapping may name) are `netboot::`'s; this
//! file only reads and writes rows, each mutation one statement.

use super::sql::{params, DbResult, Dialect, Row, Sql};

use super::{corrupt, Store, StoreError};
use crate::names::{ImageId, Tag};

/// What a mapping boots: one image for good, or the newest with a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetbootTarget {
    Image(ImageId),
    Tag(Tag),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetbootRow {
    /// Normalised by `netboot::Mac` (aa:bb:cc:dd:ee:ff).
    pub mac: String,
    pub target: NetbootTarget,
    /// The kernel command line ('' for none), checked by `netboot::`.
    pub append: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn netboot_row(r: &Row) -> DbResult<NetbootRow> {
    let image: Option<String> = r.get("image_id")?;
    let tag: Option<String> = r.get("tag")?;
    let target = match (image, tag) {
        (Some(id), None) => NetbootTarget::Image(ImageId::new(&id).map_err(corrupt)?),
        (None, Some(tag)) => NetbootTarget::Tag(Tag::new("tag", &tag).map_err(corrupt)?),
        _ => return Err(corrupt("a netboot row names both or neither image and tag")),
    };
    Ok(NetbootRow {
        mac: r.get("mac")?,
        target,
        append: r.get("append")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Store {
    /// Inserts or replaces the mapping of `row.mac` (a replaced one keeps
    /// its creation time); returns whether it is new.
    pub fn put_netboot(&self, row: &NetbootRow) -> Result<bool, StoreError> {
        let (image, tag) = match &row.target {
            NetbootTarget::Image(id) => (Some(id.as_str()), None),
            NetbootTarget::Tag(tag) => (None, Some(tag.as_str())),
        };
        let tx = self.write_tx()?;
        let replaced = tx.execute(
            "UPDATE netboot SET image_id = ?2, tag = ?3, append = ?4, updated_at = ?5
             WHERE mac = ?1",
            params![row.mac, image, tag, row.append, row.updated_at],
        )?;
        if replaced == 0 {
            tx.execute(
                "INSERT INTO netboot (mac, image_id, tag, append, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    row.mac,
                    image,
                    tag,
                    row.append,
                    row.created_at,
                    row.updated_at
                ],
            )?;
        }
        tx.commit()?;
        Ok(replaced == 0)
    }

    pub fn netboot(&self, mac: &str) -> Result<Option<NetbootRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM netboot WHERE mac = ?1",
            params![mac],
            netboot_row,
        )?)
    }

    /// Every mapping, by MAC.
    pub fn netboots(&self) -> Result<Vec<NetbootRow>, StoreError> {
        Ok(self
            .db
            .query_map("SELECT * FROM netboot ORDER BY mac", params![], netboot_row)?)
    }

    /// Deletes a mapping; false when there was none.
    pub fn delete_netboot(&self, mac: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .execute("DELETE FROM netboot WHERE mac = ?1", params![mac])?
            > 0)
    }

    /// Deletes every mapping (`serve --clean`: the images they name go).
    pub fn clear_netboot(&self) -> Result<(), StoreError> {
        self.db.execute("DELETE FROM netboot", params![])?;
        Ok(())
    }

    /// The id of the newest image with `tag`. Times are seconds, so two
    /// images stored in the same second are told apart by insertion
    /// order (SQLite's rowid, PostgreSQL's `seq` column): the one stored
    /// last is the newest.
    pub fn newest_tagged_image(&self, tag: &Tag) -> Result<Option<ImageId>, StoreError> {
        let sql = match self.db.dialect() {
            Dialect::Sqlite => {
                "SELECT id FROM images WHERE tag = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"
            }
            Dialect::Postgres => {
                "SELECT id FROM images WHERE tag = ?1 ORDER BY created_at DESC, seq DESC LIMIT 1"
            }
        };
        let id: Option<String> = self
            .db
            .query_opt(sql, params![tag.as_str()], |r| r.get(0))?;
        id.map(|id| ImageId::new(&id).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mac: &str, target: NetbootTarget, at: i64) -> NetbootRow {
        NetbootRow {
            mac: mac.into(),
            target,
            append: "console=ttyS0".into(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn mappings_put_replace_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("state.db")).unwrap();
        let tag = NetbootTarget::Tag(Tag::new("tag", "web").unwrap());
        let id = NetbootTarget::Image(ImageId::new(&"a".repeat(40)).unwrap());
        assert!(s
            .put_netboot(&row("52:54:00:12:34:56", tag.clone(), 1))
            .unwrap());
        assert!(!s
            .put_netboot(&row("52:54:00:12:34:56", id.clone(), 2))
            .unwrap());
        let got = s.netboot("52:54:00:12:34:56").unwrap().unwrap();
        assert_eq!((got.target, got.created_at, got.updated_at), (id, 1, 2));
        assert!(s.put_netboot(&row("00:00:00:00:00:01", tag, 3)).unwrap());
        let macs: Vec<String> = s.netboots().unwrap().into_iter().map(|r| r.mac).collect();
        assert_eq!(macs, ["00:00:00:00:00:01", "52:54:00:12:34:56"]);
        assert!(s.delete_netboot("00:00:00:00:00:01").unwrap());
        assert!(!s.delete_netboot("00:00:00:00:00:01").unwrap());
        assert!(s.netboot("00:00:00:00:00:01").unwrap().is_none());
    }
}
