//! What the data table's stream derives, counted exactly once under at-least-once delivery: a
//! batch of change events from one stream shard becomes one rollup update per row (not one per
//! event), each applied with [`RollupStore::add_rollup_once`], and a failure reports the first
//! sequence number to redeliver from, as Lambda's `ReportBatchItemFailures` expects.
//!
//! Only new clicks are derived here so far; capture still counts its clicks in the click's own
//! transaction, so nothing calls this outside its tests yet (issue 21).

use std::collections::{BTreeMap, HashSet};

use crate::brand_data::RollupStore;
use crate::brand_data::clicks::ClickRecord;
use crate::brand_data::rollups::{
    CLICKS, FLAGGED_CLICKS, RollupIncrement, StreamSpan, increments_for,
};
use crate::ids::BrandId;
use crate::store::StoreError;

/// One change from the stream, as the adapter decodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The stream's sequence number (decimal digits).
    pub sequence: String,
    pub change: Change,
}

/// What a change means to the derived data.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A click item was created (boxed: most changes are not clicks).
    NewClick(Box<ClickRecord>),
    /// Anything that derives nothing: other items, updates, removals, and an insert without a
    /// full image (moto can emit a key-only `INSERT` before the real one).
    Other,
}

/// A batch that was not wholly applied: redeliver from `first_failed_sequence` (every event
/// from there on; what was applied is skipped on redelivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub first_failed_sequence: String,
    pub error: StoreError,
}

/// One rollup row's share of a batch: its summed counters and the span of events they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowUpdate {
    pub brand_id: BrandId,
    pub increment: RollupIncrement,
    pub first_sequence: String,
    pub last_sequence: String,
}

/// Sequence numbers as numbers: zero-padded to the stream's 40 digits for comparing.
fn sequence_order(sequence: &str) -> String {
    format!("{sequence:0>40}")
}

/// The counters one new click adds: the click, and the flag if its score flags it.
fn click_counters(click: &ClickRecord) -> Vec<(String, i64)> {
    let mut counters = vec![(CLICKS.to_owned(), 1)];
    if click.flagged() {
        counters.push((FLAGGED_CLICKS.to_owned(), 1));
    }
    counters
}

/// The batch's rollup updates, one per row, in a fixed order. A click that appears twice in the
/// batch (the same brand and id) counts once.
pub fn row_updates(events: &[ChangeEvent]) -> Vec<RowUpdate> {
    type RowKey = (BrandId, String, &'static str, u32, String);
    let mut rows: BTreeMap<RowKey, RowUpdate> = BTreeMap::new();
    let mut seen: HashSet<(BrandId, String)> = HashSet::new();
    for event in events {
        let Change::NewClick(click) = &event.change else {
            continue;
        };
        if !seen.insert((click.brand_id.clone(), click.click_id.clone())) {
            continue;
        }
        let increments = increments_for(
            click.at,
            &click.click_id,
            click.offer_id.as_deref(),
            click.partner_id.as_deref(),
            &click_counters(click),
        );
        for increment in increments {
            let key = (
                click.brand_id.clone(),
                increment.day.clone(),
                increment.dimension.as_str(),
                increment.shard,
                increment.group.clone(),
            );
            let row = rows.entry(key).or_insert_with(|| RowUpdate {
                brand_id: click.brand_id.clone(),
                increment: RollupIncrement {
                    counters: Vec::new(),
                    ..increment.clone()
                },
                first_sequence: event.sequence.clone(),
                last_sequence: event.sequence.clone(),
            });
            for (name, amount) in increment.counters {
                match row.increment.counters.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, total)) => *total += amount,
                    None => row.increment.counters.push((name, amount)),
                }
            }
            if sequence_order(&event.sequence) < sequence_order(&row.first_sequence) {
                row.first_sequence = event.sequence.clone();
            }
            if sequence_order(&event.sequence) > sequence_order(&row.last_sequence) {
                row.last_sequence = event.sequence.clone();
            }
        }
    }
    rows.into_values().collect()
}

