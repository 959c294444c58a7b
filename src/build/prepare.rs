//! Bob providers and preparing their bobs: the providers as configured,
//! `update` (ask a provider for its list and keep it), `bobs` (the list as
//! kept), and `prepare` (fetch a bob, verify its digest, import it as a
//! base and register it as a builder).

use serde::Serialize;

use super::providers::{self, Bob, Fetched};
use super::{BuildError, Builder, Builders};
use crate::config::BobProviderConfig;
use crate::jobs::JobContext;
use crate::names::{BuilderId, Name};
use crate::store::builders::BuilderRow;
use crate::store::{self, StoreError};

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

/// A provider as configured, with when its list was last made.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub id: String,
    pub kind: &'static str,
    pub location: String,
    pub updated_at: Option<i64>,
}

impl Builders {
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
        // Checked when listed (providers::check_id); typed here, before any work.
        let builder_id = BuilderId::new(&bob.id).map_err(|e| BuildError::Invalid(e.to_string()))?;
        if let Some(row) = self
            .catalog
            .with_store(|s| s.builder_by_digest(&bob.digest))?
        {
            ctx.log(&format!("{} is builder {} already", bob.digest, row.id));
            return Ok((Builder::from_row(row)?, true));
        }
        if let Some(row) = self
            .catalog
            .with_store(|s| s.find_builders(builder_id.as_str()))?
            .into_iter()
            .find(|b| b.id == builder_id)
        {
            return Err(BuildError::BuilderTaken {
                id: row.id.to_string(),
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
        // An `oci` image without a manifest may be a stock includeos/builder.
        let adoptable = config.kind == crate::config::BobProviderKind::Oci;
        let manifest = super::adopt::manifest_for(&self.host.base_root(&base), &bob, adoptable)
            .map_err(undo)?;
        if manifest.adopted.is_some() {
            ctx.log(&format!(
                "no /{}: adopted as a stock {} image; jetpack supplies its build and validate entry points",
                super::manifest::PATH,
                super::adopt::LAYOUT
            ));
        }
        let row = BuilderRow {
            id: builder_id,
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
