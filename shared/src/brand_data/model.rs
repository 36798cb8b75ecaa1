//! A model of DynamoDB in front of another brand-data store (usually the in-memory one), in the
//! spirit of object_store's `ThrottledStore`: every call waits a latency, writes to an item that
//! an ongoing transaction holds fail with `TransactionConflict`, each partition key serves at most
//! 1,000 write and 3,000 read units a second (a small burst beyond), and every request's read and
//! write units are counted per operation and per partition key. Moto serialises its requests and
//! never pushes back; this model is where contention and throughput are judged.
//!
//! It charges the items the DynamoDB backend writes, from the same [`layout`] functions, with the
//! backend's own retry rules: the SDK's throttling retries ([`STORE_MAX_ATTEMPTS`], backoff from
//! [`STORE_INITIAL_BACKOFF`]) and the backend's contention retries of counted transactions
//! ([`retry_on_contention`]). Time is tokio's, so it runs under a paused clock; runs repeat
//! exactly except where the code under test draws random numbers (the backend's contention-retry
//! jitter, the capture budget's lease shard).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::clicks::{CLICK_SHARDS, ClickFilter, ClickRecord, click_shard};
use super::dynamo::STREAM_MARK_PREFIX;
use super::layout::{self, ItemKey};
use super::rollups::{ROLLUP_SHARDS, RollupDimension, RollupIncrement, RollupRow, StreamSpan};
use super::{
    ActivityFilter, ActivityPartition, ActivityRecord, ActivityStore, ClickStore, CountedThrough,
    CounterStore, Document, DocumentKind, DocumentStore, RollupStore, SourceHits, SourceTally,
    Surface, UniqueClaim,
};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::dynamo::{STORE_INITIAL_BACKOFF, STORE_MAX_ATTEMPTS, retry_on_contention};
use crate::store::{Page, StoreError};

/// How the model behaves. [`ModelSettings::default`] is DynamoDB's documented per-partition
/// throughput with single-digit-millisecond latencies; [`ModelSettings::uniform`] gives every
/// call the same latency, to count round trips on the critical path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSettings {
    pub read_latency: Duration,
    pub write_latency: Duration,
    /// `TransactWriteItems` (two-phase inside DynamoDB, so slower than a single write).
    pub transaction_latency: Duration,
    pub partition_write_units_per_second: u64,
    pub partition_read_units_per_second: u64,
    /// How much unused capacity a partition can spend at once, in seconds of its rate.
    pub burst: Duration,
    /// The SDK's attempts for a throttled request, and the first backoff (doubling after).
    pub sdk_max_attempts: u32,
    pub sdk_initial_backoff: Duration,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            read_latency: Duration::from_millis(3),
            write_latency: Duration::from_millis(5),
            transaction_latency: Duration::from_millis(12),
            partition_write_units_per_second: 1_000,
            partition_read_units_per_second: 3_000,
            burst: Duration::from_millis(300),
            sdk_max_attempts: STORE_MAX_ATTEMPTS,
            sdk_initial_backoff: STORE_INITIAL_BACKOFF,
        }
    }
}

impl ModelSettings {
    /// Every call, read, write or transaction, takes `latency`.
    pub fn uniform(latency: Duration) -> Self {
        Self {
            read_latency: latency,
            write_latency: latency,
            transaction_latency: latency,
            ..Self::default()
        }
    }
}

/// What one operation has cost, summed over its calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationCost {
    pub calls: u64,
    /// Requests sent to DynamoDB, retries included.
    pub requests: u64,
    pub write_units: u64,
    /// Read units in halves (an eventually consistent read of up to 4 KB is half a unit).
    pub read_half_units: u64,
    /// Attempts refused for throughput (the SDK retried them) and calls that stayed throttled.
    pub throttled_attempts: u64,
    pub throttled_calls: u64,
    /// Attempts cancelled by a transaction conflict, and calls that still failed with one.
    pub conflicted_attempts: u64,
    pub conflicted_calls: u64,
}

/// What one partition key has been charged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionCost {
    pub write_units: u64,
    pub read_half_units: u64,
    /// The most write units charged to it within one second (from the first write of a second).
    pub peak_write_units_per_second: u64,
    window_start: Option<Instant>,
    window_units: u64,
}

/// The model's accounting, for tests and benches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelReport {
    pub operations: BTreeMap<&'static str, OperationCost>,
    pub partitions: BTreeMap<String, PartitionCost>,
}

impl ModelReport {
    pub fn total_write_units(&self) -> u64 {
        self.operations.values().map(|cost| cost.write_units).sum()
    }

    pub fn total(&self) -> OperationCost {
        let mut total = OperationCost::default();
        for cost in self.operations.values() {
            total.calls += cost.calls;
            total.requests += cost.requests;
            total.write_units += cost.write_units;
            total.read_half_units += cost.read_half_units;
            total.throttled_attempts += cost.throttled_attempts;
            total.throttled_calls += cost.throttled_calls;
            total.conflicted_attempts += cost.conflicted_attempts;
            total.conflicted_calls += cost.conflicted_calls;
        }
        total
    }

    /// The highest one-second write load of any partition of each kind
    /// ([`layout::partition_kind`]), with that partition.
    pub fn hottest_by_kind(&self) -> BTreeMap<&'static str, (String, u64)> {
        let mut hottest: BTreeMap<&'static str, (String, u64)> = BTreeMap::new();
        for (partition, cost) in &self.partitions {
            let entry = hottest
                .entry(layout::partition_kind(partition))
                .or_insert_with(|| (partition.clone(), 0));
            if cost.peak_write_units_per_second > entry.1 {
                *entry = (partition.clone(), cost.peak_write_units_per_second);
            }
        }
        hottest
    }
}

