//! The key lifecycle every function shares: generate (shown once), list (metadata only), revoke
//! (idempotent), and verify (offline checks, cached verdicts, one consistent read on a miss).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::cache::{CachedVerdict, VerifyCache};
use crate::clock::{Clock, UnixMillis, format_rfc3339};
use crate::cursor::{CursorCodec, InvalidCursor};
use crate::error::{ErrorBody, ErrorCode};
use crate::hashing::{Fingerprint, KeyHash, KeyHasher, Pepper};
use crate::ids::{BrandId, KeyId, MAX_BRAND_NAME_LEN, MAX_LABEL_LEN, validate_text};
use crate::store::{
    BrandRecord, KeyRecord, KeyStore, MAX_LIVE_KEYS_PER_BRAND, RevokeOutcome, StoreError,
};
use crate::token::{PlaintextKey, RandomSourceError, TokenError, generate_key, parse_key};

pub const DEFAULT_PAGE_LIMIT: u32 = 25;
/// The `last_used_at` write rides on a request; it may delay it by at most this much.
const LAST_USED_WRITE_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);
pub const MAX_PAGE_LIMIT: u32 = 100;

/// Tunables, with the defaults documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySettings {
    /// How long a verdict is trusted without re-reading the store: the revocation bound.
    pub cache_ttl_ms: i64,
    pub cache_capacity: usize,
    /// `last_used_at` is written at most this often per key per container.
    pub last_used_interval_ms: i64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            cache_ttl_ms: 5_000,
            cache_capacity: 10_000,
            last_used_interval_ms: 60_000,
        }
    }
}

/// Who a verified request acts for. Always exactly one brand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub brand_id: BrandId,
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed API key: {0}")]
    Malformed(TokenError),
    #[error("unknown API key")]
    UnknownKey { fingerprint: Fingerprint },
    /// Still attributable to its brand, so the attempt can be audited there.
    #[error("revoked API key")]
    Revoked(Principal),
    #[error("key verification is temporarily unavailable")]
    StoreUnavailable(StoreError),
}

impl Rejection {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::StoreUnavailable(_) => ErrorCode::StoreUnavailable,
            _ => ErrorCode::Unauthorized,
        }
    }

    /// The caller-facing message; never echoes the token.
    pub fn message(&self) -> String {
        match self {
            Self::Malformed(reason) => format!("the API key is malformed: {reason}"),
            Self::UnknownKey { .. } => "the API key is not valid".into(),
            Self::Revoked(_) => "the API key has been revoked".into(),
            Self::StoreUnavailable(_) => {
                "key verification is temporarily unavailable; retry shortly".into()
            }
        }
    }
}

/// A cached verdict to re-read beside the request it was found for ([`KeyService::refresh`]).
#[derive(Debug)]
pub struct VerdictRefresh(KeyHash);

/// The one response that carries a plaintext key. `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub key: PlaintextKey,
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    pub created_at: UnixMillis,
}

