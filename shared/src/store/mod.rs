//! The storage boundary for brands and their keys: one trait, a DynamoDB backend for production and
//! an in-memory backend for unit tests and local mode, both held to the same conformance suite.

use async_trait::async_trait;

use crate::clock::UnixMillis;
use crate::hashing::{Fingerprint, KeyHash};
use crate::ids::{BrandId, KeyId};

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
#[cfg(any(test, feature = "test-support"))]
pub mod counting;
pub mod dynamo;
#[cfg(any(test, feature = "test-support"))]
pub mod fault;
#[cfg(any(test, feature = "test-support"))]
pub mod faulty;
pub mod memory;
pub mod schema;

/// Each brand gets one key, plus one replacement while it rotates.
pub const MAX_LIVE_KEYS_PER_BRAND: u32 = 2;

/// A brand known to the key service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandRecord {
    pub brand_id: BrandId,
    pub name: String,
    pub created_at: UnixMillis,
    /// Keys not yet revoked. Kept on the brand item so the limit is one conditional update.
    pub live_keys: u32,
}

/// Everything stored about one key. There is no plaintext here, by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub brand_id: BrandId,
    pub key_id: KeyId,
    pub key_hash: KeyHash,
    pub fingerprint: Fingerprint,
    pub label: Option<String>,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
}

impl KeyRecord {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// What the hash lookup returns: enough to authenticate (or attribute a revoked attempt) with one
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLookup {
    pub brand_id: BrandId,
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    pub revoked_at: Option<UnixMillis>,
}

/// One page of a brand-scoped listing. `next_position` is the sort position to resume after; the
/// service wraps it in a signed, brand-bound cursor before anyone sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_position: Option<String>,
}

/// How a revoke ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked(KeyRecord),
    /// Revoking twice is not an error; this is the record as the first revoke left it.
    AlreadyRevoked(KeyRecord),
}

/// Storage failures, by what the caller can do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("the brand already has {MAX_LIVE_KEYS_PER_BRAND} live keys")]
    LimitReached,
    #[error("the store is throttling requests")]
    Throttled,
    #[error("concurrent writes to the same items; retry")]
    Contention,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request for a reason retrying will not fix (access denied, missing
    /// table, invalid request): a deployment or code problem.
    #[error("the store rejected the request: {0}")]
    Rejected(String),
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same request may succeed if simply retried later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Contention | Self::Unavailable(_)
        )
    }
}

/// Brands and their keys. Every method but [`KeyStore::find_key_by_hash`] is scoped by brand.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Registers a brand; `AlreadyExists` if the id is taken.
    async fn create_brand(&self, brand: &BrandRecord) -> Result<(), StoreError>;

    async fn get_brand(&self, brand_id: &BrandId) -> Result<Option<BrandRecord>, StoreError>;

    /// Atomically: increments the brand's live-key count if it is below `max_live_keys`, stores the
    /// key record and its hash lookup. `NotFound` if the brand does not exist, `LimitReached` if it
    /// is full. Nothing is written unless everything is.
    async fn insert_key(&self, record: &KeyRecord, max_live_keys: u32) -> Result<(), StoreError>;

    /// The one lookup not keyed by brand. Strongly consistent, so a revoke is seen at once.
    async fn find_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError>;

    async fn get_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// The brand's keys in creation order, at most `limit`, after `after_position`.
    async fn list_keys(
        &self,
        brand_id: &BrandId,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<KeyRecord>, StoreError>;

    /// Atomically marks the key and its hash lookup revoked and frees the brand's slot.
    /// `NotFound` for an unknown key or another brand's key.
    async fn revoke_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Moves `last_used_at` forward on a live key. A missing or revoked key, or a stored time that
    /// is already later, is left unchanged (and is not an error): it never creates a key.
    async fn record_key_use(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        used_at: UnixMillis,
    ) -> Result<(), StoreError>;
}
