//! A [`KeyStore`] wrapper that injects failures into chosen operations (throttling, outages), so
//! tests can prove how the service behaves when the store misbehaves.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::counting::StoreOperation;
use super::{BrandRecord, KeyLookup, KeyRecord, KeyStore, Page, RevokeOutcome, StoreError};
use crate::clock::UnixMillis;
use crate::hashing::KeyHash;
use crate::ids::{BrandId, KeyId};

#[derive(Debug, Clone)]
enum FaultKind {
    Fail(StoreError),
    /// The call never answers, like a store behind a dead connection.
    Hang,
}

#[derive(Debug, Clone)]
struct InjectedFault {
    kind: FaultKind,
    /// `None`: every call fails until cleared.
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
pub struct FaultyStore<S> {
    inner: S,
    faults: Mutex<HashMap<StoreOperation, InjectedFault>>,
}

impl<S> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Mutex::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Makes the next `times` calls of `operation` fail with `error`.
    pub fn fail_next(&self, operation: StoreOperation, error: StoreError, times: u32) {
        self.lock().insert(
            operation,
            InjectedFault {
                kind: FaultKind::Fail(error),
                remaining: Some(times),
            },
        );
    }

    /// Makes every call of `operation` fail with `error` until [`FaultyStore::clear`].
    pub fn fail_always(&self, operation: StoreOperation, error: StoreError) {
        self.lock().insert(
            operation,
            InjectedFault {
                kind: FaultKind::Fail(error),
                remaining: None,
            },
        );
    }

    /// Makes every call of `operation` wait forever until [`FaultyStore::clear`].
    pub fn hang_always(&self, operation: StoreOperation) {
        self.lock().insert(
            operation,
            InjectedFault {
                kind: FaultKind::Hang,
                remaining: None,
            },
        );
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StoreOperation, InjectedFault>> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn check(&self, operation: StoreOperation) -> Result<(), StoreError> {
        let kind = {
            let mut faults = self.lock();
            let Some(fault) = faults.get_mut(&operation) else {
                return Ok(());
            };
            let kind = fault.kind.clone();
            match &mut fault.remaining {
                None => kind,
                Some(0) => {
                    faults.remove(&operation);
                    return Ok(());
                }
                Some(remaining) => {
                    *remaining -= 1;
                    kind
                }
            }
        };
        match kind {
            FaultKind::Fail(error) => Err(error),
            FaultKind::Hang => std::future::pending().await,
        }
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for FaultyStore<S> {
    async fn create_brand(&self, brand: &BrandRecord) -> Result<(), StoreError> {
        self.check(StoreOperation::CreateBrand).await?;
        self.inner.create_brand(brand).await
    }

    async fn get_brand(&self, brand_id: &BrandId) -> Result<Option<BrandRecord>, StoreError> {
        self.check(StoreOperation::GetBrand).await?;
        self.inner.get_brand(brand_id).await
    }

    async fn insert_key(&self, record: &KeyRecord, max_live_keys: u32) -> Result<(), StoreError> {
        self.check(StoreOperation::InsertKey).await?;
        self.inner.insert_key(record, max_live_keys).await
    }

    async fn find_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        self.check(StoreOperation::FindKeyByHash).await?;
        self.inner.find_key_by_hash(key_hash).await
    }

    async fn get_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check(StoreOperation::GetKey).await?;
        self.inner.get_key(brand_id, key_id).await
    }

    async fn list_keys(
        &self,
        brand_id: &BrandId,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<KeyRecord>, StoreError> {
        self.check(StoreOperation::ListKeys).await?;
        self.inner.list_keys(brand_id, limit, after_position).await
    }

    async fn revoke_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError> {
        self.check(StoreOperation::RevokeKey).await?;
        self.inner.revoke_key(brand_id, key_id, revoked_at).await
    }

    async fn record_key_use(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        used_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.check(StoreOperation::RecordKeyUse).await?;
        self.inner.record_key_use(brand_id, key_id, used_at).await
    }
}
