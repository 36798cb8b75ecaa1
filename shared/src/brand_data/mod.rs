//! Storage for a brand's program data: versioned JSON documents (partners, offers, …) with
//! per-brand unique fields, clicks, the request activity log, fixed-window counters for rate
//! limits, and daily rollups. Every item lives under a partition key that begins with the brand id.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use self::clicks::{CLICK_SHARDS, ClickFilter, ClickRecord, click_sort_key, is_click_sort_key};
use self::merge::{MergePlan, merge_newest_first};
use self::rollups::{RollupDimension, RollupIncrement, RollupRow};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::{Page, StoreError};

pub mod changes;
pub mod clicks;
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod dynamo;
#[cfg(any(test, feature = "test-support"))]
pub mod faulty;
pub mod layout;
pub mod memory;
pub mod merge;
pub mod model;
pub mod rollups;

/// The kinds of document the public API manages. The name is part of the stored sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentKind {
    Partner,
    Offer,
    PricingRule,
    Conversion,
    FraudSignal,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "PARTNER",
            Self::Offer => "OFFER",
            Self::PricingRule => "RULE",
            Self::Conversion => "CONVERSION",
            Self::FraudSignal => "FRAUD",
        }
    }
}

/// One stored document. `version` starts at 1 and grows by one with every update, so concurrent
/// updates cannot silently overwrite each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub brand_id: BrandId,
    pub kind: DocumentKind,
    pub id: String,
    pub version: u64,
    pub body: serde_json::Value,
}

/// A field value that must be unique among a brand's documents of one kind (e.g. a slug).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueClaim {
    pub field: &'static str,
    pub value: String,
}

/// Which API surface served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    Api,
    Mcp,
    Capture,
}

impl Surface {
    pub const ALL: [Surface; 3] = [Surface::Api, Surface::Mcp, Surface::Capture];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Mcp => "mcp",
            Self::Capture => "capture",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|surface| surface.as_str() == text)
    }

    /// Partitions the surface's activity log is spread over, so no brand's surface is held to
    /// one partition key's 1,000 writes a second: capture for a brand at 10,000 captures/s (625
    /// records/s a shard), the API and MCP for what their per-key budgets let through.
    pub fn activity_shards(self) -> u32 {
        match self {
            Self::Capture => 16,
            Self::Api | Self::Mcp => 4,
        }
    }

    /// The shard of the surface's activity log a request's record goes to, from its request id.
    pub fn activity_shard(self, request_id: &str) -> u32 {
        crc32fast::hash(request_id.as_bytes()) % self.activity_shards()
    }
}

/// One audited request, in the brand's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub brand_id: BrandId,
    pub at: UnixMillis,
    pub request_id: String,
    pub surface: Surface,
    pub method: String,
    /// The request path (API, capture) or tool name (MCP).
    pub target: String,
    pub status: u16,
    pub latency_ms: u64,
    pub key_id: String,
    pub fingerprint: String,
    pub source_ip: String,
    pub user_agent: String,
    /// `ok`, or why the request was refused after its key was recognised (`revoked_key`,
    /// `rate_limited`).
    pub outcome: String,
    /// Only on a summary: the refused attempts beyond their audit budget in the window that starts
    /// at `at`, standing in for one record each. Method, target, source and user agent are those
    /// of the latest attempt counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u64>,
    /// When the store may drop the record (Unix seconds, DynamoDB TTL).
    pub expires_at: i64,
    /// Only on a new capture's record, which its click item holds
    /// ([`ClickRecord::capture_activity`]): the click, whose sort key orders the record in the
    /// listing. Never stored in the activity log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
}

/// Every [`ActivityRecord::outcome`] the edge writes: served, refused for a revoked key (the leak
/// audit), refused over the rate limit.
pub const ACTIVITY_OUTCOMES: [&str; 3] = ["ok", "revoked_key", "rate_limited"];

/// The outcome named `text`, if it is one of [`ACTIVITY_OUTCOMES`].
pub fn activity_outcome(text: &str) -> Option<&'static str> {
    ACTIVITY_OUTCOMES
        .into_iter()
        .find(|outcome| *outcome == text)
}

/// What to list from the activity log. Times are inclusive bounds in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivityFilter {
    pub surface: Option<Surface>,
    pub from: Option<UnixMillis>,
    pub to: Option<UnixMillis>,
    /// Only records with this outcome (one of [`ACTIVITY_OUTCOMES`]).
    pub outcome: Option<&'static str>,
    /// Only records that have not expired at this time (Unix seconds): DynamoDB's TTL deletes
    /// expired items days late, and a click item, which holds its capture's record, never expires.
    pub live_at: Option<i64>,
}

