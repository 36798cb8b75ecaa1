//! A [`BrandDataStore`] wrapper for tests: it logs every store call (to assert what a request
//! costs), injects faults into any operation or the Nth call ([`Fault`], [`Trigger`], the same as
//! the key store's `FaultyStore`), and makes the guard's own writes fail on demand (activity
//! appends, rate-limit counters), to prove that the limiter fails open and that an activity record
//! is retried and, failing that, preserved in the logs (a record a document write carries is
//! that write's, and fails only with it). A write is logged by its plain name whether or not it
//! carries rollup increments or an audit record (`insert_click`, `create_documents`,
//! `update_click`, `update_document`): it is one store call either way. The extension traits'
//! shorthands reach this wrapper as the calls they stand for, so `create_document` is logged as
//! `create_documents` and `list_documents` as `list_documents_by_prefix`.
//!
//! It implements each of the five narrow traits and forwards every method of each to the inner
//! store (`missing_trait_methods` is denied on every impl), so wrapping a store never changes what
//! it does: a backend's own `list_clicks` (the memory store's one range read) runs as it would
//! unwrapped. The listings that merge several reads (`list_clicks`, `list_activity`,
//! `read_rollups`) are therefore logged, and faulted, as one call by their own name; the queries
//! the inner store makes for them are its own business, not calls through this wrapper.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::clicks::{ClickFilter, ClickRecord};
use super::rollups::{RollupDimension, RollupIncrement, RollupRow, StreamSpan};
use super::{
    ActivityFilter, ActivityRecord, ActivityStore, ClickStore, CountedThrough, CounterStore,
    Document, DocumentKind, DocumentStore, RollupStore, SourceHits, SourceTally, Surface,
    UniqueClaim,
};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::fault::{Fault, FaultInjector, Trigger};
use crate::store::{Page, StoreError};

#[derive(Debug, Default)]
pub struct FaultyBrandData<S> {
    inner: S,
    failing_appends: AtomicU32,
    counters_down: AtomicBool,
    calls: Mutex<Vec<&'static str>>,
    faults: FaultInjector<&'static str>,
}

/// The operation names [`FaultyBrandData::take_calls`] reports and [`FaultyBrandData::inject`]
/// takes.
pub const OPERATIONS: [&str; 21] = [
    "create_documents",
    "claim_holder",
    "query_documents",
    "get_document",
    "update_document",
    "delete_document",
    "list_documents_by_prefix",
    "append_activity",
    "record_activity_summary",
    "query_activity",
    "list_activity",
    "insert_click",
    "get_click",
    "query_clicks",
    "list_clicks",
    "update_click",
    "count_source_hits",
    "query_rollups",
    "read_rollups",
    "add_rollup_once",
    "increment_counter",
];

impl<S> FaultyBrandData<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            failing_appends: AtomicU32::new(0),
            counters_down: AtomicBool::new(false),
            calls: Mutex::default(),
            faults: FaultInjector::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Injects `fault` into `operation` (a name from [`OPERATIONS`]; `None`: every operation) for
    /// the calls `trigger` names, as [`crate::store::faulty::FaultyStore::inject`] does for keys.
    pub fn inject(&self, operation: Option<&'static str>, fault: Fault, trigger: Trigger) {
        if let Some(name) = operation {
            assert!(OPERATIONS.contains(&name), "no store operation {name:?}");
        }
        self.faults.inject(operation, fault, trigger);
    }

    /// Removes every injected fault (not the append and counter switches below).
    pub fn clear(&self) {
        self.faults.clear();
    }

    /// Store calls made through this wrapper.
    pub fn calls(&self) -> u64 {
        self.faults.calls()
    }

    /// Calls an injected fault applied to.
    pub fn faults_fired(&self) -> u64 {
        self.faults.fired()
    }

    /// The store operations called since the last `take_calls`, in order, by method name.
    pub fn take_calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record(&self, operation: &'static str) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(operation);
    }

    /// The next `count` activity appends fail with a transient error.
    pub fn fail_next_appends(&self, count: u32) {
        self.failing_appends.store(count, Ordering::SeqCst);
    }

    /// Every counter increment fails until set back.
    pub fn set_counters_down(&self, down: bool) {
        self.counters_down.store(down, Ordering::SeqCst);
    }
}

