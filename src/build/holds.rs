//! The build layer's hold on bases: a builder is a base, which must not
//! be removed from under its builder. The runtime knows nothing of
//! builders; whoever removes a base for a user (the API, the CLI, `serve
//! --clean`) passes `BuilderHolds` to `Host::remove_base_with`, which asks
//! it before the removal and has it forget the builder when forced.

use crate::catalog::Catalog;
use crate::names::BuilderId;
use crate::runtime::{BaseHolds, Holder};
use crate::store::{BaseRow, Store, StoreError};

/// Builders hold the bases they are made of. Their rows are where the
/// fleet's tables are: the host's own store (`Local`, the CLI on one
/// host), or the catalog's, which is PostgreSQL when hosts share one.
pub enum BuilderHolds<'a> {
    Local,
    Fleet(&'a Catalog),
}

impl BuilderHolds<'_> {
    fn with<T>(&self, local: &Store, f: impl FnOnce(&Store) -> T) -> T {
        match self {
            BuilderHolds::Local => f(local),
            BuilderHolds::Fleet(catalog) => catalog.with_store(f),
        }
    }
}

impl BaseHolds for BuilderHolds<'_> {
    fn holder(&self, store: &Store, base: &BaseRow) -> Result<Option<Holder>, StoreError> {
        let builder = self.with(store, |s| s.builder_of_base(&base.id))?;
        Ok(builder.map(|id| Holder {
            kind: "builder",
            id: id.to_string(),
            remedy: "delete the builder (or use --force)",
        }))
    }

    fn release(&self, store: &Store, holder: &Holder) -> Result<(), StoreError> {
        // The runtime carries the id as text; it came from `holder` above.
        let id = BuilderId::new(&holder.id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.with(store, |s| s.delete_builder(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{BaseId, Name};
    use crate::runtime::RuntimeError;
    use crate::store::builders::BuilderRow;
    use crate::store::BaseState;

    #[test]
    fn a_builder_holds_its_base_with_the_message_users_know() {
        let s = Store::in_memory();
        let base = BaseRow {
            id: BaseId::new(&"cd".repeat(32)).unwrap(),
            name: Name::new("base name", "builder-b1").unwrap(),
            source: "x".into(),
            size: 1,
            state: BaseState::Ready,
            created_at: 0,
        };
        s.insert_base(&base).unwrap();
        assert_eq!(BuilderHolds::Local.holder(&s, &base).unwrap(), None);
        s.insert_builder(&BuilderRow {
            id: BuilderId::new("b1").unwrap(),
            base_id: base.id.clone(),
            digest: format!("sha256:{}", "cd".repeat(32)),
            provider_id: "local".into(),
            manifest: "{}".into(),
            created_at: 0,
        })
        .unwrap();
        let holder = BuilderHolds::Local.holder(&s, &base).unwrap().unwrap();
        let refused = RuntimeError::BaseHeld {
            base: base.name.to_string(),
            holder: holder.clone(),
        };
        assert_eq!(
            refused.to_string(),
            "base builder-b1 is builder b1; delete the builder (or use --force)"
        );
        BuilderHolds::Local.release(&s, &holder).unwrap();
        assert_eq!(BuilderHolds::Local.holder(&s, &base).unwrap(), None);
    }
}
