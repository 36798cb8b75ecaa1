//! In-memory [`KeyStore`] for unit tests and the zero-setup local mode. One mutex makes every
//! operation atomic, which is exactly the guarantee the DynamoDB transactions give.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{BrandRecord, KeyLookup, KeyRecord, KeyStore, Page, RevokeOutcome, StoreError};
use crate::clock::UnixMillis;
use crate::hashing::KeyHash;
use crate::ids::{BrandId, KeyId};

#[derive(Debug, Default)]
struct State {
    brands: HashMap<BrandId, BrandRecord>,
    /// Per brand, ordered by key id (creation order), like the `KEY#` sort keys in DynamoDB.
    keys: HashMap<BrandId, BTreeMap<KeyId, KeyRecord>>,
    key_by_hash: HashMap<KeyHash, (BrandId, KeyId)>,
}

impl State {
    fn key(&self, brand_id: &BrandId, key_id: &KeyId) -> Option<&KeyRecord> {
        self.keys.get(brand_id)?.get(key_id)
    }

    fn key_mut(&mut self, brand_id: &BrandId, key_id: &KeyId) -> Option<&mut KeyRecord> {
        self.keys.get_mut(brand_id)?.get_mut(key_id)
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half an operation behind (every operation
        // checks before it mutates), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn create_brand(&self, brand: &BrandRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.brands.contains_key(&brand.brand_id) {
            return Err(StoreError::AlreadyExists);
        }
        state.brands.insert(brand.brand_id.clone(), brand.clone());
        Ok(())
    }

    async fn get_brand(&self, brand_id: &BrandId) -> Result<Option<BrandRecord>, StoreError> {
        Ok(self.lock().brands.get(brand_id).cloned())
    }

    async fn insert_key(&self, record: &KeyRecord, max_live_keys: u32) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.key(&record.brand_id, &record.key_id).is_some()
            || state.key_by_hash.contains_key(&record.key_hash)
        {
            return Err(StoreError::AlreadyExists);
        }
        let brand = state
            .brands
            .get_mut(&record.brand_id)
            .ok_or(StoreError::NotFound)?;
        if brand.live_keys >= max_live_keys {
            return Err(StoreError::LimitReached);
        }
        brand.live_keys += 1;
        state.key_by_hash.insert(
            record.key_hash,
            (record.brand_id.clone(), record.key_id.clone()),
        );
        state
            .keys
            .entry(record.brand_id.clone())
            .or_default()
            .insert(record.key_id.clone(), record.clone());
        Ok(())
    }

    async fn find_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        let state = self.lock();
        Ok(state
            .key_by_hash
            .get(key_hash)
            .and_then(|(brand_id, key_id)| state.key(brand_id, key_id))
            .map(|record| KeyLookup {
                brand_id: record.brand_id.clone(),
                key_id: record.key_id.clone(),
                fingerprint: record.fingerprint.clone(),
                revoked_at: record.revoked_at,
            }))
    }

    async fn get_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.lock().key(brand_id, key_id).cloned())
    }

    async fn list_keys(
        &self,
        brand_id: &BrandId,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<KeyRecord>, StoreError> {
        let state = self.lock();
        let Some(brand_keys) = state.keys.get(brand_id) else {
            return Ok(Page {
                items: Vec::new(),
                next_position: None,
            });
        };
        let start = match after_position {
            Some(position) => Bound::Excluded(
                KeyId::parse(position)
                    .map_err(|_| StoreError::Corrupt("list position is not a key id".into()))?,
            ),
            None => Bound::Unbounded,
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut matching = brand_keys
            .range((start, Bound::Unbounded))
            .map(|(_, record)| record.clone());
        let items: Vec<KeyRecord> = matching.by_ref().take(limit).collect();
        let next_position = match matching.next() {
            Some(_) => items.last().map(|last| last.key_id.to_string()),
            None => None,
        };
        Ok(Page {
            items,
            next_position,
        })
    }

    async fn revoke_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut state = self.lock();
        let record = state
            .key(brand_id, key_id)
            .ok_or(StoreError::NotFound)?
            .clone();
        if record.is_revoked() {
            return Ok(RevokeOutcome::AlreadyRevoked(record));
        }
        let brand = state.brands.get_mut(brand_id).ok_or_else(|| {
            StoreError::Corrupt(format!("key {key_id} has no brand record {brand_id}"))
        })?;
        // Same invariant as the DynamoDB condition `live_keys > 0`.
        brand.live_keys = brand.live_keys.checked_sub(1).ok_or_else(|| {
            StoreError::Corrupt(format!("brand {brand_id} has a live key but live_keys = 0"))
        })?;
        let revoked = KeyRecord {
            revoked_at: Some(revoked_at),
            ..record
        };
        if let Some(stored) = state.key_mut(brand_id, key_id) {
            *stored = revoked.clone();
        }
        Ok(RevokeOutcome::Revoked(revoked))
    }

    async fn record_key_use(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        used_at: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(record) = state.key_mut(brand_id, key_id)
            && !record.is_revoked()
            && record.last_used_at.is_none_or(|at| at < used_at)
        {
            record.last_used_at = Some(used_at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(std::sync::Arc::new(MemoryStore::new())).await;
    }

    /// The test wrappers forward every method, so a wrapped memory store is held to the same
    /// suite.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_behind_the_faulty_wrapper_passes_the_conformance_suite() {
        let store = std::sync::Arc::new(crate::store::faulty::FaultyStore::new(MemoryStore::new()));
        conformance::run_all(store.clone()).await;
        assert_eq!(store.faults_fired(), 0);
        assert!(store.calls() > 0, "the suite went through the wrapper");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_behind_the_counting_wrapper_passes_the_conformance_suite() {
        let store = std::sync::Arc::new(crate::store::counting::CountingStore::new(
            MemoryStore::new(),
        ));
        conformance::run_all(store.clone()).await;
        assert!(
            store.total_calls() > 0,
            "the suite went through the wrapper"
        );
    }
}
