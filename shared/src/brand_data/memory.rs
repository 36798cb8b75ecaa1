//! In-memory [`BrandDataStore`] for unit tests and local mode; one mutex makes each operation
//! atomic, as the DynamoDB transactions are.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::changes::{Change, ChangeEvent, sequence_order};
use super::clicks::{CLICK_SHARDS, ClickFilter, ClickRecord, click_shard, click_sort_key};
use super::layout;
use super::rollups::{
    RollupDimension, RollupIncrement, RollupRow, StreamSpan, check_rollup_range,
    check_transaction_size, merge_increments, normalized_spans, rollup_brand,
};
use super::{
    ActivityFilter, ActivityRecord, ActivityStore, ClickStore, CountedThrough, CounterStore,
    Document, DocumentKind, DocumentStore, RollupStore, SourceHits, SourceTally, Surface,
    UniqueClaim, activity_sort_key, click_list_bounds, list_activity_across_surfaces,
    read_rollups_across_shards,
};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::{Page, StoreError};

type ClaimKey = (BrandId, DocumentKind, &'static str, String);
/// One rollup partition: brand, dimension, shard.
type RollupPartition = (BrandId, RollupDimension, u32);
/// A partition's rows: (day, group) -> counters.
type RollupRows = BTreeMap<(String, String), BTreeMap<String, i64>>;

fn surface_index(surface: Surface) -> usize {
    match surface {
        Surface::Api => 0,
        Surface::Mcp => 1,
        Surface::Capture => 2,
    }
}

#[derive(Debug, Default)]
struct State {
    documents: HashMap<(BrandId, DocumentKind), BTreeMap<String, Document>>,
    claims: HashMap<ClaimKey, String>,
    /// Boxed, so the eviction of a partition's oldest record moves pointers, not records.
    activity: HashMap<(BrandId, Surface), BTreeMap<String, Box<ActivityRecord>>>,
    /// Activity records stored since start, per surface (api, mcp, capture), including those the
    /// cap has since dropped and new captures' records, which their click items hold.
    activity_appended: [u64; 3],
    counters: HashMap<(BrandId, String, UnixMillis), i64>,
    clicks: HashMap<BrandId, BrandClicks>,
    sources: HashMap<(BrandId, String), SourceState>,
    rollups: HashMap<RollupPartition, RollupRows>,
    /// Per rollup row and origin partition, the last sequence number counted (zero-padded).
    stream_watermarks: HashMap<(RollupPartition, String, String, String), String>,
    /// The change feed, once enabled ([`MemoryBrandData::enable_change_feed`]).
    feed: Option<ChangeFeed>,
}

/// The memory store's stand-in for the data table's stream: the changes the derivation reads,
/// in write order, until acknowledged.
#[derive(Debug, Default)]
struct ChangeFeed {
    /// The last sequence number handed out (the first event is 1).
    last_sequence: u64,
    /// Events not yet acknowledged, oldest first.
    pending: VecDeque<ChangeEvent>,
}

impl State {
    /// Appends `change` of an item under `partition` (its DynamoDB partition key, from
    /// [`layout`]) to the feed if it is enabled. Called under the store's one lock once a write
    /// has succeeded, so the feed's order is the order the writes took effect in, and sequence
    /// numbers increase for every partition key's changes, as a stream's do.
    fn publish(&mut self, partition: impl FnOnce() -> String, change: impl FnOnce() -> Change) {
        if let Some(feed) = &mut self.feed {
            feed.last_sequence += 1;
            feed.pending.push_back(ChangeEvent {
                partition: partition(),
                sequence: feed.last_sequence.to_string(),
                change: change(),
            });
        }
    }

    /// Whether an activity record may be stored: `AlreadyExists` if its slot is taken. A write
    /// that carries one asks before it changes anything, so a taken slot leaves it undone.
    fn check_activity_slot(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let taken = self
            .activity
            .get(&(record.brand_id.clone(), record.surface))
            .is_some_and(|records| records.contains_key(&activity_sort_key(record)));
        if taken {
            return Err(StoreError::AlreadyExists);
        }
        Ok(())
    }

    /// Stores an activity record as [`ActivityStore::append_activity`] does, after
    /// [`Self::check_activity_slot`]: the partition keeps its newest `cap` records.
    fn store_activity(&mut self, record: &ActivityRecord, cap: usize) {
        let records = self
            .activity
            .entry((record.brand_id.clone(), record.surface))
            .or_default();
        records.insert(activity_sort_key(record), Box::new(record.clone()));
        while records.len() > cap {
            records.pop_first();
        }
        self.activity_appended[surface_index(record.surface)] += 1;
    }

    /// Adds merged increments to `brand_id`'s rows; each partition keeps its newest `cap` rows.
    fn apply_rollups(&mut self, brand_id: &BrandId, increments: &[RollupIncrement], cap: usize) {
        for increment in increments {
            let rows = self
                .rollups
                .entry((brand_id.clone(), increment.dimension, increment.shard))
                .or_default();
            let counters = rows
                .entry((increment.day.clone(), increment.group.clone()))
                .or_default();
            for (name, amount) in &increment.counters {
                let total = counters.entry(name.clone()).or_insert(0);
                *total = total.saturating_add(*amount);
            }
            // Local mode keeps the newest days, as DynamoDB's TTL drops the oldest.
            while rows.len() > cap {
                rows.pop_first();
            }
        }
    }
}

/// A brand's clicks: one copy of each record in one time index, and an index by id. DynamoDB
/// spreads a brand's clicks over [`CLICK_SHARDS`] partitions for write throughput and merges them
/// on read; memory has no partition limits, so a page here is one range of one map, and a shard's
/// view ([`ClickStore::query_clicks`](super::ClickStore::query_clicks)) is that range filtered by the click id's shard.
#[derive(Debug, Default)]
struct BrandClicks {
    /// Click id -> its sort key.
    by_id: HashMap<String, String>,
    /// Sort key (time, then click id) -> record, every shard together. Shared, so that a page
    /// of clicks is handed out without copying its records.
    by_time: BTreeMap<String, Arc<ClickRecord>>,
}

impl BrandClicks {
    /// Clicks with `lower <= sort key <= upper`, newest first.
    fn newest_first<'a>(
        &'a self,
        lower: &str,
        upper: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Arc<ClickRecord>)> + 'a {
        let range = if lower <= upper {
            Some(
                self.by_time
                    .range::<str, _>((Bound::Included(lower), Bound::Included(upper))),
            )
        } else {
            None
        };
        range.into_iter().flatten().rev()
    }

    /// Drops the oldest click.
    fn drop_oldest(&mut self) {
        if let Some((_, click)) = self.by_time.pop_first() {
            self.by_id.remove(&click.click_id);
        }
    }
}

