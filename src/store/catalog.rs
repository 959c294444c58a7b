//! The server's documents in the state database: uplinks, NaCls, snippets,
//! images and jobs. Rows in, rows out, one transaction per mutation; what
//! the fields mean and which values are allowed is the catalog's business.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, Value, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Row, ToSql};

use super::{Store, StoreError};
use crate::names::{ImageId, JobId};

/// A page of a list: search, order and window, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Case-insensitive substring over the table's searchable columns.
    pub q: Option<String>,
    /// A column from the table's sort list, and whether to reverse it.
    pub sort: Option<(&'static str, bool)>,
    pub limit: Option<u32>,
    pub offset: u32,
    /// Exact-match filters: (column, value); columns come from code, never input.
    pub filters: Vec<(&'static str, String)>,
}

/// How a table is listed.
pub struct Table {
    pub name: &'static str,
    pub search: &'static [&'static str],
    /// (name in the API, column)
    pub sorts: &'static [(&'static str, &'static str)],
    pub default_order: &'static str,
}

pub const UPLINKS: Table = Table {
    name: "uplinks",
    search: &["id", "name", "url", "tag"],
    sorts: &[
        ("name", "name"),
        ("url", "url"),
        ("created", "created_at"),
        ("updated", "updated_at"),
    ],
    default_order: "name",
};

pub const NACLS: Table = Table {
    name: "nacls",
    search: &["id", "name", "content"],
    sorts: &[
        ("name", "name"),
        ("created", "created_at"),
        ("updated", "updated_at"),
    ],
    default_order: "name",
};

pub const SNIPPETS: Table = Table {
    name: "snippets",
    search: &["id", "name", "content"],
    sorts: &[
        ("name", "name"),
        ("created", "created_at"),
        ("updated", "updated_at"),
    ],
    default_order: "name",
};

pub const IMAGES: Table = Table {
    name: "images",
    search: &["id", "name", "tag", "builder_id", "nacl_id", "uplink_id"],
    sorts: &[
        ("name", "name"),
        ("tag", "tag"),
        ("size", "size"),
        ("created", "created_at"),
    ],
    default_order: "created_at DESC, id",
};

pub const JOBS: Table = Table {
    name: "jobs",
    search: &["id", "kind", "target", "state"],
    sorts: &[
        ("kind", "kind"),
        ("state", "state"),
        ("created", "created_at"),
    ],
    default_order: "created_at DESC, id",
};

#[derive(Debug, Clone, PartialEq)]
pub struct UplinkRow {
    pub id: String,
    pub name: String,
    pub url: String,
    pub token: String,
    pub tag: Option<String>,
    /// JSON: a NIC index (number) or a MAC address (string).
    pub index: Option<serde_json::Value>,
    pub verify: bool,
    pub reboot: bool,
    pub ws_logging: bool,
    pub serialize_ct: bool,
    pub certs: Option<String>,
    pub send_stats: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A NaCl or a snippet: named text.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRow {
    pub id: String,
    pub name: String,
    pub content: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub id: ImageId,
    pub sha256: String,
    pub name: String,
    pub tag: Option<String>,
    pub size: u64,
    pub builder_id: Option<String>,
    pub nacl_id: Option<String>,
    pub uplink_id: Option<String>,
    pub uplink_url: Option<String>,
    pub includeos_version: Option<String>,
    pub created_at: i64,
}

/// Where a job is in its life. Stored (and shown by the API) as the
/// lower-case word `as_str` gives; defined here, beside the row, because the
/// store is the layer below `jobs` and reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// What a job does. Stored as the word `as_str` gives, as before the enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Import,
    Build,
    Prepare,
    Deploy,
    Upgrade,
}

