//! The data table's stream, read through the DynamoDB Streams API and derived the way Lambda's
//! event source mapping runs the stream function over it (`functions/stream`): what
//! `trcker-local --store dynamodb` runs in the background, so that source counters, rescoring,
//! fraud signals and rollups follow a capture or a conversion locally as they do on AWS.
//!
//! - The stream is the table's `LatestStreamArn` (`DescribeTable`), its shards those
//!   `DescribeStream` lists (every page). A stream that changes (the table was recreated) is read
//!   anew from its trim horizon.
//! - Each shard is read in order from `TRIM_HORIZON`, then after the last sequence number it
//!   derived, in batches of at most [`BATCH_SIZE`] records, one batch per shard at a time (the
//!   template's `ParallelizationFactor: 1`). A parent shard is read to its end (its iterator runs
//!   out) before its children; a parent no longer listed (trimmed) holds nothing back.
//! - Records become change events with the stream function's own decoder
//!   ([`trcker_stream::records`]: moto's key-only `INSERT` before the real one is `Other`), their
//!   images converted by serde_dynamo, and a batch goes to
//!   [`derive_batch`](trcker_shared::program::derived::derive_batch).
//! - A batch that fails is redelivered from its `first_failed_sequence` (a fresh iterator
//!   `AT_SEQUENCE_NUMBER`), as `ReportBatchItemFailures` makes Lambda do; the records before it
//!   count as derived. The redelivery waits a short backoff; after [`MAX_ATTEMPTS`] in one
//!   [`StreamPoller::drain`] the drain reports the failure and the next one starts there again.
//! - Every read takes a fresh iterator at the shard's position (`TRIM_HORIZON`,
//!   `AFTER_SEQUENCE_NUMBER` or `AT_SEQUENCE_NUMBER`) rather than the one the last read returned:
//!   moto rolls a table back from a deep copy when a `TransactWriteItems` is cancelled (a failed
//!   condition, which the derivation's replays and claims meet all the time), and an iterator
//!   issued before that reads the copy's stream, which never grows again. The next iterator only
//!   tells a closed shard's end (it has none). An iterator that expired anyway is renewed; a
//!   position the stream has trimmed restarts the shard at its trim horizon (logged: that data is
//!   lost, as it would be on AWS).
//!
//! What a batch derives is counted once however often it is delivered (the derivation's marks per
//! origin partition, `shared/src/program/derived.rs`), so a second poller over the same table, or
//! a restart that reads the stream again from its trim horizon, counts nothing twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType, StreamViewType};
use serde_dynamo::Item;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::changes::{Change, ChangeEvent};
use trcker_shared::program::derived::derive_batch;
use trcker_shared::program::scoring::Thresholds;
use trcker_stream::records::{Operation, decode_or_other, is_sequence_number, origin_partition};

/// Records per `GetRecords` call: Lambda's default batch size for a DynamoDB stream, and the
/// API's maximum.
pub const BATCH_SIZE: i32 = 1_000;
/// How often the background poller ([`StreamPoller::spawn`]) drains the stream in `trcker-local`:
/// derived data follows a write within about a second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Deliveries of one failing batch within one [`StreamPoller::drain`] before it reports the
/// failure (the next drain starts from the failed record again).
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait before a failed batch's first redelivery, doubled for each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The background poller repeats a warning it already gave at most this often.
const REPEAT_WARNING_EVERY: Duration = Duration::from_secs(30);

/// Where a shard's next read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    TrimHorizon,
    /// After the last record derived.
    After(String),
    /// At a record to redeliver.
    At(String),
}

#[derive(Debug)]
struct ShardProgress {
    parent: Option<String>,
    position: Position,
    /// Closed and read to its end: its children may be read.
    finished: bool,
}

/// What has been read of the table's current stream.
#[derive(Debug, Default)]
struct Progress {
    stream_arn: Option<String>,
    shards: BTreeMap<String, ShardProgress>,
}

