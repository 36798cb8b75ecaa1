//! A small, bounded per-container cache of verification verdicts (positive and negative). Its TTL
//! is the revocation bound: a key revoked elsewhere stops working here within one TTL. Unknown
//! hashes live in their own map, so a flood of made-up tokens can only evict other made-up tokens.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixMillis;
use crate::hashing::KeyHash;
use crate::store::KeyLookup;

/// What the store said about a key hash, as remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedVerdict {
    /// The hash belongs to a key (active or revoked: `revoked_at` tells).
    Known(KeyLookup),
    /// No key has this hash.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    verdict: CachedVerdict,
    expires_at: UnixMillis,
    /// A re-read of this entry is under way ([`VerifyCache::get_or_claim_refresh`]).
    refreshing: bool,
}

#[derive(Debug)]
pub struct VerifyCache {
    ttl_ms: i64,
    capacity: usize,
    known: Mutex<HashMap<KeyHash, Entry>>,
    unknown: Mutex<HashMap<KeyHash, Entry>>,
}

impl VerifyCache {
    /// `ttl_ms == 0` or `capacity == 0` disables caching: every verify reads the store. Each of
    /// the two maps (known keys, unknown hashes) holds at most `capacity` entries.
    pub fn new(ttl_ms: i64, capacity: usize) -> Self {
        Self {
            ttl_ms,
            capacity,
            known: Mutex::new(HashMap::with_capacity(capacity.min(1024))),
            unknown: Mutex::new(HashMap::new()),
        }
    }

    fn map_for(&self, verdict: &CachedVerdict) -> &Mutex<HashMap<KeyHash, Entry>> {
        match verdict {
            CachedVerdict::Known(_) => &self.known,
            CachedVerdict::Unknown => &self.unknown,
        }
    }

    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    fn enabled(&self) -> bool {
        self.ttl_ms > 0 && self.capacity > 0
    }

