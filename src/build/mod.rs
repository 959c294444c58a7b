//! The build layer: bob providers, builders and the work done with them.
//! A builder is a sealed base carrying a manifest (`manifest`); preparing
//! a bob fetches it from its provider (`providers`), checks its digest,
//! imports it and registers it. Every build and every builder validation
//! runs in a fresh pod cloned from the builder, given its inputs and
//! destroyed afterwards whatever happened (`workspace` owns the files).
//! It knows nothing of HTTP; the API and the jobs call it.

mod holds;
pub mod manifest;
pub mod providers;
mod workspace;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::catalog::{self, Catalog, CatalogError, ImageMeta};
use crate::config::{BobProviderConfig, Config};
use crate::jobs::{JobContext, Slots};
use crate::nacl::{self, Verdict};
use crate::names::Name;
use crate::runtime::archive::ArchiveError;
use crate::runtime::{Ended, Host, Pod, RuntimeError};
use crate::store::builders::BuilderRow;
use crate::store::catalog::{DocumentKind, ImageRow, UplinkRow};
use crate::store::{self, StoreError};
pub use holds::BuilderHolds;
pub use manifest::Manifest;
use providers::{Bob, Fetched};

/// The log lines of a fetch: a real IncludeOS builder is a gigabyte, so
/// its job's log says how far the fetch has come, a line per tenth; a
/// small bob (under 16 MiB) says nothing.
struct FetchLog {
    size: u64,
    logged_tenths: u64,
}

impl FetchLog {
    const MIN_SIZE: u64 = 16 << 20;

    fn new(size: u64) -> FetchLog {
        FetchLog {
            size,
            logged_tenths: 0,
        }
    }

    /// The line to log once `fetched` bytes have come, if any.
    fn line(&mut self, fetched: u64) -> Option<String> {
        let tenths = (fetched.saturating_mul(10) / self.size.max(1)).min(10);
        if self.size < Self::MIN_SIZE || tenths <= self.logged_tenths {
            return None;
        }
        self.logged_tenths = tenths;
        let mib = |n: u64| n as f64 / (1u64 << 20) as f64;
        Some(format!(
            "fetched {:.1} of {:.1} MiB ({}%)",
            mib(fetched),
            mib(self.size),
            tenths * 10
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "no bob provider {0:?}: jetpack.conf declares them as bob.provider.NAME = KIND LOCATION"
    )]
    NoProvider(String),
    #[error("provider {provider} has no bob {id:?} (as of its last update; `jetpack bob update {provider}` refreshes it)")]
    NoBob { provider: String, id: String },
    #[error("no builder {0:?}")]
    NoBuilder(String),
    #[error("builder {reference:?} is ambiguous: it matches {count}; give more of the id")]
    AmbiguousBuilder { reference: String, count: usize },
    #[error("builder manifest {origin}: {why}")]
    Manifest { origin: String, why: String },
    #[error("fetching {what}: {why}")]
    Fetch { what: String, why: String },
    #[error("{what}: sha256 is {actual}, expected {expected}; refused before import")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("builder {builder} does not build {service:?}; it builds {offered}")]
    ServiceNotOffered {
        builder: String,
        service: String,
        offered: String,
    },
    #[error(
        "builder {0} is in use by {1} build(s) or validation(s); wait for them or cancel them"
    )]
    BuilderInUse(String, usize),
    #[error("a builder {id} exists already, prepared from {digest}; delete it first")]
    BuilderTaken { id: String, digest: String },
    #[error("the build failed: {0}")]
    Failed(String),
    #[error("ran out of time ({0} s) and was killed")]
    TimedOut(u64),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl From<crate::store::blobs::BlobError> for BuildError {
    fn from(e: crate::store::blobs::BlobError) -> Self {
        BuildError::Catalog(e.into())
    }
}

/// A provider as configured, with when its list was last made.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub id: String,
    pub kind: &'static str,
    pub location: String,
    pub updated_at: Option<i64>,
}

/// A registered builder: its row and its manifest.
#[derive(Debug, Clone)]
pub struct Builder {
    pub row: BuilderRow,
    pub manifest: Manifest,
}

