//! The stream function on the sample batch of `events/stream/`: its records decode as each kind
//! of change (a new click with its capture's audit, a rescoring, moto's key-only insert, a fraud
//! signal, a rollup row's update), the handler derives the source count and the rollups once however often the batch is delivered, a record that does not decode
//! derives nothing, and a failing store answers the first record to redeliver from, after which
//! the redelivery completes the batch exactly once.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use trcker_shared::brand_data::changes::Change;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{RollupDimension, StreamSpan};
use trcker_shared::brand_data::{BrandDataStore, DocumentKind, SourceHits};
use trcker_shared::ids::BrandId;
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_stream::records::{Operation, change_events, decode_record};
use trcker_stream::{failed_sequences, handle};

const DAY: &str = "2026-01-15";
const OFFER: &str = "off_00000000000000aa";
const PARTNER: &str = "ptr_00000000000000bb";
const SOURCE_IP: &str = "198.51.100.23";
/// The new click's capture time (2026-01-15T09:00:00.123Z) and its source's hour.
const CLICK_AT: i64 = 1_768_467_600_123;
const HOUR_MS: i64 = 3_600_000;
/// The sample batch's sequence numbers, in order: new click, rescoring, key-only insert, fraud
/// signal, rollup row update.
const SEQUENCES: [&str; 5] = [
    "4421584500000000017450439091",
    "4421584600000000017450439092",
    "4421584700000000017450439093",
    "4421584800000000017450439094",
    "4421584900000000017450439095",
];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/stream")
}

fn sample() -> Value {
    let path = events_dir().join("batch.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn batch(json: &Value) -> Event {
    serde_json::from_value(json.clone()).expect("a Lambda DynamoDB stream event")
}

/// The sample with only the records at `indexes` (a redelivery from a record on, or a part).
fn records(json: &Value, indexes: impl IntoIterator<Item = usize>) -> Value {
    let all = json["Records"].as_array().unwrap();
    let kept: Vec<Value> = indexes.into_iter().map(|i| all[i].clone()).collect();
    serde_json::json!({ "Records": kept })
}

fn brand() -> BrandId {
    BrandId::parse("acme").unwrap()
}

async fn invoke(
    store: &dyn BrandDataStore,
    json: &Value,
) -> aws_lambda_events::event::streams::DynamoDbEventResponse {
    let event = LambdaEvent::new(batch(json), Context::default());
    handle(store, &Thresholds::default(), event)
        .await
        .expect("the handler answers every batch")
}

/// Counter `name` of the day's row of `dimension` (and `group`), all shards summed.
async fn rollup(store: &dyn BrandDataStore, dimension: RollupDimension, name: &str) -> i64 {
    store
        .read_rollups(&brand(), dimension, DAY, DAY)
        .await
        .unwrap()
        .iter()
        .map(|row| row.counter(name))
        .sum()
}

/// The source's clicks this hour as counted: a probe hit from an origin of its own answers what
/// the counter held before it.
async fn source_clicks(store: &dyn BrandDataStore) -> u64 {
    let window_start = CLICK_AT - CLICK_AT.rem_euclid(HOUR_MS);
    let hits = SourceHits {
        window_start,
        count: 1,
        latest_at: CLICK_AT,
        expires_at: (window_start + 2 * HOUR_MS) / 1000,
    };
    let probe = StreamSpan {
        origin: "probe".to_owned(),
        first_sequence: "1".to_owned(),
        last_sequence: "1".to_owned(),
    };
    let tally = store
        .count_source_hits(&brand(), SOURCE_IP, &hits, Some(&probe))
        .await
        .unwrap();
    assert!(tally.applied, "the probe's own origin is new");
    tally.clicks_in_window
}

/// What the sample batch derives, checked after however many deliveries: the new click counted (total, offer, partner), the rescored click's flag and the signal.
async fn assert_sample_derived_once(store: &dyn BrandDataStore) {
    for dimension in RollupDimension::ALL {
        assert_eq!(rollup(store, dimension, "clicks").await, 1, "{dimension:?}");
        assert_eq!(
            rollup(store, dimension, "flagged_clicks").await,
            1,
            "{dimension:?}: the rescoring's flag"
        );
        assert_eq!(
            rollup(store, dimension, "signals:source_repeat").await,
            1,
            "{dimension:?}: the signal"
        );
    }
    let offers = store
        .read_rollups(&brand(), RollupDimension::Offer, DAY, DAY)
        .await
        .unwrap();
    assert_eq!(
        offers
            .iter()
            .map(|row| row.group.as_str())
            .collect::<Vec<_>>(),
        [OFFER]
    );
    let partners = store
        .read_rollups(&brand(), RollupDimension::Partner, DAY, DAY)
        .await
        .unwrap();
    assert_eq!(
        partners
            .iter()
            .map(|row| row.group.as_str())
            .collect::<Vec<_>>(),
        [PARTNER]
    );
}

#[test]
fn the_sample_batch_decodes_as_each_kind_of_change() {
    let json = sample();
    let event = batch(&json);
    let changes = change_events(&event.records);
    assert_eq!(
        changes
            .iter()
            .map(|c| c.sequence.as_str())
            .collect::<Vec<_>>(),
        SEQUENCES
    );
    assert_eq!(
        changes
            .iter()
            .map(|c| c.partition.as_str())
            .collect::<Vec<_>>(),
        [
            "acme#CLICK#25",
            "acme#CLICK#15",
            "acme#SOURCE#198.51.100.23",
            "acme",
            "acme#ROLLUP#T#09"
        ]
    );

    let Change::NewClick(click) = &changes[0].change else {
        panic!("a new click: {:?}", changes[0].change);
    };
    assert_eq!(click.click_id, "fixture-click-1");
    assert_eq!(click.at, CLICK_AT);
    assert_eq!(click.offer_id.as_deref(), Some(OFFER));
    let audit = click.audit.as_ref().expect("capture's audit fields");
    assert_eq!(audit.request_id, "fixture-request-1");
    assert_eq!(audit.target, "/api/clicks/capture");
    // The fixture's `record` is byte for byte what the DynamoDB store writes for this click.
    let written = json["Records"][0]["dynamodb"]["NewImage"]["record"]["S"]
        .as_str()
        .unwrap();
    assert_eq!(serde_json::to_string(click.as_ref()).unwrap(), written);

    let Change::ClickChanged { before, after } = &changes[1].change else {
        panic!("a rescoring: {:?}", changes[1].change);
    };
    assert_eq!(before.click_id, after.click_id);
    assert!(!before.flagged() && after.flagged());

    assert_eq!(changes[2].change, Change::Other, "moto's key-only insert");

    let Change::NewDocument(document) = &changes[3].change else {
        panic!("a new document: {:?}", changes[3].change);
    };
    assert_eq!(document.kind, DocumentKind::FraudSignal);
    assert_eq!(document.version, 1);
    assert_eq!(document.id, "frd_19bc0e212fb3c5a1");
    assert_eq!(document.body["kind"], "source_repeat");
    assert_eq!(document.body["click_id"], "fixture-click-1");

    assert_eq!(changes[4].change, Change::Other, "a rollup row's update");
}

/// Every sample event of `events/stream/` is a Lambda DynamoDB stream event whose every record
/// decodes (none is a decode error), so the fixtures stay usable as the layout changes.
#[test]
fn every_sample_event_is_a_stream_batch_that_decodes() {
    let mut seen = 0;
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let path = entry.unwrap().path();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let event = batch(&json);
        assert!(!event.records.is_empty(), "{}", path.display());
        for record in &event.records {
            let operation = Operation::parse(&record.event_name).expect("a known operation");
            let change = &record.change;
            decode_record(
                operation,
                &change.keys,
                &change.new_image,
                &change.old_image,
            )
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        }
        seen += 1;
    }
    assert!(seen >= 1, "events/stream holds the sample batch");
}

