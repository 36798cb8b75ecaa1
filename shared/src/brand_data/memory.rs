//! In-memory [`BrandDataStore`] for unit tests and local mode; one mutex makes each operation
//! atomic, as the DynamoDB transactions are.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::clicks::{ClickRecord, click_shard, click_sort_key};
use super::{
    ActivityRecord, BrandDataStore, Document, DocumentKind, SourceHit, Surface, UniqueClaim,
    activity_sort_key,
};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::{Page, StoreError};

type ClaimKey = (BrandId, DocumentKind, &'static str, String);

#[derive(Debug, Default)]
struct State {
    documents: HashMap<(BrandId, DocumentKind), BTreeMap<String, Document>>,
    claims: HashMap<ClaimKey, String>,
    activity: HashMap<(BrandId, Surface), BTreeMap<String, ActivityRecord>>,
    counters: HashMap<(BrandId, String, UnixMillis), u64>,
    clicks: HashMap<(BrandId, String), ClickRecord>,
    click_times: HashMap<(BrandId, u32), BTreeMap<String, ClickRecord>>,
    sources: HashMap<(BrandId, String), SourceState>,
}

/// One client IP's clicks for a brand: the current window and the latest sighting.
#[derive(Debug, Clone, Copy)]
struct SourceState {
    window_start: UnixMillis,
    clicks: u64,
    last_at: UnixMillis,
    expires_at: i64,
}

/// Source records kept in memory before expired ones are swept (local mode).
const SOURCE_SWEEP_THRESHOLD: usize = 100_000;

/// Activity records kept per brand and surface in memory: local mode keeps the newest, so a long
/// load test cannot grow the process without bound (DynamoDB keeps everything until the TTL).
pub const DEFAULT_ACTIVITY_CAP: usize = 10_000;

#[derive(Debug)]
pub struct MemoryBrandData {
    state: Mutex<State>,
    activity_cap: usize,
}

impl Default for MemoryBrandData {
    fn default() -> Self {
        Self::with_activity_cap(DEFAULT_ACTIVITY_CAP)
    }
}

impl MemoryBrandData {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_activity_cap(activity_cap: usize) -> Self {
        Self {
            state: Mutex::default(),
            activity_cap: activity_cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn claim_key(brand_id: &BrandId, kind: DocumentKind, claim: &UniqueClaim) -> ClaimKey {
    (brand_id.clone(), kind, claim.field, claim.value.clone())
}

#[async_trait]
impl BrandDataStore for MemoryBrandData {
    async fn create_documents(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let mut claimed = std::collections::HashSet::new();
        for (document, claims) in documents {
            let exists = state
                .documents
                .get(&(document.brand_id.clone(), document.kind))
                .is_some_and(|docs| docs.contains_key(&document.id));
            if exists {
                return Err(StoreError::AlreadyExists);
            }
            for claim in *claims {
                let key = claim_key(&document.brand_id, document.kind, claim);
                if state.claims.contains_key(&key) || !claimed.insert(key) {
                    return Err(StoreError::AlreadyExists);
                }
            }
        }
        for (document, claims) in documents {
            for claim in *claims {
                state.claims.insert(
                    claim_key(&document.brand_id, document.kind, claim),
                    document.id.clone(),
                );
            }
            state
                .documents
                .entry((document.brand_id.clone(), document.kind))
                .or_default()
                .insert(document.id.clone(), (*document).clone());
        }
        Ok(())
    }

    async fn claim_holder(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .claims
            .get(&claim_key(brand_id, kind, claim))
            .cloned())
    }

    async fn query_documents(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        if lower > upper {
            return Ok(Vec::new());
        }
        let state = self.lock();
        let Some(docs) = state.documents.get(&(brand_id.clone(), kind)) else {
            return Ok(Vec::new());
        };
        Ok(docs
            .range::<str, _>((Bound::Included(lower), Bound::Included(upper)))
            .rev()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, doc)| doc.clone())
            .collect())
    }

    async fn get_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        Ok(self
            .lock()
            .documents
            .get(&(brand_id.clone(), kind))
            .and_then(|docs| docs.get(id))
            .cloned())
    }

    async fn update_document(
        &self,
        document: &Document,
        released_claims: &[UniqueClaim],
        new_claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let partition = (document.brand_id.clone(), document.kind);
        let stored_version = state
            .documents
            .get(&partition)
            .and_then(|docs| docs.get(&document.id))
            .map(|stored| stored.version)
            .ok_or(StoreError::NotFound)?;
        if stored_version + 1 != document.version {
            return Err(StoreError::Contention);
        }
        let taken = new_claims.iter().any(|claim| {
            state
                .claims
                .contains_key(&claim_key(&document.brand_id, document.kind, claim))
        });
        if taken {
            return Err(StoreError::AlreadyExists);
        }
        for claim in released_claims {
            state
                .claims
                .remove(&claim_key(&document.brand_id, document.kind, claim));
        }
        for claim in new_claims {
            state.claims.insert(
                claim_key(&document.brand_id, document.kind, claim),
                document.id.clone(),
            );
        }
        state
            .documents
            .entry(partition)
            .or_default()
            .insert(document.id.clone(), document.clone());
        Ok(())
    }

    async fn delete_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
        version: u64,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let partition = (brand_id.clone(), kind);
        let stored_version = state
            .documents
            .get(&partition)
            .and_then(|docs| docs.get(id))
            .map(|stored| stored.version)
            .ok_or(StoreError::NotFound)?;
        if stored_version != version {
            return Err(StoreError::Contention);
        }
        for claim in claims {
            state.claims.remove(&claim_key(brand_id, kind, claim));
        }
        if let Some(docs) = state.documents.get_mut(&partition) {
            docs.remove(id);
        }
        Ok(())
    }

    async fn list_documents_by_prefix(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id_prefix: &str,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        let state = self.lock();
        let Some(docs) = state.documents.get(&(brand_id.clone(), kind)) else {
            return Ok(Page {
                items: Vec::new(),
                next_position: None,
            });
        };
        let start = match after_position {
            Some(position) => Bound::Excluded(position.to_owned()),
            None => Bound::Included(id_prefix.to_owned()),
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut matching = docs
            .range::<String, _>((start, Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(id_prefix))
            .map(|(_, doc)| doc.clone());
        let items: Vec<Document> = matching.by_ref().take(limit).collect();
        let next_position = match matching.next() {
            Some(_) => items.last().map(|last| last.id.clone()),
            None => None,
        };
        Ok(Page {
            items,
            next_position,
        })
    }

    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        let records = state
            .activity
            .entry((record.brand_id.clone(), record.surface))
            .or_default();
        let sort_key = activity_sort_key(record);
        if records.contains_key(&sort_key) {
            return Err(StoreError::AlreadyExists);
        }
        records.insert(sort_key, record.clone());
        while records.len() > self.activity_cap {
            records.pop_first();
        }
        Ok(())
    }

    async fn query_activity(
        &self,
        brand_id: &BrandId,
        surface: Surface,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        let state = self.lock();
        let Some(records) = state.activity.get(&(brand_id.clone(), surface)) else {
            return Ok(Vec::new());
        };
        if lower > upper {
            return Ok(Vec::new());
        }
        Ok(records
            .range::<str, _>((Bound::Included(lower), Bound::Included(upper)))
            .rev()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, record)| record.clone())
            .collect())
    }

    async fn insert_click(&self, click: &ClickRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        let id = (click.brand_id.clone(), click.click_id.clone());
        if state.clicks.contains_key(&id) {
            return Err(StoreError::AlreadyExists);
        }
        state.clicks.insert(id, click.clone());
        state
            .click_times
            .entry((click.brand_id.clone(), click_shard(&click.click_id)))
            .or_default()
            .insert(click_sort_key(click), click.clone());
        Ok(())
    }

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError> {
        Ok(self
            .lock()
            .clicks
            .get(&(brand_id.clone(), click_id.to_owned()))
            .cloned())
    }

    async fn query_clicks(
        &self,
        brand_id: &BrandId,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ClickRecord>, StoreError> {
        let state = self.lock();
        let Some(clicks) = state.click_times.get(&(brand_id.clone(), shard)) else {
            return Ok(Vec::new());
        };
        if lower > upper {
            return Ok(Vec::new());
        }
        Ok(clicks
            .range::<str, _>((Bound::Included(lower), Bound::Included(upper)))
            .rev()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, click)| click.clone())
            .collect())
    }

    async fn update_click(&self, click: &ClickRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        let id = (click.brand_id.clone(), click.click_id.clone());
        let Some(stored) = state.clicks.get_mut(&id) else {
            return Err(StoreError::NotFound);
        };
        let previous_sort_key = click_sort_key(stored);
        *stored = click.clone();
        let times = state
            .click_times
            .entry((click.brand_id.clone(), click_shard(&click.click_id)))
            .or_default();
        times.remove(&previous_sort_key);
        times.insert(click_sort_key(click), click.clone());
        Ok(())
    }

    async fn record_source_hit(
        &self,
        brand_id: &BrandId,
        source: &str,
        window_start: UnixMillis,
        now: UnixMillis,
        expires_at: i64,
    ) -> Result<SourceHit, StoreError> {
        let mut state = self.lock();
        if state.sources.len() >= SOURCE_SWEEP_THRESHOLD {
            let now_seconds = now / 1000;
            state
                .sources
                .retain(|_, source| source.expires_at > now_seconds);
        }
        let entry = state.sources.entry((brand_id.clone(), source.to_owned()));
        let mut previous_at = None;
        let record = entry
            .and_modify(|record| {
                previous_at = Some(record.last_at);
                if record.window_start == window_start {
                    record.clicks += 1;
                } else {
                    record.window_start = window_start;
                    record.clicks = 1;
                }
                record.last_at = now;
                record.expires_at = expires_at;
            })
            .or_insert(SourceState {
                window_start,
                clicks: 1,
                last_at: now,
                expires_at,
            });
        Ok(SourceHit {
            clicks_in_window: record.clicks,
            previous_at,
        })
    }

    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        _expires_at: i64,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let key = (brand_id.clone(), name.to_owned(), window_start);
        if !state.counters.contains_key(&key) {
            // Old windows are dropped as new ones start, as DynamoDB's TTL would.
            state.counters.retain(|(brand, counter, start), _| {
                !(brand == brand_id && counter == name && *start < window_start)
            });
        }
        let count = state.counters.entry(key).or_default();
        *count += 1;
        Ok(*count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn activity_keeps_the_newest_records_up_to_the_cap() {
        let store = MemoryBrandData::with_activity_cap(3);
        let brand_id = BrandId::parse("capped").unwrap();
        for at in 0..10 {
            let record = ActivityRecord {
                brand_id: brand_id.clone(),
                at,
                request_id: format!("r{at}"),
                surface: Surface::Api,
                method: "GET".into(),
                target: "/".into(),
                status: 200,
                latency_ms: 0,
                key_id: "k".into(),
                fingerprint: "f".into(),
                source_ip: "ip".into(),
                user_agent: "ua".into(),
                outcome: "ok".into(),
                expires_at: 0,
            };
            store.append_activity(&record).await.unwrap();
        }
        let page = store
            .list_activity(&brand_id, Default::default(), 10, None)
            .await
            .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r9", "r8", "r7"]);
    }

    #[tokio::test]
    async fn memory_brand_data_passes_the_conformance_suite() {
        super::super::conformance::run_all(&MemoryBrandData::new()).await;
    }
}