impl Builder {
    fn from_row(row: BuilderRow) -> Result<Builder, BuildError> {
        let manifest = Manifest::parse(row.manifest.as_bytes(), &format!("of builder {}", row.id))?;
        Ok(Builder { row, manifest })
    }
}

/// Which NaCl a build or validation takes.
#[derive(Debug, Clone)]
pub enum NaclInput {
    /// A stored NaCl, by id, name or id prefix.
    Stored(String),
    /// Text given with the request.
    Text(String),
}

/// What a client asks to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub service: String,
    pub builder: String,
    pub nacl: NaclInput,
    /// An uplink by id, name or id prefix; the default uplink if absent.
    pub uplink: Option<String>,
    /// The image's tag; the uplink's if absent.
    pub tag: Option<String>,
    /// The image's name; the NaCl's (or the service's) if absent.
    pub name: Option<String>,
}

/// A checked build, ready to run: everything it names exists.
pub struct BuildPlan {
    pub builder: Builder,
    pub service: String,
    pub nacl_id: Option<String>,
    pub nacl: String,
    pub uplink: UplinkRow,
    pub tag: Option<String>,
    pub name: Name,
    _hold: Hold,
}

/// What a build made, and how long its parts took.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: ImageRow,
    /// The same binary had been stored already.
    pub existed: bool,
    /// The builder's `build` entry point alone.
    pub build_time: Duration,
    /// The whole build, pod made to pod gone.
    pub total_time: Duration,
}

/// Counts the builds and validations using each builder, so that a builder
/// in use cannot be deleted under them.
#[derive(Default)]
struct Holds(Mutex<HashMap<String, usize>>);

/// One use of a builder; dropping it ends the use.
pub struct Hold {
    holds: Arc<Holds>,
    builder: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut map = self.holds.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.builder) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.builder);
            }
        }
    }
}

/// Removes a build pod (killing it if need be) whatever happened.
struct PodGuard<'a> {
    host: &'a Host,
    pod: Pod,
}

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        // The row may say running when the run failed half-way: look again.
        let pod = self
            .host
            .pod(self.pod.row.id.as_str())
            .unwrap_or_else(|_| self.pod.clone());
        if let Err(e) = self.host.remove_pod(&pod, true) {
            tracing::error!("removing build pod {}: {e}", self.pod.row.id);
        }
    }
}

pub struct Builders {
    host: Arc<Host>,
    catalog: Arc<Catalog>,
    providers: Vec<BobProviderConfig>,
    builds: Arc<Slots>,
    validations: Slots,
    build_timeout: Duration,
    validate_timeout: Duration,
    staging: PathBuf,
    holds: Arc<Holds>,
}

impl Builders {
    pub fn new(host: Arc<Host>, catalog: Arc<Catalog>, config: &Config) -> Builders {
        Builders {
            providers: config.bob_providers.clone(),
            builds: Arc::new(Slots::new(config.build_concurrency)),
            validations: Slots::new(config.build_concurrency),
            build_timeout: Duration::from_secs(config.build_timeout),
            validate_timeout: Duration::from_secs(config.build_validate_timeout),
            staging: config.data_dir.join("tmp"),
            host,
            catalog,
            holds: Arc::default(),
        }
    }

    /// The limit builds share: build jobs are submitted with it.
    pub fn build_slots(&self) -> Arc<Slots> {
        self.builds.clone()
    }

    // ---- providers and bobs ----

    fn provider(&self, id: &str) -> Result<&BobProviderConfig, BuildError> {
        self.providers
            .iter()
            .find(|p| p.name == id)
            .ok_or_else(|| BuildError::NoProvider(id.to_string()))
    }

    pub fn providers(&self) -> Result<Vec<ProviderInfo>, BuildError> {
        self.providers
            .iter()
            .map(|p| {
                let updated = self.catalog.with_store(|s| s.bob_list(&p.name))?;
                Ok(ProviderInfo {
                    id: p.name.clone(),
                    kind: p.kind.as_str(),
                    // Shown to API users: credentials in it stay in jetpack.conf.
                    location: crate::runtime::fetch_policy::redact_url(&p.location),
                    updated_at: updated.map(|(_, at)| at),
                })
            })
            .collect()
    }