/// One client IP's clicks for a brand: the current window, the latest sighting, and per stream
/// shard the last sequence number counted (zero-padded), as the DynamoDB item's `w:` marks.
#[derive(Debug, Clone)]
struct SourceState {
    window_start: UnixMillis,
    clicks: u64,
    last_at: Option<UnixMillis>,
    expires_at: i64,
    marks: HashMap<String, String>,
}

/// Source (client IP) records kept in memory (local mode): at the cap, expired ones are dropped,
/// and if more than half are still live, all of them.
const SOURCE_CAP: usize = 5_000;

/// Activity records kept per brand and surface in memory: local mode keeps the newest, so a long
/// load test cannot grow the process without bound (DynamoDB keeps everything until the TTL).
pub const DEFAULT_ACTIVITY_CAP: usize = 2_000;

/// Clicks kept per brand in memory: beyond it the oldest are dropped (and a re-capture of a dropped
/// click id would be recorded again). Local mode only; DynamoDB keeps every click.
pub const DEFAULT_CLICK_CAP: usize = 2_000;

/// Rollup rows kept per brand, dimension and shard in memory (days x groups): beyond it the rows
/// of the oldest day go first. Local mode only; DynamoDB keeps rows until their TTL.
pub const DEFAULT_ROLLUP_CAP: usize = 2_000;

#[derive(Debug)]
pub struct MemoryBrandData {
    state: Mutex<State>,
    activity_cap: usize,
    click_cap: usize,
    rollup_cap: usize,
}

impl Default for MemoryBrandData {
    fn default() -> Self {
        Self::with_caps(DEFAULT_ACTIVITY_CAP, DEFAULT_CLICK_CAP)
    }
}

impl MemoryBrandData {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_activity_cap(activity_cap: usize) -> Self {
        Self::with_caps(activity_cap, DEFAULT_CLICK_CAP)
    }

    /// At most `activity_cap` activity records per brand and surface and `click_cap` clicks per
    /// brand, the newest.
    pub fn with_caps(activity_cap: usize, click_cap: usize) -> Self {
        Self {
            state: Mutex::default(),
            activity_cap: activity_cap.max(1),
            click_cap: click_cap.max(1),
            rollup_cap: DEFAULT_ROLLUP_CAP,
        }
    }

    /// Activity records stored on `surface` since this store was created, all brands, counting
    /// those the cap has dropped since and, on capture, the records new captures' click items
    /// hold: a long run (`scripts/soak`) checks nothing was lost.
    pub fn activity_appended(&self, surface: Surface) -> u64 {
        self.lock().activity_appended[surface_index(surface)]
    }

    /// At most `rollup_cap` rollup rows per brand, dimension and shard, the newest days.
    pub fn with_rollup_cap(mut self, rollup_cap: usize) -> Self {
        self.rollup_cap = rollup_cap.max(1);
        self
    }

    /// Starts the change feed: from now on every new click, rescored click and new document is
    /// appended to it (with sequence numbers "1", "2", ...), until acknowledged. Off by default,
    /// so a store that nobody reads the feed of does not hold every write twice. Writes that
    /// derive nothing (activity, counters, rollups, document updates) are left out; a DynamoDB
    /// stream carries them as [`Change::Other`]. Enabling it again changes nothing.
    pub fn enable_change_feed(&self) {
        self.lock().feed.get_or_insert_with(ChangeFeed::default);
    }

    /// The oldest `max` changes not yet acknowledged, in write order (none if the feed is off).
    pub fn pending_changes(&self, max: usize) -> Vec<ChangeEvent> {
        self.lock()
            .feed
            .as_ref()
            .map(|feed| feed.pending.iter().take(max).cloned().collect())
            .unwrap_or_default()
    }

