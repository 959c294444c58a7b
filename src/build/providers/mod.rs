//! Bob providers: where candidate builders come from. Each lists its bobs
//! (identity, size, digest) and fetches one into staging files whose
//! digests it has checked; nothing is imported before that check. The
//! drivers: `local` (a directory of archives with manifests beside them),
//! `http` (an index JSON and archives at URLs) and `oci` (a registry).

mod http;
mod local;
mod oci;

use std::fmt::Display;
use std::ops::ControlFlow;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BuildError;
use crate::config::{BobProviderConfig, BobProviderKind};
use crate::runtime::archive::Staged;
use crate::runtime::fetch_policy::redact_url;

/// A candidate builder as its provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bob {
    pub id: String,
    pub name: String,
    pub version: String,
    pub vcs_ref: String,
    pub build_date: String,
    pub vendor: String,
    pub services: Vec<String>,
    pub size: u64,
    /// `sha256:HEX` of the archive (local, http) or the image manifest (oci).
    pub digest: String,
    /// Where the provider fetches it: a file, a URL, a registry reference.
    pub location: String,
}

/// What a fetch staged, every part checked against its digest.
pub enum Fetched {
    /// One root file system archive.
    Archive(Staged),
    /// An OCI image's layers, in order.
    Layers(Vec<Staged>),
}

/// Progress of a fetch: bytes so far; `Break` cancels it.
pub type Progress<'a> = dyn FnMut(u64) -> ControlFlow<()> + 'a;

pub trait Provider {
    /// The bobs it offers now.
    fn list(&self) -> Result<Vec<Bob>, BuildError>;

    /// Fetches `bob` into `staging`, refusing anything whose digest is not
    /// the one listed.
    fn fetch(
        &self,
        bob: &Bob,
        staging: &Path,
        progress: &mut Progress,
    ) -> Result<Fetched, BuildError>;
}

/// The provider every server has from its first start unless
/// `builders.dockerhub = off`, as Mothership had it: Docker Hub's
/// `includeos/builder` repository, each tag a stock image jetpack adopts.
pub const DOCKERHUB: &str = "DockerHub";
pub const DOCKERHUB_LOCATION: &str = "https://registry-1.docker.io/includeos/builder";

/// `configured` and, when `dockerhub` is on and no provider is named
/// DockerHub there already (jetpack.conf's own line wins), the default.
pub fn with_default(configured: &[BobProviderConfig], dockerhub: bool) -> Vec<BobProviderConfig> {
    let mut all = configured.to_vec();
    if dockerhub && !all.iter().any(|p| p.name == DOCKERHUB) {
        all.push(BobProviderConfig {
            name: DOCKERHUB.to_string(),
            kind: BobProviderKind::Oci,
            location: DOCKERHUB_LOCATION.to_string(),
        });
    }
    all
}

pub fn open(config: &BobProviderConfig) -> Box<dyn Provider> {
    match config.kind {
        BobProviderKind::Local => Box::new(local::LocalProvider::new(&config.location)),
        BobProviderKind::Http => Box::new(http::HttpProvider::new(&config.location)),
        BobProviderKind::Oci => Box::new(oci::OciProvider::new(&config.location)),
    }
}

/// `sha256:HEX` for a hex sha256.
pub fn sha256_digest(hex: &str) -> String {
    format!("sha256:{hex}")
}

/// The hex of a `sha256:HEX` digest, checked.
pub fn digest_hex(digest: &str) -> Result<&str, BuildError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| BuildError::Invalid(format!("{digest:?} is not a sha256:HEX digest")))
}

/// Refuses a staged file whose sha256 is not `digest`'s; the staged file
/// goes with the error.
pub fn verified(staged: Staged, digest: &str, what: &str) -> Result<Staged, BuildError> {
    let expected = digest_hex(digest)?;
    if staged.sha256.eq_ignore_ascii_case(expected) {
        Ok(staged)
    } else {
        Err(BuildError::Digest {
            what: what.to_string(),
            expected: digest.to_string(),
            actual: sha256_digest(&staged.sha256),
        })
    }
}

/// The fetch of a bob that is one archive at a path or URL (local, http).
fn fetch_archive(
    bob: &Bob,
    staging: &Path,
    progress: &mut Progress,
) -> Result<Fetched, BuildError> {
    // A provider's location is jetpack.conf's, not a user's: trusted.
    let staged = crate::runtime::archive::stage(
        &bob.location,
        staging,
        crate::runtime::archive::Urls::Trusted,
        progress,
    )?;
    Ok(Fetched::Archive(verified(
        staged,
        &bob.digest,
        &redact_url(&bob.location),
    )?))
}

/// A bob's fields from a manifest-shaped JSON object (a local sidecar, an
/// http index entry), where the provider has the id, size and digest.
fn bob_from_manifest(
    id: &str,
    manifest: &super::Manifest,
    size: u64,
    digest: String,
    location: String,
) -> Bob {
    Bob {
        id: id.to_string(),
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        vcs_ref: manifest.vcs_ref.clone(),
        build_date: manifest.build_date.clone(),
        vendor: manifest.vendor.clone(),
        services: manifest.services.clone(),
        size,
        digest,
        location,
    }
}

/// A provider's list from its entries, each with what to call it if it is
/// bad, sorted by id. One bad entry must not hide the good ones: it is
/// skipped, and said.
fn collect<W: Display>(
    provider: impl Display,
    entries: impl IntoIterator<Item = (W, Result<Bob, BuildError>)>,
) -> Vec<Bob> {
    let mut bobs = Vec::new();
    for (what, bob) in entries {
        match bob {
            Ok(bob) => bobs.push(bob),
            Err(e) => {
                let line = format!("bob provider {provider}: skipping {what}: {e}");
                tracing::warn!("{}", crate::runtime::fetch_policy::redact_urls(&line));
            }
        }
    }
    bobs.sort_by(|a, b| a.id.cmp(&b.id));
    bobs
}

/// A bob id: it becomes a builder id and part of a base name.
fn check_id(id: &str) -> Result<(), BuildError> {
    if id.len() > 48 {
        return Err(BuildError::Invalid(format!(
            "bob id {id:?} is longer than 48 characters"
        )));
    }
    crate::names::Name::new("bob id", id).map_err(|e| BuildError::Invalid(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerhub_is_there_unless_disabled_or_declared() {
        let own = BobProviderConfig {
            name: "local".into(),
            kind: BobProviderKind::Local,
            location: "/srv/bobs".into(),
        };
        let all = with_default(std::slice::from_ref(&own), true);
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[1].name.as_str(), all[1].kind),
            (DOCKERHUB, BobProviderKind::Oci)
        );
        assert_eq!(all[1].location, DOCKERHUB_LOCATION);
        assert_eq!(
            with_default(std::slice::from_ref(&own), false),
            vec![own.clone()]
        );
        let mirror = BobProviderConfig {
            name: DOCKERHUB.into(),
            kind: BobProviderKind::Oci,
            location: "http://127.0.0.1:5000/includeos/builder".into(),
        };
        assert_eq!(
            with_default(std::slice::from_ref(&mirror), true),
            vec![mirror]
        );
    }
}