fn injected() -> StoreError {
    StoreError::Unavailable("injected fault".into())
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: DocumentStore> DocumentStore for FaultyBrandData<S> {
    async fn create_documents_counted(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
        increments: &[RollupIncrement],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        self.record("create_documents");
        self.faults
            .run(
                "create_documents",
                self.inner
                    .create_documents_counted(documents, increments, activity),
            )
            .await
    }

    async fn claim_holder(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<Option<String>, StoreError> {
        self.record("claim_holder");
        self.faults
            .run(
                "claim_holder",
                self.inner.claim_holder(brand_id, kind, claim),
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
        self.record("query_documents");
        self.faults
            .run(
                "query_documents",
                self.inner
                    .query_documents(brand_id, kind, lower, upper, limit),
            )
            .await
    }

    async fn get_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        self.record("get_document");
        self.faults
            .run("get_document", self.inner.get_document(brand_id, kind, id))
            .await
    }

    async fn update_document(
        &self,
        document: &Document,
        released_claims: &[UniqueClaim],
        new_claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        self.record("update_document");
        self.faults
            .run(
                "update_document",
                self.inner
                    .update_document(document, released_claims, new_claims, activity),
            )
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
        self.record("delete_document");
        self.faults
            .run(
                "delete_document",
                self.inner
                    .delete_document(brand_id, kind, id, version, claims, activity),
            )
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
        self.record("list_documents_by_prefix");
        self.faults
            .run(
                "list_documents_by_prefix",
                self.inner.list_documents_by_prefix(
                    brand_id,
                    kind,
                    id_prefix,
                    limit,
                    after_position,
                ),
            )
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: ActivityStore> ActivityStore for FaultyBrandData<S> {
    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        self.record("append_activity");
        let failing = self
            .failing_appends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            return Err(injected());
        }
        self.faults
            .run("append_activity", self.inner.append_activity(record))
            .await
    }

    async fn replace_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        self.record("replace_activity");
        self.faults
            .run("replace_activity", self.inner.replace_activity(record))
            .await
    }

    async fn record_activity_summary(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        self.record("record_activity_summary");
        self.faults
            .run(
                "record_activity_summary",
                self.inner.record_activity_summary(record),
            )
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
        self.record("query_activity");
        self.faults
            .run(
                "query_activity",
                self.inner
                    .query_activity(brand_id, surface, shard, lower, upper, limit),
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
        self.record("list_activity");
        self.faults
            .run(
                "list_activity",
                self.inner
                    .list_activity(brand_id, filter, limit, after_position),
            )
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: ClickStore> ClickStore for FaultyBrandData<S> {
    async fn insert_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        self.record("insert_click");
        self.faults
            .run(
                "insert_click",
                self.inner.insert_click_counted(click, increments),
            )
            .await
    }

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError> {
        self.record("get_click");
        self.faults
            .run("get_click", self.inner.get_click(brand_id, click_id))
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
        self.record("query_clicks");
        self.faults
            .run(
                "query_clicks",
                self.inner
                    .query_clicks(brand_id, shard, lower, upper, limit),
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
        self.record("list_clicks");
        self.faults
            .run(
                "list_clicks",
                self.inner
                    .list_clicks(brand_id, filter, limit, after_position),
            )
            .await
    }

    async fn update_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        self.record("update_click");
        self.faults
            .run(
                "update_click",
                self.inner.update_click_counted(click, increments),
            )
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: RollupStore> RollupStore for FaultyBrandData<S> {
    async fn query_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        shard: u32,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.record("query_rollups");
        self.faults
            .run(
                "query_rollups",
                self.inner
                    .query_rollups(brand_id, dimension, shard, from_day, to_day),
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
        self.record("read_rollups");
        self.faults
            .run(
                "read_rollups",
                self.inner
                    .read_rollups(brand_id, dimension, from_day, to_day),
            )
            .await
    }

    async fn add_rollup_once(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
        spans: &[StreamSpan],
    ) -> Result<Option<CountedThrough>, StoreError> {
        self.record("add_rollup_once");
        self.faults
            .run(
                "add_rollup_once",
                self.inner.add_rollup_once(brand_id, increment, spans),
            )
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: CounterStore> CounterStore for FaultyBrandData<S> {
    async fn count_source_hits(
        &self,
        brand_id: &BrandId,
        source: &str,
        hits: &SourceHits,
        span: Option<&StreamSpan>,
    ) -> Result<SourceTally, StoreError> {
        self.record("count_source_hits");
        self.faults
            .run(
                "count_source_hits",
                self.inner.count_source_hits(brand_id, source, hits, span),
            )
            .await
    }

    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        amount: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        self.record("increment_counter");
        if self.counters_down.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.faults
            .run(
                "increment_counter",
                self.inner
                    .increment_counter(brand_id, name, window_start, amount, expires_at),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brand_data::ClickStoreExt;
    use crate::brand_data::memory::MemoryBrandData;
    use crate::store::conformance::fresh_brand_id;

    fn click(brand_id: &BrandId, click_id: &str, at: UnixMillis) -> ClickRecord {
        crate::brand_data::conformance::bare_click(brand_id, click_id, at)
    }

    /// A listing is the inner store's own (the memory store's one range read, not the default
    /// merge over this wrapper's shard queries): one call, the same page, faulted by its name.
    #[tokio::test]
    async fn a_listing_is_forwarded_whole_to_the_inner_store() {
        let store = FaultyBrandData::new(MemoryBrandData::new());
        let brand = fresh_brand_id("wrapped");
        for index in 0..40 {
            store
                .insert_click(&click(
                    &brand,
                    &format!("c{index}"),
                    1_700_000_000_000 + index,
                ))
                .await
                .unwrap();
        }
        assert_eq!(store.take_calls(), ["insert_click"; 40]);
        let filter = ClickFilter::default();
        let wrapped = store.list_clicks(&brand, &filter, 25, None).await.unwrap();
        assert_eq!(store.take_calls(), ["list_clicks"]);
        let direct = store.inner().list_clicks(&brand, &filter, 25, None).await;
        assert_eq!(Ok(wrapped), direct);

        store.inject(Some("list_clicks"), Fault::ServerError, Trigger::Next(1));
        assert!(store.list_clicks(&brand, &filter, 25, None).await.is_err());
        assert_eq!(store.faults_fired(), 1);
        assert!(store.list_clicks(&brand, &filter, 25, None).await.is_ok());
    }

    /// The source counter is logged and faulted as `count_source_hits`, one of the 21 distinct
    /// operation names.
    #[tokio::test]
    async fn the_source_counter_is_one_named_operation() {
        let mut names = OPERATIONS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPERATIONS.len(), "no name twice");
        let store = FaultyBrandData::new(MemoryBrandData::new());
        let brand = fresh_brand_id("wrapped");
        let hits = crate::brand_data::SourceHits {
            window_start: 0,
            count: 1,
            latest_at: 5,
            expires_at: 1_900_000_000,
        };
        store.inject(
            Some("count_source_hits"),
            Fault::ServerError,
            Trigger::Next(1),
        );
        assert!(
            store
                .count_source_hits(&brand, "198.51.100.7", &hits, None)
                .await
                .is_err()
        );
        let tally = store
            .count_source_hits(&brand, "198.51.100.7", &hits, None)
            .await
            .unwrap();
        assert!(
            tally.applied && tally.clicks_in_window == 0,
            "the fault wrote nothing"
        );
        assert_eq!(store.take_calls(), ["count_source_hits"; 2]);
    }

    /// The test wrapper forwards every method (its own `list_clicks` included), so a wrapped
    /// memory store is held to the same suite.
    #[tokio::test]
    async fn memory_brand_data_behind_the_faulty_wrapper_passes_the_conformance_suite() {
        let store = FaultyBrandData::new(MemoryBrandData::new());
        crate::brand_data::conformance::run_all(&store).await;
        assert_eq!(store.faults_fired(), 0);
        assert!(store.calls() > 0, "the suite went through the wrapper");
    }
}