/// One write request's items: the table items it writes (with their sizes) and the index
/// entries that come with them.
#[derive(Debug, Clone, Default)]
struct Writes {
    items: Vec<(ItemKey, usize)>,
    /// Index partition and entry size.
    index_entries: Vec<(String, usize)>,
}

impl Writes {
    fn item(mut self, key: ItemKey, bytes: usize) -> Self {
        self.items.push((key, bytes));
        self
    }
}

/// How a write request goes to DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Single,
    Transaction,
    /// A transaction the backend tries again on a conflict (the counted writes).
    RetriedTransaction,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Items held by an ongoing transaction, with how many hold each.
    held: HashMap<ItemKey, u32>,
    buckets: HashMap<(bool, String), Bucket>,
    report: ModelReport,
    /// Per source item, the stream shards it holds a mark for: the item's size grows by them.
    source_marks: HashMap<ItemKey, BTreeSet<String>>,
    /// Per rollup row, the origins it holds a mark for: the row's size grows by them too.
    rollup_marks: HashMap<ItemKey, BTreeSet<String>>,
}

/// A transaction's hold on its items, released when dropped.
struct Held<'a> {
    state: &'a Mutex<State>,
    items: &'a [(ItemKey, usize)],
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (key, _) in self.items {
            if let Some(count) = state.held.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    state.held.remove(key);
                }
            }
        }
    }
}

/// The model around `inner`.
#[derive(Debug)]
pub struct DynamoModel<S> {
    inner: S,
    settings: ModelSettings,
    state: Mutex<State>,
}

impl<S> DynamoModel<S> {
    pub fn new(inner: S, settings: ModelSettings) -> Self {
        Self {
            inner,
            settings,
            state: Mutex::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn settings(&self) -> ModelSettings {
        self.settings
    }

    /// The accounting so far.
    pub fn report(&self) -> ModelReport {
        self.lock().report.clone()
    }

    /// Clears the accounting (not the stored data, not the partitions' spent capacity).
    pub fn reset_report(&self) {
        self.lock().report = ModelReport::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bucket of a partition's read or write capacity, refilled to now.
    fn bucket<'a>(&self, state: &'a mut State, write: bool, partition: &str) -> &'a mut Bucket {
        let rate = self.rate(write);
        let capacity = rate * self.settings.burst.as_secs_f64().max(0.001);
        let now = Instant::now();
        let bucket = state
            .buckets
            .entry((write, partition.to_owned()))
            .or_insert(Bucket {
                tokens: capacity,
                refilled_at: now,
            });
        let elapsed = now.duration_since(bucket.refilled_at).as_secs_f64();
        // A request larger than the burst still passes once the bucket is full.
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity.max(1.0));
        bucket.refilled_at = now;
        bucket
    }

    fn rate(&self, write: bool) -> f64 {
        if write {
            self.settings.partition_write_units_per_second as f64
        } else {
            self.settings.partition_read_units_per_second as f64
        }
    }

    /// Takes `units` from every partition named, or from none if one of them lacks them (a
    /// request is admitted whole or throttled). A partition with a full bucket admits any size.
    fn take_all(&self, state: &mut State, write: bool, units: &[(String, f64)]) -> bool {
        let capacity = self.rate(write) * self.settings.burst.as_secs_f64().max(0.001);
        let admitted = units.iter().all(|(partition, amount)| {
            let tokens = self.bucket(state, write, partition).tokens;
            tokens + 1e-9 >= amount.min(capacity.max(1.0))
        });
        if admitted {
            for (partition, amount) in units {
                self.bucket(state, write, partition).tokens -= amount;
            }
        }
        admitted
    }

    fn charge_partition(state: &mut State, partition: &str, write_units: u64, read_half: u64) {
        let now = Instant::now();
        let cost = state
            .report
            .partitions
            .entry(partition.to_owned())
            .or_default();
        cost.write_units += write_units;
        cost.read_half_units += read_half;
        if write_units > 0 {
            match cost.window_start {
                Some(start) if now.duration_since(start) < Duration::from_secs(1) => {
                    cost.window_units += write_units;
                }
                _ => {
                    cost.window_start = Some(now);
                    cost.window_units = write_units;
                }
            }
            cost.peak_write_units_per_second =
                cost.peak_write_units_per_second.max(cost.window_units);
        }
    }

    fn operation<'a>(state: &'a mut State, name: &'static str) -> &'a mut OperationCost {
        state.report.operations.entry(name).or_default()
    }

    /// The write units of `writes` per partition (an index's partitions apart from the table's).
    fn write_units(writes: &Writes, transactional: bool) -> Vec<(String, u64)> {
        let mut units: BTreeMap<String, u64> = BTreeMap::new();
        for (key, bytes) in &writes.items {
            *units.entry(key.partition.clone()).or_default() +=
                layout::write_units(*bytes, transactional);
        }
        for (partition, bytes) in &writes.index_entries {
            *units.entry(partition.clone()).or_default() += layout::write_units(*bytes, false);
        }
        units.into_iter().collect()
    }

