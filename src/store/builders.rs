//! Bob lists and builders in the state database. A builder row ties a bob
//! (provider and id) to the sealed base prepared from it; what a manifest
//! says is the build layer's business, kept here as its JSON text.

use super::sql::{params, DbError, DbResult, Row, Sql};

use super::{id_of, Store, StoreError};
use crate::names::{BaseId, BuilderId};

#[derive(Debug, Clone, PartialEq)]
pub struct BuilderRow {
    pub id: BuilderId,
    pub base_id: BaseId,
    /// `sha256:HEX` of what it was prepared from.
    pub digest: String,
    pub provider_id: String,
    /// The base's `/jetpack/builder.json`, as JSON text.
    pub manifest: String,
    pub created_at: i64,
}

fn builder_row(r: &Row) -> DbResult<BuilderRow> {
    Ok(BuilderRow {
        id: id_of(r, "id", BuilderId::new)?,
        base_id: id_of(r, "base_id", BaseId::new)?,
        digest: r.get("digest")?,
        provider_id: r.get("provider_id")?,
        manifest: r.get("manifest")?,
        created_at: r.get("created_at")?,
    })
}

impl Store {
    /// Replaces a provider's list of bobs.
    pub fn put_bob_list(
        &self,
        provider: &str,
        bobs: &serde_json::Value,
        at: i64,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO bob_lists (provider_id, bobs, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (provider_id) DO UPDATE SET bobs = ?2, updated_at = ?3",
            params![provider, bobs.to_string(), at],
        )?;
        Ok(())
    }

    /// A provider's list of bobs and when it was made, if it ever was.
    pub fn bob_list(&self, provider: &str) -> Result<Option<(serde_json::Value, i64)>, StoreError> {
        let row: Option<(String, i64)> = self.db.query_opt(
            "SELECT bobs, updated_at FROM bob_lists WHERE provider_id = ?1",
            params![provider],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        row.map(|(text, at)| {
            serde_json::from_str(&text)
                .map(|v| (v, at))
                .map_err(|e| StoreError::Corrupt(format!("bob list of {provider}: {e}")))
        })
        .transpose()
    }

    /// Registers a builder; its id taken already is `NameTaken`.
    pub fn insert_builder(&self, b: &BuilderRow) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO builders (id, base_id, digest, provider_id, manifest, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    b.id.as_str(),
                    b.base_id.as_str(),
                    b.digest,
                    b.provider_id,
                    b.manifest,
                    b.created_at
                ],
            )
            .map_err(|e| match &e {
                DbError::Unique { .. } => StoreError::NameTaken(b.id.to_string()),
                _ => StoreError::Db(e),
            })?;
        Ok(())
    }

    pub fn builders(&self) -> Result<Vec<BuilderRow>, StoreError> {
        Ok(self
            .db
            .query_map("SELECT * FROM builders ORDER BY id", params![], builder_row)?)
    }

    /// Builders whose id is `reference`, else those whose id starts with it.
    pub fn find_builders(&self, reference: &str) -> Result<Vec<BuilderRow>, StoreError> {
        let exact = self.db.query_map(
            "SELECT * FROM builders WHERE id = ?1",
            params![reference],
            builder_row,
        )?;
        if !exact.is_empty() || reference.is_empty() {
            return Ok(exact);
        }
        Ok(self.db.query_map(
            "SELECT * FROM builders WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2",
            params![reference],
            builder_row,
        )?)
    }

    pub fn builder_by_digest(&self, digest: &str) -> Result<Option<BuilderRow>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT * FROM builders WHERE digest = ?1",
            params![digest],
            builder_row,
        )?)
    }

    /// The builder made of base `id`, if one is.
    pub fn builder_of_base(&self, id: &BaseId) -> Result<Option<BuilderId>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT id FROM builders WHERE base_id = ?1",
            params![id.as_str()],
            |r| id_of(r, "id", BuilderId::new),
        )?)
    }

    pub fn delete_builder(&self, id: &BuilderId) -> Result<(), StoreError> {
        self.db
            .execute("DELETE FROM builders WHERE id = ?1", params![id.as_str()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BaseRow, BaseState};

    #[test]
    fn builders_are_found_by_id_prefix_and_digest_and_hold_their_base() {
        let s = Store::in_memory();
        let base = BaseRow {
            id: BaseId::new(&"ab".repeat(32)).unwrap(),
            name: crate::names::Name::new("base name", "builder-b1").unwrap(),
            source: "x".into(),
            size: 1,
            state: BaseState::Ready,
            created_at: 1,
        };
        s.insert_base(&base).unwrap();
        let row = BuilderRow {
            id: BuilderId::new("test-builder-1").unwrap(),
            base_id: base.id.clone(),
            digest: format!("sha256:{}", base.id.as_str()),
            provider_id: "local".into(),
            manifest: "{}".into(),
            created_at: 2,
        };
        s.insert_builder(&row).unwrap();
        assert!(matches!(
            s.insert_builder(&row),
            Err(StoreError::NameTaken(id)) if id == "test-builder-1"
        ));
        assert_eq!(
            s.find_builders("test-builder-1").unwrap(),
            vec![row.clone()]
        );
        assert_eq!(s.find_builders("test-b").unwrap().len(), 1);
        assert!(s.find_builders("nope").unwrap().is_empty());
        assert_eq!(s.builder_by_digest(&row.digest).unwrap(), Some(row.clone()));
        assert_eq!(
            s.builder_of_base(&base.id)
                .unwrap()
                .as_ref()
                .map(BuilderId::as_str),
            Some("test-builder-1")
        );
        // The base cannot go while the builder holds it.
        assert!(s.delete_base(&base.id).is_err());
        s.delete_builder(&row.id).unwrap();
        s.delete_base(&base.id).unwrap();
        s.put_bob_list("local", &serde_json::json!([{"id": "a"}]), 5)
            .unwrap();
        s.put_bob_list("local", &serde_json::json!([{"id": "b"}]), 6)
            .unwrap();
        assert_eq!(
            s.bob_list("local").unwrap(),
            Some((serde_json::json!([{"id": "b"}]), 6))
        );
        assert_eq!(s.bob_list("other").unwrap(), None);
    }
}