impl ActivityFilter {
    /// Whether `record` passes the outcome and expiry filters (the surface and times are the
    /// range read).
    pub fn keeps(&self, record: &ActivityRecord) -> bool {
        self.outcome.is_none_or(|outcome| record.outcome == outcome)
            && self.live_at.is_none_or(|now| record.expires_at > now)
    }
}

/// A brand's documents (partners, offers, pricing rules, conversions, fraud signals): versioned
/// JSON bodies with per-brand unique claims. Every method is scoped to the brand it is given.
///
/// # Activity
///
/// Each write takes the request's own audit record (`activity`), so that a request's record is
/// durable with its write rather than one round trip after it. A record given is stored exactly
/// as [`ActivityStore::append_activity`] stores it (the same item, key and TTL attribute, and
/// never over an existing record), all or nothing with the write: if the write fails
/// (`Contention`, `AlreadyExists` for a taken id or claim, `NotFound`, `Rejected`, ...) no record
/// is stored, and if the record's slot is already taken nothing is written and the answer is
/// `AlreadyExists`. When both fail, the write's own error is the answer. The record is one more
/// item toward [`rollups::MAX_TRANSACTION_ITEMS`].
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Stores new documents (version 1), each with its unique claims, and adds `increments` to the
    /// rollups of the documents' brand, all or nothing. `AlreadyExists` if any id or claim is
    /// taken; `Rejected` for increments without a document (they would name no brand), documents
    /// of several brands with increments, bad increments, or more than
    /// [`rollups::MAX_TRANSACTION_ITEMS`] items in all.
    ///
    /// With `activity`, the request's audit record is stored in the same write, so it is durable
    /// exactly when the documents are: see [the trait's note on activity](DocumentStore#activity).
    /// Without documents, the record is stored alone.
    async fn create_documents_counted(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
        increments: &[RollupIncrement],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError>;

    /// The id of the document of `kind` holding `claim`, if any.
    async fn claim_holder(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<Option<String>, StoreError>;

    /// Documents of `kind` with `lower <= id <= upper`, highest id first, at most `limit`.
    async fn query_documents(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError>;

    async fn get_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError>;

    /// Replaces the body if the stored version is `document.version - 1`, releasing
    /// `released_claims` and taking `new_claims`, all or nothing, with `activity` if given
    /// ([see above](DocumentStore#activity)). `NotFound` if the document is gone, `Contention` if
    /// another update got there first, `AlreadyExists` if a new claim or the record's slot is
    /// taken; `Rejected` for more than [`rollups::MAX_TRANSACTION_ITEMS`] items in all.
    async fn update_document(
        &self,
        document: &Document,
        released_claims: &[UniqueClaim],
        new_claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError>;

    /// Deletes the document at `version` and its claims, all or nothing, with `activity` if given
    /// ([see above](DocumentStore#activity)). `NotFound` if the document is gone, `Contention` if
    /// it is at another version, `AlreadyExists` if the record's slot is taken; `Rejected` for
    /// more than [`rollups::MAX_TRANSACTION_ITEMS`] items in all.
    async fn delete_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
        version: u64,
        claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError>;

    /// The brand's documents of `kind` whose id starts with `id_prefix`, in id order, at most
    /// `limit`, after `after_position`. One query, whatever else the brand holds.
    async fn list_documents_by_prefix(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id_prefix: &str,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Document>, StoreError>;
}

/// Shorthands over [`DocumentStore`], implemented for every document store and never overridden,
/// so a wrapper cannot make them behave differently from the calls they stand for.
#[async_trait]
pub trait DocumentStoreExt: DocumentStore {
    /// Stores new documents (version 1), each with its unique claims, all or nothing, without an
    /// audit record.
    async fn create_documents(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
    ) -> Result<(), StoreError> {
        self.create_documents_counted(documents, &[], None).await
    }

    /// Stores one new document and its unique claims, all or nothing, without an audit record.
    async fn create_document(
        &self,
        document: &Document,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        self.create_documents_counted(&[(document, claims)], &[], None)
            .await
    }

    /// The brand's documents of `kind` in id order, at most `limit`, after `after_position`.
    async fn list_documents(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        self.list_documents_by_prefix(brand_id, kind, "", limit, after_position)
            .await
    }
}

impl<S: DocumentStore + ?Sized> DocumentStoreExt for S {}

/// The request activity log: one record per request, partitioned by brand and surface.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError>;

    /// Stores a summary record (one with `attempts`) in place of any earlier summary with the same
    /// time and request id and fewer attempts; one with as many or more is kept. Summaries are
    /// written from several containers with counts read from one shared counter, so the largest
    /// count is the latest.
    async fn record_activity_summary(&self, record: &ActivityRecord) -> Result<(), StoreError>;

    /// Stores `record` in place of the record with its time and request id, or as a new one if
    /// there is none: how the guard rewrites a read's record, written beside the rate check,
    /// when that check refused the request.
    async fn replace_activity(&self, record: &ActivityRecord) -> Result<(), StoreError>;

    /// One shard of one surface's records ([`Surface::activity_shard`]) with
    /// `lower <= sort key <= upper`, newest first, at most `limit`.
    async fn query_activity(
        &self,
        brand_id: &BrandId,
        surface: Surface,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ActivityRecord>, StoreError>;

    /// Newest first, across the filtered surfaces. The position is the sort key of the last record
    /// returned. Both backends answer with [`list_activity_across_surfaces`]: one query per
    /// shard of each surface, whatever the log's size. An outcome filter is applied to what those queries read,
    /// so a page of a rare outcome may be short (even empty) and still carry a cursor.
    async fn list_activity(
        &self,
        brand_id: &BrandId,
        filter: ActivityFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<ActivityRecord>, StoreError>;
}

/// A brand's clicks, stored once by id and once by time across [`CLICK_SHARDS`] shards.
#[async_trait]
pub trait ClickStore: Send + Sync {
    /// Stores a click once and adds `increments` to the brand's rollups: `AlreadyExists` if the
    /// brand already has this click id (nothing is changed then). The id view, the time view and
    /// the rollups are written together or not at all.
    async fn insert_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError>;

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError>;

    /// One shard's clicks with `lower <= time key <= upper`, newest first, at most `limit`.
    async fn query_clicks(
        &self,
        brand_id: &BrandId,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ClickRecord>, StoreError>;

    /// Newest first across the shards, filtered by offer and partner. A page reads at most
    /// `limit + 2` items per shard, whatever the brand's total ([`list_clicks_across_shards`]
    /// does that from [`Self::query_clicks`]; the memory store reads its one time index instead,
    /// and the conformance suite holds the two to the same pages). Records are shared, not
    /// copied: the memory store hands out the ones it holds (a page of 25 is the API's most
    /// common read, and copying its records was about 7% of the route's CPU time locally).
    async fn list_clicks(
        &self,
        brand_id: &BrandId,
        filter: &ClickFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Arc<ClickRecord>>, StoreError>;

    /// Replaces the record of a click that exists (capture raises its fraud score once the source
    /// counters are in) and adds `increments` to the brand's rollups, all or nothing. `NotFound`
    /// if there is no such click (nothing is changed then).
    async fn update_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError>;
}

/// Shorthands over [`ClickStore`], implemented for every click store and never overridden.
#[async_trait]
pub trait ClickStoreExt: ClickStore {
    /// [`ClickStore::insert_click_counted`] without rollups.
    async fn insert_click(&self, click: &ClickRecord) -> Result<(), StoreError> {
        self.insert_click_counted(click, &[]).await
    }

    /// [`ClickStore::update_click_counted`] without rollups.
    async fn update_click(&self, click: &ClickRecord) -> Result<(), StoreError> {
        self.update_click_counted(click, &[]).await
    }
}

impl<S: ClickStore + ?Sized> ClickStoreExt for S {}

/// Daily rollups (counts and sums per day and group), written with the events they count.
#[async_trait]
pub trait RollupStore: Send + Sync {
    /// One shard's rollup rows of `dimension` for `from_day <= day <= to_day` (`YYYY-MM-DD`), in
    /// (day, group) order. Paged internally; cost grows with days x groups, never with events.
    async fn query_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        shard: u32,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError>;

    /// Rollup rows of `dimension` over the day range, every shard summed. Both backends answer
    /// with [`read_rollups_across_shards`]: one query per shard, run concurrently.
    async fn read_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError>;

    /// Adds one row's counts from a stream batch, once, with one span per origin partition the
    /// counts came from: unless the row has already counted one of those origins at or past its
    /// span's `first_sequence`, the counters are added and the row notes every span's
    /// `last_sequence` for its origin, in one atomic write: `Ok(None)`. Otherwise nothing
    /// changes and the answer maps each origin the row has counted at or past its span's first
    /// event to the sequence it has counted through (40 digits), so a redelivery that reaches
    /// past a mark can send the rest. `Rejected` for a bad increment or spans
    /// ([`rollups::normalized_spans`]).
    async fn add_rollup_once(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
        spans: &[rollups::StreamSpan],
    ) -> Result<Option<CountedThrough>, StoreError>;
}

/// What a rollup row answers a replay: per origin it has counted at or past the span's first
/// event, the sequence it has counted through (40 digits).
pub type CountedThrough = std::collections::BTreeMap<String, String>;

/// Fixed-window counters: the edge's rate limits and capture's per-source click counts.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Counts `hits.count` clicks from `source` (a client IP) for the brand, in one atomic step
    /// on the source's item ([`layout::source`]), and answers what the item held before.
    ///
    /// The clicks go into the window that starts at `hits.window_start`: a stored window older
    /// than that is reset to `hits.count`; a late hit stamped with an older window than the stored
    /// one counts into the stored (current) one rather than turning it back. The latest sighting
    /// becomes the later of the stored one and `hits.latest_at`, and the item expires at
    /// `hits.expires_at` (Unix seconds). The answer is `applied: true`, with the window's clicks
    /// before these (0 for a new item or a reset window) and the sighting before (`None` for a
    /// new item).
    ///
    /// With a stream `span` (the stream function counting a batch's clicks), the item also notes,
    /// per origin partition, the last sequence number it has counted, exactly as
    /// [`RollupStore::add_rollup_once`] does for rollup rows: if it has already counted
    /// `span.origin` at or past `span.first_sequence`, the call is a replay (of the batch or
    /// of any part of it) and changes nothing; the answer is `applied: false` with the item's
    /// counts as they stand (its clicks, or 0 if its window is older than `hits.window_start`, and
    /// its last sighting). Otherwise the clicks are counted and the shard's mark moves to
    /// `span.last_sequence`, in the same step.
    ///
    /// `Rejected` for no hits (`hits.count == 0`) or a bad span ([`rollups::StreamSpan::normalized`]);
    /// `Contention` if the item kept changing under the call.
    async fn count_source_hits(
        &self,
        brand_id: &BrandId,
        source: &str,
        hits: &SourceHits,
        span: Option<&rollups::StreamSpan>,
    ) -> Result<SourceTally, StoreError>;

    /// Adds `amount` (negative to hand back what a refused request took) to the counter `name` of
    /// `brand_id` for the window starting at `window_start` and returns the new count. The counter
    /// expires at `expires_at` (Unix seconds).
    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        amount: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError>;
}

/// All of a brand's data in one store: what a function is handed at start-up. Each part of the
/// program takes only the narrow trait it uses (the rate limiter a [`CounterStore`], the audit
/// log an [`ActivityStore`]); an `Arc<dyn BrandDataStore>` coerces to any of them.
pub trait BrandDataStore:
    DocumentStore + ActivityStore + ClickStore + RollupStore + CounterStore
{
}

impl<S: DocumentStore + ActivityStore + ClickStore + RollupStore + CounterStore + ?Sized>
    BrandDataStore for S
{
}

/// A page of the activity log, newest first, merged from one [`ActivityStore::query_activity`]
/// per shard of each filtered surface and, where the capture surface is listed, one
/// [`ClickStore::query_clicks`] per click shard (a new capture's record is its click item): what
/// both backends' [`ActivityStore::list_activity`] does. Records are ordered by
/// [`activity_sort_key`], which for a capture held by its click is the click's own sort key, so
/// every partition read is in the merge's order.
pub async fn list_activity_across_surfaces<S: ActivityStore + ClickStore + ?Sized>(
    store: &S,
    brand_id: &BrandId,
    filter: ActivityFilter,
    limit: u32,
    after_position: Option<&str>,
) -> Result<Page<ActivityRecord>, StoreError> {
    let (lower, mut upper) = activity_sort_bounds(&filter);
    if let Some(position) = after_position {
        if !is_activity_sort_key(position) {
            return Err(StoreError::Corrupt("bad activity position".into()));
        }
        upper = upper.min(position.to_owned());
    }
    let partitions = activity_partitions_of(filter.surface);
    let plan = MergePlan {
        partitions: partitions.len(),
        upper: &upper,
        after_position,
        limit,
    };
    // A click without a capture's audit (one stored by other means) reads as `None`: it holds
    // its partition's place in the merge and is not listed.
    let page = merge_newest_first(
        plan,
        |(position, _): &(String, Option<ActivityRecord>)| position.clone(),
        |(_, record)| record.as_ref().is_some_and(|record| filter.keeps(record)),
        |partition, upper, count| {
            let partition = partitions[partition];
            let lower = &lower;
            async move {
                Ok(match partition {
                    ActivityPartition::Log(surface, shard) => store
                        .query_activity(brand_id, surface, shard, lower, &upper, count)
                        .await?
                        .into_iter()
                        .map(|record| (activity_sort_key(&record), Some(record)))
                        .collect(),
                    ActivityPartition::Clicks(shard) => store
                        .query_clicks(brand_id, shard, lower, &upper, count)
                        .await?
                        .into_iter()
                        .map(|click| (click_sort_key(&click), click.capture_activity()))
                        .collect(),
                })
            }
        },
    )
    .await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .filter_map(|(_, record)| record)
            .collect(),
        next_position: page.next_position,
    })
}

/// One partition an activity listing reads: a shard of a surface's log, or a click shard (the
/// records of new captures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityPartition {
    Log(Surface, u32),
    Clicks(u32),
}

/// Every partition an activity listing of `surface` (all surfaces if `None`) reads.
pub fn activity_partitions_of(surface: Option<Surface>) -> Vec<ActivityPartition> {
    let mut partitions: Vec<ActivityPartition> = activity_shards_of(surface)
        .into_iter()
        .map(|(surface, shard)| ActivityPartition::Log(surface, shard))
        .collect();
    if surface.is_none_or(|surface| surface == Surface::Capture) {
        partitions.extend((0..CLICK_SHARDS).map(ActivityPartition::Clicks));
    }
    partitions
}

/// Every (surface, shard) an activity listing of `surface` (all surfaces if `None`) reads.
pub fn activity_shards_of(surface: Option<Surface>) -> Vec<(Surface, u32)> {
    let surfaces = match surface {
        Some(surface) => vec![surface],
        None => Surface::ALL.to_vec(),
    };
    surfaces
        .into_iter()
        .flat_map(|surface| (0..surface.activity_shards()).map(move |shard| (surface, shard)))
        .collect()
}

/// Rollup rows of `dimension` over the day range with every shard summed, from one
/// [`RollupStore::query_rollups`] per shard run concurrently: what both backends'
/// [`RollupStore::read_rollups`] does.
pub async fn read_rollups_across_shards<S: RollupStore + ?Sized>(
    store: &S,
    brand_id: &BrandId,
    dimension: RollupDimension,
    from_day: &str,
    to_day: &str,
) -> Result<Vec<RollupRow>, StoreError> {
    let reads = (0..rollups::ROLLUP_SHARDS)
        .map(|shard| store.query_rollups(brand_id, dimension, shard, from_day, to_day));
    let shards = futures_util::future::try_join_all(reads).await?;
    Ok(rollups::sum_shards(shards.into_iter().flatten()))
}

/// What capture's fraud checks read from a source's counter: this window's clicks from the
/// source, this one included, and when the source was seen before (if ever, within the item's
/// lifetime). Capture derives it from the [`SourceTally`] of counting its one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceHit {
    pub clicks_in_window: u64,
    pub previous_at: Option<UnixMillis>,
}

/// Clicks from one source to count with [`CounterStore::count_source_hits`]: `count` clicks
/// (1 to `i64::MAX`) in the window that starts at `window_start`, the latest of them at
/// `latest_at`; the item expires at `expires_at` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceHits {
    pub window_start: UnixMillis,
    pub count: u64,
    pub latest_at: UnixMillis,
    pub expires_at: i64,
}

impl SourceHits {
    /// `Rejected` for no clicks or a bad span; else the span's origin with its sequence
    /// numbers zero-padded ([`rollups::StreamSpan::normalized`]), checked before any write so
    /// that every backend refuses the same calls.
    pub(crate) fn checked<'a>(
        &self,
        span: Option<&'a rollups::StreamSpan>,
    ) -> Result<Option<(&'a str, String, String)>, StoreError> {
        // DynamoDB numbers are written from an i64: more hits than that are refused everywhere.
        if self.count == 0 || i64::try_from(self.count).is_err() {
            return Err(StoreError::Rejected(format!(
                "{} source hits: a count is 1 to {}",
                self.count,
                i64::MAX
            )));
        }
        span.map(|span| {
            let (first, last) = span.normalized()?;
            Ok((span.origin.as_str(), first, last))
        })
        .transpose()
    }
}

