//! Boot files in the state database: the rows of the ISO and microkernel
//! stores (`bootfiles`: name, blob, size, source) and of OS images
//! (`osimages`: name and version, source, state, progress, the dataset
//! holding the contents). The rules (names, who may delete what, jobs)
//! are `bootfiles::`'s; this file only reads and writes rows, each
//! mutation one statement or one transaction.

use super::sql::{params, DbError, DbResult, Row, Sql};

use super::{corrupt, Store, StoreError};
use crate::names::{DatasetName, Tag};

/// Which store a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    Iso,
    Microkernel,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Iso => "iso",
            StoreKind::Microkernel => "microkernel",
        }
    }

    fn parse(s: &str) -> Result<StoreKind, String> {
        match s {
            "iso" => Ok(StoreKind::Iso),
            "microkernel" => Ok(StoreKind::Microkernel),
            other => Err(format!("unknown store kind {other:?}")),
        }
    }
}

/// A stored ISO or microkernel file.
#[derive(Debug, Clone, PartialEq)]
pub struct BootFileRow {
    pub kind: StoreKind,
    pub name: Tag,
    pub sha256: String,
    pub size: u64,
    pub source: String,
    pub created_at: i64,
    /// The host whose blob store has it (None: this one).
    pub host: Option<String>,
}

/// Where an OS image is in its life: `downloading` (the ISO is being
/// fetched or copied), `preparing` (extracted into its dataset), then
/// `ready` or `failed`. The first two mean work in flight: a server that
/// starts and finds them finishes nothing it did not start, so it marks
/// them failed (`can_resume` is false for all: see `bootfiles::resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsImageState {
    Downloading,
    Preparing,
    Ready,
    Failed,
}

impl OsImageState {
    pub fn as_str(self) -> &'static str {
        match self {
            OsImageState::Downloading => "downloading",
            OsImageState::Preparing => "preparing",
            OsImageState::Ready => "ready",
            OsImageState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<OsImageState, String> {
        Ok(match s {
            "downloading" => OsImageState::Downloading,
            "preparing" => OsImageState::Preparing,
            "ready" => OsImageState::Ready,
            "failed" => OsImageState::Failed,
            other => return Err(format!("unknown OS image state {other:?}")),
        })
    }

    /// Work is in flight: a job owns the image.
    pub fn is_busy(self) -> bool {
        matches!(self, OsImageState::Downloading | OsImageState::Preparing)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OsImageRow {
    pub name: Tag,
    pub version: Tag,
    /// upload | path | url | iso
    pub source_kind: String,
    /// The path, the URL (credentials masked) or the ISO's name.
    pub source: String,
    /// The stored ISO it is made from, which it holds while it exists.
    pub iso: Option<Tag>,
    pub state: OsImageState,
    pub progress: f64,
    pub reason: Option<String>,
    pub dataset: DatasetName,
    pub job_id: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn tag_col(r: &Row, col: &str) -> DbResult<Tag> {
    Tag::new("boot file name", &r.get::<String>(col)?).map_err(corrupt)
}

fn bootfile_row(r: &Row) -> DbResult<BootFileRow> {
    Ok(BootFileRow {
        kind: StoreKind::parse(&r.get::<String>("kind")?).map_err(corrupt)?,
        name: tag_col(r, "name")?,
        sha256: r.get("sha256")?,
        size: r.get::<i64>("size")? as u64,
        source: r.get("source")?,
        created_at: r.get("created_at")?,
        host: r.get("host")?,
    })
}

fn osimage_row(r: &Row) -> DbResult<OsImageRow> {
    let iso: Option<String> = r.get("iso")?;
    Ok(OsImageRow {
        name: tag_col(r, "name")?,
        version: tag_col(r, "version")?,
        source_kind: r.get("source_kind")?,
        source: r.get("source")?,
        iso: iso
            .map(|i| Tag::new("ISO name", &i))
            .transpose()
            .map_err(corrupt)?,
        state: OsImageState::parse(&r.get::<String>("state")?).map_err(corrupt)?,
        progress: r.get("progress")?,
        reason: r.get("reason")?,
        dataset: DatasetName::new(&r.get::<String>("dataset")?).map_err(corrupt)?,
        job_id: r.get("job_id")?,
        size: r.get::<Option<i64>>("size")?.map(|s| s as u64),
        sha256: r.get("sha256")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn is_duplicate(e: &DbError) -> bool {
    matches!(e, DbError::Unique { .. })
}

impl Store {
    // ---- the ISO and microkernel stores ----

    /// Inserts a stored file; `NameTaken` when the name is in that store.
    pub fn insert_bootfile(&self, row: &BootFileRow) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO bootfiles (kind, name, sha256, size, source, created_at, host)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    row.kind.as_str(),
                    row.name.as_str(),
                    row.sha256,
                    row.size as i64,
                    row.source,
                    row.created_at,
                    row.host
                ],
            )
            .map_err(|e| {
                if is_duplicate(&e) {
                    StoreError::NameTaken(format!("{} {}", row.kind.as_str(), row.name))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub fn bootfiles(&self, kind: StoreKind) -> Result<Vec<BootFileRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM bootfiles WHERE kind = ?1 ORDER BY name",
            params![kind.as_str()],
            bootfile_row,
        )?)
    }

    pub fn bootfile(&self, kind: StoreKind, name: &Tag) -> Result<Option<BootFileRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM bootfiles WHERE kind = ?1 AND name = ?2",
            params![kind.as_str(), name.as_str()],
            bootfile_row,
        )?)
    }

    /// Deletes a stored file unless an OS image holds it (an ISO), in one
    /// transaction: `Ok(Err(holders))` names the OS images that do.
    /// Returns whether another row (a stored file or an image) still
    /// refers to the same blob, so that the caller keeps it.
    pub fn delete_bootfile(
        &self,
        kind: StoreKind,
        name: &Tag,
        sha256: &str,
    ) -> Result<Result<bool, Vec<String>>, StoreError> {
        let tx = self.write_tx()?;
        if kind == StoreKind::Iso {
            let holders: Vec<String> = tx.query_map(
                "SELECT name || ' ' || version FROM osimages WHERE iso = ?1 ORDER BY name, version",
                params![name.as_str()],
                |r| r.get(0),
            )?;
            if !holders.is_empty() {
                return Ok(Err(holders));
            }
        }
        tx.execute(
            "DELETE FROM bootfiles WHERE kind = ?1 AND name = ?2",
            params![kind.as_str(), name.as_str()],
        )?;
        let shared: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM bootfiles WHERE sha256 = ?1)
                  + (SELECT COUNT(*) FROM images WHERE sha256 = ?1)",
            params![sha256],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(Ok(shared > 0))
    }

    /// Every blob the stores hold (for the blob sweep).
    pub fn bootfile_blobs(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db
            .query_map("SELECT DISTINCT sha256 FROM bootfiles", params![], |r| {
                r.get(0)
            })?)
    }