/// Applies a batch of one stream shard's events: every row's update once. On failure the other
/// rows are still tried, and the answer names the earliest event of a row that failed: events
/// from there on are redelivered, rows already counted skip them, and failed rows count all of
/// their events, which all lie at or after it.
pub async fn apply_batch(
    store: &(impl RollupStore + ?Sized),
    stream_shard: &str,
    events: &[ChangeEvent],
) -> Result<(), BatchFailure> {
    let mut failure: Option<BatchFailure> = None;
    for row in row_updates(events) {
        let span = StreamSpan {
            stream_shard: stream_shard.to_owned(),
            first_sequence: row.first_sequence.clone(),
            last_sequence: row.last_sequence.clone(),
        };
        if let Err(error) = store
            .add_rollup_once(&row.brand_id, &row.increment, &span)
            .await
        {
            let earlier = failure.as_ref().is_none_or(|failed| {
                sequence_order(&row.first_sequence) < sequence_order(&failed.first_failed_sequence)
            });
            if earlier {
                failure = Some(BatchFailure {
                    first_failed_sequence: row.first_sequence,
                    error,
                });
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brand_data::faulty::FaultyBrandData;
    use crate::brand_data::memory::MemoryBrandData;
    use crate::brand_data::rollups::{RollupDimension, utc_day};
    use crate::store::fault::{Fault, Trigger};

    const DAY_MS: i64 = 86_400_000;
    const START: i64 = 1_795_000_000_000;

    fn brands() -> Vec<BrandId> {
        ["acme", "globex"]
            .into_iter()
            .map(|id| BrandId::parse(id).unwrap())
            .collect()
    }

    /// `count` new clicks spread over two brands, three days, two offers and partners, a few
    /// flagged, with increasing sequence numbers of growing length (so text order would lie).
    fn events(count: u64) -> Vec<ChangeEvent> {
        let brands = brands();
        (0..count)
            .map(|n| {
                let brand_id = brands[(n % 2) as usize].clone();
                let click = ClickRecord {
                    brand_id,
                    click_id: format!("click-{n}"),
                    at: START + i64::try_from(n % 3).unwrap() * DAY_MS,
                    offer_id: Some(format!("off_{}", n % 2)),
                    partner_id: (n % 5 != 0).then(|| format!("ptr_{}", n % 3)),
                    sub_ids: Default::default(),
                    landing_url: None,
                    referrer: None,
                    source_ip: "192.0.2.1".into(),
                    user_agent: "ua".into(),
                    fraud_score: if n % 7 == 0 { 95 } else { 0 },
                };
                ChangeEvent {
                    sequence: (90 + n * 37).to_string(),
                    change: Change::NewClick(Box::new(click)),
                }
            })
            .collect()
    }

    /// Every row of every brand, day and dimension, as the statistics read them.
    async fn all_rollups(
        store: &dyn RollupStore,
    ) -> Vec<(String, RollupDimension, String, i64, i64)> {
        let mut rows = Vec::new();
        for brand in brands() {
            for dimension in [
                RollupDimension::Total,
                RollupDimension::Offer,
                RollupDimension::Partner,
            ] {
                let from = utc_day(START);
                let to = utc_day(START + 2 * DAY_MS);
                for row in store
                    .read_rollups(&brand, dimension, &from, &to)
                    .await
                    .unwrap()
                {
                    rows.push((
                        format!("{brand}/{}", row.day),
                        dimension,
                        row.group.clone(),
                        row.counters.get(CLICKS).copied().unwrap_or(0),
                        row.counters.get(FLAGGED_CLICKS).copied().unwrap_or(0),
                    ));
                }
            }
        }
        rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        rows
    }

    /// The brute-force count: every distinct click's counters summed per brand, day, dimension
    /// and group, without batches, shards or marks.
    async fn recount(events: &[ChangeEvent]) -> Vec<(String, RollupDimension, String, i64, i64)> {
        let mut totals: BTreeMap<(String, &'static str, String), (RollupDimension, i64, i64)> =
            BTreeMap::new();
        let mut seen = HashSet::new();
        for event in events {
            let Change::NewClick(click) = &event.change else {
                continue;
            };
            if !seen.insert(click.click_id.clone()) {
                continue;
            }
            let day = utc_day(click.at);
            let flagged = i64::from(click.flagged());
            let mut groups = vec![(RollupDimension::Total, String::new())];
            groups.extend(
                click
                    .offer_id
                    .clone()
                    .map(|id| (RollupDimension::Offer, id)),
            );
            groups.extend(
                click
                    .partner_id
                    .clone()
                    .map(|id| (RollupDimension::Partner, id)),
            );
            for (dimension, group) in groups {
                let key = (
                    format!("{}/{day}", click.brand_id),
                    dimension.as_str(),
                    group,
                );
                let total = totals.entry(key).or_insert((dimension, 0, 0));
                total.1 += 1;
                total.2 += flagged;
            }
        }
        let mut rows: Vec<_> = totals
            .into_iter()
            .map(|((day, _, group), (dimension, clicks, flagged))| {
                (day, dimension, group, clicks, flagged)
            })
            .collect();
        rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        rows
    }

    /// Delivers `events` in batches of `size` the way Lambda does: a failed batch is redelivered
    /// from the reported sequence number until it is wholly applied.
    async fn deliver(store: &dyn RollupStore, shard: &str, events: &[ChangeEvent], size: usize) {
        for batch in events.chunks(size) {
            let mut pending = batch;
            let mut attempts = 0;
            while let Err(failure) = apply_batch(store, shard, pending).await {
                attempts += 1;
                assert!(attempts < 50, "a batch never went through: {failure:?}");
                let from = pending
                    .iter()
                    .position(|event| event.sequence == failure.first_failed_sequence)
                    .expect("the failure names an event of the batch");
                pending = &pending[from..];
            }
        }
    }

    #[tokio::test]
    async fn a_batch_is_one_update_per_row() {
        let events = events(200);
        let updates = row_updates(&events);
        // 2 brands x 3 days x (total + 2 offers + 3 partners) x up to 16 rollup shards.
        assert!(updates.len() < events.len() * 3);
        let store = FaultyBrandData::new(MemoryBrandData::new());
        apply_batch(&store, "s1", &events).await.unwrap();
        assert_eq!(store.take_calls().len(), updates.len());
        assert_eq!(all_rollups(&store).await, recount(&events).await);
    }

    #[tokio::test]
    async fn a_crash_after_any_write_then_redelivery_counts_every_click_once() {
        let events = events(120);
        let expected = recount(&events).await;
        let writes = row_updates(&events[..40]).len();
        // A write refused (nothing written) and a write whose answer is lost (written, reported
        // failed): the k-th row write of the first batch; Lambda redelivers from what is reported.
        for fault in [Fault::ServerError, Fault::ResponseLost] {
            for k in 1..=u32::try_from(writes).unwrap() {
                let store = FaultyBrandData::new(MemoryBrandData::new());
                store.inject(Some("add_rollup_once"), fault.clone(), Trigger::Nth(k));
                deliver(&store, "s1", &events, 40).await;
                assert_eq!(
                    all_rollups(&store).await,
                    expected,
                    "{fault:?} at write {k}"
                );
                assert_eq!(store.faults_fired(), 1);
            }
        }
    }

    #[tokio::test]
    async fn replayed_and_bisected_batches_count_nothing_twice() {
        let events = events(100);
        let expected = recount(&events).await;
        let store = MemoryBrandData::new();
        deliver(&store, "s1", &events, 25).await;
        // At-least-once: the same batches again, whole, and bisected halves of them.
        deliver(&store, "s1", &events, 25).await;
        for batch in events.chunks(25) {
            let (left, right) = batch.split_at(batch.len() / 2);
            apply_batch(&store, "s1", left).await.unwrap();
            apply_batch(&store, "s1", right).await.unwrap();
        }
        assert_eq!(all_rollups(&store).await, expected);
    }

    #[tokio::test]
    async fn stream_shards_delivered_in_any_interleaving_count_once() {
        let events = events(90);
        let expected = recount(&events).await;
        // Two stream shards, each in its own order, interleaved batch by batch in reverse.
        let (first, second): (Vec<_>, Vec<_>) = events
            .iter()
            .cloned()
            .enumerate()
            .partition(|(n, _)| n % 2 == 0);
        let first: Vec<ChangeEvent> = first.into_iter().map(|(_, event)| event).collect();
        let second: Vec<ChangeEvent> = second.into_iter().map(|(_, event)| event).collect();
        let store = MemoryBrandData::new();
        let mut a = first.chunks(10);
        let mut b = second.chunks(10);
        loop {
            let (x, y) = (b.next(), a.next());
            if x.is_none() && y.is_none() {
                break;
            }
            if let Some(batch) = x {
                apply_batch(&store, "shard-b", batch).await.unwrap();
            }
            if let Some(batch) = y {
                apply_batch(&store, "shard-a", batch).await.unwrap();
            }
        }
        assert_eq!(all_rollups(&store).await, expected);
    }

    #[tokio::test]
    async fn a_key_only_insert_and_a_repeated_image_add_nothing() {
        let mut events = events(30);
        let expected = recount(&events).await;
        // moto: a key-only INSERT before the real one, and the same image twice in one batch.
        let repeated = events[3].clone();
        events.insert(
            3,
            ChangeEvent {
                sequence: "100".into(),
                change: Change::Other,
            },
        );
        events.insert(
            5,
            ChangeEvent {
                sequence: "250".into(),
                ..repeated
            },
        );
        events.sort_by_key(|event| sequence_order(&event.sequence));
        let store = MemoryBrandData::new();
        apply_batch(&store, "s1", &events).await.unwrap();
        assert_eq!(all_rollups(&store).await, expected);
    }
}
