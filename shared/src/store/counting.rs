//! A [`KeyStore`] wrapper that counts calls per operation, so tests can assert what a request
//! costs ("a verify miss is exactly one read") instead of guessing.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{BrandRecord, KeyLookup, KeyRecord, KeyStore, Page, RevokeOutcome, StoreError};
use crate::clock::UnixMillis;
use crate::hashing::KeyHash;
use crate::ids::{BrandId, KeyId};

/// The store's operations, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOperation {
    CreateBrand,
    GetBrand,
    InsertKey,
    FindKeyByHash,
    GetKey,
    ListKeys,
    RevokeKey,
    RecordKeyUse,
}

#[derive(Debug, Default)]
pub struct CountingStore<S> {
    inner: S,
    calls: Mutex<HashMap<StoreOperation, u64>>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Mutex::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn calls(&self, operation: StoreOperation) -> u64 {
        self.lock().get(&operation).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> u64 {
        self.lock().values().sum()
    }

    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StoreOperation, u64>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, operation: StoreOperation) {
        *self.lock().entry(operation).or_default() += 1;
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for CountingStore<S> {
    async fn create_brand(&self, brand: &BrandRecord) -> Result<(), StoreError> {
        self.count(StoreOperation::CreateBrand);
        self.inner.create_brand(brand).await
    }

    async fn get_brand(&self, brand_id: &BrandId) -> Result<Option<BrandRecord>, StoreError> {
        self.count(StoreOperation::GetBrand);
        self.inner.get_brand(brand_id).await
    }

    async fn insert_key(&self, record: &KeyRecord, max_live_keys: u32) -> Result<(), StoreError> {
        self.count(StoreOperation::InsertKey);
        self.inner.insert_key(record, max_live_keys).await
    }

    async fn find_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        self.count(StoreOperation::FindKeyByHash);
        self.inner.find_key_by_hash(key_hash).await
    }

    async fn get_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.count(StoreOperation::GetKey);
        self.inner.get_key(brand_id, key_id).await
    }

    async fn list_keys(
        &self,
        brand_id: &BrandId,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<KeyRecord>, StoreError> {
        self.count(StoreOperation::ListKeys);
        self.inner.list_keys(brand_id, limit, after_position).await
    }

    async fn revoke_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError> {
        self.count(StoreOperation::RevokeKey);
        self.inner.revoke_key(brand_id, key_id, revoked_at).await
    }

    async fn record_key_use(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        used_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.count(StoreOperation::RecordKeyUse);
        self.inner.record_key_use(brand_id, key_id, used_at).await
    }
}
