//! The catalog: the server's documents (uplinks, NaCls, snippets) and its
//! images, with their rules: which names and URLs are valid, what ids are,
//! that an image is an ELF addressed by its SHA-1, that the default uplink
//! exists. It sits on the store and the blobs and knows nothing of HTTP.

use std::collections::HashSet;
use std::path::Path;

pub mod remote_blobs;
pub mod token;

use crate::nacl::Diagnostic;
use crate::names::{BuilderId, ImageId, NaclId, Name, Tag, UplinkId};
use crate::store::blobs::{BlobError, Blobs, StagedBlob};
use crate::store::catalog::{DocumentKind, DocumentRow, ImageRow, ListQuery, UplinkRow};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no {kind} {reference:?}")]
    NotFound {
        kind: &'static str,
        reference: String,
    },
    #[error("{kind} {reference:?} is ambiguous: it matches {count}; give more of the id")]
    Ambiguous {
        kind: &'static str,
        reference: String,
        count: usize,
    },
    #[error("a {kind} named {name:?} exists already")]
    NameTaken { kind: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("the NaCl has {} error(s), the first {}", .0.errors.len(), .0.errors.first().map(ToString::to_string).unwrap_or_default())]
    InvalidNacl(crate::nacl::Verdict),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{what}: fetching its bytes from host {host}: {why}")]
    Fetch {
        what: String,
        host: String,
        why: String,
    },
}

/// A stored document, and the warnings jetpack's checker had on it (a
/// NaCl with only warnings is stored).
#[derive(Debug)]
pub struct Saved {
    pub row: DocumentRow,
    pub warnings: Vec<Diagnostic>,
}

/// Whether a NaCl is checked before it is stored (snippets never are:
/// they are pieces of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NaclPolicy {
    /// Refuse a NaCl jetpack's checker finds errors in.
    Check,
    /// Store it as it is (`?force=true`).
    Force,
}

impl CatalogError {
    fn from_store(kind: &'static str) -> impl FnOnce(StoreError) -> CatalogError {
        move |e| match e {
            StoreError::NameTaken(name) => CatalogError::NameTaken { kind, name },
            e => CatalogError::Store(e),
        }
    }
}

impl From<StoreError> for CatalogError {
    fn from(e: StoreError) -> Self {
        CatalogError::Store(e)
    }
}

impl From<crate::names::NameError> for CatalogError {
    fn from(e: crate::names::NameError) -> Self {
        CatalogError::Invalid(e.to_string())
    }
}

/// What a client gives to create or replace an uplink; unset fields take
/// IncludeOS's defaults (spec/uplink.md), an unset token a fresh random one
/// (or, on a replace, the one it had). A token given must pass
/// `token::check`.
#[derive(Debug, Clone, Default)]
pub struct UplinkSpec {
    pub name: String,
    pub url: String,
    pub token: Option<String>,
    pub tag: Option<String>,
    pub index: Option<serde_json::Value>,
    pub verify: Option<bool>,
    pub reboot: Option<bool>,
    pub ws_logging: Option<bool>,
    pub serialize_ct: Option<bool>,
    pub certs: Option<String>,
    pub send_stats: Option<u64>,
}

/// What is known of an image besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct ImageMeta {
    pub name: String,
    pub tag: Option<String>,
    pub builder_id: Option<BuilderId>,
    pub nacl_id: Option<NaclId>,
    pub uplink_id: Option<UplinkId>,
    pub uplink_url: Option<String>,
    pub includeos_version: Option<String>,
}

pub const DEFAULT_UPLINK: &str = "default";
/// The uplink of instances launched on this host: the hangar at the pod
/// network's host address, which every instance pod reaches.
pub const LAUNCH_UPLINK: &str = "launch";

pub struct Catalog {
    /// Shared by every handler at once: the driver serializes SQLite's
    /// one connection and spreads PostgreSQL's work over its pool.
    store: Store,
    blobs: Blobs,
    /// This host's name in the fleet (what its rows are marked with).
    host: String,
    /// Where blobs other hosts have come from (remote_blobs.rs).
    blob_source: std::sync::OnceLock<std::sync::Arc<dyn remote_blobs::BlobSource>>,
}

