//! A small, bounded per-container cache of verification verdicts (positive and negative). Its TTL
//! is the revocation bound: a key revoked elsewhere stops working here within one TTL.

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
}

#[derive(Debug)]
pub struct VerifyCache {
    ttl_ms: i64,
    capacity: usize,
    entries: Mutex<HashMap<KeyHash, Entry>>,
}

impl VerifyCache {
    /// `ttl_ms == 0` or `capacity == 0` disables caching: every verify reads the store.
    pub fn new(ttl_ms: i64, capacity: usize) -> Self {
        Self {
            ttl_ms,
            capacity,
            entries: Mutex::new(HashMap::with_capacity(capacity.min(1024))),
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
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key_hash)
            .filter(|entry| entry.expires_at > now)
            .map(|entry| entry.verdict.clone())
    }

    pub fn insert(&self, key_hash: KeyHash, verdict: CachedVerdict, now: UnixMillis) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key_hash) {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= self.capacity {
                // Still full of live entries (a flood of distinct tokens): start over rather than
                // grow. Legitimate keys are re-read once; memory stays bounded.
                entries.clear();
            }
        }
        entries.insert(
            key_hash,
            Entry {
                verdict,
                expires_at: now.saturating_add(self.ttl_ms),
            },
        );
    }

    /// Forgets a hash at once, e.g. after this container revoked it.
    pub fn remove(&self, key_hash: &KeyHash) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key_hash);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
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

    #[test]
    fn stays_within_capacity() {
        let cache = VerifyCache::new(5_000, 3);
        for i in 0..100 {
            cache.insert(hash(&i.to_string()), CachedVerdict::Unknown, 0);
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn zero_ttl_disables_caching() {
        let cache = VerifyCache::new(0, 10);
        cache.insert(hash("a"), CachedVerdict::Unknown, 0);
        assert_eq!(cache.get(&hash("a"), 0), None);
        assert!(cache.is_empty());
    }
}
