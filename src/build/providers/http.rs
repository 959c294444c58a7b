//! The `http` provider: an index JSON at a URL, `{"bobs": [ENTRY...]}`
//! (or a bare array), each ENTRY a builder manifest plus `id`, `url`
//! (absolute, or relative to the index), `size` and `sha256`. An archive
//! is fetched into staging and its sha256 checked before anything else.

use super::{
    bob_from_manifest, check_id, collect, fetch_archive, sha256_digest, Bob, Fetched, Progress,
    Provider,
};
use crate::build::{BuildError, Manifest};
use crate::runtime::archive;
use crate::runtime::fetch_policy::{redact_url, redact_urls};

const MAX_INDEX: u64 = 4 * 1024 * 1024;

pub struct HttpProvider {
    index: String,
}

impl HttpProvider {
    pub fn new(index: &str) -> HttpProvider {
        HttpProvider {
            index: index.to_string(),
        }
    }

    /// `url` as the index names it, made absolute.
    fn resolve(&self, url: &str) -> String {
        if archive::is_url(url) {
            return url.to_string();
        }
        let scheme_end = self.index.find("://").map_or(0, |i| i + 3);
        match url.strip_prefix('/') {
            Some(path) => {
                let host_end = self.index[scheme_end..]
                    .find('/')
                    .map_or(self.index.len(), |i| scheme_end + i);
                format!("{}/{path}", &self.index[..host_end])
            }
            None => {
                let dir_end = self.index.rfind('/').filter(|i| *i >= scheme_end);
                match dir_end {
                    Some(i) => format!("{}/{url}", &self.index[..i]),
                    None => format!("{}/{url}", self.index),
                }
            }
        }
    }

    /// The bob an index entry describes; `origin` names the entry.
    fn bob(&self, entry: &serde_json::Value, origin: &str) -> Result<Bob, BuildError> {
        let field = |k: &str| {
            entry.get(k).ok_or_else(|| BuildError::Manifest {
                origin: origin.to_string(),
                why: format!("missing field `{k}`"),
            })
        };
        let id = field("id")?.as_str().unwrap_or_default();
        check_id(id)?;
        let url = field("url")?.as_str().unwrap_or_default();
        let sha256 = field("sha256")?.as_str().unwrap_or_default();
        let digest = sha256_digest(sha256);
        super::digest_hex(&digest)?;
        let size = entry.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
        let manifest = Manifest::parse(entry.to_string().as_bytes(), origin)?;
        Ok(bob_from_manifest(
            id,
            &manifest,
            size,
            digest.to_ascii_lowercase(),
            self.resolve(url),
        ))
    }
}

/// An error naming `url` without its credentials (the index URL may
/// carry some, and errors reach API users and logs).
fn fetch_err(url: &str) -> impl FnOnce(ureq::Error) -> BuildError + '_ {
    move |e| BuildError::Fetch {
        what: redact_url(url),
        why: redact_urls(&e.to_string()).into_owned(),
    }
}

impl Provider for HttpProvider {
    fn list(&self) -> Result<Vec<Bob>, BuildError> {
        let body = ureq::get(&self.index)
            .call()
            .map_err(fetch_err(&self.index))?
            .into_body()
            .with_config()
            .limit(MAX_INDEX)
            .read_to_vec()
            .map_err(fetch_err(&self.index))?;
        let index: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| BuildError::Manifest {
                origin: redact_url(&self.index),
                why: format!("the index is not JSON: {e}"),
            })?;
        let entries = index
            .get("bobs")
            .unwrap_or(&index)
            .as_array()
            .ok_or_else(|| BuildError::Manifest {
                origin: redact_url(&self.index),
                why: "expected {\"bobs\": [...]} or an array".into(),
            })?;
        let listed = entries.iter().enumerate().map(|(i, entry)| {
            let origin = format!("{} entry {}", redact_url(&self.index), i + 1);
            ("an entry", self.bob(entry, &origin))
        });
        Ok(collect(redact_url(&self.index), listed))
    }

    fn fetch(
        &self,
        bob: &Bob,
        staging: &std::path::Path,
        progress: &mut Progress,
    ) -> Result<Fetched, BuildError> {
        fetch_archive(bob, staging, progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_urls_resolve_against_the_index() {
        let p = HttpProvider::new("http://h:8000/bobs/index.json");
        assert_eq!(p.resolve("a.tar.gz"), "http://h:8000/bobs/a.tar.gz");
        assert_eq!(p.resolve("/x/a.tar.gz"), "http://h:8000/x/a.tar.gz");
        assert_eq!(p.resolve("https://o/a.tgz"), "https://o/a.tgz");
        let bare = HttpProvider::new("http://h:8000");
        assert_eq!(bare.resolve("a.tgz"), "http://h:8000/a.tgz");
    }
}