/// What [`CounterStore::count_source_hits`] did and saw. `applied` is false only for a replayed
/// stream span (nothing changed); `clicks_in_window` and `last_at` are the item's before the
/// call's clicks (a replay: as it stands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTally {
    pub applied: bool,
    pub clicks_in_window: u64,
    pub last_at: Option<UnixMillis>,
    /// A replay's: the sequence the item has counted the span's origin through (40 digits), so
    /// a redelivery that reaches past it can send the rest.
    pub counted_through: Option<String>,
}

impl SourceTally {
    /// The answer to a replay: the stored counts as they stand, a stored window older than
    /// `window_start` counting as none.
    pub(crate) fn standing(
        stored_window: UnixMillis,
        stored_clicks: u64,
        last_at: Option<UnixMillis>,
        window_start: UnixMillis,
        counted_through: String,
    ) -> Self {
        Self {
            applied: false,
            counted_through: Some(counted_through),
            clicks_in_window: if stored_window < window_start {
                0
            } else {
                stored_clicks
            },
            last_at,
        }
    }
}

/// Sort key of an activity record: time first (zero-padded, so it sorts), then the request id;
/// for a new capture's record held by its click, the click id (the click item's sort key).
pub fn activity_sort_key(record: &ActivityRecord) -> String {
    let id = record.click_id.as_deref().unwrap_or(&record.request_id);
    let mut key = String::with_capacity(14 + id.len());
    crate::clock::push_zero_padded(&mut key, record.at.max(0).unsigned_abs(), 13);
    key.push('#');
    key.push_str(id);
    key
}