    /// Drops every pending change up to and including `through_sequence` (compared as numbers):
    /// what the stream's consumer has processed.
    pub fn acknowledge_changes(&self, through_sequence: &str) {
        let through = sequence_order(through_sequence);
        if let Some(feed) = &mut self.lock().feed {
            while feed
                .pending
                .front()
                .is_some_and(|event| sequence_order(&event.sequence) <= through)
            {
                feed.pending.pop_front();
            }
        }
    }

    /// How many changes wait to be acknowledged.
    pub fn pending_change_count(&self) -> usize {
        self.lock()
            .feed
            .as_ref()
            .map_or(0, |feed| feed.pending.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The partition key of a click's item in DynamoDB: what the feed names its changes by.
fn click_partition(click: &ClickRecord) -> String {
    layout::click_partition(&click.brand_id, click_shard(&click.click_id))
}

fn claim_key(brand_id: &BrandId, kind: DocumentKind, claim: &UniqueClaim) -> ClaimKey {
    (brand_id.clone(), kind, claim.field, claim.value.clone())
}

#[async_trait]
impl DocumentStore for MemoryBrandData {
    async fn create_documents_counted(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
        increments: &[RollupIncrement],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        let increments = merge_increments(increments)?;
        let brand_id = rollup_brand(documents, &increments)?;
        let claims: usize = documents.iter().map(|(_, claims)| claims.len()).sum();
        check_transaction_size(
            documents.len() + claims + increments.len() + usize::from(activity.is_some()),
        )?;
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
        if let Some(record) = activity {
            state.check_activity_slot(record)?;
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
            state.publish(
                || layout::document(&document.brand_id, document.kind, &document.id).partition,
                || Change::NewDocument(Box::new((*document).clone())),
            );
        }
        if let Some(brand_id) = brand_id {
            state.apply_rollups(brand_id, &increments, self.rollup_cap);
        }
        if let Some(record) = activity {
            state.store_activity(record, self.activity_cap);
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
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        check_transaction_size(
            1 + released_claims.len() + new_claims.len() + usize::from(activity.is_some()),
        )?;
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
        if let Some(record) = activity {
            state.check_activity_slot(record)?;
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
        if let Some(record) = activity {
            state.store_activity(record, self.activity_cap);
        }
        Ok(())
    }

    async fn delete_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
        version: u64,
        claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        check_transaction_size(1 + claims.len() + usize::from(activity.is_some()))?;
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
        if let Some(record) = activity {
            state.check_activity_slot(record)?;
        }
        for claim in claims {
            state.claims.remove(&claim_key(brand_id, kind, claim));
        }
        if let Some(docs) = state.documents.get_mut(&partition) {
            docs.remove(id);
        }
        if let Some(record) = activity {
            state.store_activity(record, self.activity_cap);
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
}

#[async_trait]
impl ActivityStore for MemoryBrandData {
    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        // One search of the partition (the entry), not a check and then an insert: every
        // request's record comes through here.
        let mut state = self.lock();
        let records = state
            .activity
            .entry((record.brand_id.clone(), record.surface))
            .or_default();
        match records.entry(activity_sort_key(record)) {
            std::collections::btree_map::Entry::Occupied(_) => {
                return Err(StoreError::AlreadyExists);
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(Box::new(record.clone()));
            }
        }
        while records.len() > self.activity_cap {
            records.pop_first();
        }
        state.activity_appended[surface_index(record.surface)] += 1;
        Ok(())
    }

    async fn replace_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.check_activity_slot(record).is_ok() {
            state.store_activity(record, self.activity_cap);
        } else if let Some(records) = state
            .activity
            .get_mut(&(record.brand_id.clone(), record.surface))
        {
            records.insert(activity_sort_key(record), Box::new(record.clone()));
        }
        Ok(())
    }

    async fn record_activity_summary(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let sort_key = activity_sort_key(record);
        let mut state = self.lock();
        let partition = (record.brand_id.clone(), record.surface);
        let records = state.activity.entry(partition).or_default();
        let fresh = !records.contains_key(&sort_key);
        match records.entry(sort_key) {
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                if slot.get().attempts < record.attempts {
                    slot.insert(Box::new(record.clone()));
                }
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(Box::new(record.clone()));
            }
        }
        while records.len() > self.activity_cap {
            records.pop_first();
        }
        if fresh {
            state.activity_appended[surface_index(record.surface)] += 1;
        }
        Ok(())
    }

    async fn query_activity(
        &self,
        brand_id: &BrandId,
        surface: Surface,
        shard: u32,
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
            .filter(|(_, record)| surface.activity_shard(&record.request_id) == shard)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, record)| ActivityRecord::clone(record))
            .collect())
    }