impl GeneratedKey {
    pub fn to_response_json(&self) -> serde_json::Value {
        serde_json::json!({
            "key": self.key.expose_secret(),
            "key_id": self.key_id,
            "fingerprint": self.fingerprint,
            "created_at": format_rfc3339(self.created_at),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// Key metadata as operators see it. There is no hash and no plaintext in here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    pub label: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub status: KeyStatus,
}

impl From<&KeyRecord> for KeySummary {
    fn from(record: &KeyRecord) -> Self {
        Self {
            key_id: record.key_id.clone(),
            fingerprint: record.fingerprint.clone(),
            label: record.label.clone(),
            created_at: format_rfc3339(record.created_at),
            last_used_at: record.last_used_at.map(format_rfc3339),
            revoked_at: record.revoked_at.map(format_rfc3339),
            status: if record.is_revoked() {
                KeyStatus::Revoked
            } else {
                KeyStatus::Active
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyListing {
    pub keys: Vec<KeySummary>,
    pub next_cursor: Option<String>,
}

/// Failures of the management operations, each with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("brand `{0}` does not exist")]
    BrandNotFound(BrandId),
    #[error("brand `{0}` already exists")]
    BrandExists(BrandId),
    #[error("no key `{key_id}` in brand `{brand_id}`")]
    KeyNotFound { brand_id: BrandId, key_id: KeyId },
    #[error(
        "brand `{0}` already has {MAX_LIVE_KEYS_PER_BRAND} live keys (the current one and its replacement): revoke one first"
    )]
    KeyLimitReached(BrandId),
    #[error(transparent)]
    InvalidCursor(#[from] InvalidCursor),
    #[error("the key store is temporarily unavailable; retry shortly")]
    StoreUnavailable(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl KeyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::BrandNotFound(_) => ErrorCode::BrandNotFound,
            Self::BrandExists(_) => ErrorCode::AlreadyExists,
            Self::KeyNotFound { .. } => ErrorCode::NotFound,
            Self::KeyLimitReached(_) => ErrorCode::KeyLimitReached,
            Self::InvalidCursor(_) => ErrorCode::InvalidCursor,
            Self::StoreUnavailable(_) => ErrorCode::StoreUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

impl From<StoreError> for KeyError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            Self::StoreUnavailable(error)
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<RandomSourceError> for KeyError {
    fn from(error: RandomSourceError) -> Self {
        Self::Internal(error.to_string())
    }
}

pub struct KeyService {
    store: Arc<dyn KeyStore>,
    hasher: KeyHasher,
    cursors: CursorCodec,
    cache: VerifyCache,
    clock: Arc<dyn Clock>,
    settings: KeySettings,
    last_use_written: Mutex<HashMap<KeyId, UnixMillis>>,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KeyService {
    pub fn new(
        store: Arc<dyn KeyStore>,
        hasher: KeyHasher,
        clock: Arc<dyn Clock>,
        settings: KeySettings,
    ) -> Self {
        Self {
            store,
            cursors: CursorCodec::new(&hasher),
            hasher,
            cache: VerifyCache::new(settings.cache_ttl_ms, settings.cache_capacity),
            clock,
            settings,
            last_use_written: Mutex::new(HashMap::new()),
        }
    }

    /// A service on the built-in, publicly known development pepper with default settings: local
    /// mode's memory store and tests, never a deployment (which reads its pepper from Secrets
    /// Manager).
    pub fn with_insecure_dev_pepper(store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self::new(
            store,
            KeyHasher::new(&Pepper::insecure_dev()),
            clock,
            KeySettings::default(),
        )
    }

    pub fn settings(&self) -> KeySettings {
        self.settings
    }

    pub fn cursors(&self) -> &CursorCodec {
        &self.cursors
    }

    pub fn now_ms(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    /// The fingerprint a presented token would have, to name a refused token in logs without
    /// logging it. Overlong input is cut first (it cannot be a key anyway).
    pub fn fingerprint_of(&self, token: &str) -> Fingerprint {
        let bounded = token.get(..token.len().min(256)).unwrap_or("");
        self.hasher.hash(bounded).fingerprint()
    }

    /// Registers a brand so keys can be generated for it.
    pub async fn create_brand(
        &self,
        brand_id: &BrandId,
        name: &str,
    ) -> Result<BrandRecord, KeyError> {
        let name = validate_text("name", name, MAX_BRAND_NAME_LEN)
            .map_err(|error| KeyError::InvalidRequest(error.to_string()))?;
        let record = BrandRecord {
            brand_id: brand_id.clone(),
            name,
            created_at: self.clock.now_ms(),
            live_keys: 0,
        };
        match self.store.create_brand(&record).await {
            Ok(()) => {
                tracing::info!(brand_id = %brand_id, "brand registered");
                Ok(record)
            }
            Err(StoreError::AlreadyExists) => Err(KeyError::BrandExists(brand_id.clone())),
            Err(other) => Err(other.into()),
        }
    }

    /// Makes a new key for the brand. The plaintext is in the result and nowhere else.
    pub async fn generate(
        &self,
        brand_id: &BrandId,
        label: Option<&str>,
    ) -> Result<GeneratedKey, KeyError> {
        let label = label
            .map(|label| validate_text("label", label, MAX_LABEL_LEN))
            .transpose()
            .map_err(|error| KeyError::InvalidRequest(error.to_string()))?;
        let key = generate_key()?;
        let key_hash = self.hasher.hash(key.expose_secret());
        let created_at = self.clock.now_ms();
        let record = KeyRecord {
            brand_id: brand_id.clone(),
            key_id: KeyId::new(created_at)?,
            fingerprint: key_hash.fingerprint(),
            key_hash,
            label,
            created_at,
            last_used_at: None,
            revoked_at: None,
        };
        match self
            .store
            .insert_key(&record, MAX_LIVE_KEYS_PER_BRAND)
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(KeyError::BrandNotFound(brand_id.clone())),
            Err(StoreError::LimitReached) => {
                return Err(KeyError::KeyLimitReached(brand_id.clone()));
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(
            brand_id = %brand_id,
            key_id = %record.key_id,
            fingerprint = %record.fingerprint,
            "API key generated"
        );
        Ok(GeneratedKey {
            key,
            key_id: record.key_id,
            fingerprint: record.fingerprint,
            created_at,
        })
    }

    /// The brand's keys, oldest first, metadata only.
    pub async fn list(
        &self,
        brand_id: &BrandId,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<KeyListing, KeyError> {
        let limit = page_limit(limit)?;
        let after = cursor
            .map(|cursor| self.cursors.decode(brand_id, cursor))
            .transpose()?;
        if self.store.get_brand(brand_id).await?.is_none() {
            return Err(KeyError::BrandNotFound(brand_id.clone()));
        }
        let page = self
            .store
            .list_keys(brand_id, limit, after.as_deref())
            .await?;
        Ok(KeyListing {
            keys: page.items.iter().map(KeySummary::from).collect(),
            next_cursor: page
                .next_position
                .map(|position| self.cursors.encode(brand_id, &position)),
        })
    }

    /// Revokes a key of this brand. Revoking twice returns the same revoked key.
    pub async fn revoke(&self, brand_id: &BrandId, key_id: &KeyId) -> Result<KeySummary, KeyError> {
        let outcome = match self
            .store
            .revoke_key(brand_id, key_id, self.clock.now_ms())
            .await
        {
            Ok(outcome) => outcome,
            Err(StoreError::NotFound) => {
                return Err(KeyError::KeyNotFound {
                    brand_id: brand_id.clone(),
                    key_id: key_id.clone(),
                });
            }
            Err(other) => return Err(other.into()),
        };
        let record = match outcome {
            RevokeOutcome::Revoked(record) => {
                tracing::info!(
                    brand_id = %brand_id,
                    key_id = %key_id,
                    fingerprint = %record.fingerprint,
                    "API key revoked"
                );
                record
            }
            RevokeOutcome::AlreadyRevoked(record) => record,
        };
        // This container stops accepting it at once; others within the cache TTL.
        self.cache.remove(&record.key_hash);
        Ok(KeySummary::from(&record))
    }

    /// Authenticates a presented token and notes the key's use ([`Self::note_use`]). Malformed
    /// tokens never reach the store; a cache miss costs exactly one strongly consistent read, and
    /// so does a cached verdict's re-read in the second half of its life.
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let principal = self.verify_key(token).await?;
        self.note_use(&principal, self.clock.now_ms()).await;
        Ok(principal)
    }

    /// [`Self::verify`] without noting the key's use, for a caller that notes it itself. A cached
    /// verdict due for its re-read ([`Self::verify_key_for_request`]) is re-read here, in front of
    /// the answer: the edge guard calls `verify_key_for_request` instead, to re-read it beside the
    /// request.
    pub async fn verify_key(&self, token: &str) -> Result<Principal, Rejection> {
        let (principal, refresh) = self.verify_key_for_request(token).await?;
        if let Some(refresh) = refresh {
            self.refresh(refresh).await;
        }
        Ok(principal)
    }

    /// [`Self::verify_key`], leaving the re-read of a cached verdict in the second half of its
    /// life to the caller ([`Self::refresh`]), to run beside the request's own store calls: a
    /// key in steady use is then never re-read in front of a request.
    pub async fn verify_key_for_request(
        &self,
        token: &str,
    ) -> Result<(Principal, Option<VerdictRefresh>), Rejection> {
        let key = parse_key(token).map_err(Rejection::Malformed)?;
        let key_hash = self.hasher.hash(key.expose_secret());
        let now = self.clock.now_ms();
        let mut refresh = None;
        let verdict = match self.cache.get_or_claim_refresh(&key_hash, now) {
            Some((verdict, due)) => {
                refresh = due.then_some(VerdictRefresh(key_hash));
                verdict
            }
            None => {
                let verdict = match self.store.find_key_by_hash(&key_hash).await {
                    Ok(Some(lookup)) => CachedVerdict::Known(lookup),
                    Ok(None) => CachedVerdict::Unknown,
                    Err(error) => {
                        tracing::warn!(error = %error, "key lookup failed");
                        return Err(Rejection::StoreUnavailable(error));
                    }
                };
                self.cache.insert(key_hash, verdict.clone(), now);
                verdict
            }
        };
        let lookup = match verdict {
            CachedVerdict::Unknown => {
                return Err(Rejection::UnknownKey {
                    fingerprint: key_hash.fingerprint(),
                });
            }
            CachedVerdict::Known(lookup) => lookup,
        };
        let principal = Principal {
            brand_id: lookup.brand_id,
            key_id: lookup.key_id,
            fingerprint: lookup.fingerprint,
        };
        if lookup.revoked_at.is_some() {
            if let Some(refresh) = refresh {
                self.cache.release_refresh(&refresh.0);
            }
            return Err(Rejection::Revoked(principal));
        }
        Ok((principal, refresh))
    }

    /// Re-reads the key a [`VerdictRefresh`] names and caches what the store says now (revoked
    /// included, so the next request is refused), unless the entry went meanwhile (a revoke in
    /// this container). A failed read leaves the entry to its TTL.
    pub async fn refresh(&self, refresh: VerdictRefresh) {
        let VerdictRefresh(key_hash) = refresh;
        let read_at = self.clock.now_ms();
        let verdict = match self.store.find_key_by_hash(&key_hash).await {
            Ok(Some(lookup)) => CachedVerdict::Known(lookup),
            Ok(None) => CachedVerdict::Unknown,
            Err(error) => {
                tracing::warn!(error = %error, "key re-read failed; the cached verdict stands");
                self.cache.release_refresh(&key_hash);
                return;
            }
        };
        self.cache.complete_refresh(&key_hash, verdict, read_at);
    }

    /// Writes `last_used_at` at most once per interval per key in this container. Its failure is
    /// logged and never fails the request it rides on.
    pub async fn note_use(&self, principal: &Principal, now: UnixMillis) {
        {
            let mut written = self
                .last_use_written
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = written
                .get(&principal.key_id)
                .is_none_or(|&at| now.saturating_sub(at) >= self.settings.last_used_interval_ms);
            if !due {
                return;
            }
            if written.len() >= self.settings.cache_capacity.max(1) {
                let interval = self.settings.last_used_interval_ms;
                written.retain(|_, at| now.saturating_sub(*at) < interval);
                if written.len() >= self.settings.cache_capacity.max(1) {
                    written.clear();
                }
            }
            // Claim the slot before writing so concurrent requests do not all write.
            written.insert(principal.key_id.clone(), now);
        }
        let write = self
            .store
            .record_key_use(&principal.brand_id, &principal.key_id, now);
        let failure = match tokio::time::timeout(LAST_USED_WRITE_BUDGET, write).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {LAST_USED_WRITE_BUDGET:?}"),
        };
        tracing::warn!(
            brand_id = %principal.brand_id,
            key_id = %principal.key_id,
            error = %failure,
            "could not record last_used_at; the request goes on"
        );
    }
}

fn page_limit(requested: Option<u32>) -> Result<u32, KeyError> {
    match requested {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(KeyError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE_LIMIT}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    use crate::store::counting::{CountingStore, StoreOperation};
    use crate::store::faulty::FaultyStore;
    use crate::store::memory::MemoryStore;

    const START: UnixMillis = 1_795_000_000_000;

    struct Harness {
        store: Arc<CountingStore<FaultyStore<MemoryStore>>>,
        clock: Arc<ManualClock>,
        service: KeyService,
    }

    fn harness() -> Harness {
        let store = Arc::new(CountingStore::new(FaultyStore::new(MemoryStore::new())));
        let clock = Arc::new(ManualClock::starting_at(START));
        let service = KeyService::with_insecure_dev_pepper(store.clone(), clock.clone());
        Harness {
            store,
            clock,
            service,
        }
    }

    fn brand(id: &str) -> BrandId {
        BrandId::parse(id).unwrap()
    }

    async fn brand_with_key(h: &Harness, id: &str) -> (BrandId, GeneratedKey) {
        let brand_id = brand(id);
        h.service.create_brand(&brand_id, "Acme").await.unwrap();
        let key = h.service.generate(&brand_id, Some("ci")).await.unwrap();
        (brand_id, key)
    }

    #[tokio::test]
    async fn generated_key_verifies_as_its_brand() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        let principal = h
            .service
            .verify(generated.key.expose_secret())
            .await
            .unwrap();
        assert_eq!(principal.brand_id, brand_id);
        assert_eq!(principal.key_id, generated.key_id);
        assert_eq!(principal.fingerprint, generated.fingerprint);
        let json = generated.to_response_json();
        assert_eq!(json["key"], generated.key.expose_secret());
        assert_eq!(json["created_at"], format_rfc3339(START));
    }

    #[tokio::test]
    async fn a_miss_costs_one_read_and_a_hit_costs_none() {
        let h = harness();
        let (_, generated) = brand_with_key(&h, "acme").await;
        h.store.reset();

        h.service
            .verify(generated.key.expose_secret())
            .await
            .unwrap();
        assert_eq!(h.store.calls(StoreOperation::FindKeyByHash), 1);
        assert_eq!(
            h.store.calls(StoreOperation::RecordKeyUse),
            1,
            "first use is recorded"
        );
        assert_eq!(h.store.total_calls(), 2);

        h.store.reset();
        for _ in 0..10 {
            h.service
                .verify(generated.key.expose_secret())
                .await
                .unwrap();
        }
        assert_eq!(h.store.total_calls(), 0, "cache hits touch no store");
    }

    #[tokio::test]
    async fn malformed_tokens_never_reach_the_store() {
        let h = harness();
        brand_with_key(&h, "acme").await;
        h.store.reset();
        let long = "a".repeat(10 * 1024);
        for bad in [
            "",
            "tk_short",
            long.as_str(),
            "tk_ééééééééééééééééééééé",
            "Bearer tk_",
        ] {
            let rejection = h.service.verify(bad).await.unwrap_err();
            assert!(
                matches!(rejection, Rejection::Malformed(_)),
                "{bad:?}: {rejection:?}"
            );
            assert_eq!(rejection.code(), ErrorCode::Unauthorized);
        }
        let valid = generate_key().unwrap();
        let mut typo = valid.expose_secret().to_owned();
        typo.replace_range(10..11, if &typo[10..11] == "a" { "b" } else { "a" });
        assert_eq!(
            h.service.verify(&typo).await.unwrap_err(),
            Rejection::Malformed(TokenError::ChecksumMismatch)
        );
        assert_eq!(h.store.total_calls(), 0);
    }

    #[tokio::test]
    async fn unknown_keys_are_cached_negatively() {
        let h = harness();
        let stranger = generate_key().unwrap();
        for _ in 0..3 {
            let rejection = h
                .service
                .verify(stranger.expose_secret())
                .await
                .unwrap_err();
            assert!(matches!(rejection, Rejection::UnknownKey { .. }));
        }
        assert_eq!(h.store.calls(StoreOperation::FindKeyByHash), 1);
        h.clock.advance_ms(5_000);
        h.service
            .verify(stranger.expose_secret())
            .await
            .unwrap_err();
        assert_eq!(h.store.calls(StoreOperation::FindKeyByHash), 2);
    }

    #[tokio::test]
    async fn revocation_elsewhere_takes_effect_within_the_cache_ttl() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        let token = generated.key.expose_secret();
        h.service.verify(token).await.unwrap();

        // Another container revokes: it shares the store, not this container's cache.
        let operator = KeyService::with_insecure_dev_pepper(h.store.clone(), h.clock.clone());
        operator.revoke(&brand_id, &generated.key_id).await.unwrap();

        h.clock.advance_ms(4_999);
        assert!(h.service.verify(token).await.is_ok(), "still cached");
        h.clock.advance_ms(1);
        let rejection = h.service.verify(token).await.unwrap_err();
        let Rejection::Revoked(principal) = rejection else {
            panic!("expected a revoked rejection, got {rejection:?}");
        };
        assert_eq!(principal.brand_id, brand_id, "attributable to its brand");
        assert_eq!(principal.key_id, generated.key_id);
    }

    #[tokio::test]
    async fn a_key_in_steady_use_is_re_read_beside_its_requests_within_the_same_bound() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        let token = generated.key.expose_secret();
        let lookups = || h.store.calls(StoreOperation::FindKeyByHash);
        let (_, refresh) = h.service.verify_key_for_request(token).await.unwrap();
        assert!(refresh.is_none(), "a fresh verdict needs no re-read");
        assert_eq!(lookups(), 1);
        // Half-way through the verdict's life, one request (and only one) is asked to re-read
        // it beside itself; it is served on the cached verdict meanwhile.
        h.clock.advance_ms(2_500);
        let (_, refresh) = h.service.verify_key_for_request(token).await.unwrap();
        let refresh = refresh.expect("a re-read is due");
        let (_, again) = h.service.verify_key_for_request(token).await.unwrap();
        assert!(again.is_none(), "one re-read at a time");
        assert_eq!(lookups(), 1, "nothing read in front of a request");
        // Revoked elsewhere before the re-read: the re-read learns it, the next request is
        // refused, well within the TTL of the verdict first read.
        let operator = KeyService::with_insecure_dev_pepper(h.store.clone(), h.clock.clone());
        operator.revoke(&brand_id, &generated.key_id).await.unwrap();
        h.service.refresh(refresh).await;
        assert!(matches!(
            h.service.verify_key_for_request(token).await,
            Err(Rejection::Revoked(_))
        ));
        assert_eq!(lookups(), 2);
    }

    #[tokio::test]
    async fn without_a_re_read_a_revocation_still_lands_at_the_ttl() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        let token = generated.key.expose_secret();
        h.service.verify_key_for_request(token).await.unwrap();
        let operator = KeyService::with_insecure_dev_pepper(h.store.clone(), h.clock.clone());
        operator.revoke(&brand_id, &generated.key_id).await.unwrap();
        // A re-read claimed and dropped (its request failed before running it) is given up at
        // the TTL: the entry expires and the next request reads the store in front.
        h.clock.advance_ms(3_000);
        let (_, refresh) = h.service.verify_key_for_request(token).await.unwrap();
        assert!(refresh.is_some(), "claimed, and never run");
        h.clock.advance_ms(2_000);
        assert!(matches!(
            h.service.verify_key_for_request(token).await,
            Err(Rejection::Revoked(_))
        ));
    }

    #[tokio::test]
    async fn revocation_in_this_container_is_immediate() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        h.service
            .verify(generated.key.expose_secret())
            .await
            .unwrap();
        h.service
            .revoke(&brand_id, &generated.key_id)
            .await
            .unwrap();
        assert!(matches!(
            h.service.verify(generated.key.expose_secret()).await,
            Err(Rejection::Revoked(_))
        ));
    }

    #[tokio::test]
    async fn last_used_is_written_at_most_once_a_minute() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        let token = generated.key.expose_secret();
        h.store.reset();
        for _ in 0..5 {
            h.service.verify(token).await.unwrap();
            h.clock.advance_ms(10_000);
        }
        assert_eq!(h.store.calls(StoreOperation::RecordKeyUse), 1);
        h.clock.advance_ms(20_000);
        h.service.verify(token).await.unwrap();
        assert_eq!(h.store.calls(StoreOperation::RecordKeyUse), 2);
        let listing = h.service.list(&brand_id, None, None).await.unwrap();
        assert_eq!(
            listing.keys[0].last_used_at.as_deref(),
            Some(format_rfc3339(START + 70_000).as_str())
        );
    }

    #[tokio::test]
    async fn a_failed_last_used_write_never_fails_the_request() {
        let h = harness();
        let (_, generated) = brand_with_key(&h, "acme").await;
        h.store
            .inner()
            .fail_always(StoreOperation::RecordKeyUse, StoreError::Throttled);
        assert!(
            h.service
                .verify(generated.key.expose_secret())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn store_outage_is_a_transient_rejection_and_is_not_cached() {
        let h = harness();
        let (_, generated) = brand_with_key(&h, "acme").await;
        h.store.inner().fail_next(
            StoreOperation::FindKeyByHash,
            StoreError::Unavailable("connection refused".into()),
            1,
        );
        let rejection = h
            .service
            .verify(generated.key.expose_secret())
            .await
            .unwrap_err();
        assert_eq!(rejection.code(), ErrorCode::StoreUnavailable);
        assert!(
            h.service
                .verify(generated.key.expose_secret())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn third_live_key_is_refused_until_one_is_revoked() {
        let h = harness();
        let (brand_id, first) = brand_with_key(&h, "acme").await;
        h.service.generate(&brand_id, None).await.unwrap();
        let refused = h.service.generate(&brand_id, None).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::KeyLimitReached);
        h.service.revoke(&brand_id, &first.key_id).await.unwrap();
        h.service.generate(&brand_id, None).await.unwrap();
    }

    #[tokio::test]
    async fn failed_generation_leaves_nothing_behind() {
        let h = harness();
        let brand_id = brand("acme");
        h.service.create_brand(&brand_id, "Acme").await.unwrap();
        h.store
            .inner()
            .fail_next(StoreOperation::InsertKey, StoreError::Throttled, 1);
        let error = h.service.generate(&brand_id, None).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::StoreUnavailable);
        assert!(
            h.service
                .list(&brand_id, None, None)
                .await
                .unwrap()
                .keys
                .is_empty()
        );
        assert_eq!(
            h.store
                .inner()
                .inner()
                .get_brand(&brand_id)
                .await
                .unwrap()
                .unwrap()
                .live_keys,
            0
        );
    }

    #[tokio::test]
    async fn unknown_brands_and_foreign_keys_are_not_found() {
        let h = harness();
        let (acme, acme_key) = brand_with_key(&h, "acme").await;
        let (globex, _) = brand_with_key(&h, "globex").await;
        assert_eq!(
            h.service
                .generate(&brand("nobody"), None)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::BrandNotFound
        );
        assert_eq!(
            h.service
                .list(&brand("nobody"), None, None)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::BrandNotFound
        );
        let foreign = h
            .service
            .revoke(&globex, &acme_key.key_id)
            .await
            .unwrap_err();
        assert_eq!(foreign.code(), ErrorCode::NotFound);
        assert!(h.service.verify(acme_key.key.expose_secret()).await.is_ok());
        let again = h.service.create_brand(&acme, "Again").await.unwrap_err();
        assert_eq!(again.code(), ErrorCode::AlreadyExists);
    }

    #[tokio::test]
    async fn labels_and_names_are_validated_before_any_write() {
        let h = harness();
        let brand_id = brand("acme");
        let bad_name = h.service.create_brand(&brand_id, " \n ").await.unwrap_err();
        assert_eq!(bad_name.code(), ErrorCode::InvalidRequest);
        h.service.create_brand(&brand_id, "Acme").await.unwrap();
        h.store.reset();
        let long = "x".repeat(MAX_LABEL_LEN + 1);
        for label in [long.as_str(), "", "a\u{7}b"] {
            let error = h
                .service
                .generate(&brand_id, Some(label))
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{label:?}");
        }
        assert_eq!(h.store.total_calls(), 0);
    }

    #[tokio::test]
    async fn a_hung_last_used_write_delays_the_request_by_at_most_its_budget() {
        let h = harness();
        let (_, generated) = brand_with_key(&h, "acme").await;
        h.store.inner().hang_always(StoreOperation::RecordKeyUse);
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        assert!(
            h.service
                .verify(generated.key.expose_secret())
                .await
                .is_ok()
        );
        assert!(started.elapsed() >= LAST_USED_WRITE_BUDGET);
    }

    #[tokio::test]
    async fn revoke_is_idempotent() {
        let h = harness();
        let (brand_id, generated) = brand_with_key(&h, "acme").await;
        let first = h
            .service
            .revoke(&brand_id, &generated.key_id)
            .await
            .unwrap();
        h.clock.advance_ms(1_000);
        let second = h
            .service
            .revoke(&brand_id, &generated.key_id)
            .await
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(first.status, KeyStatus::Revoked);
    }

    #[tokio::test]
    async fn listing_pages_with_brand_bound_cursors() {
        let h = harness();
        let (acme, first) = brand_with_key(&h, "acme").await;
        let (globex, _) = brand_with_key(&h, "globex").await;
        h.clock.advance_ms(1);
        h.service
            .generate(&acme, Some("replacement"))
            .await
            .unwrap();

        let page = h.service.list(&acme, Some(1), None).await.unwrap();
        assert_eq!(page.keys.len(), 1);
        assert_eq!(page.keys[0].key_id, first.key_id);
        let cursor = page.next_cursor.expect("second page");
        let rest = h.service.list(&acme, Some(1), Some(&cursor)).await.unwrap();
        assert_eq!(rest.keys[0].label.as_deref(), Some("replacement"));
        assert_eq!(rest.next_cursor, None);

        let foreign = h
            .service
            .list(&globex, Some(1), Some(&cursor))
            .await
            .unwrap_err();
        assert_eq!(foreign.code(), ErrorCode::InvalidCursor);
        for limit in [0, 101] {
            assert_eq!(
                h.service
                    .list(&acme, Some(limit), None)
                    .await
                    .unwrap_err()
                    .code(),
                ErrorCode::InvalidRequest
            );
        }
        let json = serde_json::to_string(&page.keys).unwrap();
        assert!(
            !json.contains("hash"),
            "listings never carry the hash: {json}"
        );
    }
}