/// A job row whose state or kind column holds a word this build does not
/// know (a database written by a newer jetpack, or edited by hand).
#[derive(Debug, thiserror::Error)]
#[error("unknown job {column} {value:?}")]
pub struct UnknownJobValue {
    pub column: &'static str,
    pub value: String,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// A job that will not change any more (nothing left to cancel or follow).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Import,
        JobKind::Build,
        JobKind::Prepare,
        JobKind::Deploy,
        JobKind::Upgrade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Build => "build",
            JobKind::Prepare => "prepare",
            JobKind::Deploy => "deploy",
            JobKind::Upgrade => "upgrade",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = UnknownJobValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownJobValue {
                column: "state",
                value: s.to_string(),
            })
    }
}

impl std::str::FromStr for JobKind {
    type Err = UnknownJobValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownJobValue {
                column: "kind",
                value: s.to_string(),
            })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Both enums cross the SQL boundary as their words, so the stored values
/// are the strings they always were.
macro_rules! sql_word {
    ($t:ty) => {
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownJobValue| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

sql_word!(JobState);
sql_word!(JobKind);

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: JobId,
    pub kind: JobKind,
    pub target: Option<String>,
    pub state: JobState,
    pub progress: f64,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// The two document tables share their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Nacl,
    Snippet,
}

impl DocumentKind {
    pub fn table(self) -> &'static Table {
        match self {
            DocumentKind::Nacl => &NACLS,
            DocumentKind::Snippet => &SNIPPETS,
        }
    }
}

fn json_col(r: &Row, col: &str) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = r.get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(super::corrupt))
        .transpose()
}

