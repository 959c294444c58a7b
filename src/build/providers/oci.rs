//! The `oci` provider: a repository in an OCI/Docker registry (distribution
//! API v2), e.g. Docker Hub's `includeos/builder`. Each tag is a bob: its
//! identity comes from the label-schema labels of the image config, its
//! digest is the manifest's. A fetch reads the manifest by that digest and
//! each layer, checking every sha256, before the runtime unpacks them.
//! Anonymous pulls only, with the Bearer token dance Docker Hub wants.
//! An image without `io.jetpack.services` is listed as building Starbase:
//! a stock `includeos/builder`, which `build::adopt` makes a builder of.

use std::io::Read;
use std::sync::Mutex;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{check_id, collect, sha256_digest, verified, Bob, Fetched, Progress, Provider};
use crate::build::BuildError;
use crate::runtime::archive;
use crate::runtime::fetch_policy::{redact_url, redact_urls};

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_DOCUMENT: u64 = 4 * 1024 * 1024;
/// Tags looked at per update, newest listed last by most registries.
const MAX_TAGS: usize = 200;

pub struct OciProvider {
    /// `http(s)://HOST[:PORT]`
    registry: String,
    repository: String,
    agent: ureq::Agent,
    token: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct ManifestDoc {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    /// Set when this is an index (manifest list).
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(Deserialize)]
struct ConfigSection {
    #[serde(rename = "Labels", default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

impl OciProvider {
    pub fn new(location: &str) -> OciProvider {
        let scheme_end = location.find("://").map_or(0, |i| i + 3);
        let (registry, repository) = match location[scheme_end..].find('/') {
            Some(i) => (
                location[..scheme_end + i].to_string(),
                location[scheme_end + i + 1..].to_string(),
            ),
            None => (location.to_string(), String::new()),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(std::time::Duration::from_secs(15)))
            .build();
        OciProvider {
            registry,
            repository,
            agent: config.into(),
            token: Mutex::new(None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.registry, self.repository)
    }

    /// An error naming `url` without its credentials (a registry URL may
    /// carry some, and errors reach API users and logs).
    fn fetch_err(&self, url: &str, why: impl std::fmt::Display) -> BuildError {
        BuildError::Fetch {
            what: redact_url(url),
            why: redact_urls(&why.to_string()).into_owned(),
        }
    }

    /// GETs `url`, answering a Bearer challenge once with an anonymous token.
    fn get(&self, url: &str, accept: &str) -> Result<ureq::http::Response<ureq::Body>, BuildError> {
        let send = |token: Option<&str>| {
            let mut req = self.agent.get(url).header("Accept", accept);
            if let Some(t) = token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            req.call().map_err(|e| self.fetch_err(url, e))
        };
        let token = self.token.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut response = send(token.as_deref())?;
        if response.status() == 401 {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let token = self.anonymous_token(url, &challenge)?;
            *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
            response = send(Some(&token))?;
        }
        match response.status().as_u16() {
            200 => Ok(response),
            404 => Err(self.fetch_err(url, "not found in the registry")),
            status => Err(self.fetch_err(url, format!("the registry answered {status}"))),
        }
    }

    /// `Bearer realm="R",service="S",scope="X"` -> a token from R.
    fn anonymous_token(&self, url: &str, challenge: &str) -> Result<String, BuildError> {
        let params = challenge.strip_prefix("Bearer ").ok_or_else(|| {
            self.fetch_err(
                url,
                "the registry wants credentials; only anonymous pulls are supported",
            )
        })?;
        let mut realm = None;
        let mut query = Vec::new();
        for part in split_params(params) {
            if let Some((k, v)) = part.split_once('=') {
                let v = v.trim_matches('"');
                match k.trim() {
                    "realm" => realm = Some(v.to_string()),
                    key @ ("service" | "scope") => query.push((key.to_string(), v.to_string())),
                    _ => {}
                }
            }
        }
        let realm =
            realm.ok_or_else(|| self.fetch_err(url, "a Bearer challenge without a realm"))?;
        let mut req = self.agent.get(&realm);
        for (k, v) in &query {
            req = req.query(k, v);
        }
        let mut response = req.call().map_err(|e| self.fetch_err(&realm, e))?;
        if response.status() != 200 {
            return Err(self.fetch_err(
                &realm,
                format!("token service answered {}", response.status()),
            ));
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_DOCUMENT)
            .read_to_vec()
            .map_err(|e| self.fetch_err(&realm, e))?;
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| self.fetch_err(&realm, e))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| self.fetch_err(&realm, "no token in the answer"))
    }

    /// A small document (manifest, config) and its sha256 (hex).
    fn document(&self, url: &str, accept: &str) -> Result<(Vec<u8>, String), BuildError> {
        let bytes = self
            .get(url, accept)?
            .into_body()
            .with_config()
            .limit(MAX_DOCUMENT)
            .read_to_vec()
            .map_err(|e| self.fetch_err(url, e))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        Ok((bytes, sha))
    }

