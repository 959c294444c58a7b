//! A base as one file and back: `Host::export_base` writes the base's
//! sealed dataset as the datasets driver streams it (`Datasets::send`: a
//! `zfs send` stream, or the dir driver's framed tar) inside an envelope of
//! our own, and `Host::import_export` reads one into a new base.
//!
//! The envelope: `MAGIC`, a format version (u32, big-endian), the header's
//! length (u32, big-endian) and the header (`ExportHeader` as JSON: the
//! base's metadata, the stream's kind, the payload's sha256 and length),
//! then the payload. The header comes first so that an importer refuses a
//! wrong host or a taken name before reading the payload; the payload is
//! therefore staged in data.dir/tmp while it is hashed.
//!
//! An import is marked, made and committed as any base import: the base's
//! row is `importing` (not usable) while its dataset is received, and
//! becomes `ready` only once every payload byte was read and its sha256
//! matched; any failure removes the dataset and the row.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::datasets::DatasetError;
use super::undo::Undo;
use super::{io_err, Host, Imported, RuntimeError};
use crate::names::{BaseId, DatasetName, Name, PodId};
use crate::store::{private, BaseRow, BaseState};

/// The first bytes of an export: what `base import` tells it by.
pub const MAGIC: &[u8; 13] = b"jetpack-base\0";
/// The envelope's format version this build writes and reads.
pub const VERSION: u32 = 1;
/// A header is a few hundred bytes; more is not ours.
const MAX_HEADER: u32 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("not a jetpack base export (it does not start with jetpack's envelope)")]
    NotAnExport,
    #[error("base export format version {0} is not known to this jetpack (it reads {VERSION})")]
    Version(u32),
    #[error("the export's header is invalid: {0}")]
    Header(String),
    #[error("the export holds a {stream} stream but this host's datasets driver ({driver}) takes {wants} streams; import it on a host with the {stream} driver")]
    WrongDriver {
        stream: String,
        driver: &'static str,
        wants: &'static str,
    },
    #[error(
        "base {name} ({id}) already exists here: remove it first (`base rm`) or import elsewhere"
    )]
    Exists { name: String, id: String },
    #[error("the export is cut short: its payload has {read} of {expected} bytes")]
    Truncated { read: u64, expected: u64 },
    #[error("the export's payload does not match its sha256 (expected {expected}, read {actual}): it is damaged")]
    Digest { expected: String, actual: String },
}

/// What an export says of its base and its payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    pub id: String,
    pub name: String,
    pub source: String,
    /// The base's own size (of the archive it was imported from).
    pub size: u64,
    /// Unix seconds.
    pub created: i64,
    /// The base it was made on top of; bases have none yet, so always
    /// null (kept so that incremental exports need no new version).
    pub parent: Option<String>,
    /// `Datasets::stream_kind` of the exporter: "zfs" or "dir".
    pub driver: String,
    pub payload_sha256: String,
    pub payload_length: u64,
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what is read through it, telling
/// `progress` the running count.
struct Counting<'a, R> {
    inner: R,
    sha: Sha256,
    len: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        (self.progress)(self.len);
        Ok(n)
    }
}

/// Removes the staged payload however the export ends.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        // Best effort: a leftover in data.dir/tmp is private and harmless.
        let _ = fs::remove_file(&self.0);
    }
}

/// Reads an envelope's header from `input`, leaving it at the payload.
pub fn read_header(input: &mut dyn Read) -> Result<ExportHeader, RuntimeError> {
    let mut magic = [0u8; MAGIC.len()];
    match input.read_exact(&mut magic) {
        Ok(()) if &magic == MAGIC => {}
        Ok(()) => return Err(ExportError::NotAnExport.into()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ExportError::NotAnExport.into())
        }
        Err(e) => return Err(io_err("reading the export")(e)),
    }
    let mut word = [0u8; 4];
    input
        .read_exact(&mut word)
        .map_err(io_err("reading the export's version"))?;
    let version = u32::from_be_bytes(word);
    if version != VERSION {
        return Err(ExportError::Version(version).into());
    }
    input
        .read_exact(&mut word)
        .map_err(io_err("reading the export's header"))?;
    let len = u32::from_be_bytes(word);
    if len > MAX_HEADER {
        return Err(ExportError::Header(format!("{len} bytes long")).into());
    }
    let mut json = vec![0u8; len as usize];
    input
        .read_exact(&mut json)
        .map_err(io_err("reading the export's header"))?;
    serde_json::from_slice(&json).map_err(|e| ExportError::Header(e.to_string()).into())
}

