//! A [`KeyStore`] wrapper that injects faults ([`Fault`]: throttling, 5xx, timeouts, lost
//! responses, hangs) into chosen operations or the Nth call, so tests can prove how the service
//! behaves when the store misbehaves.

use async_trait::async_trait;

use super::counting::StoreOperation;
use super::fault::{Fault, FaultInjector, Trigger};
use super::{BrandRecord, KeyLookup, KeyRecord, KeyStore, Page, RevokeOutcome, StoreError};
use crate::clock::UnixMillis;
use crate::hashing::KeyHash;
use crate::ids::{BrandId, KeyId};

#[derive(Debug, Default)]
pub struct FaultyStore<S> {
    inner: S,
    faults: FaultInjector<StoreOperation>,
}

impl<S> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: FaultInjector::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Injects `fault` into `operation` (`None`: every operation) for the calls `trigger` names.
    pub fn inject(&self, operation: Option<StoreOperation>, fault: Fault, trigger: Trigger) {
        self.faults.inject(operation, fault, trigger);
    }

    /// Store calls made through this wrapper (to walk a fault over every step of an operation).
    pub fn calls(&self) -> u64 {
        self.faults.calls()
    }

    /// Calls an injected fault applied to.
    pub fn faults_fired(&self) -> u64 {
        self.faults.fired()
    }

    /// Makes the next `times` calls of `operation` fail with `error`.
    pub fn fail_next(&self, operation: StoreOperation, error: StoreError, times: u32) {
        self.inject(Some(operation), Fault::Error(error), Trigger::Next(times));
    }

    /// Makes every call of `operation` fail with `error` until [`FaultyStore::clear`].
    pub fn fail_always(&self, operation: StoreOperation, error: StoreError) {
        self.inject(Some(operation), Fault::Error(error), Trigger::Always);
    }

    /// Makes every call of `operation` wait forever until [`FaultyStore::clear`].
    pub fn hang_always(&self, operation: StoreOperation) {
        self.inject(Some(operation), Fault::Hang, Trigger::Always);
    }

    pub fn clear(&self) {
        self.faults.clear();
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for FaultyStore<S> {
    async fn create_brand(&self, brand: &BrandRecord) -> Result<(), StoreError> {
        self.faults
            .run(StoreOperation::CreateBrand, self.inner.create_brand(brand))
            .await
    }

    async fn get_brand(&self, brand_id: &BrandId) -> Result<Option<BrandRecord>, StoreError> {
        self.faults
            .run(StoreOperation::GetBrand, self.inner.get_brand(brand_id))
            .await
    }

    async fn insert_key(&self, record: &KeyRecord, max_live_keys: u32) -> Result<(), StoreError> {
        self.faults
            .run(
                StoreOperation::InsertKey,
                self.inner.insert_key(record, max_live_keys),
            )
            .await
    }

    async fn find_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        self.faults
            .run(
                StoreOperation::FindKeyByHash,
                self.inner.find_key_by_hash(key_hash),
            )
            .await
    }

    async fn get_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.faults
            .run(StoreOperation::GetKey, self.inner.get_key(brand_id, key_id))
            .await
    }

    async fn list_keys(
        &self,
        brand_id: &BrandId,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<KeyRecord>, StoreError> {
        self.faults
            .run(
                StoreOperation::ListKeys,
                self.inner.list_keys(brand_id, limit, after_position),
            )
            .await
    }

    async fn revoke_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError> {
        self.faults
            .run(
                StoreOperation::RevokeKey,
                self.inner.revoke_key(brand_id, key_id, revoked_at),
            )
            .await
    }

    async fn record_key_use(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        used_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.faults
            .run(
                StoreOperation::RecordKeyUse,
                self.inner.record_key_use(brand_id, key_id, used_at),
            )
            .await
    }
}