    /// The image manifest `reference` (a tag or digest) names, its digest,
    /// choosing linux/amd64 from an index.
    fn image_manifest(&self, reference: &str) -> Result<(ManifestDoc, String), BuildError> {
        let url = self.url(&format!("manifests/{reference}"));
        let (bytes, sha) = self.document(&url, MANIFEST_TYPES)?;
        if let Some(expected) = reference.strip_prefix("sha256:") {
            if !sha.eq_ignore_ascii_case(expected) {
                return Err(BuildError::Digest {
                    what: redact_url(&url),
                    expected: reference.to_string(),
                    actual: sha256_digest(&sha),
                });
            }
        }
        let doc: ManifestDoc = serde_json::from_slice(&bytes)
            .map_err(|e| self.fetch_err(&url, format!("not an image manifest: {e}")))?;
        if doc.manifests.is_empty() {
            return Ok((doc, sha256_digest(&sha)));
        }
        let chosen = doc
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .ok_or_else(|| self.fetch_err(&url, "the index has no linux/amd64 image"))?;
        let digest = chosen.digest.clone();
        super::digest_hex(&digest)?;
        self.image_manifest(&digest)
    }

    fn labels(
        &self,
        config: &Descriptor,
    ) -> Result<std::collections::BTreeMap<String, String>, BuildError> {
        super::digest_hex(&config.digest)?;
        let url = self.url(&format!("blobs/{}", config.digest));
        let (bytes, sha) = self.document(&url, "*/*")?;
        if sha256_digest(&sha) != config.digest.to_ascii_lowercase() {
            return Err(BuildError::Digest {
                what: redact_url(&url),
                expected: config.digest.clone(),
                actual: sha256_digest(&sha),
            });
        }
        let image: ImageConfig = serde_json::from_slice(&bytes)
            .map_err(|e| self.fetch_err(&url, format!("not an image config: {e}")))?;
        Ok(image.config.and_then(|c| c.labels).unwrap_or_default())
    }

    fn bob(&self, tag: &str) -> Result<Bob, BuildError> {
        check_id(tag)?;
        let (manifest, digest) = self.image_manifest(tag)?;
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| self.fetch_err(&self.url(&format!("manifests/{tag}")), "no config"))?;
        let labels = self.labels(config)?;
        let label = |k: &str| labels.get(&format!("org.label-schema.{k}")).cloned();
        Ok(Bob {
            id: tag.to_string(),
            name: label("name").unwrap_or_else(|| self.repository.clone()),
            version: label("version").unwrap_or_else(|| tag.to_string()),
            vcs_ref: label("vcs-ref").unwrap_or_default(),
            build_date: label("build-date").unwrap_or_default(),
            vendor: label("vendor").unwrap_or_default(),
            services: labels
                .get("io.jetpack.services")
                .map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                // A stock includeos/builder image names no services: it
                // builds Starbase, as Mothership used it (build::adopt).
                .unwrap_or_else(|| vec!["Starbase".to_string()]),
            size: manifest.layers.iter().map(|l| l.size).sum(),
            digest: digest.clone(),
            location: format!("{}/{}@{digest}", self.registry, self.repository),
        })
    }
}

/// Splits `a="x,y",b=z` at the commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

impl Provider for OciProvider {
    fn list(&self) -> Result<Vec<Bob>, BuildError> {
        let url = self.url("tags/list?n=1000");
        let (bytes, _) = self.document(&url, "application/json")?;
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let tags: Tags = serde_json::from_slice(&bytes)
            .map_err(|e| self.fetch_err(&url, format!("not a tag list: {e}")))?;
        let listed = tags
            .tags
            .unwrap_or_default()
            .into_iter()
            .take(MAX_TAGS)
            .map(|tag| {
                let bob = self.bob(&tag);
                (format!("tag {tag}"), bob)
            });
        Ok(collect(redact_url(&self.url("")), listed))
    }

    fn fetch(
        &self,
        bob: &Bob,
        staging: &std::path::Path,
        progress: &mut Progress,
    ) -> Result<Fetched, BuildError> {
        let (manifest, _) = self.image_manifest(&bob.digest)?;
        let mut layers = Vec::new();
        let mut done = 0u64;
        for layer in &manifest.layers {
            super::digest_hex(&layer.digest)?;
            if !(layer.media_type.is_empty() || layer.media_type.contains("tar")) {
                return Err(self.fetch_err(
                    &bob.location,
                    format!("layer {} is {}, not a tar", layer.digest, layer.media_type),
                ));
            }
            let url = self.url(&format!("blobs/{}", layer.digest));
            let reader: Box<dyn Read> = Box::new(self.get(&url, "*/*")?.into_body().into_reader());
            let before = done;
            let staged = archive::stage_from(&url, reader, staging, &mut |n| {
                done = before + n;
                progress(done)
            })?;
            layers.push(verified(staged, &layer.digest, &redact_url(&url))?);
        }
        if layers.is_empty() {
            return Err(self.fetch_err(&bob.location, "the image has no layers"));
        }
        Ok(Fetched::Layers(layers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_into_registry_and_repository() {
        let p = OciProvider::new("https://registry-1.docker.io/includeos/builder");
        assert_eq!(p.registry, "https://registry-1.docker.io");
        assert_eq!(p.repository, "includeos/builder");
        assert_eq!(
            p.url("tags/list"),
            "https://registry-1.docker.io/v2/includeos/builder/tags/list"
        );
    }

    #[test]
    fn challenge_parameters_split_outside_quotes() {
        assert_eq!(
            split_params(r#"realm="https://a/token",service="x",scope="repository:a/b:pull,push""#),
            vec![
                r#"realm="https://a/token""#,
                r#"service="x""#,
                r#"scope="repository:a/b:pull,push""#
            ]
        );
    }
}