    /// Asks the provider for its bobs now and keeps the list.
    pub fn update(&self, provider: &str) -> Result<Vec<Bob>, BuildError> {
        let config = self.provider(provider)?;
        let bobs = providers::open(config).list()?;
        let doc = serde_json::to_value(&bobs).map_err(|e| BuildError::Invalid(e.to_string()))?;
        self.catalog
            .with_store(|s| s.put_bob_list(provider, &doc, store::now()))?;
        tracing::info!("bob provider {provider}: {} bob(s)", bobs.len());
        Ok(bobs)
    }

    /// The provider's bobs as of its last update (none before the first).
    pub fn bobs(&self, provider: &str) -> Result<Vec<Bob>, BuildError> {
        self.provider(provider)?;
        match self.catalog.with_store(|s| s.bob_list(provider))? {
            Some((doc, _)) => serde_json::from_value(doc)
                .map_err(|e| BuildError::Store(StoreError::Corrupt(e.to_string()))),
            None => Ok(Vec::new()),
        }
    }

    fn bob(&self, provider: &str, id: &str) -> Result<Bob, BuildError> {
        self.bobs(provider)?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| BuildError::NoBob {
                provider: provider.to_string(),
                id: id.to_string(),
            })
    }

    /// Fetches, verifies and imports a bob, and registers it as a builder.
    /// A bob whose digest is a builder already is that builder (`true`).
    pub fn prepare(
        &self,
        provider: &str,
        bob_id: &str,
        ctx: &JobContext,
    ) -> Result<(Builder, bool), BuildError> {
        let config = self.provider(provider)?;
        let bob = self.bob(provider, bob_id)?;
        if let Some(row) = self
            .catalog
            .with_store(|s| s.builder_by_digest(&bob.digest))?
        {
            ctx.log(&format!("{} is builder {} already", bob.digest, row.id));
            return Ok((Builder::from_row(row)?, true));
        }
        if let Some(row) = self
            .catalog
            .with_store(|s| s.find_builders(&bob.id))?
            .into_iter()
            .find(|b| b.id == bob.id)
        {
            return Err(BuildError::BuilderTaken {
                id: row.id,
                digest: row.digest,
            });
        }
        ctx.log(&format!("fetching {} ({} bytes)", bob.location, bob.size));
        let total = bob.size.max(1) as f64;
        let mut fetch_log = FetchLog::new(bob.size);
        let fetched = providers::open(config).fetch(&bob, &self.staging, &mut |n| {
            ctx.progress(0.8 * (n as f64 / total).min(1.0));
            if let Some(line) = fetch_log.line(n) {
                ctx.log(&line);
            }
            if ctx.cancelled() {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })?;
        ctx.log(&format!("verified {}; importing", bob.digest));
        let name = Name::new("base name", &format!("builder-{}", bob.id))
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        let imported = match &fetched {
            Fetched::Archive(staged) => self.host.import_staged(staged, name, &bob.location)?,
            Fetched::Layers(layers) => {
                let hex = providers::digest_hex(&bob.digest)?;
                self.host.import_layers(hex, name, &bob.location, layers)?
            }
        };
        drop(fetched);
        ctx.progress(0.95);
        let base = imported.base;
        let undo = |e: BuildError| {
            if !imported.existed {
                if let Err(u) = self.host.remove_base(base.id.as_str(), false) {
                    tracing::error!("undoing the import of {}: {u}", base.id);
                }
            }
            e
        };
        let manifest = Manifest::read_from(&self.host.base_root(&base)).map_err(undo)?;
        let row = BuilderRow {
            id: bob.id.clone(),
            base_id: base.id.clone(),
            digest: bob.digest.clone(),
            provider_id: provider.to_string(),
            manifest: serde_json::to_string(&manifest)
                .map_err(|e| undo(BuildError::Invalid(e.to_string())))?,
            created_at: store::now(),
        };
        self.catalog
            .with_store(|s| s.insert_builder(&row))
            .map_err(|e| undo(e.into()))?;
        ctx.log(&format!(
            "builder {} ready: {} {} (services {})",
            row.id,
            manifest.name,
            manifest.version,
            manifest.services.join(", ")
        ));
        Ok((Builder { row, manifest }, false))
    }

    // ---- builders ----

    pub fn builders(&self) -> Result<Vec<Builder>, BuildError> {
        self.catalog
            .with_store(|s| s.builders())?
            .into_iter()
            .map(Builder::from_row)
            .collect()
    }

    pub fn builder(&self, reference: &str) -> Result<Builder, BuildError> {
        let mut found = self.catalog.with_store(|s| s.find_builders(reference))?;
        match found.len() {
            0 => Err(BuildError::NoBuilder(reference.to_string())),
            1 => Builder::from_row(found.remove(0)),
            count => Err(BuildError::AmbiguousBuilder {
                reference: reference.to_string(),
                count,
            }),
        }
    }

    fn hold(&self, builder: &str) -> Hold {
        *self
            .holds
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(builder.to_string())
            .or_default() += 1;
        Hold {
            holds: self.holds.clone(),
            builder: builder.to_string(),
        }
    }

    /// Deletes a builder and its base; refused while a build or a
    /// validation uses it.
    pub fn delete_builder(&self, reference: &str) -> Result<Builder, BuildError> {
        let builder = self.builder(reference)?;
        let holds = self.holds.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = holds.get(&builder.row.id) {
            return Err(BuildError::BuilderInUse(builder.row.id.clone(), *n));
        }
        self.catalog
            .with_store(|s| s.delete_builder(&builder.row.id))?;
        drop(holds);
        match self.host.remove_base(builder.row.base_id.as_str(), false) {
            Ok(_) | Err(RuntimeError::NoSuchBase(_)) => {}
            Err(e) => tracing::warn!(
                "builder {} deleted; its base {} stays: {e}",
                builder.row.id,
                builder.row.base_id.short()
            ),
        }
        Ok(builder)
    }

    // ---- builds ----

    /// Checks a build before it becomes a job: the builder exists and
    /// offers the service, the NaCl and the uplink exist, the names are good.
    pub fn plan(&self, req: BuildRequest) -> Result<BuildPlan, BuildError> {
        let builder = self.builder(&req.builder)?;
        if !builder.manifest.offers(&req.service) {
            return Err(BuildError::ServiceNotOffered {
                builder: builder.row.id.clone(),
                service: req.service,
                offered: builder.manifest.services.join(", "),
            });
        }
        let (nacl_id, nacl_name, nacl) = match req.nacl {
            NaclInput::Stored(reference) => {
                let doc = self.catalog.document(DocumentKind::Nacl, &reference)?;
                (Some(doc.id), Some(doc.name), doc.content)
            }
            NaclInput::Text(text) => (None, None, text),
        };
        let uplink = self
            .catalog
            .uplink(req.uplink.as_deref().unwrap_or(catalog::DEFAULT_UPLINK))?;
        let tag = req.tag.or_else(|| uplink.tag.clone());
        catalog::check_tag(&tag)?;
        let name = req
            .name
            .or(nacl_name)
            .unwrap_or_else(|| req.service.to_lowercase());
        let name =
            Name::new("image name", &name).map_err(|e| BuildError::Invalid(e.to_string()))?;
        let hold = self.hold(&builder.row.id);
        Ok(BuildPlan {
            builder,
            service: req.service,
            nacl_id,
            nacl,
            uplink,
            tag,
            name,
            _hold: hold,
        })
    }

    /// Runs a planned build: a pod from the builder, the inputs in, its
    /// `build` entry point under the time limit, the ELF out into the
    /// catalog; the pod goes whatever happens.
    pub fn build(&self, plan: &BuildPlan, ctx: &JobContext) -> Result<Built, BuildError> {
        let started = Instant::now();
        let manifest = &plan.builder.manifest;
        let pod = self.host.create_pod(
            plan.builder.row.base_id.as_str(),
            None,
            manifest.build.clone(),
        )?;
        let guard = PodGuard {
            host: &self.host,
            pod,
        };
        let pod = &guard.pod;
        // The same parameters through the MDS, for builders that ask it.
        self.host.annotate(
            pod,
            vec![
                ("jetpack/build-service".into(), plan.service.clone()),
                ("jetpack/build-name".into(), plan.name.to_string()),
                (
                    "jetpack/build-tag".into(),
                    plan.tag.clone().unwrap_or_default(),
                ),
            ],
        );
        let config = config_json(&plan.uplink, plan.tag.as_deref());
        let parameters = json!({
            "service": plan.service,
            "name": plan.name.as_str(),
            "tag": plan.tag,
        });
        workspace::write_inputs(
            &pod.root,
            &[
                ("nacl.txt", plan.nacl.as_bytes()),
                ("config.json", config.to_string().as_bytes()),
                ("build.json", parameters.to_string().as_bytes()),
            ],
        )?;
        ctx.log(&format!(
            "building {} {} with builder {} ({}) in pod {}",
            plan.service,
            plan.name.as_str(),
            plan.builder.row.id,
            manifest.version,
            pod.row.id.short()
        ));
        let ran = Instant::now();
        let ended = self.host.run_bounded(
            pod,
            manifest.build.clone(),
            ctx.log_path(),
            self.build_timeout,
            &|| ctx.cancelled(),
        )?;
        let build_time = ran.elapsed();
        match ended {
            Ended::Exited(0) => {}
            Ended::Exited(code) => {
                return Err(BuildError::Failed(format!(
                    "{} exited with status {code}",
                    manifest.build[0]
                )))
            }
            Ended::TimedOut => return Err(BuildError::TimedOut(self.build_timeout.as_secs())),
            Ended::Cancelled => return Err(BuildError::Cancelled),
        }
        let (file, staged) = workspace::collect_output(&pod.root, self.catalog.blobs())?;
        if manifest.signs {
            self.verify_output(pod, &staged.sha256_hex(), ctx)?;
        }
        let (image, existed) = self
            .catalog
            .add_image(
                staged,
                ImageMeta {
                    name: plan.name.to_string(),
                    tag: plan.tag.clone(),
                    builder_id: Some(plan.builder.row.id.clone()),
                    nacl_id: plan.nacl_id.clone(),
                    uplink_id: Some(plan.uplink.id.clone()),
                    uplink_url: Some(plan.uplink.url.clone()),
                    includeos_version: Some(manifest.version.clone()),
                },
            )
            .map_err(|e| match e {
                CatalogError::NotAnImage(why) => {
                    BuildError::Failed(format!("/build/out/{file} is not an image: {why}"))
                }
                e => e.into(),
            })?;
        drop(guard);
        ctx.log(&format!(
            "image {} ({} bytes){}",
            image.id,
            image.size,
            if existed { ", stored already" } else { "" }
        ));
        Ok(Built {
            image,
            existed,
            build_time,
            total_time: started.elapsed(),
        })
    }

    /// A signing builder's output must carry the MDS's signature of its
    /// sha256, made for this very pod.
    fn verify_output(&self, pod: &Pod, sha256: &str, ctx: &JobContext) -> Result<(), BuildError> {
        let Some(signature) = workspace::read_signature(&pod.root)? else {
            if self.host.has_mds() {
                return Err(BuildError::Failed(
                    "the builder signs its output but left no /build/signature; refused".into(),
                ));
            }
            ctx.log("output not verified: this host runs no MDS");
            return Ok(());
        };
        match self
            .host
            .pod_signature_is(pod, sha256.as_bytes(), &signature)
        {
            Some(true) => {
                ctx.log(&format!("output sha256 {sha256}: MDS signature verified"));
                Ok(())
            }
            Some(false) => Err(BuildError::Failed(format!(
                "the output's signature does not verify (sha256 {sha256}); refused"
            ))),
            None => {
                ctx.log("output not verified: this host runs no MDS");
                Ok(())
            }
        }
    }

    // ---- validation ----

    /// Runs the builder's `validate` entry point on `nacl` in a pod: valid,
    /// or the `line L:C message` lines it printed.
    pub fn validate(&self, builder: &str, nacl: &str) -> Result<Verdict, BuildError> {
        let builder = self.builder(builder)?;
        let _hold = self.hold(&builder.row.id);
        let _slot = self.validations.acquire(&|| false);
        let argv = builder.manifest.validate.clone();
        let pod = self
            .host
            .create_pod(builder.row.base_id.as_str(), None, argv.clone())?;
        let guard = PodGuard {
            host: &self.host,
            pod,
        };
        let pod = &guard.pod;
        workspace::write_inputs(&pod.root, &[("nacl.txt", nacl.as_bytes())])?;
        std::fs::create_dir_all(&self.staging).map_err(|source| BuildError::Io {
            what: format!("creating {}", self.staging.display()),
            source,
        })?;
        let log = self.staging.join(format!("validate-{}.log", pod.row.id));
        let ended = self
            .host
            .run_bounded(pod, argv, &log, self.validate_timeout, &|| false);
        let output = read_capped(&log, 256 * 1024);
        let _ = std::fs::remove_file(&log);
        drop(guard);
        let code = match ended? {
            Ended::Exited(code) => code,
            Ended::TimedOut => return Err(BuildError::TimedOut(self.validate_timeout.as_secs())),
            Ended::Cancelled => return Err(BuildError::Cancelled),
        };
        let mut errors = nacl::parse_reference_output(&output);
        if code == 0 {
            return Ok(Verdict {
                valid: true,
                errors: Vec::new(),
            });
        }
        if errors.is_empty() {
            let last = output.lines().rev().find(|l| !l.trim().is_empty());
            errors.push(nacl::Diagnostic {
                line: 1,
                column: 0,
                message: format!(
                    "the builder's validator failed (status {code}) without a `line L:C message` line{}",
                    last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                ),
            });
        }
        errors.sort_by_key(|d| (d.line, d.column));
        Ok(Verdict {
            valid: false,
            errors,
        })
    }
}