    async fn list_activity(
        &self,
        brand_id: &BrandId,
        filter: ActivityFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<ActivityRecord>, StoreError> {
        list_activity_across_surfaces(self, brand_id, filter, limit, after_position).await
    }
}

#[async_trait]
impl ClickStore for MemoryBrandData {
    async fn insert_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        let increments = merge_increments(increments)?;
        check_transaction_size(1 + increments.len())?;
        let sort_key = click_sort_key(click);
        let mut state = self.lock();
        if !state.clicks.contains_key(&click.brand_id) {
            state
                .clicks
                .insert(click.brand_id.clone(), BrandClicks::default());
        }
        let Some(clicks) = state.clicks.get_mut(&click.brand_id) else {
            return Err(StoreError::Corrupt("brand clicks vanished".into()));
        };
        if clicks.by_id.contains_key(&click.click_id) {
            return Err(StoreError::AlreadyExists);
        }
        clicks
            .by_id
            .insert(click.click_id.clone(), sort_key.clone());
        clicks.by_time.insert(sort_key, Arc::new(click.clone()));
        // Local mode keeps the newest: one in, one out at the cap.
        if clicks.by_id.len() > self.click_cap {
            clicks.drop_oldest();
        }
        if click.audit.is_some() {
            state.activity_appended[surface_index(Surface::Capture)] += 1;
        }
        state.apply_rollups(&click.brand_id, &increments, self.rollup_cap);
        state.publish(
            || click_partition(click),
            || Change::NewClick(Box::new(click.clone())),
        );
        Ok(())
    }

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError> {
        let state = self.lock();
        let Some(clicks) = state.clicks.get(brand_id) else {
            return Ok(None);
        };
        Ok(clicks
            .by_id
            .get(click_id)
            .and_then(|sort_key| clicks.by_time.get(sort_key))
            .map(|click| ClickRecord::clone(click)))
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
        let Some(clicks) = state.clicks.get(brand_id) else {
            return Ok(Vec::new());
        };
        Ok(clicks
            .newest_first(lower, upper)
            .filter(|(_, click)| click_shard(&click.click_id) == shard)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, click)| ClickRecord::clone(click))
            .collect())
    }

    /// One range of the brand's time index instead of the trait's merge across shards: the merge's
    /// pages (newest first, the same items per page), reading the page and the one item that shows
    /// whether more follow, so a full last page carries no position (the merge may give one that
    /// leads to an empty page). An offer or partner filter stops after the merge's read budget,
    /// `limit + 2` items per shard, with a short page and a position, as the merge (and DynamoDB's
    /// filter) does; where that budget ends a page may differ from the merge, the listing page
    /// after page does not.
    async fn list_clicks(
        &self,
        brand_id: &BrandId,
        filter: &ClickFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Arc<ClickRecord>>, StoreError> {
        let (lower, upper) = click_list_bounds(filter, after_position)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        let budget = (CLICK_SHARDS as usize).saturating_mul(limit.saturating_add(2));
        let state = self.lock();
        let Some(clicks) = state.clicks.get(brand_id) else {
            return Ok(Page {
                items: Vec::new(),
                next_position: None,
            });
        };
        let mut kept: Vec<(&String, &Arc<ClickRecord>)> = Vec::with_capacity(limit);
        let mut last_examined: Option<&String> = None;
        let mut next_position = None;
        let newest_first = clicks
            .newest_first(&lower, &upper)
            .filter(|(key, _)| Some(key.as_str()) != after_position);
        for (examined, (key, click)) in newest_first.enumerate() {
            if kept.len() == limit {
                next_position = kept.last().map(|(key, _)| (*key).clone());
                break;
            }
            if examined == budget {
                // The next page starts after the last item read, as the merge's does.
                next_position = last_examined.cloned();
                break;
            }
            last_examined = Some(key);
            if filter.keeps(click) {
                kept.push((key, click));
            }
        }
        Ok(Page {
            items: kept
                .into_iter()
                .map(|(_, click)| Arc::clone(click))
                .collect(),
            next_position,
        })
    }

    async fn update_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        let increments = merge_increments(increments)?;
        check_transaction_size(1 + increments.len())?;
        let sort_key = click_sort_key(click);
        let mut state = self.lock();
        let Some(clicks) = state.clicks.get_mut(&click.brand_id) else {
            return Err(StoreError::NotFound);
        };
        let Some(stored) = clicks.by_id.get_mut(&click.click_id) else {
            return Err(StoreError::NotFound);
        };
        // The two indexes hold the same clicks; the record they drop is the feed's before image.
        let Some(before) = clicks.by_time.remove(stored.as_str()) else {
            return Err(StoreError::Corrupt(
                "click missing from the time index".into(),
            ));
        };
        stored.clone_from(&sort_key);
        clicks.by_time.insert(sort_key, Arc::new(click.clone()));
        state.apply_rollups(&click.brand_id, &increments, self.rollup_cap);
        state.publish(
            || click_partition(click),
            || Change::ClickChanged {
                before: Box::new(ClickRecord::clone(&before)),
                after: Box::new(click.clone()),
            },
        );
        Ok(())
    }
}