    // ---- OS images ----

    /// Inserts an OS image; `NameTaken` when the name and version exist.
    /// When it is made from a stored ISO, that ISO must exist, checked in
    /// the same transaction so that a delete of it cannot slip between.
    pub fn insert_osimage(&self, row: &OsImageRow) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        if let Some(iso) = &row.iso {
            let found: Option<String> = tx.query_opt(
                "SELECT name FROM bootfiles WHERE kind = 'iso' AND name = ?1",
                params![iso.as_str()],
                |r| r.get(0),
            )?;
            if found.is_none() {
                return Err(StoreError::Corrupt(format!("no ISO {iso}")));
            }
        }
        tx.execute(
            "INSERT INTO osimages (name, version, source_kind, source, iso, state, progress,
                 reason, dataset, job_id, size, sha256, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                row.name.as_str(),
                row.version.as_str(),
                row.source_kind,
                row.source,
                row.iso.as_ref().map(Tag::as_str),
                row.state.as_str(),
                row.progress,
                row.reason,
                row.dataset.as_str(),
                row.job_id,
                row.size.map(|s| s as i64),
                row.sha256,
                row.created_at,
                row.updated_at
            ],
        )
        .map_err(|e| {
            if is_duplicate(&e) {
                StoreError::NameTaken(format!("{} {}", row.name, row.version))
            } else {
                e.into()
            }
        })?;
        tx.commit()?;
        Ok(())
    }

    pub fn osimages(&self) -> Result<Vec<OsImageRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM osimages ORDER BY name, version",
            params![],
            osimage_row,
        )?)
    }

    pub fn osimage(&self, name: &Tag, version: &Tag) -> Result<Option<OsImageRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM osimages WHERE name = ?1 AND version = ?2",
            params![name.as_str(), version.as_str()],
            osimage_row,
        )?)
    }

    /// Moves an OS image to `state` with `progress`, and a `reason` when
    /// it failed.
    pub fn set_osimage_state(
        &self,
        name: &Tag,
        version: &Tag,
        state: OsImageState,
        progress: f64,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE osimages SET state = ?3, progress = ?4, reason = ?5, updated_at = ?6
             WHERE name = ?1 AND version = ?2",
            params![
                name.as_str(),
                version.as_str(),
                state.as_str(),
                progress,
                reason,
                super::now()
            ],
        )?;
        Ok(())
    }

    pub fn set_osimage_progress(
        &self,
        name: &Tag,
        version: &Tag,
        progress: f64,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE osimages SET progress = ?3, updated_at = ?4 WHERE name = ?1 AND version = ?2",
            params![name.as_str(), version.as_str(), progress, super::now()],
        )?;
        Ok(())
    }

    pub fn set_osimage_job(&self, name: &Tag, version: &Tag, job: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE osimages SET job_id = ?3 WHERE name = ?1 AND version = ?2",
            params![name.as_str(), version.as_str(), job],
        )?;
        Ok(())
    }

    /// Records what the ISO was (its size and sha256) once it is whole.
    pub fn set_osimage_iso_file(
        &self,
        name: &Tag,
        version: &Tag,
        size: u64,
        sha256: &str,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE osimages SET size = ?3, sha256 = ?4 WHERE name = ?1 AND version = ?2",
            params![name.as_str(), version.as_str(), size as i64, sha256],
        )?;
        Ok(())
    }

    pub fn delete_osimage(&self, name: &Tag, version: &Tag) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM osimages WHERE name = ?1 AND version = ?2",
            params![name.as_str(), version.as_str()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Tag {
        Tag::new("t", s).unwrap()
    }

    fn iso(name: &str) -> BootFileRow {
        BootFileRow {
            kind: StoreKind::Iso,
            name: tag(name),
            sha256: "ab".repeat(32),
            size: 3,
            source: "upload".into(),
            created_at: 1,
            host: Some("h0".into()),
        }
    }

    fn osimage(name: &str, from: Option<&str>) -> OsImageRow {
        OsImageRow {
            name: tag(name),
            version: tag("1.0"),
            source_kind: "iso".into(),
            source: from.unwrap_or("").into(),
            iso: from.map(tag),
            state: OsImageState::Downloading,
            progress: 0.0,
            reason: None,
            dataset: DatasetName::new("osimages/x1").unwrap(),
            job_id: None,
            size: None,
            sha256: None,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn stores_keep_one_name_per_kind_and_isos_in_use_stay() {
        let s = Store::in_memory();
        s.insert_bootfile(&iso("a.iso")).unwrap();
        assert!(matches!(
            s.insert_bootfile(&iso("a.iso")),
            Err(StoreError::NameTaken(_))
        ));
        let mk = BootFileRow {
            kind: StoreKind::Microkernel,
            ..iso("a.iso")
        };
        s.insert_bootfile(&mk).unwrap();
        assert_eq!(s.bootfiles(StoreKind::Iso).unwrap().len(), 1);
        assert_eq!(s.bootfile_blobs().unwrap(), vec!["ab".repeat(32)]);

        s.insert_osimage(&osimage("os", Some("a.iso"))).unwrap();
        assert!(matches!(
            s.insert_osimage(&osimage("os", Some("a.iso"))),
            Err(StoreError::NameTaken(_))
        ));
        assert!(s.insert_osimage(&osimage("os2", Some("none.iso"))).is_err());
        let held = s
            .delete_bootfile(StoreKind::Iso, &tag("a.iso"), &"ab".repeat(32))
            .unwrap();
        assert_eq!(held, Err(vec!["os 1.0".to_string()]));
        s.set_osimage_state(
            &tag("os"),
            &tag("1.0"),
            OsImageState::Failed,
            0.5,
            Some("x"),
        )
        .unwrap();
        let row = s.osimage(&tag("os"), &tag("1.0")).unwrap().unwrap();
        assert_eq!(row.state, OsImageState::Failed);
        assert_eq!(row.reason.as_deref(), Some("x"));
        s.delete_osimage(&tag("os"), &tag("1.0")).unwrap();
        // The microkernel of the same bytes still needs the blob.
        let shared = s
            .delete_bootfile(StoreKind::Iso, &tag("a.iso"), &"ab".repeat(32))
            .unwrap();
        assert_eq!(shared, Ok(true));
    }
}
