//! The registered builders: list, inspect (by id or id prefix) and
//! delete, and the holds that count the builds and validations using each
//! builder so that one in use cannot be deleted under them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{BuildError, Builder, Builders};
use crate::names::BuilderId;
use crate::runtime::RuntimeError;

/// Counts the builds and validations using each builder, so that a builder
/// in use cannot be deleted under them.
#[derive(Default)]
pub(super) struct Holds(Mutex<HashMap<BuilderId, usize>>);

/// One use of a builder; dropping it ends the use.
pub struct Hold {
    holds: Arc<Holds>,
    builder: BuilderId,
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

impl Builders {
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

    pub(super) fn hold(&self, builder: &BuilderId) -> Hold {
        *self
            .holds
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(builder.clone())
            .or_default() += 1;
        Hold {
            holds: self.holds.clone(),
            builder: builder.clone(),
        }
    }

    /// Deletes a builder and its base; refused while a build or a
    /// validation uses it.
    pub fn delete_builder(&self, reference: &str) -> Result<Builder, BuildError> {
        let builder = self.builder(reference)?;
        let holds = self.holds.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = holds.get(&builder.row.id) {
            return Err(BuildError::BuilderInUse(builder.row.id.to_string(), *n));
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
}