#[async_trait]
impl RollupStore for MemoryBrandData {
    async fn query_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        shard: u32,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        check_rollup_range(shard, from_day, to_day)?;
        if from_day > to_day {
            return Ok(Vec::new());
        }
        let state = self.lock();
        let Some(rows) = state.rollups.get(&(brand_id.clone(), dimension, shard)) else {
            return Ok(Vec::new());
        };
        let lower = (from_day.to_owned(), String::new());
        Ok(rows
            .range((Bound::Included(lower), Bound::Unbounded))
            .take_while(|((day, _), _)| day.as_str() <= to_day)
            .map(|((day, group), counters)| RollupRow {
                day: day.clone(),
                dimension,
                group: group.clone(),
                counters: counters.clone(),
            })
            .collect())
    }

    async fn read_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        read_rollups_across_shards(self, brand_id, dimension, from_day, to_day).await
    }

    async fn add_rollup_once(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
        spans: &[StreamSpan],
    ) -> Result<Option<CountedThrough>, StoreError> {
        let merged = merge_increments(std::slice::from_ref(increment))?;
        let spans = normalized_spans(spans)?;
        let mut state = self.lock();
        let row = |origin: &str| {
            (
                (brand_id.clone(), increment.dimension, increment.shard),
                increment.day.clone(),
                increment.group.clone(),
                origin.to_owned(),
            )
        };
        let counted: CountedThrough = spans
            .iter()
            .filter_map(|(origin, (first, _))| {
                state
                    .stream_watermarks
                    .get(&row(origin))
                    .filter(|counted| *counted >= first)
                    .map(|counted| (origin.clone(), counted.clone()))
            })
            .collect();
        if !counted.is_empty() {
            return Ok(Some(counted));
        }
        state.apply_rollups(brand_id, &merged, self.rollup_cap);
        for (origin, (_, last)) in spans {
            state.stream_watermarks.insert(row(&origin), last);
        }
        Ok(None)
    }
}

