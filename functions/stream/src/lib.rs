//! The stream function: reads the `data` table's DynamoDB stream and derives what capture no
//! longer writes in the request (source counters, rescoring, fraud signals, rollups), through
//! `trcker_shared::program::derived`. This crate is the adapter: it decodes the stream records ([`records`]), hands one shard's batch to [`derive_batch`], and
//! answers Lambda's `ReportBatchItemFailures` contract.
//!
//! # What identifies a batch's place in the stream
//!
//! The derivation counts each event once by keeping, on every row it adds to, the last sequence
//! number it has counted per *origin partition* (the partition key of the item that changed,
//! [`ChangeEvent::partition`](trcker_shared::brand_data::changes::ChangeEvent)), and skipping a
//! span whose first event is at or below that mark. Not per stream shard: a Lambda stream event
//! names no shard (its records carry the stream's ARN and random `eventID`s; only a tumbling
//! window adds a `shardId`), and a mark per stream would lose counts, not just risk them: one
//! rollup row (a brand's day total) takes events from every shard, the shards' pollers run
//! concurrently, so shard A's batch up to sequence 200 would mark the row and shard B's later
//! batch from 150 to 180 (events as old as A's, from another partition) would be skipped as a
//! replay. An origin partition has what a mark needs: its changes reach the stream in write
//! order, in one shard at a time, a parent shard read to its end before its children, and Lambda
//! retries a batch whole, halved, or from the first failed record, so every redelivery is a
//! suffix of each partition's events in the batch.
//!
//! That holds only while one batch per shard runs at a time (`ParallelizationFactor: 1`, as the
//! template sets): with more, Lambda spreads a shard's records over concurrent batches by its own
//! hash of the key, and two batches holding changes of one partition could apply out of order.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent};
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::program::derived::derive_batch;
use trcker_shared::program::scoring::Thresholds;

pub mod config;
pub mod records;

/// The Lambda event of a DynamoDB stream batch (one shard's records, in order).
pub type DynamoDbEvent = Event;

/// The `itemIdentifier`s an answer reports failed (at most one: the first to redeliver from).
pub fn failed_sequences(response: &DynamoDbEventResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .filter_map(|failure| failure.item_identifier.as_deref())
        .collect()
}

/// Derives one batch. On a store failure the answer names the first record to redeliver from
/// (`batchItemFailures`: Lambda checkpoints what came before it and retries the batch from there,
/// and whatever of the rest was already written skips itself). A record that does not decode
/// derives nothing and never fails the batch, so the function itself never fails a batch.
pub async fn handle(
    store: &dyn BrandDataStore,
    thresholds: &Thresholds,
    event: LambdaEvent<DynamoDbEvent>,
) -> Result<DynamoDbEventResponse, Error> {
    let events = records::change_events(&event.payload.records);
    let mut response = DynamoDbEventResponse::default();
    if events.is_empty() {
        return Ok(response);
    }
    match derive_batch(store, thresholds, &events).await {
        Ok(report) => tracing::debug!(records = events.len(), ?report, "stream batch derived"),
        Err(failure) => {
            tracing::warn!(
                records = events.len(),
                first_failed_sequence = %failure.first_failed_sequence,
                error = %failure.error,
                "stream batch not wholly derived: redelivered from the first failed record"
            );
            response
                .batch_item_failures
                .push(batch_item_failure(failure.first_failed_sequence));
        }
    }
    Ok(response)
}

fn batch_item_failure(sequence: String) -> DynamoDbBatchItemFailure {
    // `#[non_exhaustive]`: no struct literal outside its crate.
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence);
    failure
}
