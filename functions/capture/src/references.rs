//! Resolves the offer and partner a tracking link names (by id or by slug) to ids, with a small
//! per-container cache, so a busy landing page does not cost a read per click and a duplicate
//! capture reads nothing but its own failed write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use trcker_shared::brand_data::{DocumentKind, DocumentStore};
use trcker_shared::ids::BrandId;
use trcker_shared::program::documents::{is_id, slug_claim};
use trcker_shared::store::StoreError;

/// How long a resolved reference is trusted. A deleted partner or renamed slug is still resolved
/// for at most this long in a warm container.
pub const FOUND_TTL: Duration = Duration::from_secs(60);
/// How long "no such offer/partner" is remembered: short, so a newly created one works at once.
pub const MISSING_TTL: Duration = Duration::from_secs(5);
/// Entries kept before the cache starts over (bounded memory in a long-lived container).
const CAPACITY: usize = 10_000;

type CacheKey = (BrandId, DocumentKind, String);

#[derive(Default)]
pub struct ReferenceCache {
    entries: Mutex<HashMap<CacheKey, (Option<String>, Instant)>>,
}

impl ReferenceCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the brand's `kind` document that `reference` names (its id or its slug), or
    /// `None` if there is none.
    pub async fn resolve(
        &self,
        data: &dyn DocumentStore,
        brand_id: &BrandId,
        kind: DocumentKind,
        id_prefix: &str,
        reference: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = (brand_id.clone(), kind, reference.to_owned());
        if let Some(cached) = self.cached(&key) {
            return Ok(cached);
        }
        let resolved = if is_id(id_prefix, reference) {
            data.get_document(brand_id, kind, reference)
                .await?
                .map(|document| document.id)
        } else {
            data.claim_holder(brand_id, kind, &slug_claim(reference))
                .await?
        };
        let ttl = if resolved.is_some() {
            FOUND_TTL
        } else {
            MISSING_TTL
        };
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (resolved.clone(), Instant::now() + ttl));
        Ok(resolved)
    }

    fn cached(&self, key: &CacheKey) -> Option<Option<String>> {
        let entries = self.lock();
        let (resolved, expires) = entries.get(key)?;
        (Instant::now() < *expires).then(|| resolved.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, (Option<String>, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