    /// One attempt of a write: refused with `Contention` if an ongoing transaction holds one of
    /// its items (or, for a transaction, if another holds one), throttled if a partition is out of
    /// capacity (the SDK retries), else charged, held for a transaction's duration and run.
    async fn attempt_write<T, Fut>(
        &self,
        name: &'static str,
        writes: &Writes,
        transactional: bool,
        run: impl Fn() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let units = Self::write_units(writes, transactional);
        let mut backoff = self.settings.sdk_initial_backoff;
        let mut attempt = 1;
        loop {
            let admitted = {
                let mut state = self.lock();
                Self::operation(&mut state, name).requests += 1;
                if writes
                    .items
                    .iter()
                    .any(|(key, _)| state.held.contains_key(key))
                {
                    Self::operation(&mut state, name).conflicted_attempts += 1;
                    return Err(StoreError::Contention);
                }
                let wanted: Vec<(String, f64)> = units
                    .iter()
                    .map(|(partition, amount)| (partition.clone(), *amount as f64))
                    .collect();
                if self.take_all(&mut state, true, &wanted) {
                    // A failed condition consumes its write units too.
                    let mut total = 0;
                    for (partition, amount) in &units {
                        Self::charge_partition(&mut state, partition, *amount, 0);
                        total += amount;
                    }
                    Self::operation(&mut state, name).write_units += total;
                    if transactional {
                        for (key, _) in &writes.items {
                            *state.held.entry(key.clone()).or_default() += 1;
                        }
                    }
                    true
                } else {
                    Self::operation(&mut state, name).throttled_attempts += 1;
                    false
                }
            };
            if admitted {
                let latency = if transactional {
                    self.settings.transaction_latency
                } else {
                    self.settings.write_latency
                };
                // Released however the call ends: answered, failed, or dropped mid-flight (a
                // caller's timeout), as DynamoDB ends a transaction whatever its client does.
                let _release = transactional.then(|| Held {
                    state: &self.state,
                    items: &writes.items,
                });
                tokio::time::sleep(latency).await;
                return run().await;
            }
            if attempt >= self.settings.sdk_max_attempts {
                let mut state = self.lock();
                Self::operation(&mut state, name).throttled_calls += 1;
                return Err(StoreError::Throttled);
            }
            // The SDK's exponential backoff (its jitter left out, so runs repeat exactly).
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// A write call: counted, its attempts run as `kind` says, a lasting conflict counted.
    async fn write<T, Fut>(
        &self,
        name: &'static str,
        writes: Writes,
        kind: WriteKind,
        run: impl Fn() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        Self::operation(&mut self.lock(), name).calls += 1;
        let transactional = kind != WriteKind::Single;
        let result = if kind == WriteKind::RetriedTransaction {
            retry_on_contention(|| self.attempt_write(name, &writes, transactional, &run)).await
        } else {
            self.attempt_write(name, &writes, transactional, &run).await
        };
        if matches!(result, Err(StoreError::Contention)) {
            Self::operation(&mut self.lock(), name).conflicted_calls += 1;
        }
        result
    }

    /// A read call of `partitions` (queried concurrently, one round trip): throttled like a write
    /// if a partition is out of read capacity, charged by the bytes `size` finds in the answer.
    async fn read<T, Fut>(
        &self,
        name: &'static str,
        partitions: Vec<String>,
        consistent: bool,
        size: impl Fn(&T) -> usize,
        run: impl Fn() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        Self::operation(&mut self.lock(), name).calls += 1;
        let mut backoff = self.settings.sdk_initial_backoff;
        let mut attempt = 1;
        loop {
            let admitted = {
                let mut state = self.lock();
                Self::operation(&mut state, name).requests += partitions.len() as u64;
                // Read units are known only from the answer: admit on the smallest read (in
                // whole units, half a unit for an eventually consistent one).
                let minimum = if consistent { 1.0 } else { 0.5 };
                let wanted: Vec<(String, f64)> = partitions
                    .iter()
                    .map(|partition| (partition.clone(), minimum))
                    .collect();
                let admitted = self.take_all(&mut state, false, &wanted);
                if !admitted {
                    Self::operation(&mut state, name).throttled_attempts += 1;
                }
                admitted
            };
            if admitted {
                tokio::time::sleep(self.settings.read_latency).await;
                let result = run().await?;
                let bytes = size(&result);
                let per_partition = bytes.div_ceil(partitions.len().max(1));
                let mut state = self.lock();
                let mut total = 0;
                let minimum = if consistent { 1.0 } else { 0.5 };
                for partition in &partitions {
                    let half = layout::read_half_units(per_partition, consistent);
                    Self::charge_partition(&mut state, partition, 0, half);
                    // The rest of what the read cost, beyond what admission took.
                    self.bucket(&mut state, false, partition).tokens -=
                        (half as f64 / 2.0 - minimum).max(0.0);
                    total += half;
                }
                Self::operation(&mut state, name).read_half_units += total;
                return Ok(result);
            }
            if attempt >= self.settings.sdk_max_attempts {
                Self::operation(&mut self.lock(), name).throttled_calls += 1;
                return Err(StoreError::Throttled);
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

fn document_size(document: &Document) -> usize {
    let key = layout::document(&document.brand_id, document.kind, &document.id);
    layout::item_size(
        &key,
        &[("body", document.body.to_string().len()), ("version", 4)],
    )
}

fn claim_items(brand_id: &BrandId, kind: DocumentKind, claims: &[UniqueClaim]) -> Writes {
    claims.iter().fold(Writes::default(), |writes, claim| {
        let key = layout::claim(brand_id, kind, claim);
        let bytes = layout::item_size(&key, &[("id", 24)]);
        writes.item(key, bytes)
    })
}

fn rollup_items(brand_id: &BrandId, increments: &[RollupIncrement]) -> Writes {
    let merged = super::rollups::merge_increments(increments).unwrap_or_default();
    merged.iter().fold(Writes::default(), |writes, increment| {
        let key = layout::rollup_row(
            brand_id,
            increment.dimension,
            increment.shard,
            &increment.day,
            &increment.group,
        );
        let counters: Vec<(&str, usize)> = increment
            .counters
            .iter()
            .map(|(name, _)| (name.as_str(), 12))
            .collect();
        let bytes = layout::item_size(&key, &counters) + 20;
        writes.item(key, bytes)
    })
}

/// An activity record's item, appended alone or carried by a document write's transaction.
fn activity_writes(record: &ActivityRecord) -> Writes {
    let key = layout::activity(record);
    let bytes = layout::activity_item_size(&key, record);
    Writes::default().item(key, bytes)
}

/// A document write with its audit record, if it carries one: one more item in its transaction.
fn with_activity(writes: Writes, activity: Option<&ActivityRecord>) -> Writes {
    match activity {
        Some(record) => merged(writes, activity_writes(record)),
        None => writes,
    }
}

fn click_writes(click: &ClickRecord) -> Writes {
    let key = layout::click(
        &click.brand_id,
        click_shard(&click.click_id),
        &click.click_id,
    );
    let bytes = layout::click_item_size(&key, click);
    let index = (
        layout::index_partition(&key.partition),
        layout::click_index_entry_size(&key, click),
    );
    let mut writes = Writes::default().item(key, bytes);
    writes.index_entries.push(index);
    writes
}

/// A click write as the backend sends it: a single conditional write without rollups, else one
/// transaction with the rollup rows, which the backend retries on a conflict.
fn counted_click_writes(
    click: &ClickRecord,
    increments: &[RollupIncrement],
) -> (Writes, WriteKind) {
    if increments.is_empty() {
        (click_writes(click), WriteKind::Single)
    } else {
        (
            merged(
                click_writes(click),
                rollup_items(&click.brand_id, increments),
            ),
            WriteKind::RetriedTransaction,
        )
    }
}

fn merged(mut writes: Writes, more: Writes) -> Writes {
    writes.items.extend(more.items);
    writes.index_entries.extend(more.index_entries);
    writes
}

fn documents_size(documents: &[Document]) -> usize {
    documents.iter().map(document_size).sum()
}

fn activity_size(records: &[ActivityRecord]) -> usize {
    records
        .iter()
        .map(|record| layout::activity_item_size(&layout::activity(record), record))
        .sum()
}

fn clicks_size(clicks: &[ClickRecord]) -> usize {
    clicks
        .iter()
        .map(|click| {
            let key = layout::click(
                &click.brand_id,
                click_shard(&click.click_id),
                &click.click_id,
            );
            layout::click_item_size(&key, click)
        })
        .sum()
}

fn rollups_size(rows: &[RollupRow]) -> usize {
    rows.iter()
        .map(|row| 60 + row.group.len() + 20 * row.counters.len())
        .sum()
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: DocumentStore> DocumentStore for DynamoModel<S> {
    async fn create_documents_counted(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
        increments: &[RollupIncrement],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        let mut writes = Writes::default();
        for (document, claims) in documents {
            let key = layout::document(&document.brand_id, document.kind, &document.id);
            writes = writes.item(key, document_size(document));
            writes = merged(
                writes,
                claim_items(&document.brand_id, document.kind, claims),
            );
        }
        writes = with_activity(writes, activity);
        if let Some((document, _)) = documents.first() {
            writes = merged(writes, rollup_items(&document.brand_id, increments));
        }
        let kind = if increments.is_empty() {
            WriteKind::Transaction
        } else {
            WriteKind::RetriedTransaction
        };
        self.write("create_documents", writes, kind, || {
            self.inner
                .create_documents_counted(documents, increments, activity)
        })
        .await
    }

    async fn claim_holder(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<Option<String>, StoreError> {
        let partition = layout::claim(brand_id, kind, claim).partition;
        self.read(
            "claim_holder",
            vec![partition],
            true,
            |_| 100,
            || self.inner.claim_holder(brand_id, kind, claim),
        )
        .await
    }

    async fn query_documents(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        self.read(
            "query_documents",
            vec![brand_id.to_string()],
            false,
            |documents: &Vec<Document>| documents_size(documents),
            || {
                self.inner
                    .query_documents(brand_id, kind, lower, upper, limit)
            },
        )
        .await
    }

    async fn get_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        self.read(
            "get_document",
            vec![brand_id.to_string()],
            true,
            |document: &Option<Document>| document.as_ref().map_or(0, document_size),
            || self.inner.get_document(brand_id, kind, id),
        )
        .await
    }

    async fn update_document(
        &self,
        document: &Document,
        released_claims: &[UniqueClaim],
        new_claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        let key = layout::document(&document.brand_id, document.kind, &document.id);
        let mut writes = Writes::default().item(key, document_size(document));
        writes = merged(
            writes,
            claim_items(&document.brand_id, document.kind, released_claims),
        );
        writes = merged(
            writes,
            claim_items(&document.brand_id, document.kind, new_claims),
        );
        // The backend sends every update as a transaction, a lone document's too, so a record
        // adds an item and never changes the kind of write.
        let writes = with_activity(writes, activity);
        self.write("update_document", writes, WriteKind::Transaction, || {
            self.inner
                .update_document(document, released_claims, new_claims, activity)
        })
        .await
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
        let key = layout::document(brand_id, kind, id);
        let writes = merged(
            Writes::default().item(key, 100),
            claim_items(brand_id, kind, claims),
        );
        let writes = with_activity(writes, activity);
        self.write("delete_document", writes, WriteKind::Transaction, || {
            self.inner
                .delete_document(brand_id, kind, id, version, claims, activity)
        })
        .await
    }

    async fn list_documents_by_prefix(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id_prefix: &str,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        self.read(
            "list_documents_by_prefix",
            vec![brand_id.to_string()],
            false,
            |page: &Page<Document>| documents_size(&page.items),
            || {
                self.inner.list_documents_by_prefix(
                    brand_id,
                    kind,
                    id_prefix,
                    limit,
                    after_position,
                )
            },
        )
        .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: ActivityStore> ActivityStore for DynamoModel<S> {
    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let writes = activity_writes(record);
        self.write("append_activity", writes, WriteKind::Single, || {
            self.inner.append_activity(record)
        })
        .await
    }

    async fn replace_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let writes = activity_writes(record);
        self.write("replace_activity", writes, WriteKind::Single, || {
            self.inner.replace_activity(record)
        })
        .await
    }

    async fn record_activity_summary(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let key = layout::activity(record);
        let bytes = layout::activity_item_size(&key, record);
        let writes = Writes::default().item(key, bytes);
        self.write("record_activity_summary", writes, WriteKind::Single, || {
            self.inner.record_activity_summary(record)
        })
        .await
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
        self.read(
            "query_activity",
            vec![layout::activity_partition(brand_id, surface, shard)],
            false,
            |records: &Vec<ActivityRecord>| activity_size(records),
            || {
                self.inner
                    .query_activity(brand_id, surface, shard, lower, upper, limit)
            },
        )
        .await
    }

    async fn list_activity(
        &self,
        brand_id: &BrandId,
        filter: ActivityFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<ActivityRecord>, StoreError> {
        let partitions = super::activity_partitions_of(filter.surface)
            .into_iter()
            .map(|partition| match partition {
                ActivityPartition::Log(surface, shard) => {
                    layout::activity_partition(brand_id, surface, shard)
                }
                ActivityPartition::Clicks(shard) => {
                    layout::index_partition(&layout::click_partition(brand_id, shard))
                }
            })
            .collect();
        self.read(
            "list_activity",
            partitions,
            false,
            |page: &Page<ActivityRecord>| activity_size(&page.items),
            || {
                self.inner
                    .list_activity(brand_id, filter, limit, after_position)
            },
        )
        .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: ClickStore> ClickStore for DynamoModel<S> {
    async fn insert_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        let (writes, kind) = counted_click_writes(click, increments);
        self.write("insert_click", writes, kind, || {
            self.inner.insert_click_counted(click, increments)
        })
        .await
    }

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError> {
        let partition = layout::click_partition(brand_id, click_shard(click_id));
        self.read(
            "get_click",
            vec![partition],
            true,
            |click: &Option<ClickRecord>| {
                click
                    .as_ref()
                    .map_or(0, |c| clicks_size(std::slice::from_ref(c)))
            },
            || self.inner.get_click(brand_id, click_id),
        )
        .await
    }

    async fn query_clicks(
        &self,
        brand_id: &BrandId,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ClickRecord>, StoreError> {
        self.read(
            "query_clicks",
            vec![layout::index_partition(&layout::click_partition(
                brand_id, shard,
            ))],
            false,
            |clicks: &Vec<ClickRecord>| clicks_size(clicks),
            || {
                self.inner
                    .query_clicks(brand_id, shard, lower, upper, limit)
            },
        )
        .await
    }

    async fn list_clicks(
        &self,
        brand_id: &BrandId,
        filter: &ClickFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Arc<ClickRecord>>, StoreError> {
        let partitions = (0..CLICK_SHARDS)
            .map(|shard| layout::index_partition(&layout::click_partition(brand_id, shard)))
            .collect();
        self.read(
            "list_clicks",
            partitions,
            false,
            |page: &Page<Arc<ClickRecord>>| {
                page.items
                    .iter()
                    .map(|click| clicks_size(std::slice::from_ref(click.as_ref())))
                    .sum()
            },
            || {
                self.inner
                    .list_clicks(brand_id, filter, limit, after_position)
            },
        )
        .await
    }

    async fn update_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        let (writes, kind) = counted_click_writes(click, increments);
        self.write("update_click", writes, kind, || {
            self.inner.update_click_counted(click, increments)
        })
        .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: RollupStore> RollupStore for DynamoModel<S> {
    async fn query_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        shard: u32,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.read(
            "query_rollups",
            vec![layout::rollup_partition(brand_id, dimension, shard)],
            false,
            |rows: &Vec<RollupRow>| rollups_size(rows),
            || {
                self.inner
                    .query_rollups(brand_id, dimension, shard, from_day, to_day)
            },
        )
        .await
    }

    async fn read_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let partitions = (0..ROLLUP_SHARDS)
            .map(|shard| layout::rollup_partition(brand_id, dimension, shard))
            .collect();
        self.read(
            "read_rollups",
            partitions,
            false,
            |rows: &Vec<RollupRow>| rollups_size(rows),
            || {
                self.inner
                    .read_rollups(brand_id, dimension, from_day, to_day)
            },
        )
        .await
    }

    async fn add_rollup_once(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
        spans: &[StreamSpan],
    ) -> Result<Option<CountedThrough>, StoreError> {
        // One conditional `UpdateItem` of the row (a failed condition pays its units too). The
        // row carries a `w:<origin>` mark (40 digits) per origin it has counted, this call's
        // included: DynamoDB charges the larger image.
        let mut writes = rollup_items(brand_id, std::slice::from_ref(increment));
        if let Some((key, bytes)) = writes.items.first_mut() {
            let state = self.lock();
            let held = state.rollup_marks.get(key);
            *bytes += held
                .into_iter()
                .flatten()
                .map(String::as_str)
                .chain(
                    spans
                        .iter()
                        .map(|span| span.origin.as_str())
                        .filter(|origin| !held.is_some_and(|held| held.contains(*origin))),
                )
                .map(|origin| STREAM_MARK_PREFIX.len() + origin.len() + 40)
                .sum::<usize>();
        }
        let row = writes.items.first().map(|(key, _)| key.clone());
        let counted = self
            .write("add_rollup_once", writes, WriteKind::Single, || {
                self.inner.add_rollup_once(brand_id, increment, spans)
            })
            .await?;
        if let (None, Some(row)) = (&counted, row) {
            self.lock()
                .rollup_marks
                .entry(row)
                .or_default()
                .extend(spans.iter().map(|span| span.origin.clone()));
        }
        Ok(counted)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: CounterStore> CounterStore for DynamoModel<S> {
    async fn count_source_hits(
        &self,
        brand_id: &BrandId,
        source: &str,
        hits: &SourceHits,
        span: Option<&StreamSpan>,
    ) -> Result<SourceTally, StoreError> {
        // Refused before anything is sent, as the backend does.
        hits.checked(span)?;
        let key = layout::source(brand_id, source);
        // The item carries a `w:<stream shard>` mark (40 digits) per stream shard that has counted
        // into it, the one this call writes included: DynamoDB charges the larger image.
        let marks: usize = {
            let state = self.lock();
            let held = state.source_marks.get(&key);
            let written = span
                .map(|span| span.origin.as_str())
                .filter(|shard| !held.is_some_and(|held| held.contains(*shard)));
            held.into_iter()
                .flatten()
                .map(String::as_str)
                .chain(written)
                .map(|shard| STREAM_MARK_PREFIX.len() + shard.len() + 40)
                .sum()
        };
        let bytes = layout::item_size(
            &key,
            &[("clicks", 6), ("window_start", 13), ("last_at", 13)],
        ) + marks;
        let writes = Writes::default().item(key.clone(), bytes);
        let tally = self
            .write(
                "count_source_hits",
                writes.clone(),
                WriteKind::Single,
                || self.inner.count_source_hits(brand_id, source, hits, span),
            )
            .await?;
        if let Some(span) = span.filter(|_| tally.applied) {
            self.lock()
                .source_marks
                .entry(key)
                .or_default()
                .insert(span.origin.clone());
        }
        // The backend's second write: its first assumes the stored window is current and the
        // stored sighting older (or no item). The first hits of a new window for a known source
        // (a reset, seen as nothing counted before but a sighting), or hits older than the last
        // sighting, fail that condition and are written again. A replay is told from the first
        // write's failure.
        let second_write = tally.applied
            && tally
                .last_at
                .is_some_and(|last| tally.clicks_in_window == 0 || last > hits.latest_at);
        if second_write {
            self.attempt_write("count_source_hits", &writes, false, || async { Ok(()) })
                .await?;
        }
        Ok(tally)
    }

    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        amount: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        let key = layout::counter(brand_id, name, window_start);
        let bytes = layout::item_size(&key, &[("count", 6), ("expires_at", 10)]);
        let writes = Writes::default().item(key, bytes);
        self.write("increment_counter", writes, WriteKind::Single, || {
            self.inner
                .increment_counter(brand_id, name, window_start, amount, expires_at)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brand_data::ClickStoreExt;
    use crate::brand_data::memory::MemoryBrandData;
    use crate::brand_data::rollups::{CLICKS, increments_for};

    const AT: UnixMillis = 1_795_000_000_000;

    fn brand() -> BrandId {
        BrandId::parse("acme").unwrap()
    }

    fn click(id: &str) -> ClickRecord {
        ClickRecord {
            brand_id: brand(),
            click_id: id.to_owned(),
            at: AT,
            offer_id: Some("off_1".into()),
            partner_id: Some("prt_1".into()),
            sub_ids: Default::default(),
            landing_url: None,
            referrer: None,
            source_ip: "192.0.2.1".into(),
            user_agent: "Mozilla/5.0".into(),
            fraud_score: 0,
            audit: None,
        }
    }

    fn counted(click: &ClickRecord) -> Vec<RollupIncrement> {
        increments_for(
            click.at,
            &click.click_id,
            click.offer_id.as_deref(),
            click.partner_id.as_deref(),
            &[(CLICKS.to_owned(), 1)],
        )
    }

    fn model(settings: ModelSettings) -> Arc<DynamoModel<MemoryBrandData>> {
        Arc::new(DynamoModel::new(MemoryBrandData::new(), settings))
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_waits_its_latency_and_transactions_wait_longer() {
        let model = model(ModelSettings::default());
        let settings = model.settings();
        let started = Instant::now();
        model.insert_click(&click("c1")).await.unwrap();
        assert_eq!(started.elapsed(), settings.write_latency);
        let started = Instant::now();
        let second = click("c2");
        model
            .insert_click_counted(&second, &counted(&second))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), settings.transaction_latency);
        assert!(settings.transaction_latency > settings.write_latency);
        let started = Instant::now();
        model.get_click(&brand(), "c1").await.unwrap().unwrap();
        assert_eq!(started.elapsed(), settings.read_latency);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_to_an_item_an_ongoing_transaction_holds_conflicts() {
        let model = model(ModelSettings::default());
        let stored = click("c1");
        model.insert_click(&stored).await.unwrap();
        let mut rescored = stored.clone();
        rescored.fraud_score = 50;
        let increments = counted(&rescored);
        // The transaction holds the click item; a single write of it meanwhile is refused.
        let (transaction, single) =
            tokio::join!(model.update_click_counted(&rescored, &increments), async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                model.update_click(&stored).await
            });
        transaction.unwrap();
        assert_eq!(single, Err(StoreError::Contention));
        let report = model.report();
        assert_eq!(report.operations["update_click"].conflicted_attempts, 1);
        assert_eq!(report.operations["update_click"].conflicted_calls, 1);
        // Once the transaction is over, the same write goes through.
        model.update_click(&stored).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_transaction_dropped_mid_flight_releases_its_items() {
        let model = model(ModelSettings::default());
        let stored = click("c1");
        model.insert_click(&stored).await.unwrap();
        let increments = counted(&stored);
        // The caller gives up while the transaction is in flight.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(1),
            model.update_click_counted(&stored, &increments),
        )
        .await;
        assert!(abandoned.is_err());
        model.update_click(&stored).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn counted_transactions_on_one_rollup_row_conflict_and_are_retried() {
        let model = model(ModelSettings::default());
        // Two clicks whose rollup increments land on the same rows (same shard, day, groups).
        let first = click("c1");
        let increments = counted(&first);
        let other = click("c1x");
        let (a, b) = tokio::join!(model.insert_click_counted(&first, &increments), async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            model.insert_click_counted(&other, &increments).await
        });
        a.unwrap();
        b.unwrap();
        let cost = &model.report().operations["insert_click"];
        // The backend's retry waits 10 ms plus a random jitter: while the first transaction is
        // still in flight, the retry may conflict once more before it goes through.
        assert!(cost.conflicted_attempts >= 1, "{cost:?}");
        assert_eq!(cost.conflicted_calls, 0);
        assert_eq!(cost.calls, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hot_partition_is_throttled_beyond_its_write_units_and_others_are_not() {
        let settings = ModelSettings {
            sdk_max_attempts: 1,
            ..ModelSettings::default()
        };
        let model = model(settings);
        let acme = brand();
        let hot = (0..2_000).map(|_| model.increment_counter(&acme, "hot", 0, 1, 0));
        let results = futures_util::future::join_all(hot).await;
        let throttled = results
            .iter()
            .filter(|result| **result == Err(StoreError::Throttled))
            .count();
        // The burst allowance (300 ms of 1,000 units/s) admits 300 at once; the rest wait.
        assert_eq!(throttled, 2_000 - 300);
        let spread = (0..2_000).map(|n| {
            let model = model.clone();
            async move {
                model
                    .increment_counter(&brand(), &format!("cold-{n}"), 0, 1, 0)
                    .await
            }
        });
        let results = futures_util::future::join_all(spread).await;
        assert!(results.iter().all(Result::is_ok));
        let report = model.report();
        assert_eq!(
            report.operations["increment_counter"].throttled_calls,
            1_700
        );
        assert_eq!(report.partitions["acme#COUNTER#hot"].write_units, 300);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sdk_retries_a_throttled_request_after_its_backoff() {
        let settings = ModelSettings {
            partition_write_units_per_second: 10,
            burst: Duration::from_millis(100),
            ..ModelSettings::default()
        };
        let model = model(settings);
        // One unit of burst: the first write passes, the second waits one backoff (50 ms: half a
        // unit refilled, not enough) and a second one (100 ms more) and passes.
        model
            .increment_counter(&brand(), "n", 0, 1, 0)
            .await
            .unwrap();
        let started = Instant::now();
        model
            .increment_counter(&brand(), "n", 0, 1, 0)
            .await
            .unwrap();
        assert_eq!(
            started.elapsed(),
            settings.sdk_initial_backoff * 3 + settings.write_latency
        );
        let cost = &model.report().operations["increment_counter"];
        assert_eq!(cost.throttled_attempts, 2);
        assert_eq!(cost.requests, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn write_units_follow_item_size_transactions_and_the_index() {
        let model = model(ModelSettings::default());
        let plain = click("c1");
        model.insert_click(&plain).await.unwrap();
        // Under 1 KB: one unit for the item, one for its index entry.
        assert_eq!(model.report().total_write_units(), 2);
        model.reset_report();
        let counted_click = click("c2");
        let increments = counted(&counted_click);
        model
            .insert_click_counted(&counted_click, &increments)
            .await
            .unwrap();
        // In a transaction: 2 per item (the click and its 3 rollup rows), the index entry 1.
        let report = model.report();
        assert_eq!(report.total_write_units(), 2 + 3 * 2 + 1);
        let kinds = report.hottest_by_kind();
        assert_eq!(kinds["CLICK"].1, 2);
        assert_eq!(kinds["CLICK by_time"].1, 1);
        assert_eq!(kinds["ROLLUP"].1, 2);
        model.reset_report();
        let mut large = click("c3");
        large.landing_url = Some(format!("https://shop.example/{}", "a".repeat(1_500)));
        model.insert_click(&large).await.unwrap();
        assert_eq!(model.report().total_write_units(), 2 + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_charged_by_the_bytes_they_return() {
        let model = model(ModelSettings::default());
        model.insert_click(&click("c1")).await.unwrap();
        model.get_click(&brand(), "c1").await.unwrap();
        // A strongly consistent read of under 4 KB: one unit (two halves).
        assert_eq!(model.report().operations["get_click"].read_half_units, 2);
        model
            .list_clicks(&brand(), &ClickFilter::default(), 25, None)
            .await
            .unwrap();
        let cost = &model.report().operations["list_clicks"];
        // One query per shard, half a unit each at least.
        assert_eq!(cost.requests, u64::from(CLICK_SHARDS));
        assert_eq!(cost.read_half_units, u64::from(CLICK_SHARDS));
    }

    /// Counting source hits costs what the backend sends: one conditional write of the source
    /// item, a second for the first hits of a new window of a known source (or hits older than
    /// its last sighting), none more for a replayed span (told from the first write's failure);
    /// the item's stream marks count in its size.
    #[tokio::test(start_paused = true)]
    async fn source_hits_cost_one_write_of_the_source_item_and_a_second_for_a_new_window() {
        let model = model(ModelSettings::default());
        let hour = 3_600_000;
        let hits = |window_start, latest_at| SourceHits {
            window_start,
            count: 1,
            latest_at,
            expires_at: 1_900_000_000,
        };
        let span = |shard: String| StreamSpan {
            origin: shard,
            first_sequence: "1".into(),
            last_sequence: "1".into(),
        };
        let count = async |hits: SourceHits, span: Option<&StreamSpan>| {
            model.reset_report();
            let tally = model
                .count_source_hits(&brand(), "192.0.2.1", &hits, span)
                .await
                .unwrap();
            let cost = model.report().operations["count_source_hits"].clone();
            (tally.applied, cost.requests, cost.write_units)
        };
        assert_eq!(count(hits(hour, hour + 1), None).await, (true, 1, 1));
        assert_eq!(count(hits(hour, hour + 2), None).await, (true, 1, 1));
        assert_eq!(count(hits(2 * hour, 2 * hour), None).await, (true, 2, 2));
        assert_eq!(
            count(hits(2 * hour, 2 * hour - 5), None).await,
            (true, 2, 2),
            "an older sighting"
        );
        // Marks of 200-character stream shard ids: three fit in 1 KB with the counts, a fourth
        // does not, and the item stays that large for every write after.
        let shards: Vec<String> = (0..4).map(|n| format!("{n}{}", "s".repeat(199))).collect();
        for shard in &shards[..3] {
            let counted = count(hits(2 * hour, 2 * hour + 1), Some(&span(shard.clone()))).await;
            assert_eq!(counted, (true, 1, 1));
        }
        let fourth = span(shards[3].clone());
        assert_eq!(
            count(hits(2 * hour, 2 * hour + 1), Some(&fourth)).await,
            (true, 1, 2)
        );
        assert_eq!(
            count(hits(2 * hour, 2 * hour + 1), Some(&span(shards[0].clone()))).await,
            (false, 1, 2),
            "a replay: the one write that failed its condition"
        );
        // Refused hits cost nothing.
        model.reset_report();
        let none = SourceHits {
            count: 0,
            ..hits(2 * hour, 2 * hour)
        };
        assert!(matches!(
            model
                .count_source_hits(&brand(), "192.0.2.1", &none, None)
                .await,
            Err(StoreError::Rejected(_))
        ));
        assert_eq!(model.report().total_write_units(), 0);
    }

    /// An update that carries its request's audit record is still one call and one round trip:
    /// one transaction of two items, the document and the record, at 2 write units each (under
    /// 1 KB), where appending the record after it would be a second round trip.
    #[tokio::test(start_paused = true)]
    async fn an_update_with_its_activity_record_is_one_two_item_transaction() {
        use crate::brand_data::DocumentStoreExt;
        use crate::brand_data::conformance::sample_activity;

        let latency = Duration::from_millis(10);
        let model = model(ModelSettings::uniform(latency));
        let v1 = Document {
            brand_id: brand(),
            kind: DocumentKind::Partner,
            id: "ptr_1".into(),
            version: 1,
            body: serde_json::json!({ "name": "First" }),
        };
        model.create_document(&v1, &[]).await.unwrap();
        model.reset_report();
        let record = sample_activity(&brand(), AT, Surface::Api, "req_1");
        let v2 = Document {
            version: 2,
            ..v1.clone()
        };
        let started = Instant::now();
        model
            .update_document(&v2, &[], &[], Some(&record))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), latency, "one round trip");
        let report = model.report();
        assert_eq!(
            report.operations.keys().copied().collect::<Vec<_>>(),
            ["update_document"],
            "no append after the write"
        );
        let cost = &report.operations["update_document"];
        assert_eq!((cost.calls, cost.requests), (1, 1));
        assert_eq!(cost.write_units, 2 * 2, "a two-item transaction");
        assert_eq!(
            report.partitions[&layout::activity(&record).partition].write_units,
            2
        );
        assert_eq!(report.partitions[brand().as_str()].write_units, 2);
        let listed = model
            .inner()
            .list_activity(&brand(), ActivityFilter::default(), 10, None)
            .await
            .unwrap();
        assert_eq!(listed.items, [record]);

        // Without a record: a one-item transaction.
        model.reset_report();
        let v3 = Document {
            version: 3,
            ..v1.clone()
        };
        model.update_document(&v3, &[], &[], None).await.unwrap();
        assert_eq!(model.report().operations["update_document"].write_units, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_model_passes_the_brand_data_conformance_suite() {
        let model = DynamoModel::new(MemoryBrandData::new(), ModelSettings::default());
        crate::brand_data::conformance::run_all(&model).await;
    }
}