/// The `config.json` a build embeds: its `uplink` object is the chosen
/// uplink, in the keys IncludeOS reads (spec/uplink.md), plus its name and id.
pub fn config_json(uplink: &UplinkRow, tag: Option<&str>) -> serde_json::Value {
    let mut object = json!({
        "id": uplink.id,
        "name": uplink.name,
        "url": uplink.url,
        "token": uplink.token,
        "tag": tag.unwrap_or(""),
        "verify": uplink.verify,
        "reboot": uplink.reboot,
        "ws_logging": uplink.ws_logging,
        "serialize_ct": uplink.serialize_ct,
        "send_stats": uplink.send_stats,
    });
    if let Some(index) = &uplink.index {
        object["index"] = index.clone();
    }
    if let Some(certs) = &uplink.certs {
        object["certs"] = json!(certs);
    }
    json!({ "uplink": object })
}

/// Up to `limit` bytes of a file as text; a validator's output is bounded.
fn read_capped(path: &std::path::Path, limit: u64) -> String {
    use std::io::Read;
    let mut text = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(limit).read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::FetchLog;

    #[test]
    fn a_large_fetch_logs_a_line_per_tenth_and_a_small_one_none() {
        let size = 100 << 20;
        let mut log = FetchLog::new(size);
        // A MiB at a time: the tenths are whole MiB.
        let lines: Vec<String> = (0..=100).filter_map(|i| log.line(i << 20)).collect();
        assert_eq!(lines.len(), 10, "{lines:?}");
        assert_eq!(lines[0], "fetched 10.0 of 100.0 MiB (10%)");
        assert_eq!(lines[9], "fetched 100.0 of 100.0 MiB (100%)");
        // More than announced (a provider's size was wrong) says no more.
        assert_eq!(log.line(size * 2), None);

        let mut small = FetchLog::new(3 << 20);
        assert!((0..=30).all(|i| small.line(i << 17).is_none()));
    }
}