/// Whether `text` has the shape of an activity position (`<13 digits>#<request id>`).
pub fn is_activity_sort_key(text: &str) -> bool {
    text.len() > 14
        && text.as_bytes()[..13].iter().all(u8::is_ascii_digit)
        && text.as_bytes()[13] == b'#'
}

/// A page of `store`'s clicks, newest first, merged from one query per shard
/// ([`ClickStore::query_clicks`]): what [`ClickStore::list_clicks`] does for a store that does
/// not list its clicks more directly. A page reads at most `limit + 2` items per shard.
pub async fn list_clicks_across_shards<S: ClickStore + ?Sized>(
    store: &S,
    brand_id: &BrandId,
    filter: &ClickFilter,
    limit: u32,
    after_position: Option<&str>,
) -> Result<Page<Arc<ClickRecord>>, StoreError> {
    let (lower, upper) = click_list_bounds(filter, after_position)?;
    let plan = MergePlan {
        partitions: CLICK_SHARDS as usize,
        upper: &upper,
        after_position,
        limit,
    };
    merge_newest_first(
        plan,
        click_sort_key,
        |click| filter.keeps(click),
        |partition, upper, count| {
            let shard = u32::try_from(partition).unwrap_or(0);
            let lower = &lower;
            async move {
                store
                    .query_clicks(brand_id, shard, lower, &upper, count)
                    .await
            }
        },
    )
    .await
    .map(|page| Page {
        items: page.items.into_iter().map(Arc::new).collect(),
        next_position: page.next_position,
    })
}

/// The inclusive sort-key range a click listing reads: the filter's time window, ending before
/// the previous page's position if there is one (`Corrupt` if that is no click sort key).
pub(crate) fn click_list_bounds(
    filter: &ClickFilter,
    after_position: Option<&str>,
) -> Result<(String, String), StoreError> {
    let (lower, mut upper) = activity_sort_bounds(&ActivityFilter {
        from: filter.from,
        to: filter.to,
        ..ActivityFilter::default()
    });
    if let Some(position) = after_position {
        if !is_click_sort_key(position) {
            return Err(StoreError::Corrupt("bad click position".into()));
        }
        upper = upper.min(position.to_owned());
    }
    Ok((lower, upper))
}

/// The bounds of an activity time filter as sort keys.
pub(crate) fn activity_sort_bounds(filter: &ActivityFilter) -> (String, String) {
    let from = filter.from.unwrap_or(0).clamp(0, 9_999_999_999_999);
    let to = filter
        .to
        .unwrap_or(9_999_999_999_999)
        .clamp(0, 9_999_999_999_999);
    // '#' < any id character and '~' > any, so the bounds include every id at those instants.
    (format!("{from:013}#"), format!("{to:013}#~"))
}