impl Host {
    /// Writes base `reference` to `out` as an export; `progress` is told
    /// the bytes of payload written so far. Returns the header written.
    pub fn export_base(
        &self,
        reference: &str,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ExportHeader, RuntimeError> {
        let base = self.base(reference)?;
        if base.state != BaseState::Ready {
            return Err(RuntimeError::BaseNotReady(base.name.to_string()));
        }
        let tmp = self.config.data_dir.join("tmp");
        private::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let staged = Staged(tmp.join(format!("export-{}.partial", PodId::random())));
        let file = private::file_options()
            .write(true)
            .create_new(true)
            .read(true)
            .open(&staged.0)
            .map_err(io_err(format!("creating {}", staged.0.display())))?;
        let mut hashing = Hashing {
            inner: io::BufWriter::new(file),
            sha: Sha256::new(),
            len: 0,
        };
        self.datasets
            .send(&DatasetName::base(&base.id), &mut hashing)?;
        hashing
            .flush()
            .map_err(io_err(format!("writing {}", staged.0.display())))?;
        let header = ExportHeader {
            id: base.id.to_string(),
            name: base.name.to_string(),
            source: base.source.clone(),
            size: base.size,
            created: base.created_at,
            parent: None,
            driver: self.datasets.stream_kind().to_string(),
            payload_sha256: hex::encode(hashing.sha.finalize()),
            payload_length: hashing.len,
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| io_err("encoding the export's header")(io::Error::other(e)))?;
        let what = "writing the export";
        out.write_all(MAGIC).map_err(io_err(what))?;
        out.write_all(&VERSION.to_be_bytes())
            .map_err(io_err(what))?;
        out.write_all(&(json.len() as u32).to_be_bytes())
            .map_err(io_err(what))?;
        out.write_all(&json).map_err(io_err(what))?;
        let mut payload =
            fs::File::open(&staged.0).map_err(io_err(format!("reading {}", staged.0.display())))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = payload.read(&mut buf).map_err(io_err(what))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io_err(what))?;
            done += n as u64;
            progress(done);
        }
        out.flush().map_err(io_err(what))?;
        Ok(header)
    }

    /// Imports an export read from `input` as a new base, refused if its
    /// id or name is taken here or its stream is not this host's kind;
    /// `progress` is told the payload bytes read so far.
    pub fn import_export(
        &self,
        input: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Imported, RuntimeError> {
        let header = read_header(input)?;
        let bad = |e: crate::names::NameError| ExportError::Header(e.to_string());
        let id = BaseId::new(&header.id).map_err(bad)?;
        let name = Name::new("base name", &header.name).map_err(bad)?;
        if header.payload_sha256.len() != 64
            || !header.payload_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ExportError::Header("payload_sha256 is not a sha256".into()).into());
        }
        let wants = self.datasets.stream_kind();
        if header.driver != wants {
            return Err(ExportError::WrongDriver {
                stream: header.driver.clone(),
                driver: self.datasets.driver(),
                wants,
            }
            .into());
        }
        // A dataset without a row (a crash's leftover) counts too: the undo
        // below removes the dataset on failure, and it must be ours.
        let taken = self.store().base_by_id(&id)?.is_some()
            || !self.store().find_bases(name.as_str())?.is_empty()
            || self.datasets.exists(&DatasetName::base(&id))?;
        if taken {
            return Err(ExportError::Exists {
                name: header.name.clone(),
                id: header.id.clone(),
            }
            .into());
        }
        let row = BaseRow {
            id: id.clone(),
            name,
            source: header.source.clone(),
            size: header.size,
            state: BaseState::Importing,
            created_at: header.created,
        };
        // Mark, make, commit (as `bases::make_base`).
        self.store().insert_base(&row)?;
        let dataset = DatasetName::base(&id);
        let mut undo = Undo::new();
        undo.push(format!("the row of base {}", id.short()), || {
            Ok(self.store().delete_base(&id)?)
        });
        undo.push(format!("dataset {dataset}"), || {
            match self.datasets.destroy(&dataset) {
                Ok(()) | Err(DatasetError::NotFound(_)) => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
        let mut payload = Counting {
            inner: input.take(header.payload_length),
            sha: Sha256::new(),
            len: 0,
            progress,
        };
        let received = self.datasets.receive(&dataset, &mut payload);
        // The receiver may stop at its stream's own end: the rest of the
        // payload still counts, and a damaged payload is named as such
        // even when the receiver noticed first.
        let drained = io::copy(&mut payload, &mut io::sink()).map_err(io_err("reading the export"));
        let checked = drained.and_then(|_| {
            if payload.len != header.payload_length {
                return Err(ExportError::Truncated {
                    read: payload.len,
                    expected: header.payload_length,
                }
                .into());
            }
            let actual = hex::encode(payload.sha.clone().finalize());
            if !actual.eq_ignore_ascii_case(&header.payload_sha256) {
                return Err(ExportError::Digest {
                    expected: header.payload_sha256.clone(),
                    actual,
                }
                .into());
            }
            Ok(())
        });
        let made = checked
            .and_then(|_| received.map(drop).map_err(RuntimeError::from))
            .and_then(|_| Ok(self.store().set_base_state(&id, BaseState::Ready)?));
        undo.check(made)?;
        undo.commit();
        Ok(Imported {
            base: BaseRow {
                state: BaseState::Ready,
                ..row
            },
            existed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(header: &[u8], version: u32) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend(version.to_be_bytes());
        v.extend((header.len() as u32).to_be_bytes());
        v.extend(header);
        v
    }

    #[test]
    fn headers_are_read_and_strangers_refused() {
        let h = ExportHeader {
            id: "ab".repeat(32),
            name: "busybox".into(),
            source: "busybox.tar".into(),
            size: 3,
            created: 1,
            parent: None,
            driver: "dir".into(),
            payload_sha256: "00".repeat(32),
            payload_length: 0,
        };
        let json = serde_json::to_vec(&h).unwrap();
        let bytes = envelope(&json, VERSION);
        assert_eq!(read_header(&mut bytes.as_slice()).unwrap(), h);
        let e = read_header(&mut &b"\x1f\x8b gzip"[..]).unwrap_err();
        assert!(
            matches!(e, RuntimeError::Export(ExportError::NotAnExport)),
            "{e}"
        );
        let e = read_header(&mut envelope(&json, 9).as_slice()).unwrap_err();
        assert!(
            matches!(e, RuntimeError::Export(ExportError::Version(9))),
            "{e}"
        );
        let e = read_header(&mut envelope(b"{\"id\":1}", VERSION).as_slice()).unwrap_err();
        assert!(
            matches!(e, RuntimeError::Export(ExportError::Header(_))),
            "{e}"
        );
    }
}