impl Progress {
    /// The shards to read now: not finished, and either without a parent or with a parent that is
    /// finished or no longer listed.
    fn readable(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, shard)| {
                !shard.finished
                    && shard.parent.as_ref().is_none_or(|parent| {
                        self.shards.get(parent).is_none_or(|parent| parent.finished)
                    })
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// One read of one shard.
enum Read {
    /// Records were derived (`records` of them); `finished` once the shard's iterator ran out.
    Derived { records: usize, finished: bool },
    /// The batch failed from `sequence` on; `records` before it were derived.
    Failed {
        records: usize,
        sequence: String,
        error: String,
    },
}

/// The data table's stream, derived as the stream function derives it on AWS.
pub struct StreamPoller {
    tables: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    store: Arc<dyn BrandDataStore>,
    thresholds: Thresholds,
    /// Held for a whole drain: one reader of each shard at a time, whoever drains.
    progress: tokio::sync::Mutex<Progress>,
}

impl StreamPoller {
    /// A poller of `table`'s stream with the SDK configuration `aws` (the gateway's: the same
    /// endpoint, credentials, timeouts and retries as its store), deriving into `store` with
    /// `thresholds`. Nothing is read until [`Self::drain`].
    pub fn new(
        aws: &aws_config::SdkConfig,
        table: impl Into<String>,
        store: Arc<dyn BrandDataStore>,
        thresholds: Thresholds,
    ) -> Self {
        Self {
            tables: aws_sdk_dynamodb::Client::new(aws),
            streams: aws_sdk_dynamodbstreams::Client::new(aws),
            table: table.into(),
            store,
            thresholds,
            progress: tokio::sync::Mutex::default(),
        }
    }

    /// The table whose stream this reads.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Derives every record the stream holds past what was derived, until a read of every shard
    /// returns none (what tests wait for instead of sleeping). Returns how many records were
    /// derived; `Err` if the stream cannot be read, or a batch still fails after
    /// [`MAX_ATTEMPTS`] deliveries.
    pub async fn drain(&self) -> Result<usize, String> {
        let mut progress = self.progress.lock().await;
        let stream_arn = self.stream_arn().await?;
        if progress.stream_arn.as_deref() != Some(stream_arn.as_str()) {
            if progress.stream_arn.is_some() {
                tracing::info!(
                    table = %self.table,
                    "the table's stream changed: reading the new one from its trim horizon"
                );
            }
            *progress = Progress {
                stream_arn: Some(stream_arn.clone()),
                shards: BTreeMap::new(),
            };
        }
        let mut derived = 0;
        let mut attempts: HashMap<String, u32> = HashMap::new();
        let mut list_shards = true;
        loop {
            if list_shards {
                self.list_shards(&stream_arn, &mut progress).await?;
                list_shards = false;
            }
            let mut moved = false;
            for shard_id in progress.readable() {
                let Some(shard) = progress.shards.get_mut(&shard_id) else {
                    continue;
                };
                match self.read(&stream_arn, &shard_id, shard).await? {
                    Read::Derived { records, finished } => {
                        derived += records;
                        moved |= records > 0 || finished;
                        // A closed shard's children may be listed only now.
                        list_shards |= finished;
                        attempts.remove(&shard_id);
                    }
                    Read::Failed {
                        records,
                        sequence,
                        error,
                    } => {
                        derived += records;
                        let attempt = attempts.entry(shard_id.clone()).or_default();
                        *attempt += 1;
                        if *attempt >= MAX_ATTEMPTS {
                            return Err(format!(
                                "stream batch of table {} still fails from sequence {sequence} \
                                 after {MAX_ATTEMPTS} deliveries: {error}",
                                self.table
                            ));
                        }
                        tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(*attempt - 1)).await;
                        moved = true;
                    }
                }
            }
            if !moved {
                return Ok(derived);
            }
        }
    }

    /// Drains the stream every `every` ([`POLL_INTERVAL`] in `trcker-local`) for as long as the
    /// process runs. A failed drain is logged (a warning, repeated at most every 30 s while it
    /// stays the same) and the next one carries on from where the stream was derived to.
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_warning: Option<(String, Instant)> = None;
            loop {
                match self.drain().await {
                    Ok(derived) => {
                        if derived > 0 {
                            tracing::debug!(
                                table = %self.table,
                                records = derived,
                                "stream derived"
                            );
                        }
                        if last_warning.take().is_some() {
                            tracing::info!(table = %self.table, "stream derivation recovered");
                        }
                    }
                    Err(error) => {
                        let repeated = last_warning.as_ref().is_some_and(|(last, at)| {
                            *last == error && at.elapsed() < REPEAT_WARNING_EVERY
                        });
                        if !repeated {
                            tracing::warn!(
                                table = %self.table,
                                error = %error,
                                "stream derivation failed; retrying"
                            );
                            last_warning = Some((error, Instant::now()));
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// The table's current stream.
    async fn stream_arn(&self) -> Result<String, String> {
        let described = self
            .tables
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|error| {
                format!(
                    "describing table {}: {}",
                    self.table,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&error)
                )
            })?;
        described
            .table()
            .and_then(|table| table.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "table {} has no stream, so nothing derives scores, signals or rollups: \
                     enable its stream (NEW_AND_OLD_IMAGES; `trcker-local --store \
                     dynamodb --create-tables` does)",
                    self.table
                )
            })
    }

    /// Adds the shards `DescribeStream` lists (every page) that are not known yet.
    async fn list_shards(&self, stream_arn: &str, progress: &mut Progress) -> Result<(), String> {
        let mut start: Option<String> = None;
        loop {
            let described = self
                .streams
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|error| {
                    format!(
                        "describing the stream of table {}: {}",
                        self.table,
                        DisplayErrorContext(&error)
                    )
                })?;
            let Some(description) = described.stream_description else {
                return Ok(());
            };
            if progress.shards.is_empty()
                && description
                    .stream_view_type
                    .as_ref()
                    .is_some_and(|view| *view != StreamViewType::NewAndOldImages)
            {
                tracing::warn!(
                    table = %self.table,
                    "the table's stream does not carry both images: rescorings cannot be derived \
                     (the template's is NEW_AND_OLD_IMAGES)"
                );
            }
            for shard in description.shards.unwrap_or_default() {
                let Some(shard_id) = shard.shard_id else {
                    continue;
                };
                progress
                    .shards
                    .entry(shard_id)
                    .or_insert_with(|| ShardProgress {
                        parent: shard.parent_shard_id,
                        position: Position::TrimHorizon,
                        finished: false,
                    });
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// Reads one batch of `shard` and derives it.
    async fn read(
        &self,
        stream_arn: &str,
        shard_id: &str,
        shard: &mut ShardProgress,
    ) -> Result<Read, String> {
        let (records, next_iterator) = self.get_records(stream_arn, shard_id, shard).await?;
        let finished = next_iterator.is_none();
        let last_sequence = records
            .iter()
            .rev()
            .find_map(|record| record.dynamodb.as_ref()?.sequence_number.clone());
        let events: Vec<ChangeEvent> = records.into_iter().filter_map(change_event).collect();
        if !events.is_empty()
            && let Err(failure) = derive_batch(self.store.as_ref(), &self.thresholds, &events).await
        {
            let records = events
                .iter()
                .take_while(|event| event.sequence != failure.first_failed_sequence)
                .count();
            tracing::warn!(
                table = %self.table,
                records = events.len(),
                first_failed_sequence = %failure.first_failed_sequence,
                error = %failure.error,
                "stream batch not wholly derived: redelivered from the first failed record"
            );
            shard.position = Position::At(failure.first_failed_sequence.clone());
            return Ok(Read::Failed {
                records,
                sequence: failure.first_failed_sequence,
                error: failure.error.to_string(),
            });
        }
        if let Some(last) = last_sequence {
            shard.position = Position::After(last);
        }
        shard.finished = finished;
        Ok(Read::Derived {
            records: events.len(),
            finished,
        })
    }

    /// One `GetRecords` of `shard` from a fresh iterator at its position (renewed once if it
    /// expired): the records and the next iterator (`None` once a closed shard is read to its
    /// end).
    async fn get_records(
        &self,
        stream_arn: &str,
        shard_id: &str,
        shard: &mut ShardProgress,
    ) -> Result<(Vec<Record>, Option<String>), String> {
        let mut renewed = false;
        loop {
            let iterator = self.shard_iterator(stream_arn, shard_id, shard).await?;
            let answer = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(BATCH_SIZE)
                .send()
                .await;
            match answer {
                Ok(output) => {
                    return Ok((
                        output.records.unwrap_or_default(),
                        output.next_shard_iterator,
                    ));
                }
                Err(SdkError::ServiceError(error))
                    if !renewed
                        && matches!(error.err(), GetRecordsError::ExpiredIteratorException(_)) =>
                {
                    tracing::debug!(
                        table = %self.table,
                        shard = shard_id,
                        "shard iterator expired: renewed"
                    );
                }
                Err(SdkError::ServiceError(error))
                    if !renewed
                        && matches!(
                            error.err(),
                            GetRecordsError::TrimmedDataAccessException(_)
                        ) =>
                {
                    trimmed(&self.table, shard_id, shard);
                }
                Err(error) => {
                    return Err(format!(
                        "reading the stream of table {} (shard {shard_id}): {}",
                        self.table,
                        DisplayErrorContext(&error)
                    ));
                }
            }
            renewed = true;
        }
    }

    /// A fresh iterator at the shard's position; at its trim horizon if the position was trimmed.
    async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        shard: &mut ShardProgress,
    ) -> Result<String, String> {
        for _ in 0..2 {
            let request = self
                .streams
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(shard_id);
            let request = match &shard.position {
                Position::TrimHorizon => {
                    request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                }
                Position::After(sequence) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(sequence),
                Position::At(sequence) => request
                    .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                    .sequence_number(sequence),
            };
            match request.send().await {
                Ok(output) => {
                    return output.shard_iterator.ok_or_else(|| {
                        format!(
                            "the stream of table {} gave no iterator for shard {shard_id}",
                            self.table
                        )
                    });
                }
                Err(SdkError::ServiceError(error))
                    if shard.position != Position::TrimHorizon
                        && matches!(
                            error.err(),
                            GetShardIteratorError::TrimmedDataAccessException(_)
                        ) =>
                {
                    trimmed(&self.table, shard_id, shard);
                }
                Err(error) => {
                    return Err(format!(
                        "getting an iterator for the stream of table {} (shard {shard_id}): {}",
                        self.table,
                        DisplayErrorContext(&error)
                    ));
                }
            }
        }
        Err(format!(
            "the stream of table {} has trimmed shard {shard_id} past every position",
            self.table
        ))
    }
}

/// The stream no longer holds the shard's position: read it again from its trim horizon.
fn trimmed(table: &str, shard_id: &str, shard: &mut ShardProgress) {
    tracing::warn!(
        table = %table,
        shard = shard_id,
        "the stream trimmed records that were not derived yet: reading on from its trim horizon"
    );
    shard.position = Position::TrimHorizon;
}

/// One record as the change event the derivation takes, decoded as the stream function decodes
/// the Lambda event's records. A record without a sequence number cannot be placed and is left
/// out (none that DynamoDB Streams sends).
fn change_event(record: Record) -> Option<ChangeEvent> {
    let Some(stream_record) = record.dynamodb else {
        tracing::error!("stream record without its change: skipped");
        return None;
    };
    let Some(sequence) = stream_record
        .sequence_number
        .filter(|sequence| is_sequence_number(sequence))
    else {
        tracing::error!("stream record without a sequence number: skipped");
        return None;
    };
    let keys = item(stream_record.keys);
    let new_image = item(stream_record.new_image);
    let old_image = item(stream_record.old_image);
    let operation = record
        .event_name
        .as_ref()
        .and_then(|name| Operation::parse(name.as_str()));
    let change = match operation {
        Some(operation) => decode_or_other(operation, &keys, &new_image, &old_image, &sequence),
        None => {
            tracing::warn!(
                sequence = %sequence,
                "stream record of an unknown operation: derives nothing"
            );
            Change::Other
        }
    };
    let partition = origin_partition(&keys, &new_image, &old_image).to_owned();
    Some(ChangeEvent {
        partition,
        sequence,
        change,
    })
}

/// An image as the decoder takes it (serde_dynamo's `From`), empty if the record has none. An
/// attribute of a type this SDK does not know (which serde_dynamo's conversion would panic on)
/// empties the image: the decoder then derives nothing from it and logs why.
fn item(image: Option<HashMap<String, AttributeValue>>) -> Item {
    match image {
        Some(image) if image.values().all(known) => Item::from(image),
        Some(_) => {
            tracing::error!(
                "stream image with an attribute type this build does not know: ignored"
            );
            Item::default()
        }
        None => Item::default(),
    }
}

fn known(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::M(map) => map.values().all(known),
        AttributeValue::L(list) => list.iter().all(known),
        AttributeValue::B(_)
        | AttributeValue::Bool(_)
        | AttributeValue::Bs(_)
        | AttributeValue::N(_)
        | AttributeValue::Ns(_)
        | AttributeValue::Null(_)
        | AttributeValue::S(_)
        | AttributeValue::Ss(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    //! The record conversion and the shard order. (Against moto, through the gateway:
    //! `tests/stream_on_dynamodb.rs`.)

    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord};
    use trcker_shared::brand_data::clicks::ClickRecord;
    use trcker_shared::ids::BrandId;

    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    fn record(
        operation: OperationType,
        sequence: Option<&str>,
        new_image: Option<HashMap<String, AttributeValue>>,
    ) -> Record {
        let keys = HashMap::from([
            ("pk".to_owned(), s("acme#CLICK#07")),
            ("sk".to_owned(), s("ID#c-1")),
        ]);
        Record::builder()
            .event_name(operation)
            .dynamodb(
                StreamRecord::builder()
                    .set_keys(Some(keys))
                    .set_new_image(new_image)
                    .set_sequence_number(sequence.map(str::to_owned))
                    .build(),
            )
            .build()
    }

    #[test]
    fn records_decode_as_the_stream_function_decodes_them() {
        let click = ClickRecord {
            brand_id: BrandId::parse("acme").unwrap(),
            click_id: "c-1".into(),
            at: 1_795_000_000_000,
            offer_id: None,
            partner_id: None,
            sub_ids: Default::default(),
            landing_url: None,
            referrer: None,
            source_ip: "192.0.2.1".into(),
            user_agent: "Mozilla/5.0".into(),
            fraud_score: 0,
            audit: None,
        };
        let click = serde_json::to_string(&click).unwrap();
        let full = HashMap::from([
            ("pk".to_owned(), s("acme#CLICK#07")),
            ("sk".to_owned(), s("ID#c-1")),
            ("record".to_owned(), s(&click)),
        ]);
        let event = change_event(record(OperationType::Insert, Some("101"), Some(full))).unwrap();
        assert_eq!(
            (event.partition.as_str(), event.sequence.as_str()),
            ("acme#CLICK#07", "101")
        );
        match event.change {
            Change::NewClick(click) => assert_eq!(click.click_id, "c-1"),
            other => panic!("not a new click: {other:?}"),
        }
        // moto's key-only INSERT before the real one, a click that does not decode, a removal:
        // nothing to derive, but each keeps its place in the shard.
        let key_only = HashMap::from([
            ("pk".to_owned(), s("acme#CLICK#07")),
            ("sk".to_owned(), s("ID#c-1")),
        ]);
        let mut broken = key_only.clone();
        broken.insert("record".to_owned(), s("{not json"));
        for (operation, image) in [
            (OperationType::Insert, Some(key_only)),
            (OperationType::Insert, Some(broken)),
            (OperationType::Remove, None),
        ] {
            let event = change_event(record(operation, Some("102"), image)).unwrap();
            assert_eq!(
                (event.change, event.partition.as_str()),
                (Change::Other, "acme#CLICK#07")
            );
        }
        assert!(change_event(record(OperationType::Insert, None, None)).is_none());
        assert!(change_event(record(OperationType::Insert, Some("x1"), None)).is_none());
        assert!(change_event(Record::builder().build()).is_none());
        // Every attribute type the SDK knows converts, however nested.
        let nested = AttributeValue::M(HashMap::from([(
            "list".to_owned(),
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::Bool(true),
                AttributeValue::Null(true),
                AttributeValue::Ss(vec!["a".into()]),
            ]),
        )]));
        assert!(known(&nested));
        let image = item(Some(HashMap::from([("nested".to_owned(), nested)])));
        assert!(image.get("nested").is_some());
    }

    #[test]
    fn a_parent_shard_is_read_before_its_children() {
        let shard = |parent: Option<&str>, finished| ShardProgress {
            parent: parent.map(str::to_owned),
            position: Position::TrimHorizon,
            finished,
        };
        let mut progress = Progress::default();
        progress.shards.insert("a".into(), shard(None, false));
        progress.shards.insert("b".into(), shard(Some("a"), false));
        progress
            .shards
            .insert("c".into(), shard(Some("gone"), false));
        progress.shards.insert("d".into(), shard(Some("b"), false));
        assert_eq!(progress.readable(), ["a", "c"]);
        progress.shards.get_mut("a").unwrap().finished = true;
        assert_eq!(progress.readable(), ["b", "c"]);
        progress.shards.get_mut("b").unwrap().finished = true;
        assert_eq!(progress.readable(), ["c", "d"]);
    }
}