#[async_trait]
impl CounterStore for MemoryBrandData {
    async fn count_source_hits(
        &self,
        brand_id: &BrandId,
        source: &str,
        hits: &SourceHits,
        span: Option<&StreamSpan>,
    ) -> Result<SourceTally, StoreError> {
        let span = hits.checked(span)?;
        let mut state = self.lock();
        if state.sources.len() >= SOURCE_CAP {
            // Expired records go first; if the live ones alone fill the cap (a flood of distinct
            // addresses), local mode starts counting afresh rather than sweeping on every click.
            // A source's stream marks go with it, as DynamoDB's TTL drops the whole item.
            let now_seconds = hits.latest_at / 1000;
            state
                .sources
                .retain(|_, source| source.expires_at > now_seconds);
            if state.sources.len() >= SOURCE_CAP / 2 {
                state.sources.clear();
            }
        }
        let record = state
            .sources
            .entry((brand_id.clone(), source.to_owned()))
            .or_insert_with(|| SourceState {
                // An empty window older than any: the hits below start it.
                window_start: UnixMillis::MIN,
                clicks: 0,
                last_at: None,
                expires_at: hits.expires_at,
                marks: HashMap::new(),
            });
        if let Some((origin, first, _)) = &span
            && record
                .marks
                .get(*origin)
                .is_some_and(|counted| counted >= first)
        {
            return Ok(SourceTally::standing(
                record.window_start,
                record.clicks,
                record.last_at,
                hits.window_start,
                record.marks.get(*origin).cloned().unwrap_or_default(),
            ));
        }
        let before = SourceTally {
            applied: true,
            clicks_in_window: 0,
            last_at: record.last_at,
            counted_through: None,
        };
        // A late request from an earlier window counts into the current one rather than turning
        // it back.
        let before = if record.window_start >= hits.window_start {
            let clicks_in_window = record.clicks;
            record.clicks = record.clicks.saturating_add(hits.count);
            SourceTally {
                clicks_in_window,
                ..before
            }
        } else {
            record.window_start = hits.window_start;
            record.clicks = hits.count;
            before
        };
        record.last_at = Some(
            record
                .last_at
                .map_or(hits.latest_at, |last| last.max(hits.latest_at)),
        );
        record.expires_at = hits.expires_at;
        if let Some((origin, _, last)) = span {
            record.marks.insert(origin.to_owned(), last);
        }
        Ok(before)
    }

    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        amount: i64,
        _expires_at: i64,
    ) -> Result<i64, StoreError> {
        let mut state = self.lock();
        let key = (brand_id.clone(), name.to_owned(), window_start);
        if !state.counters.contains_key(&key) {
            // Old windows are dropped as new ones start, as DynamoDB's TTL would.
            state.counters.retain(|(brand, counter, start), _| {
                !(brand == brand_id && counter == name && *start < window_start)
            });
        }
        let count = state.counters.entry(key).or_default();
        *count += amount;
        Ok(*count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::sample_activity;
    use super::*;
    use crate::brand_data::{ClickStoreExt, DocumentStoreExt};

    /// A click with no offer, partner or sub ids.
    fn click_at(brand_id: &BrandId, click_id: &str, at: UnixMillis) -> ClickRecord {
        super::super::conformance::bare_click(brand_id, click_id, at)
    }

    #[tokio::test]
    async fn clicks_keep_the_newest_up_to_the_cap() {
        let store = MemoryBrandData::with_caps(10, 5);
        let brand_id = BrandId::parse("capped").unwrap();
        let other = BrandId::parse("other").unwrap();
        for at in 0..12 {
            for brand in [&brand_id, &other] {
                let click = click_at(brand, &format!("c{at:02}"), at);
                store.insert_click(&click).await.unwrap();
            }
        }
        let page = store
            .list_clicks(&brand_id, &Default::default(), 100, None)
            .await
            .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|c| c.click_id.as_str()).collect();
        assert_eq!(ids, ["c11", "c10", "c09", "c08", "c07"]);
        assert_eq!(store.get_click(&brand_id, "c06").await.unwrap(), None);
        assert!(store.get_click(&other, "c07").await.unwrap().is_some());
    }

    /// The memory store's one-range listing gives the pages the merge across shards
    /// (`list_clicks_across_shards`, which reads the memory store shard by shard) gives over the
    /// same data, with clicks sharing instants, for page sizes 1 to 100: the same items per page
    /// (the merge's trailing empty page aside) while the read budget is not reached, the same
    /// listing when it is.
    #[tokio::test]
    async fn one_range_listing_pages_like_the_merge_across_shards() {
        use crate::brand_data::list_clicks_across_shards;

        let store = &MemoryBrandData::new();
        let brand_id = BrandId::parse("paging").unwrap();
        let mut next = crate::brand_data::merge::tests::xorshift(0x2545_f491_4f6c_dd1d);
        for index in 0..400 {
            let random = next();
            // About 130 distinct instants, so many clicks share one.
            let at = 1_000 + i64::try_from(random % 130).unwrap();
            let click = ClickRecord {
                offer_id: Some(format!("off_{}", random % 3)),
                partner_id: Some(format!("ptr_{}", (random >> 8) % 2)),
                ..click_at(&brand_id, &format!("k{index:03}"), at)
            };
            store.insert_click(&click).await.unwrap();
        }
        // Time ranges are bounds of the reads, never the read budget: pages are the same.
        let unselective = [
            ClickFilter::default(),
            ClickFilter {
                from: Some(1_020),
                to: Some(1_100),
                ..ClickFilter::default()
            },
        ];
        // Offer and partner filters can end a page at the read budget, at a different item in the
        // two: the listings, page after page, are the same.
        let selective = [
            ClickFilter {
                offer_id: Some("off_1".into()),
                ..ClickFilter::default()
            },
            ClickFilter {
                offer_id: Some("off_2".into()),
                partner_id: Some("ptr_0".into()),
                from: Some(1_020),
                to: Some(1_100),
            },
        ];
        for (filter, same_pages) in unselective
            .iter()
            .map(|filter| (filter, true))
            .chain(selective.iter().map(|filter| (filter, false)))
        {
            for limit in [1, 3, 25, 100] {
                let one_range = all_pages(async |position| {
                    store.list_clicks(&brand_id, filter, limit, position).await
                })
                .await;
                let merge = all_pages(async |position| {
                    list_clicks_across_shards(store, &brand_id, filter, limit, position).await
                })
                .await;
                let listing = |pages: &[Page<Arc<ClickRecord>>]| -> Vec<Arc<ClickRecord>> {
                    pages.iter().flat_map(|page| page.items.clone()).collect()
                };
                assert_eq!(
                    listing(&one_range),
                    listing(&merge),
                    "{filter:?} limit {limit}"
                );
                assert!(!listing(&one_range).is_empty(), "{filter:?}");
                if same_pages {
                    assert_eq!(
                        one_range,
                        without_trailing_empty_page(merge),
                        "{filter:?} limit {limit}"
                    );
                }
            }
        }
    }

    /// Every page of a listing, following positions to the end; each position is older than the
    /// one before, and a listing ends within 1,000 pages.
    async fn all_pages(
        list: impl AsyncFn(Option<&str>) -> Result<Page<Arc<ClickRecord>>, StoreError>,
    ) -> Vec<Page<Arc<ClickRecord>>> {
        let mut pages = Vec::new();
        let mut position: Option<String> = None;
        for _ in 0..1_000 {
            let page = list(position.as_deref()).await.unwrap();
            if let (Some(previous), Some(next)) = (&position, &page.next_position) {
                assert!(
                    next < previous,
                    "positions move back in time: {next} after {previous}"
                );
            }
            position.clone_from(&page.next_position);
            pages.push(page);
            if position.is_none() {
                return pages;
            }
        }
        panic!("the listing did not end within 1,000 pages");
    }

    /// The merge ends a full last page with a position whenever a shard is not yet known to be
    /// exhausted, and the page after it is empty; the one-range listing knows there is no more.
    /// Same items per page either way.
    fn without_trailing_empty_page(
        mut pages: Vec<Page<Arc<ClickRecord>>>,
    ) -> Vec<Page<Arc<ClickRecord>>> {
        if pages.len() > 1 && pages.last().is_some_and(|page| page.items.is_empty()) {
            pages.pop();
            if let Some(last) = pages.last_mut() {
                last.next_position = None;
            }
        }
        pages
    }

    /// A filter that matches nothing among the newest clicks ends a page at the read budget,
    /// `16 x (limit + 2)` clicks read: an empty page whose position is the last click read, and
    /// following positions still reaches exactly the matching clicks.
    #[tokio::test]
    async fn a_selective_filter_ends_pages_at_the_read_budget() {
        let store = MemoryBrandData::new();
        let brand_id = BrandId::parse("budget").unwrap();
        let mut newest_first = Vec::new();
        for index in 0..200_i64 {
            let click = ClickRecord {
                // The three oldest clicks are the only ones of offer `off_rare`.
                offer_id: Some(if index < 3 { "off_rare" } else { "off_common" }.into()),
                ..click_at(&brand_id, &format!("b{index:03}"), 1_000 + index)
            };
            store.insert_click(&click).await.unwrap();
            newest_first.insert(0, click);
        }
        let rare = ClickFilter {
            offer_id: Some("off_rare".into()),
            ..ClickFilter::default()
        };
        let first = store.list_clicks(&brand_id, &rare, 1, None).await.unwrap();
        let budget = usize::try_from(CLICK_SHARDS).unwrap() * 3;
        assert!(first.items.is_empty());
        assert_eq!(
            first.next_position,
            Some(click_sort_key(&newest_first[budget - 1])),
            "the page ends at the {budget}th newest click"
        );
        let pages =
            all_pages(async |position| store.list_clicks(&brand_id, &rare, 1, position).await)
                .await;
        let listed: Vec<&str> = pages
            .iter()
            .flat_map(|page| page.items.iter().map(|click| click.click_id.as_str()))
            .collect();
        assert_eq!(listed, ["b002", "b001", "b000"]);

        let nothing = ClickFilter {
            offer_id: Some("off_nobody".into()),
            ..ClickFilter::default()
        };
        let pages =
            all_pages(async |position| store.list_clicks(&brand_id, &nothing, 1, position).await)
                .await;
        assert!(pages.iter().all(|page| page.items.is_empty()));
        assert_eq!(pages.len(), 200_usize.div_ceil(budget), "{pages:?}");
    }

    #[tokio::test]
    async fn rollups_keep_the_newest_days_up_to_the_cap() {
        use crate::brand_data::rollups::{CLICKS, increments_for, rollup_shard};

        let store = MemoryBrandData::new().with_rollup_cap(3);
        let brand_id = BrandId::parse("capped").unwrap();
        // One click id, so every row lands in the same shard: five days, one row each.
        let shard = rollup_shard("same");
        for day in 0..5 {
            let increments = increments_for(
                day * 86_400_000,
                "same",
                None,
                None,
                &[(CLICKS.to_owned(), 1)],
            );
            let click = click_at(&brand_id, &format!("c{day}"), day * 86_400_000);
            store
                .insert_click_counted(&click, &increments)
                .await
                .unwrap();
        }
        let rows = store
            .query_rollups(
                &brand_id,
                RollupDimension::Total,
                shard,
                "1970-01-01",
                "1970-12-31",
            )
            .await
            .unwrap();
        let days: Vec<&str> = rows.iter().map(|row| row.day.as_str()).collect();
        assert_eq!(days, ["1970-01-03", "1970-01-04", "1970-01-05"]);
        assert!(rows.iter().all(|row| row.counter(CLICKS) == 1));
    }

    #[tokio::test]
    async fn activity_keeps_the_newest_records_up_to_the_cap() {
        let store = MemoryBrandData::with_activity_cap(3);
        let brand_id = BrandId::parse("capped").unwrap();
        for at in 0..10 {
            let record = sample_activity(&brand_id, at, Surface::Api, &format!("r{at}"));
            store.append_activity(&record).await.unwrap();
        }
        let page = store
            .list_activity(&brand_id, Default::default(), 10, None)
            .await
            .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r9", "r8", "r7"]);
        // The all-time count includes the seven the cap dropped; a refused duplicate is not counted.
        let duplicate = page.items[0].clone();
        assert!(store.append_activity(&duplicate).await.is_err());
        assert_eq!(store.activity_appended(Surface::Api), 10);
        assert_eq!(store.activity_appended(Surface::Mcp), 0);
    }

    fn document(brand_id: &BrandId, id: &str) -> Document {
        Document {
            brand_id: brand_id.clone(),
            kind: DocumentKind::Partner,
            id: id.to_owned(),
            version: 1,
            body: serde_json::json!({ "name": id }),
        }
    }

    /// Every write the derivation reads, in write order, with sequence numbers 1, 2, ... and the
    /// partition key its item has in DynamoDB; a rescoring carries the stored record and the new.
    #[tokio::test]
    async fn the_change_feed_carries_new_clicks_rescorings_and_new_documents_in_order() {
        let store = MemoryBrandData::new();
        store.enable_change_feed();
        let brand_id = BrandId::parse("feed").unwrap();
        let first = click_at(&brand_id, "c1", 1_000);
        store.insert_click(&first).await.unwrap();
        let rescored = ClickRecord {
            fraud_score: 95,
            at: 1_001,
            ..first.clone()
        };
        store.update_click(&rescored).await.unwrap();
        let (p1, p2) = (document(&brand_id, "ptr_1"), document(&brand_id, "ptr_2"));
        store
            .create_documents(&[(&p1, &[]), (&p2, &[])])
            .await
            .unwrap();
        // Writes that derive nothing, and writes that fail, add nothing.
        let activity = sample_activity(&brand_id, 5, Surface::Api, "r1");
        store.append_activity(&activity).await.unwrap();
        store
            .increment_counter(&brand_id, "rate", 0, 1, 99)
            .await
            .unwrap();
        assert_eq!(
            store.insert_click(&first).await,
            Err(StoreError::AlreadyExists)
        );
        assert_eq!(
            store.update_click(&click_at(&brand_id, "nope", 1)).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(
            store.create_document(&p1, &[]).await,
            Err(StoreError::AlreadyExists)
        );

        let click_partition = layout::click_partition(&brand_id, click_shard("c1"));
        let documents = layout::document(&brand_id, DocumentKind::Partner, "ptr_1").partition;
        let expected = vec![
            ChangeEvent {
                partition: click_partition.clone(),
                sequence: "1".into(),
                change: Change::NewClick(Box::new(first.clone())),
            },
            ChangeEvent {
                partition: click_partition,
                sequence: "2".into(),
                change: Change::ClickChanged {
                    before: Box::new(first),
                    after: Box::new(rescored),
                },
            },
            ChangeEvent {
                partition: documents.clone(),
                sequence: "3".into(),
                change: Change::NewDocument(Box::new(p1)),
            },
            ChangeEvent {
                partition: documents,
                sequence: "4".into(),
                change: Change::NewDocument(Box::new(p2)),
            },
        ];
        assert_eq!(store.pending_change_count(), 4);
        assert_eq!(store.pending_changes(10), expected);
        assert_eq!(store.pending_changes(2), expected[..2], "the oldest first");
        assert_eq!(
            store.pending_changes(10),
            expected,
            "reading acknowledges nothing"
        );
    }

    /// Acknowledging drops the changes up to and including a sequence number (compared as
    /// numbers), and sequence numbers go on increasing after it.
    #[tokio::test]
    async fn acknowledged_changes_leave_the_feed() {
        let store = MemoryBrandData::new();
        store.enable_change_feed();
        let brand_id = BrandId::parse("feed").unwrap();
        for index in 0..12 {
            store
                .insert_click(&click_at(&brand_id, &format!("c{index:02}"), index))
                .await
                .unwrap();
        }
        let sequences = |events: Vec<ChangeEvent>| -> Vec<String> {
            events.into_iter().map(|event| event.sequence).collect()
        };
        store.acknowledge_changes("0");
        assert_eq!(store.pending_change_count(), 12);
        // "9" is before "10" as a number, though not as text.
        store.acknowledge_changes("9");
        assert_eq!(sequences(store.pending_changes(10)), ["10", "11", "12"]);
        store.acknowledge_changes("9");
        assert_eq!(
            store.pending_change_count(),
            3,
            "acknowledging again is harmless"
        );
        store.enable_change_feed();
        assert_eq!(
            store.pending_change_count(),
            3,
            "enabling again keeps the feed"
        );
        store.acknowledge_changes("12");
        assert_eq!(store.pending_change_count(), 0);
        assert!(store.pending_changes(10).is_empty());
        store
            .insert_click(&click_at(&brand_id, "c12", 12))
            .await
            .unwrap();
        assert_eq!(sequences(store.pending_changes(10)), ["13"]);
        store.acknowledge_changes("1000");
        assert_eq!(store.pending_change_count(), 0);
    }

    /// A store nobody reads the feed of keeps none: ordinary tests and local runs do not hold
    /// every write twice.
    #[tokio::test]
    async fn the_change_feed_is_off_by_default() {
        let store = MemoryBrandData::new();
        let brand_id = BrandId::parse("feed").unwrap();
        let click = click_at(&brand_id, "c1", 1);
        store.insert_click(&click).await.unwrap();
        store.update_click(&click).await.unwrap();
        store
            .create_document(&document(&brand_id, "ptr_1"), &[])
            .await
            .unwrap();
        assert_eq!(store.pending_change_count(), 0);
        assert!(store.pending_changes(10).is_empty());
        store.acknowledge_changes("1");
        // Enabled later, it starts with the writes after.
        store.enable_change_feed();
        store.update_click(&click).await.unwrap();
        let pending = store.pending_changes(10);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].sequence, "1");
        assert!(matches!(pending[0].change, Change::ClickChanged { .. }));
    }

    /// The source cap drops a source's stream marks with its counts, as DynamoDB's TTL drops the
    /// whole item: past the cap, local mode counts afresh.
    #[tokio::test]
    async fn the_source_cap_drops_marks_with_the_counts() {
        let store = MemoryBrandData::new();
        let brand_id = BrandId::parse("sources").unwrap();
        let hits = SourceHits {
            window_start: 0,
            count: 1,
            latest_at: 10,
            expires_at: 1_900_000_000,
        };
        let span = StreamSpan {
            origin: "shard".into(),
            first_sequence: "1".into(),
            last_sequence: "1".into(),
        };
        let first = store
            .count_source_hits(&brand_id, "ip-marked", &hits, Some(&span))
            .await
            .unwrap();
        assert!(first.applied);
        let replay = store
            .count_source_hits(&brand_id, "ip-marked", &hits, Some(&span))
            .await
            .unwrap();
        assert!(!replay.applied);
        for index in 1..SOURCE_CAP {
            store
                .count_source_hits(&brand_id, &format!("ip-{index}"), &hits, None)
                .await
                .unwrap();
        }
        assert_eq!(store.lock().sources.len(), SOURCE_CAP);
        // Every source is live, so the cap clears them all, marks included.
        let after = store
            .count_source_hits(&brand_id, "ip-marked", &hits, Some(&span))
            .await
            .unwrap();
        assert_eq!(
            after,
            SourceTally {
                applied: true,
                clicks_in_window: 0,
                last_at: None,
                counted_through: None,
            }
        );
        assert_eq!(store.lock().sources.len(), 1);
    }

    #[tokio::test]
    async fn memory_brand_data_passes_the_conformance_suite() {
        super::super::conformance::run_all(&MemoryBrandData::new()).await;
    }
}