    pub fn get(&self, key_hash: &KeyHash, now: UnixMillis) -> Option<CachedVerdict> {
        if !self.enabled() {
            return None;
        }
        [&self.known, &self.unknown].into_iter().find_map(|map| {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key_hash)
                .filter(|entry| entry.expires_at > now)
                .map(|entry| entry.verdict.clone())
        })
    }

    /// [`Self::get`], and whether the caller should re-read the key now, beside its request: a
    /// known key's entry in the second half of its life, not already being re-read by another
    /// request. So a key in steady use is re-verified before its entry expires, never in front
    /// of a request; the request itself runs on the entry, still within its TTL, so the
    /// revocation bound is unchanged.
    pub fn get_or_claim_refresh(
        &self,
        key_hash: &KeyHash,
        now: UnixMillis,
    ) -> Option<(CachedVerdict, bool)> {
        if !self.enabled() {
            return None;
        }
        {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = known
                .get_mut(key_hash)
                .filter(|entry| entry.expires_at > now)
            {
                let refresh = !entry.refreshing && entry.expires_at - now <= self.ttl_ms / 2;
                entry.refreshing |= refresh;
                return Some((entry.verdict.clone(), refresh));
            }
        }
        self.get(key_hash, now).map(|verdict| (verdict, false))
    }

    /// Gives up a refresh claimed by [`Self::get_or_claim_refresh`] that could not read the
    /// store: the entry lives out its TTL and a later request may try again.
    pub fn release_refresh(&self, key_hash: &KeyHash) {
        if let Some(entry) = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(key_hash)
        {
            entry.refreshing = false;
        }
    }

    /// Installs the verdict a claimed re-read found, trusted from `read_at` (when the read was
    /// sent, so the bound counts the read's own latency). Only over the entry the claim was made
    /// on: if the entry went meanwhile (this container revoked the key, or it expired), the
    /// re-read's older answer is dropped, and the next request reads the store.
    pub fn complete_refresh(
        &self,
        key_hash: &KeyHash,
        verdict: CachedVerdict,
        read_at: UnixMillis,
    ) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = known.get_mut(key_hash).filter(|entry| entry.refreshing) else {
            return;
        };
        match verdict {
            CachedVerdict::Known(_) => {
                entry.verdict = verdict;
                entry.expires_at = read_at.saturating_add(self.ttl_ms);
                entry.refreshing = false;
            }
            // The key item is gone: forget it as known; the next request reads the store.
            CachedVerdict::Unknown => {
                known.remove(key_hash);
            }
        }
    }

    pub fn insert(&self, key_hash: KeyHash, verdict: CachedVerdict, now: UnixMillis) {
        if !self.enabled() {
            return;
        }
        let mut entries = self
            .map_for(&verdict)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key_hash) {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: start over rather than grow. For unknown hashes this
                // is a flood of made-up tokens; known keys are untouched by it.
                entries.clear();
            }
        }
        entries.insert(
            key_hash,
            Entry {
                verdict,
                expires_at: now.saturating_add(self.ttl_ms),
                refreshing: false,
            },
        );
    }

    /// Forgets a hash at once, e.g. after this container revoked it.
    pub fn remove(&self, key_hash: &KeyHash) {
        for map in [&self.known, &self.unknown] {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(key_hash);
        }
    }

    /// Entries held, known and unknown together.
    pub fn len(&self) -> usize {
        [&self.known, &self.unknown]
            .into_iter()
            .map(|map| map.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{KeyHasher, Pepper};

    fn hash(token: &str) -> KeyHash {
        KeyHasher::new(&Pepper::insecure_dev()).hash(token)
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = VerifyCache::new(5_000, 10);
        cache.insert(hash("a"), CachedVerdict::Unknown, 1_000);
        assert_eq!(cache.get(&hash("a"), 5_999), Some(CachedVerdict::Unknown));
        assert_eq!(cache.get(&hash("a"), 6_000), None);
    }

    fn known(key_id: &str) -> CachedVerdict {
        CachedVerdict::Known(KeyLookup {
            brand_id: crate::ids::BrandId::parse("acme").unwrap(),
            key_id: crate::ids::KeyId::parse(key_id).unwrap(),
            fingerprint: hash(key_id).fingerprint(),
            revoked_at: None,
        })
    }

    #[test]
    fn a_re_read_lands_only_on_the_entry_it_was_claimed_for() {
        let cache = VerifyCache::new(5_000, 10);
        let active = known("key_00000000000000000001");
        cache.insert(hash("k"), active.clone(), 0);
        assert_eq!(
            cache.get_or_claim_refresh(&hash("k"), 1_000),
            Some((active.clone(), false)),
            "young: no re-read"
        );
        assert_eq!(
            cache.get_or_claim_refresh(&hash("k"), 3_000),
            Some((active.clone(), true))
        );
        assert_eq!(
            cache.get_or_claim_refresh(&hash("k"), 3_001),
            Some((active.clone(), false)),
            "one claim at a time"
        );
        // Installed, trusted from when the read was sent.
        cache.complete_refresh(&hash("k"), active.clone(), 3_000);
        assert_eq!(cache.get(&hash("k"), 7_999), Some(active.clone()));
        assert_eq!(cache.get(&hash("k"), 8_000), None);
        // Claimed, then the entry removed (this container revoked the key): the re-read, sent
        // before the revoke, must not bring the active verdict back.
        cache.insert(hash("k"), active.clone(), 10_000);
        assert!(cache.get_or_claim_refresh(&hash("k"), 13_000).unwrap().1);
        cache.remove(&hash("k"));
        cache.complete_refresh(&hash("k"), active, 13_000);
        assert_eq!(cache.get(&hash("k"), 13_001), None);
    }

    #[test]
    fn stays_within_capacity() {
        let cache = VerifyCache::new(5_000, 3);
        for i in 0..100 {
            cache.insert(hash(&i.to_string()), CachedVerdict::Unknown, 0);
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn a_flood_of_unknown_tokens_does_not_evict_known_keys() {
        let cache = VerifyCache::new(5_000, 3);
        let real = known("key_00000000000000000001");
        cache.insert(hash("real"), real.clone(), 0);
        for i in 0..1_000 {
            cache.insert(hash(&format!("junk{i}")), CachedVerdict::Unknown, 0);
        }
        assert_eq!(cache.get(&hash("real"), 1), Some(real));
    }

    #[test]
    fn zero_ttl_disables_caching() {
        let cache = VerifyCache::new(0, 10);
        cache.insert(hash("a"), CachedVerdict::Unknown, 0);
        assert_eq!(cache.get(&hash("a"), 0), None);
        assert!(cache.is_empty());
    }
}