/// A random secret of `bytes` bytes, hex.
pub fn random_hex(bytes: usize) -> Result<String, CatalogError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| CatalogError::Invalid(format!("random: {e}")))?;
    Ok(hex::encode(buf))
}

fn one<T>(mut found: Vec<T>, kind: &'static str, reference: &str) -> Result<T, CatalogError> {
    match found.len() {
        0 => Err(CatalogError::NotFound {
            kind,
            reference: reference.to_string(),
        }),
        1 => Ok(found.remove(0)),
        count => Err(CatalogError::Ambiguous {
            kind,
            reference: reference.to_string(),
            count,
        }),
    }
}

/// An uplink URL as IncludeOS parses it: scheme mandatory, a host, an
/// optional port, nothing that could break its hand-built requests.
pub fn check_uplink_url(url: &str) -> Result<(), CatalogError> {
    let bad = |why: &str| CatalogError::Invalid(format!("uplink url {url:?}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("expected http://HOST:PORT or https://HOST:PORT"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || url.len() > 2048 {
        return Err(bad("no host"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("spaces and control characters are not allowed"));
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("bad port"))?;
    }
    Ok(())
}

/// A tag of an image or an uplink (a build gives an image its uplink's):
/// the pattern of names (`names::Tag`), because it becomes part of a
/// download's file name and of config.json. Empty means no tag, as clients
/// that always send the field mean it.
pub fn check_tag(tag: &Option<String>) -> Result<(), CatalogError> {
    match tag.as_deref() {
        None | Some("") => Ok(()),
        Some(t) => Tag::new("tag", t).map(|_| ()).map_err(Into::into),
    }
}

/// An uplink token a user gives: long, random-looking, and safe inside
/// IncludeOS's hand-built JSON (see `token`).
pub fn check_uplink_token(t: &str) -> Result<(), CatalogError> {
    token::check(t).map_err(|why| CatalogError::Invalid(format!("uplink token refused: {why}")))
}

impl Catalog {
    /// Opens the catalog on the state database and blobs of `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Catalog, CatalogError> {
        Self::open_on(data_dir, &crate::config::StoreDriver::Sqlite, "local")
    }

    /// Opens the catalog on the store `driver` names (this host's state
    /// database, or the fleet's PostgreSQL) and the blobs of `data_dir`.
    pub fn open_on(
        data_dir: &Path,
        driver: &crate::config::StoreDriver,
        host: &str,
    ) -> Result<Catalog, CatalogError> {
        let store = Store::open_shared(driver, &data_dir.join("state.db"), host)?;
        let blobs = Blobs::open(&data_dir.join("blobs"))?;
        Ok(Catalog {
            store,
            blobs,
            host: host.to_string(),
            blob_source: std::sync::OnceLock::new(),
        })
    }

    /// This host's name in the fleet.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn store(&self) -> &Store {
        &self.store
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Runs `f` with the store (for the job runner, which shares it).
    pub fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store)
    }

    /// Start-up housekeeping: blobs no image owns (a crash between a blob's
    /// commit and its row) go; returns how many.
    pub fn sweep_blobs(&self) -> Result<usize, CatalogError> {
        let store = self.store();
        // The boot files' stores (ISOs, microkernels) keep blobs too.
        let keep: HashSet<String> = store
            .image_blobs()?
            .into_iter()
            .chain(store.bootfile_blobs()?)
            .collect();
        Ok(self.blobs.sweep(&keep)?)
    }

    /// Erases every document, image and job (`serve --clean`).
    pub fn clear(&self) -> Result<(), CatalogError> {
        self.store().clear_catalog()?;
        self.blobs.sweep(&HashSet::new())?;
        Ok(())
    }

    // ---- uplinks ----

    pub fn uplinks(&self, q: &ListQuery) -> Result<Vec<UplinkRow>, CatalogError> {
        Ok(self.store().uplinks(q)?)
    }

    pub fn uplink(&self, reference: &str) -> Result<UplinkRow, CatalogError> {
        one(self.store().find_uplinks(reference)?, "uplink", reference)
    }

    /// The row of an uplink: `kept` is the token of the uplink a replace
    /// keeps when it gives none or the same (clients echo objects back); it
    /// is not judged again (it was when given, and one stored before
    /// today's rules must not block an edit).
    fn uplink_row(
        &self,
        spec: UplinkSpec,
        kept: Option<String>,
        id: UplinkId,
        created_at: i64,
    ) -> Result<UplinkRow, CatalogError> {
        let name = Name::new("uplink name", &spec.name)?;
        check_uplink_url(&spec.url)?;
        check_tag(&spec.tag)?;
        let token = match (spec.token, kept) {
            (Some(t), Some(old)) if t == old => old,
            (Some(t), _) => {
                check_uplink_token(&t)?;
                t
            }
            (None, Some(old)) => old,
            (None, None) => random_hex(token::GENERATED_BYTES)?,
        };
        match &spec.index {
            None | Some(serde_json::Value::Number(_)) | Some(serde_json::Value::String(_)) => {}
            Some(_) => {
                return Err(CatalogError::Invalid(
                    "uplink index: a NIC number or a MAC address string".into(),
                ))
            }
        }
        Ok(UplinkRow {
            id,
            name: name.to_string(),
            url: spec.url,
            token,
            tag: spec.tag,
            index: spec.index,
            verify: spec.verify.unwrap_or(true),
            reboot: spec.reboot.unwrap_or(true),
            ws_logging: spec.ws_logging.unwrap_or(true),
            serialize_ct: spec.serialize_ct.unwrap_or(false),
            certs: spec.certs,
            send_stats: spec.send_stats.unwrap_or(0),
            created_at,
            updated_at: store::now(),
        })
    }

    pub fn create_uplink(&self, spec: UplinkSpec) -> Result<UplinkRow, CatalogError> {
        let row = self.uplink_row(spec, None, UplinkId::random(), store::now())?;
        self.store()
            .put_uplink(&row)
            .map_err(CatalogError::from_store("uplink"))?;
        Ok(row)
    }

    pub fn replace_uplink(
        &self,
        reference: &str,
        spec: UplinkSpec,
    ) -> Result<UplinkRow, CatalogError> {
        let old = self.uplink(reference)?;
        let row = self.uplink_row(spec, Some(old.token), old.id, old.created_at)?;
        self.store()
            .put_uplink(&row)
            .map_err(CatalogError::from_store("uplink"))?;
        Ok(row)
    }

    pub fn delete_uplink(&self, reference: &str) -> Result<UplinkRow, CatalogError> {
        let row = self.uplink(reference)?;
        self.store().delete_uplink(&row.id)?;
        Ok(row)
    }

    /// Makes the uplink `name` (`default`, `launch`: this host's hangar)
    /// unless an uplink of that name exists; returns it when made.
    pub fn ensure_uplink(&self, name: &str, url: &str) -> Result<Option<UplinkRow>, CatalogError> {
        match self.uplink(name) {
            Ok(_) => Ok(None),
            Err(CatalogError::NotFound { .. }) => match self.create_uplink(UplinkSpec {
                name: name.into(),
                url: url.into(),
                ..Default::default()
            }) {
                Ok(made) => Ok(Some(made)),
                // Another host sharing the store made it meanwhile.
                Err(CatalogError::NameTaken { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    // ---- NaCls and snippets ----

    pub fn documents(
        &self,
        kind: DocumentKind,
        q: &ListQuery,
    ) -> Result<Vec<DocumentRow>, CatalogError> {
        Ok(self.store().documents(kind, q)?)
    }

    pub fn document(
        &self,
        kind: DocumentKind,
        reference: &str,
    ) -> Result<DocumentRow, CatalogError> {
        one(
            self.store().find_documents(kind, reference)?,
            kind_name(kind),
            reference,
        )
    }

    fn check_document(
        kind: DocumentKind,
        name: &str,
        content: &str,
        policy: NaclPolicy,
    ) -> Result<(Name, Vec<Diagnostic>), CatalogError> {
        let name = Name::new(
            if kind == DocumentKind::Nacl {
                "NaCl name"
            } else {
                "snippet name"
            },
            name,
        )?;
        if content.contains('\0') {
            return Err(CatalogError::Invalid(format!(
                "{} content must be text without NUL bytes",
                kind_name(kind)
            )));
        }
        // Warnings never refuse a save (checks the reference does not
        // make); they go back to the caller with the stored document.
        if kind == DocumentKind::Nacl && policy == NaclPolicy::Check {
            let verdict = crate::nacl::check(content);
            if !verdict.valid {
                return Err(CatalogError::InvalidNacl(verdict));
            }
            return Ok((name, verdict.warnings));
        }
        Ok((name, Vec::new()))
    }

    pub fn create_document(
        &self,
        kind: DocumentKind,
        name: &str,
        content: String,
        policy: NaclPolicy,
    ) -> Result<Saved, CatalogError> {
        let (name, warnings) = Self::check_document(kind, name, &content, policy)?;
        let now = store::now();
        let row = DocumentRow {
            id: NaclId::random(),
            name: name.to_string(),
            content,
            created_at: now,
            updated_at: now,
        };
        self.store()
            .put_document(kind, &row)
            .map_err(CatalogError::from_store(kind_name(kind)))?;
        Ok(Saved { row, warnings })
    }

    /// Replaces a document's content, and its name when one is given.
    pub fn update_document(
        &self,
        kind: DocumentKind,
        reference: &str,
        name: Option<&str>,
        content: String,
        policy: NaclPolicy,
    ) -> Result<Saved, CatalogError> {
        let old = self.document(kind, reference)?;
        let (name, warnings) =
            Self::check_document(kind, name.unwrap_or(&old.name), &content, policy)?;
        let row = DocumentRow {
            name: name.to_string(),
            content,
            updated_at: store::now(),
            ..old
        };
        self.store()
            .put_document(kind, &row)
            .map_err(CatalogError::from_store(kind_name(kind)))?;
        Ok(Saved { row, warnings })
    }

    pub fn delete_document(
        &self,
        kind: DocumentKind,
        reference: &str,
    ) -> Result<DocumentRow, CatalogError> {
        let row = self.document(kind, reference)?;
        self.store().delete_document(kind, &row.id)?;
        Ok(row)
    }

    // ---- images ----

    pub fn images(&self, q: &ListQuery) -> Result<Vec<ImageRow>, CatalogError> {
        Ok(self.store().images(q)?)
    }

    pub fn image(&self, reference: &str) -> Result<ImageRow, CatalogError> {
        one(self.store().find_images(reference)?, "image", reference)
    }

    /// Stores an uploaded or built image: it must be an ELF file. Returns
    /// the image and whether the same binary was stored already (then its
    /// existing record is kept).
    pub fn add_image(
        &self,
        staged: StagedBlob,
        meta: ImageMeta,
    ) -> Result<(ImageRow, bool), CatalogError> {
        let name = Name::new("image name", &meta.name)?;
        check_tag(&meta.tag)?;
        if !staged.head().starts_with(b"\x7fELF") {
            return Err(CatalogError::NotAnImage(
                "an IncludeOS image is an ELF binary; this file does not start with \\x7fELF"
                    .into(),
            ));
        }
        let info = staged.commit()?;
        let row = ImageRow {
            id: ImageId::new(&info.sha1)?,
            sha256: info.sha256,
            name: name.to_string(),
            tag: meta.tag,
            size: info.size,
            builder_id: meta.builder_id,
            nacl_id: meta.nacl_id,
            uplink_id: meta.uplink_id,
            uplink_url: meta.uplink_url,
            includeos_version: meta.includeos_version,
            created_at: store::now(),
            host: Some(self.host.clone()),
        };
        if self.store().insert_image(&row)? {
            Ok((row, false))
        } else {
            Ok((self.image(row.id.as_str())?, true))
        }
    }

    pub fn delete_image(&self, reference: &str) -> Result<ImageRow, CatalogError> {
        let row = self.image(reference)?;
        let shared = self.store().delete_image(&row.id, &row.sha256)?;
        if !shared {
            self.blobs.remove(&row.sha256)?;
        }
        Ok(row)
    }
}

pub fn kind_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Nacl => "NaCl",
        DocumentKind::Snippet => "snippet",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplink_urls_are_checked_as_includeos_reads_them() {
        for ok in [
            "http://10.0.0.1:9090",
            "https://hangar.example:9090",
            "http://h",
        ] {
            check_uplink_url(ok).unwrap();
        }
        for bad in [
            "10.0.0.1:9090",
            "ftp://h",
            "http://",
            "http://h:99999",
            "http://h x",
        ] {
            assert!(check_uplink_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uplinks_get_includeos_defaults_and_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        let made = c
            .ensure_uplink(DEFAULT_UPLINK, "https://host:9090")
            .unwrap()
            .unwrap();
        assert!(made.verify && made.reboot && made.ws_logging && !made.serialize_ct);
        assert_eq!(made.token.len(), 48);
        assert!(c
            .ensure_uplink(DEFAULT_UPLINK, "https://other:9090")
            .unwrap()
            .is_none());
        let clash = c.create_uplink(UplinkSpec {
            name: "default".into(),
            url: "http://h:1".into(),
            ..Default::default()
        });
        assert!(matches!(clash, Err(CatalogError::NameTaken { .. })));
        let replaced = c
            .replace_uplink(
                "default",
                UplinkSpec {
                    name: "default".into(),
                    url: "http://h:1".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            replaced.token, made.token,
            "a replace without token keeps it"
        );
        assert_eq!(replaced.id, made.id);
    }

    #[test]
    fn user_tokens_must_be_strong_and_tags_must_be_names() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        let spec = |name: &str, token: &str| UplinkSpec {
            name: name.into(),
            url: "http://h:1".into(),
            token: Some(token.into()),
            ..Default::default()
        };
        for weak in [".", "-rf", "a/b", "aaaaaaaaaaaaaaaaaaaa"] {
            let refused = c.create_uplink(spec("weak", weak)).unwrap_err();
            assert!(
                matches!(&refused, CatalogError::Invalid(m) if m.starts_with("uplink token refused: ")),
                "{weak}: {refused}"
            );
        }
        assert!(c.uplinks(&ListQuery::default()).unwrap().is_empty());
        let strong = "3f9c2a7e51d84b06c7e19a5f2d3b8c40";
        let made = c.create_uplink(spec("lab", strong)).unwrap();
        assert_eq!(made.token, strong);
        assert!(c
            .replace_uplink("lab", spec("lab", "aaaaaaaaaaaaaaaaaaaa"))
            .is_err());
        assert_eq!(c.uplink("lab").unwrap().token, strong);
        // A weak token stored before these rules stays editable, echoed
        // back or left out.
        let legacy = UplinkRow {
            token: "s3cret".into(),
            ..made
        };
        c.with_store(|s| s.put_uplink(&legacy)).unwrap();
        c.replace_uplink("lab", spec("lab", "s3cret")).unwrap();
        let kept = UplinkSpec {
            token: None,
            ..spec("lab", "")
        };
        assert_eq!(c.replace_uplink("lab", kept).unwrap().token, "s3cret");

        for bad in ["a\"b", "v1;x", "a/b", "..", "-x", "v 1"] {
            assert!(check_tag(&Some(bad.into())).is_err(), "{bad}");
        }
        for ok in [None, Some(String::new()), Some("v1.2_rc-3".into())] {
            check_tag(&ok).unwrap();
        }
        let mut s = c.blobs().stage().unwrap();
        s.write_chunk(b"\x7fELF....").unwrap();
        let meta = ImageMeta {
            name: "svc".into(),
            tag: Some("x\";y".into()),
            ..Default::default()
        };
        assert!(matches!(
            c.add_image(s, meta),
            Err(CatalogError::Invalid(_))
        ));
        assert!(c.images(&ListQuery::default()).unwrap().is_empty());
    }

    #[test]
    fn an_image_must_be_an_elf_and_is_keyed_by_sha1() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        let mut s = c.blobs().stage().unwrap();
        s.write_chunk(b"#!/bin/sh\n").unwrap();
        let meta = ImageMeta {
            name: "svc".into(),
            ..Default::default()
        };
        assert!(matches!(
            c.add_image(s, meta.clone()),
            Err(CatalogError::NotAnImage(_))
        ));
        assert!(c.images(&ListQuery::default()).unwrap().is_empty());
        let stage = |bytes: &[u8]| {
            let mut s = c.blobs().stage().unwrap();
            s.write_chunk(bytes).unwrap();
            s
        };
        let (img, existed) = c.add_image(stage(b"\x7fELF...."), meta.clone()).unwrap();
        assert!(!existed);
        assert_eq!(img.id.as_str().len(), 40);
        let (_, existed) = c.add_image(stage(b"\x7fELF...."), meta).unwrap();
        assert!(existed);
        c.delete_image(img.id.as_str()).unwrap();
        assert!(c.blobs().open_blob(&img.sha256).is_err());
    }
}