fn uplink_row(r: &Row) -> rusqlite::Result<UplinkRow> {
    Ok(UplinkRow {
        id: r.get("id")?,
        name: r.get("name")?,
        url: r.get("url")?,
        token: r.get("token")?,
        tag: r.get("tag")?,
        index: json_col(r, "idx")?,
        verify: r.get("verify")?,
        reboot: r.get("reboot")?,
        ws_logging: r.get("ws_logging")?,
        serialize_ct: r.get("serialize_ct")?,
        certs: r.get("certs")?,
        send_stats: r.get::<_, i64>("send_stats")? as u64,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn document_row(r: &Row) -> rusqlite::Result<DocumentRow> {
    Ok(DocumentRow {
        id: r.get("id")?,
        name: r.get("name")?,
        content: r.get("content")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn image_row(r: &Row) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: ImageId::new(&r.get::<_, String>("id")?).map_err(super::corrupt)?,
        sha256: r.get("sha256")?,
        name: r.get("name")?,
        tag: r.get("tag")?,
        size: r.get::<_, i64>("size")? as u64,
        builder_id: r.get("builder_id")?,
        nacl_id: r.get("nacl_id")?,
        uplink_id: r.get("uplink_id")?,
        uplink_url: r.get("uplink_url")?,
        includeos_version: r.get("includeos_version")?,
        created_at: r.get("created_at")?,
    })
}

fn job_row(r: &Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: JobId::new(&r.get::<_, String>("id")?).map_err(super::corrupt)?,
        kind: r.get("kind")?,
        target: r.get("target")?,
        state: r.get("state")?,
        progress: r.get("progress")?,
        result: json_col(r, "result")?,
        error: r.get("error")?,
        created_at: r.get("created_at")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
    })
}

/// Maps a unique-constraint failure on `name` to `NameTaken`.
fn unique_name(e: rusqlite::Error, name: &str) -> StoreError {
    super::name_taken(e, name)
}

impl Store {
    /// One page of `table`, searched, filtered and ordered as `q` says.
    fn list<T>(
        &self,
        table: &Table,
        q: &ListQuery,
        map: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut sql = format!("SELECT * FROM {} WHERE 1=1", table.name);
        let mut args: Vec<Value> = Vec::new();
        if let Some(needle) = q.q.as_deref().filter(|s| !s.is_empty()) {
            let pattern = format!(
                "%{}%",
                needle
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let ors: Vec<String> = table
                .search
                .iter()
                .map(|c| format!("{c} LIKE ? ESCAPE '\\'"))
                .collect();
            sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
            args.extend(table.search.iter().map(|_| Value::Text(pattern.clone())));
        }
        for (column, value) in &q.filters {
            sql.push_str(&format!(" AND {column} = ?"));
            args.push(Value::Text(value.clone()));
        }
        match q.sort {
            Some((column, desc)) => sql.push_str(&format!(
                " ORDER BY {column} {}, id",
                if desc { "DESC" } else { "ASC" }
            )),
            None => sql.push_str(&format!(" ORDER BY {}", table.default_order)),
        }
        sql.push_str(" LIMIT ? OFFSET ?");
        args.push(Value::Integer(q.limit.map(i64::from).unwrap_or(-1)));
        args.push(Value::Integer(i64::from(q.offset)));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), map)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Rows whose id is `reference`, or whose name is, or whose id starts with it.
    fn find<T>(
        &self,
        table: &str,
        reference: &str,
        map: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let has_name = table != "images" && table != "jobs";
        let exact = if has_name {
            format!("SELECT * FROM {table} WHERE id = ?1 OR name = ?1")
        } else {
            format!("SELECT * FROM {table} WHERE id = ?1")
        };
        let mut stmt = self.conn.prepare_cached(&exact)?;
        let found: Vec<T> = stmt
            .query_map([reference], map)?
            .collect::<Result<_, _>>()?;
        if !found.is_empty() || reference.len() < 4 {
            return Ok(found);
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT * FROM {table} WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2"
        ))?;
        let rows = stmt.query_map([reference], map)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- uplinks ----

    pub fn uplinks(&self, q: &ListQuery) -> Result<Vec<UplinkRow>, StoreError> {
        self.list(&UPLINKS, q, uplink_row)
    }

    pub fn find_uplinks(&self, reference: &str) -> Result<Vec<UplinkRow>, StoreError> {
        self.find("uplinks", reference, uplink_row)
    }

    pub fn uplink_by_token(&self, token: &str) -> Result<Option<UplinkRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM uplinks WHERE token = ?1",
                [token],
                uplink_row,
            )
            .optional()?)
    }

    /// Inserts, or replaces the row with the same id.
    pub fn put_uplink(&self, u: &UplinkRow) -> Result<(), StoreError> {
        let index = u.index.as_ref().map(|v| v.to_string());
        self.conn
            .execute(
                "INSERT INTO uplinks (id, name, url, token, tag, idx, verify, reboot, ws_logging,
                     serialize_ct, certs, send_stats, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(id) DO UPDATE SET name = ?2, url = ?3, token = ?4, tag = ?5,
                     idx = ?6, verify = ?7, reboot = ?8, ws_logging = ?9, serialize_ct = ?10,
                     certs = ?11, send_stats = ?12, updated_at = ?14",
                params![
                    u.id,
                    u.name,
                    u.url,
                    u.token,
                    u.tag,
                    index,
                    u.verify,
                    u.reboot,
                    u.ws_logging,
                    u.serialize_ct,
                    u.certs,
                    u.send_stats as i64,
                    u.created_at,
                    u.updated_at
                ],
            )
            .map_err(|e| unique_name(e, &u.name))?;
        Ok(())
    }

    pub fn delete_uplink(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM uplinks WHERE id = ?1", [id])?
            > 0)
    }

    // ---- NaCls and snippets ----

    pub fn documents(
        &self,
        kind: DocumentKind,
        q: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.list(kind.table(), q, document_row)
    }

    pub fn find_documents(
        &self,
        kind: DocumentKind,
        reference: &str,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.find(kind.table().name, reference, document_row)
    }

    /// Inserts, or replaces the row with the same id.
    pub fn put_document(&self, kind: DocumentKind, d: &DocumentRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {} (id, name, content, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET name = ?2, content = ?3, updated_at = ?5",
                    kind.table().name
                ),
                params![d.id, d.name, d.content, d.created_at, d.updated_at],
            )
            .map_err(|e| unique_name(e, &d.name))?;
        Ok(())
    }

    pub fn delete_document(&self, kind: DocumentKind, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            &format!("DELETE FROM {} WHERE id = ?1", kind.table().name),
            [id],
        )? > 0)
    }

    // ---- images ----

    pub fn images(&self, q: &ListQuery) -> Result<Vec<ImageRow>, StoreError> {
        self.list(&IMAGES, q, image_row)
    }

    pub fn find_images(&self, reference: &str) -> Result<Vec<ImageRow>, StoreError> {
        self.find("images", reference, image_row)
    }

    /// Inserts an image; `false` when one with its id is already there.
    pub fn insert_image(&self, i: &ImageRow) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO images (id, sha256, name, tag, size, builder_id, nacl_id,
                 uplink_id, uplink_url, includeos_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                i.id.as_str(),
                i.sha256,
                i.name,
                i.tag,
                i.size as i64,
                i.builder_id,
                i.nacl_id,
                i.uplink_id,
                i.uplink_url,
                i.includeos_version,
                i.created_at
            ],
        )?;
        Ok(n > 0)
    }

    /// Deletes an image row; returns whether another image still uses its blob.
    pub fn delete_image(&self, id: &ImageId, sha256: &str) -> Result<bool, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
        let others: i64 = tx.query_row(
            "SELECT count(*) FROM images WHERE sha256 = ?1",
            [sha256],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(others > 0)
    }

    /// Every blob an image refers to (for sweeping blobs no row owns).
    pub fn image_blobs(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT sha256 FROM images")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- jobs ----

    pub fn jobs(&self, q: &ListQuery) -> Result<Vec<JobRow>, StoreError> {
        self.list(&JOBS, q, job_row)
    }

    pub fn find_jobs(&self, reference: &str) -> Result<Vec<JobRow>, StoreError> {
        self.find("jobs", reference, job_row)
    }

    pub fn insert_job(&self, j: &JobRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO jobs (id, kind, target, state, progress, result, error, created_at,
                 started_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                j.id.as_str(),
                j.kind,
                j.target,
                j.state,
                j.progress,
                j.result.as_ref().map(|v| v.to_string()),
                j.error,
                j.created_at,
                j.started_at,
                j.finished_at
            ],
        )?;
        Ok(())
    }

    pub fn job_started(&self, id: &JobId) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = ?3, started_at = ?2 WHERE id = ?1",
            params![id.as_str(), super::now(), JobState::Running],
        )?;
        Ok(())
    }

    pub fn job_progress(&self, id: &JobId, progress: f64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET progress = ?2 WHERE id = ?1",
            params![id.as_str(), progress],
        )?;
        Ok(())
    }

    pub fn job_finished(
        &self,
        id: &JobId,
        state: JobState,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = ?2, result = ?3, error = ?4, finished_at = ?5,
                 progress = CASE WHEN ?6 THEN 1.0 ELSE progress END
             WHERE id = ?1",
            params![
                id.as_str(),
                state,
                result.map(|v| v.to_string()),
                error,
                super::now(),
                state == JobState::Succeeded
            ],
        )?;
        Ok(())
    }

    /// Jobs a previous server left queued or running: they failed with it.
    pub fn fail_unfinished_jobs(&self, why: &str) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE jobs SET state = ?3, error = ?1, finished_at = ?2
             WHERE state IN (?4, ?5)",
            params![
                why,
                super::now(),
                JobState::Failed,
                JobState::Queued,
                JobState::Running
            ],
        )?)
    }

    /// Empties every server table (`jetpack serve --clean`).
    pub fn clear_catalog(&self) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        for table in ["uplinks", "nacls", "snippets", "images", "jobs"] {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, name: &str, created: i64) -> ImageRow {
        ImageRow {
            id: ImageId::new(id).unwrap(),
            sha256: format!("{id:0>64}"),
            name: name.into(),
            tag: Some("v1".into()),
            size: 10,
            builder_id: None,
            nacl_id: None,
            uplink_id: None,
            uplink_url: None,
            includeos_version: None,
            created_at: created,
        }
    }

    #[test]
    fn list_searches_sorts_and_pages() {
        let s = Store::in_memory();
        for i in 0..10 {
            let name = if i % 2 == 0 { "even_%" } else { "odd" };
            assert!(s
                .insert_image(&image(&format!("{i:040}"), name, i))
                .unwrap());
        }
        assert!(!s
            .insert_image(&image(&format!("{:040}", 3), "x", 0))
            .unwrap());
        let all = s.images(&ListQuery::default()).unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0].created_at, 9, "newest first by default");
        let q = ListQuery {
            q: Some("_%".into()),
            ..Default::default()
        };
        assert_eq!(s.images(&q).unwrap().len(), 5, "LIKE wildcards are escaped");
        let q = ListQuery {
            sort: Some(("created_at", false)),
            limit: Some(3),
            offset: 2,
            ..Default::default()
        };
        let page: Vec<i64> = s.images(&q).unwrap().iter().map(|i| i.created_at).collect();
        assert_eq!(page, vec![2, 3, 4]);
        let q = ListQuery {
            filters: vec![("name", "odd".into())],
            ..Default::default()
        };
        assert_eq!(s.images(&q).unwrap().len(), 5);
    }

    #[test]
    fn documents_are_found_by_id_name_or_prefix_and_names_are_unique() {
        let s = Store::in_memory();
        let d = DocumentRow {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            content: "Iface eth0 {}".into(),
            created_at: 1,
            updated_at: 1,
        };
        s.put_document(DocumentKind::Nacl, &d).unwrap();
        assert_eq!(
            s.find_documents(DocumentKind::Nacl, "web").unwrap().len(),
            1
        );
        assert_eq!(
            s.find_documents(DocumentKind::Nacl, "0123").unwrap().len(),
            1
        );
        assert!(s
            .find_documents(DocumentKind::Snippet, "web")
            .unwrap()
            .is_empty());
        let clash = DocumentRow {
            id: "other".into(),
            ..d.clone()
        };
        assert!(matches!(
            s.put_document(DocumentKind::Nacl, &clash),
            Err(StoreError::NameTaken(_))
        ));
        let updated = DocumentRow {
            content: "new".into(),
            updated_at: 2,
            ..d.clone()
        };
        s.put_document(DocumentKind::Nacl, &updated).unwrap();
        let got = s.find_documents(DocumentKind::Nacl, "web").unwrap();
        assert_eq!(got[0].content, "new");
        assert_eq!(got[0].created_at, 1);
        assert!(s.delete_document(DocumentKind::Nacl, &d.id).unwrap());
        assert!(!s.delete_document(DocumentKind::Nacl, &d.id).unwrap());
    }

    #[test]
    fn unfinished_jobs_fail_at_restart() {
        let s = Store::in_memory();
        let job = JobRow {
            id: JobId::new("0b6c3a5e-9a4f-4c43-8f53-6f1c1d2e3f40").unwrap(),
            kind: JobKind::Import,
            target: None,
            state: JobState::Running,
            progress: 0.5,
            result: None,
            error: None,
            created_at: 1,
            started_at: Some(1),
            finished_at: None,
        };
        s.insert_job(&job).unwrap();
        assert_eq!(s.fail_unfinished_jobs("server restarted").unwrap(), 1);
        let j = &s.find_jobs("0b6c3a5e").unwrap()[0];
        assert_eq!(j.state.as_str(), "failed");
        assert_eq!(j.error.as_deref(), Some("server restarted"));
    }

    #[test]
    fn job_words_are_the_stored_strings() {
        let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            states,
            ["queued", "running", "succeeded", "failed", "cancelled"]
        );
        let kinds: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["import", "build", "prepare", "deploy", "upgrade"]);
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
        }
        let finished: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(
            finished,
            [JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        );
    }

    #[test]
    fn an_unknown_stored_job_state_is_an_error() {
        let s = Store::in_memory();
        s.conn
            .execute(
                "INSERT INTO jobs (id, kind, target, state, progress, created_at)
                 VALUES ('1d9b6f2e-5c3a-4e8b-9f10-2a3b4c5d6e7f', 'import', NULL, 'paused', 0, 1)",
                [],
            )
            .unwrap();
        let err = s.find_jobs("1d9b6f2e").unwrap_err().to_string();
        assert!(err.contains("unknown job state \"paused\""), "{err}");
    }
}