#[tokio::test]
async fn the_sample_batch_derives_once_however_often_it_is_delivered() {
    let store = MemoryBrandData::new();
    let json = sample();
    for delivery in 0..3 {
        let response = invoke(&store, &json).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "delivery {delivery}: {response:?}"
        );
        assert_sample_derived_once(&store).await;
    }
    // A redelivery of the batch's second half, as a retry halved would send it, changes nothing.
    let response = invoke(&store, &records(&json, 2..5)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_sample_derived_once(&store).await;
    assert_eq!(source_clicks(&store).await, 1, "the new click counted once");
    let answer = serde_json::to_value(&response).unwrap();
    assert_eq!(answer, serde_json::json!({ "batchItemFailures": [] }));
}

#[tokio::test]
async fn a_record_that_does_not_decode_derives_nothing_and_fails_nothing() {
    let mut json = sample();
    // The new click's record is not a click; the rescoring lost its old image; the signal's
    // version is text.
    json["Records"][0]["dynamodb"]["NewImage"]["record"]["S"] = Value::from("{\"click_id\":");
    json["Records"][1]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("OldImage");
    json["Records"][3]["dynamodb"]["NewImage"]["version"] = serde_json::json!({ "S": "1" });
    let changes = change_events(&batch(&json).records);
    assert_eq!(
        changes.len(),
        5,
        "every record keeps its place in the shard"
    );
    assert!(
        changes.iter().all(|change| change.change == Change::Other),
        "{changes:?}"
    );

    let store = MemoryBrandData::new();
    let response = invoke(&store, &json).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_no_rollups(&store).await;

    // A batch that names no record at all, and one whose only record has no sequence number.
    assert!(
        invoke(&store, &serde_json::json!({ "Records": [] }))
            .await
            .batch_item_failures
            .is_empty()
    );
    let mut unsequenced = records(&sample(), [0]);
    unsequenced["Records"][0]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    assert!(
        invoke(&store, &unsequenced)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_no_rollups(&store).await;
}

async fn assert_no_rollups(store: &dyn BrandDataStore) {
    for dimension in RollupDimension::ALL {
        assert!(
            store
                .read_rollups(&brand(), dimension, DAY, DAY)
                .await
                .unwrap()
                .is_empty(),
            "{dimension:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_store_answers_the_first_record_to_redeliver_from() {
    let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let json = sample();

    // Every rollup write fails: the earliest event with a rollup share is the batch's first.
    store.inject(Some("add_rollup_once"), Fault::ServerError, Trigger::Always);
    let response = invoke(store.as_ref(), &json).await;
    assert_eq!(failed_sequences(&response), [SEQUENCES[0]]);
    let answer = serde_json::to_value(&response).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": SEQUENCES[0] }] })
    );
    // Lambda redelivers from the reported record (here: all of it); what was written (the source
    // counter) skips itself.
    store.clear();
    let response = invoke(store.as_ref(), &json).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_sample_derived_once(store.inner()).await;
    assert_eq!(source_clicks(store.inner()).await, 1);
}

#[tokio::test]
async fn the_failure_names_the_earliest_failed_record_not_the_batchs_first() {
    let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let json = sample();
    // The batch from the key-only insert on: it derives nothing, so the first record whose
    // writes fail is the fraud signal.
    let tail = records(&json, 2..5);
    store.inject(Some("add_rollup_once"), Fault::Throttled, Trigger::Always);
    let response = invoke(store.as_ref(), &tail).await;
    assert_eq!(failed_sequences(&response), [SEQUENCES[3]]);

    // Redelivered from there (Lambda checkpoints the records before it).
    store.clear();
    let response = invoke(store.as_ref(), &records(&json, 3..5)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let signals = rollup(
        store.inner(),
        RollupDimension::Total,
        "signals:source_repeat",
    )
    .await;
    assert_eq!(signals, 1);

    // The whole batch again (a replay, as from the failure queue): the records before the signal
    // are counted now, the signal is not counted twice.
    let response = invoke(store.as_ref(), &json).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_sample_derived_once(store.inner()).await;
}

/// The store calls a batch makes, as `FaultyBrandData` names them, and the IAM grant each needs
/// in the template's `StreamFunction` policy (held there by `infra/local/tests/template_contract.rs`,
/// `the_stream_function_writes_only_what_it_derives`).
const GRANTED_CALLS: [(&str, &str); 6] = [
    ("count_source_hits", "UpdateItem on *#SOURCE#*"),
    ("get_click", "GetItem on *#CLICK#*"),
    ("update_click", "UpdateItem on *#CLICK#*"),
    (
        "create_documents",
        "PutItem on <brand> (the signal and its claim)",
    ),
    ("claim_holder", "GetItem on <brand>"),
    ("add_rollup_once", "UpdateItem on *#ROLLUP#*"),
];

/// A second click from the same source 10 s after the sample's new click: the stream rescores it
/// (a repeat) and raises its signal. Every call the batch makes has its grant in the template.
#[tokio::test]
async fn a_batch_calls_the_store_only_as_the_template_grants() {
    use trcker_shared::brand_data::clicks::{ClickRecord, click_shard};
    use trcker_shared::brand_data::layout;
    use trcker_shared::brand_data::{ClickStore, ClickStoreExt};

    let json = sample();
    let record = json["Records"][0]["dynamodb"]["NewImage"]["record"]["S"]
        .as_str()
        .unwrap();
    let first: ClickRecord = serde_json::from_str(record).unwrap();
    let mut second = first.clone();
    second.click_id = "fixture-click-2".to_owned();
    second.at = first.at + 10_000;
    if let Some(audit) = &mut second.audit {
        audit.request_id = "fixture-request-2".to_owned();
    }
    let key = layout::click(
        &second.brand_id,
        click_shard(&second.click_id),
        &second.click_id,
    );
    let mut repeat = json["Records"][0].clone();
    let image = serde_json::json!({
        "pk": { "S": key.partition },
        "sk": { "S": key.sort },
        "record": { "S": serde_json::to_string(&second).unwrap() },
    });
    repeat["dynamodb"]["Keys"] = serde_json::json!({ "pk": image["pk"], "sk": image["sk"] });
    repeat["dynamodb"]["NewImage"] = image;
    repeat["dynamodb"]["SequenceNumber"] = Value::from("4421585000000000017450439096");
    let two_clicks = serde_json::json!({ "Records": [json["Records"][0], repeat] });

    let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    for click in [&first, &second] {
        store.inner().insert_click(click).await.unwrap();
    }
    store.take_calls();
    let response = invoke(store.as_ref(), &two_clicks).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let rescored = store
        .inner()
        .get_click(&brand(), "fixture-click-2")
        .await
        .unwrap()
        .unwrap();
    assert!(rescored.fraud_score > 0, "the repeat is scored");
    let calls = store.take_calls();
    for call in ["update_click", "create_documents"] {
        assert!(calls.contains(&call), "{call} in {calls:?}");
    }
    for call in &calls {
        assert!(
            GRANTED_CALLS.iter().any(|(granted, _)| granted == call),
            "{call} has no grant in the template's StreamFunction policy"
        );
    }
}
