//! The server's documents in the state database: uplinks, NaCls, snippets
//! and images, and the listing (search, sort, page) and lookup (id, name,
//! prefix) every catalog table shares, jobs' too (`jobs.rs`). Rows in, rows
//! out, one transaction per mutation; what the fields mean and which values
//! are allowed is the catalog's business.

use super::sql::{params, DbError, DbResult, Dialect, Row, Sql, Value};
use super::{id_col, id_of, json_col, Store, StoreError};
use crate::names::{BuilderId, ImageId, NaclId, UplinkId};

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

#[derive(Debug, Clone, PartialEq)]
pub struct UplinkRow {
    pub id: UplinkId,
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
    /// A NaCl's id, or a snippet's (the same rule).
    pub id: NaclId,
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
    pub builder_id: Option<BuilderId>,
    pub nacl_id: Option<NaclId>,
    pub uplink_id: Option<UplinkId>,
    pub uplink_url: Option<String>,
    pub includeos_version: Option<String>,
    pub created_at: i64,
    /// The host that has its blob (another fetches it from there).
    pub host: Option<String>,
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

fn uplink_row(r: &Row) -> DbResult<UplinkRow> {
    Ok(UplinkRow {
        id: id_of(r, "id", UplinkId::new)?,
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
        send_stats: r.get::<i64>("send_stats")? as u64,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn document_row(r: &Row) -> DbResult<DocumentRow> {
    Ok(DocumentRow {
        id: id_of(r, "id", NaclId::new)?,
        name: r.get("name")?,
        content: r.get("content")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn image_row(r: &Row) -> DbResult<ImageRow> {
    Ok(ImageRow {
        id: id_of(r, "id", ImageId::new)?,
        sha256: r.get("sha256")?,
        name: r.get("name")?,
        tag: r.get("tag")?,
        size: r.get::<i64>("size")? as u64,
        builder_id: id_col(r, "builder_id", BuilderId::new)?,
        nacl_id: id_col(r, "nacl_id", NaclId::new)?,
        uplink_id: id_col(r, "uplink_id", UplinkId::new)?,
        uplink_url: r.get("uplink_url")?,
        includeos_version: r.get("includeos_version")?,
        created_at: r.get("created_at")?,
        host: r.get("host")?,
    })
}

/// Maps a unique-constraint failure on `name` to `NameTaken`.
fn unique_name(e: DbError, name: &str) -> StoreError {
    super::name_taken(e, name)
}

impl Store {
    /// One page of `table`, searched, filtered and ordered as `q` says.
    pub(super) fn list<T>(
        &self,
        table: &Table,
        q: &ListQuery,
        map: fn(&Row) -> DbResult<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut sql = format!("SELECT * FROM {} WHERE 1=1", table.name);
        let mut args: Vec<Value> = Vec::new();
        if let Some(needle) = q.q.as_deref().filter(|s| !s.is_empty()) {
            // Both engines' lower() on both sides: PostgreSQL's LIKE is
            // case-sensitive where SQLite's is not.
            let pattern = format!(
                "%{}%",
                needle
                    .to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let ors: Vec<String> = table
                .search
                .iter()
                .map(|c| format!("lower({c}) LIKE ? ESCAPE '\\'"))
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
        // No limit: SQLite's is a negative one, PostgreSQL's NULL.
        let unlimited = match self.db.dialect() {
            Dialect::Sqlite => Value::Int(-1),
            Dialect::Postgres => Value::Null,
        };
        args.push(q.limit.map_or(unlimited, |l| Value::Int(l.into())));
        args.push(Value::Int(i64::from(q.offset)));
        Ok(self.db.query_map(&sql, &args, map)?)
    }

    /// Rows whose id is `reference`, or whose name is, or whose id starts with it.
    pub(super) fn find<T>(
        &self,
        table: &str,
        reference: &str,
        map: fn(&Row) -> DbResult<T>,
    ) -> Result<Vec<T>, StoreError> {
        let has_name = table != "images" && table != "jobs";
        let exact = if has_name {
            format!("SELECT * FROM {table} WHERE id = ?1 OR name = ?1")
        } else {
            format!("SELECT * FROM {table} WHERE id = ?1")
        };
        let found = self.db.query_map(&exact, params![reference], map)?;
        if !found.is_empty() || reference.len() < 4 {
            return Ok(found);
        }
        let prefix = format!("SELECT * FROM {table} WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2");
        Ok(self.db.query_map(&prefix, params![reference], map)?)
    }

    // ---- uplinks ----

    pub fn uplinks(&self, q: &ListQuery) -> Result<Vec<UplinkRow>, StoreError> {
        self.list(&UPLINKS, q, uplink_row)
    }

    pub fn find_uplinks(&self, reference: &str) -> Result<Vec<UplinkRow>, StoreError> {
        self.find("uplinks", reference, uplink_row)
    }

    pub fn uplink_by_token(&self, token: &str) -> Result<Option<UplinkRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM uplinks WHERE token = ?1",
            params![token],
            uplink_row,
        )?)
    }

    /// Inserts, or replaces the row with the same id.
    pub fn put_uplink(&self, u: &UplinkRow) -> Result<(), StoreError> {
        let index = u.index.as_ref().map(|v| v.to_string());
        self.db
            .execute(
                "INSERT INTO uplinks (id, name, url, token, tag, idx, verify, reboot, ws_logging,
                     serialize_ct, certs, send_stats, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(id) DO UPDATE SET name = ?2, url = ?3, token = ?4, tag = ?5,
                     idx = ?6, verify = ?7, reboot = ?8, ws_logging = ?9, serialize_ct = ?10,
                     certs = ?11, send_stats = ?12, updated_at = ?14",
                params![
                    u.id.as_str(),
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

    pub fn delete_uplink(&self, id: &UplinkId) -> Result<bool, StoreError> {
        Ok(self
            .db
            .execute("DELETE FROM uplinks WHERE id = ?1", params![id.as_str()])?
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
        self.db
            .execute(
                &format!(
                    "INSERT INTO {} (id, name, content, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET name = ?2, content = ?3, updated_at = ?5",
                    kind.table().name
                ),
                params![d.id.as_str(), d.name, d.content, d.created_at, d.updated_at],
            )
            .map_err(|e| unique_name(e, &d.name))?;
        Ok(())
    }

    pub fn delete_document(&self, kind: DocumentKind, id: &NaclId) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            &format!("DELETE FROM {} WHERE id = ?1", kind.table().name),
            params![id.as_str()],
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
        let n = self.db.execute(
            "INSERT INTO images (id, sha256, name, tag, size, builder_id, nacl_id,
                 uplink_id, uplink_url, includeos_version, created_at, host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO NOTHING",
            params![
                i.id.as_str(),
                i.sha256,
                i.name,
                i.tag,
                i.size as i64,
                i.builder_id.as_ref().map(BuilderId::as_str),
                i.nacl_id.as_ref().map(NaclId::as_str),
                i.uplink_id.as_ref().map(UplinkId::as_str),
                i.uplink_url,
                i.includeos_version,
                i.created_at,
                i.host
            ],
        )?;
        Ok(n > 0)
    }

    /// Deletes an image row; returns whether another image still uses its blob.
    pub fn delete_image(&self, id: &ImageId, sha256: &str) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        tx.execute("DELETE FROM images WHERE id = ?1", params![id.as_str()])?;
        // The boot files' stores share the blob store: an ISO with the
        // same bytes keeps the blob too.
        let others: i64 = tx.query_row(
            "SELECT (SELECT count(*) FROM images WHERE sha256 = ?1)
                  + (SELECT count(*) FROM bootfiles WHERE sha256 = ?1)",
            params![sha256],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(others > 0)
    }

    /// Every blob an image refers to (for sweeping blobs no row owns).
    pub fn image_blobs(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db
            .query_map("SELECT DISTINCT sha256 FROM images", params![], |r| {
                r.get(0)
            })?)
    }

    /// Empties every server table (`jetpack serve --clean`).
    pub fn clear_catalog(&self) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        for table in ["uplinks", "nacls", "snippets", "images", "jobs"] {
            tx.execute(&format!("DELETE FROM {table}"), params![])?;
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
            host: None,
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
            id: NaclId::new("01234567-89ab-4def-8123-456789abcdef").unwrap(),
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
            id: NaclId::new("0b6c3a5e-9a4f-4c43-8f53-6f1c1d2e3f40").unwrap(),
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
}
