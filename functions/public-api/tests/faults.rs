//! The public API under injected store faults: every transient fault kind (throttling, 5xx,
//! timeout) at the key store and at each route's data reads and writes answers 503 with
//! `Retry-After` and a JSON error, and is audited; whichever store call fails (walked over every
//! call the request makes, and every call of the derivation after it, in memory), a conversion
//! is either listed and counted once in the rollups after the stream's derivation, or neither;
//! and on DynamoDB (moto) a rollup row that refuses the increment holds back only the derivation.

use std::collections::BTreeMap;
use std::time::Duration;
use trcker_shared::brand_data::ClickStoreExt;
use trcker_shared::brand_data::RollupStore;

use axum::http::{Method, StatusCode};
use serde_json::json;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::dynamo::DynamoBrandData;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{CONVERSIONS, RollupDimension, utc_day};
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::faulty_edge::FaultyEdge;
use trcker_shared::ids::BrandId;
use trcker_shared::program::derived::{MemoryFeed, derive_batch};
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::counting::StoreOperation;
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_shared::store::schema::{DATA_TABLE, create_table};
use trcker_shared::testing::{
    TestClient, all_items_as_text, derive_recorded_conversions, moto_aws_config,
    recorded_conversion_events,
};

/// Stands in for the SDK operation timeout; short, so the suite stays quick.
const TIMEOUT: Duration = Duration::from_millis(20);

/// The public API over stores that inject faults, and a client to it.
struct Api<D> {
    client: TestClient,
    edge: FaultyEdge<D>,
}

impl<D> std::ops::Deref for Api<D> {
    type Target = FaultyEdge<D>;

    fn deref(&self) -> &FaultyEdge<D> {
        &self.edge
    }
}

impl Api<MemoryBrandData> {
    fn memory() -> Self {
        Self::over(MemoryBrandData::new())
    }
}

impl<D: BrandDataStore + 'static> Api<D> {
    /// Every answer is JSON, whatever a test reads of it.
    fn over(data: D) -> Self {
        let edge = FaultyEdge::over(data);
        let router =
            trcker_public_api::router(edge.keys.clone(), edge.data.clone(), EdgeLimits::default());
        Self {
            client: TestClient::router(router)
                .with_user_agent("faults-test/1.0")
                .expect_json(),
            edge,
        }
    }
}

fn click(brand: &str, click_id: &str, offer: &str, partner: &str) -> ClickRecord {
    ClickRecord {
        brand_id: BrandId::parse(brand).unwrap(),
        click_id: click_id.to_owned(),
        at: SystemClock.now_ms() - 120_000,
        offer_id: Some(offer.to_owned()),
        partner_id: Some(partner.to_owned()),
        sub_ids: [None, None, None, None, None],
        landing_url: None,
        referrer: None,
        source_ip: "198.51.100.7".into(),
        user_agent: "Mozilla/5.0".into(),
        fraud_score: 0,
        audit: None,
    }
}

/// A brand with an offer, a partner and a click of both; returns (key, click id).
async fn brand_with_click<D: BrandDataStore + 'static>(api: &Api<D>, brand: &str) -> String {
    let key = api.brand_key(brand).await;
    let offer = api
        .client
        .post("/api/public/offers")
        .bearer(&key)
        .json(json!({
            "name": "Sale", "slug": "sale", "destination_url": "https://shop.example/sale",
            "default_payout": {"type": "flat", "amount": 5, "currency": "EUR"}
        }))
        .await;
    assert_eq!(offer.status, StatusCode::CREATED, "{}", offer.json());
    let partner = api
        .client
        .post("/api/public/partners")
        .bearer(&key)
        .json(json!({"name": "Alice", "email": "alice@partners.example", "slug": "alice"}))
        .await;
    assert_eq!(partner.status, StatusCode::CREATED, "{}", partner.json());
    let record = click(
        brand,
        "click-1",
        offer.json()["id"].as_str().unwrap(),
        partner.json()["id"].as_str().unwrap(),
    );
    api.data.insert_click(&record).await.unwrap();
    key
}

/// Every transient fault at every store step a route depends on: 503, `Retry-After`, a JSON
/// error, the request audited with its 503, and the route working again once the fault clears.
#[tokio::test]
async fn every_transient_fault_is_503_with_retry_after_and_a_json_error() {
    let routes = [
        ("verify", Method::GET, "/api/public/whoami", None, None),
        (
            "partners",
            Method::GET,
            "/api/public/partners",
            None,
            Some("list_documents_by_prefix"),
        ),
        (
            "create partner",
            Method::POST,
            "/api/public/partners",
            Some(json!({"name": "Bob", "email": "bob@partners.example", "slug": "bob"})),
            Some("create_documents"),
        ),
        (
            "clicks",
            Method::GET,
            "/api/public/clicks",
            None,
            Some("list_clicks"),
        ),
        (
            "conversion: click read",
            Method::POST,
            "/api/public/conversions",
            Some(json!({"click_id": "click-1", "amount": 10})),
            Some("get_click"),
        ),
        (
            "conversion: the write",
            Method::POST,
            "/api/public/conversions",
            Some(json!({"click_id": "click-1", "amount": 10})),
            Some("create_documents"),
        ),
        (
            "activity",
            Method::GET,
            "/api/public/activity",
            None,
            Some("list_activity"),
        ),
    ];
    for fault in Fault::transient(TIMEOUT) {
        for (name, method, path, body, operation) in &routes {
            let what = format!("{name} under {fault:?}");
            let api = Api::memory();
            let mut key = brand_with_click(&api, "acme").await;
            if operation.is_none() {
                // A key no request has used yet, so its lookup misses the verify cache.
                let brand_id = BrandId::parse("acme").unwrap();
                let fresh = api.keys.generate(&brand_id, None).await.unwrap();
                key = fresh.key.expose_secret().to_owned();
            }
            match operation {
                // A cache miss: the key store's lookup is the first call of a fresh service.
                None => api.key_store.inject(
                    Some(StoreOperation::FindKeyByHash),
                    fault.clone(),
                    Trigger::Always,
                ),
                Some(operation) => {
                    api.data
                        .inject(Some(*operation), fault.clone(), Trigger::Always)
                }
            }
            let response = api
                .client
                .request(method.clone(), path)
                .bearer(&key)
                .json_opt(body.clone())
                .await;
            response.assert_unavailable(&what);
            assert!(
                api.key_store.faults_fired() + api.data.faults_fired() > 0,
                "{what}: the fault was reached"
            );

            api.key_store.clear();
            api.data.clear();
            let again = api
                .client
                .request(method.clone(), path)
                .bearer(&key)
                .json_opt(body.clone())
                .await;
            assert!(
                again.status.is_success(),
                "{what}: recovers: {}",
                again.json()
            );
            if operation.is_some() {
                let activity = api
                    .client
                    .get("/api/public/activity?limit=100")
                    .bearer(&key)
                    .await;
                assert!(
                    activity.json()["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|record| record["status"] == 503 && record["target"] == *path),
                    "{what}: the failed request is in the audit log: {}",
                    activity.json()
                );
            }
        }
    }
}

/// (conversions listed, conversions counted in the brand's rollups today).
async fn conversions_and_rollup<D: BrandDataStore + 'static>(
    api: &Api<D>,
    key: &str,
    brand: &str,
) -> (usize, i64) {
    let listed = api
        .client
        .get("/api/public/conversions?limit=100")
        .bearer(key)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.json());
    let today = utc_day(SystemClock.now_ms());
    let rows = api
        .data
        .read_rollups(
            &BrandId::parse(brand).unwrap(),
            RollupDimension::Total,
            &today,
            &today,
        )
        .await
        .unwrap();
    let counted = rows.iter().map(|row| row.counter(CONVERSIONS)).sum();
    (listed.json()["data"].as_array().unwrap().len(), counted)
}

/// Walks a fault over every store call one conversion request makes (the Nth call for N = 1, 2,
/// …) until the request makes fewer calls than N. The conversion's own write counts nothing; once
/// the memory store's change feed is derived (as the stream function derives the table's), the
/// conversion is either listed and counted once, or neither: a failed request left nothing to
/// derive and its txn id is still free; a request that succeeded (the failing call was the
/// fail-open rate counter or the audit write), or whose answer was lost after the write, is
/// derived like any other, and its retry is the idempotent duplicate. After the retry and the
/// next derivation it is listed and counted once. Then the same walk over the derivation's own
/// store calls: a failed one is redelivered, and the conversion is still counted once.
#[tokio::test]
async fn a_conversion_is_listed_and_counted_once_after_the_derivation_or_neither() {
    let faults = [
        Fault::Throttled,
        Fault::ServerError,
        Fault::Timeout(TIMEOUT),
        Fault::ResponseLost,
    ];
    for fault in faults {
        let mut step = 1;
        loop {
            let what = format!("{fault:?} at store call {step}");
            let (api, feed) = api_with_feed();
            let key = brand_with_click(&api, "acme").await;
            feed.drain().await.unwrap();
            let body = json!({"click_id": "click-1", "amount": 40, "txn_id": "order-7"});
            api.data.inject(None, fault.clone(), Trigger::Nth(step));
            let response = api
                .client
                .post("/api/public/conversions")
                .bearer(&key)
                .json(body.clone())
                .await;
            let reached = api.data.faults_fired() > 0;
            api.data.clear();
            let (listed, counted) = conversions_and_rollup(&api, &key, "acme").await;
            assert_eq!(counted, 0, "{what}: counted by the derivation only");
            feed.drain().await.unwrap();
            let (derived_listed, counted) = conversions_and_rollup(&api, &key, "acme").await;
            assert_eq!(derived_listed, listed, "{what}");
            assert_eq!(
                listed as i64, counted,
                "{what}: listed and counted once, or neither"
            );
            if !reached {
                assert_eq!(response.status, StatusCode::CREATED, "{what}");
                assert!(step > 3, "the walk covered the request's calls");
                break;
            }
            let retry = api
                .client
                .post("/api/public/conversions")
                .bearer(&key)
                .json(body)
                .await;
            feed.drain().await.unwrap();
            let (after_retry, counted_after_retry) =
                conversions_and_rollup(&api, &key, "acme").await;
            assert_eq!((after_retry, counted_after_retry), (1, 1), "{what}: once");
            match response.status {
                StatusCode::CREATED => {
                    assert_eq!(listed, 1, "{what}");
                    assert_eq!(retry.json()["duplicate"], true, "{what}");
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    response.assert_unavailable(&what);
                    if listed == 1 {
                        assert_eq!(fault, Fault::ResponseLost, "{what}: only a lost answer");
                        assert_eq!(retry.json()["duplicate"], true, "{what}: idempotent");
                    } else {
                        assert_eq!(retry.status, StatusCode::CREATED, "{what}: txn id free");
                        assert_ne!(retry.json()["duplicate"], true, "{what}");
                    }
                }
                other => panic!("{what}: {other} {}", response.json()),
            }
            step += 1;
        }
        // The derivation's own calls: one fails, the feed redelivers from it.
        let mut step = 1;
        loop {
            let what = format!("{fault:?} at derivation call {step}");
            let (api, feed) = api_with_feed();
            let key = brand_with_click(&api, "acme").await;
            feed.drain().await.unwrap();
            let recorded = api
                .client
                .post("/api/public/conversions")
                .bearer(&key)
                .json(json!({"click_id": "click-1", "amount": 40, "txn_id": "order-8"}))
                .await;
            assert_eq!(recorded.status, StatusCode::CREATED, "{what}");
            api.data.inject(None, fault.clone(), Trigger::Nth(step));
            feed.drain().await.unwrap();
            let reached = api.data.faults_fired() > 0;
            api.data.clear();
            assert_eq!(
                conversions_and_rollup(&api, &key, "acme").await,
                (1, 1),
                "{what}: counted once"
            );
            if !reached {
                assert!(step > 1, "the walk covered the derivation's calls");
                break;
            }
            step += 1;
        }
    }
}

/// The public API over the memory store, with the store's change feed, derived as the stream
/// function would derive the data table's.
fn api_with_feed() -> (Api<MemoryBrandData>, MemoryFeed) {
    let api = Api::memory();
    let feed = MemoryFeed::new(
        api.data.clone(),
        FaultyBrandData::inner,
        Thresholds::default(),
    );
    (api, feed)
}

/// Against DynamoDB (moto): the conversion's transaction (the conversion and its txn claim) holds
/// no rollup row, so a rollup row that cannot take the increment (a string where the counter is)
/// no longer refuses the conversion. The derivation of it fails on that row and names the
/// conversion's record to redeliver from; once the row is repaired, the redelivery counts it once,
/// and a further delivery adds nothing.
#[tokio::test]
async fn a_rollup_row_that_refuses_the_increment_holds_back_only_the_derivation_on_dynamodb() {
    let config = moto_aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!(
        "data-faults-{:016x}",
        trcker_shared::token::random_u64().unwrap()
    );
    create_table(&client, &DATA_TABLE, &table).await.unwrap();
    let api = Api::over(DynamoBrandData::new(client.clone(), &table));
    let key = brand_with_click(&api, "acme").await;

    let today = utc_day(SystemClock.now_ms());
    let poison = |shard: u32| {
        let mut item = BTreeMap::new();
        item.insert("pk", format!("acme#ROLLUP#T#{shard:02}"));
        item.insert("sk", format!("{today}#"));
        item.insert("n:conversions", "not a number".to_owned());
        item.into_iter()
            .map(|(name, value)| {
                (
                    name.to_owned(),
                    aws_sdk_dynamodb::types::AttributeValue::S(value),
                )
            })
            .collect::<std::collections::HashMap<_, _>>()
    };
    for shard in 0..16 {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(poison(shard)))
            .send()
            .await
            .unwrap();
    }
    let body = json!({"click_id": "click-1", "amount": 40, "txn_id": "order-9"});
    let recorded = api
        .client
        .post("/api/public/conversions")
        .bearer(&key)
        .json(body.clone())
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.json());
    let items = all_items_as_text(&client, &table).await;
    assert!(
        items.iter().any(|item| item.contains("CONVERSION#")),
        "the conversion is stored: {items:#?}"
    );

    let brand = BrandId::parse("acme").unwrap();
    let events = recorded_conversion_events(api.data.as_ref(), &brand).await;
    assert_eq!(events.len(), 1, "one conversion, not fast");
    let failure = derive_batch(api.data.as_ref(), &Thresholds::default(), &events)
        .await
        .expect_err("the poisoned row refuses the increment");
    assert_eq!(failure.first_failed_sequence, events[0].sequence);
    let listed = api
        .client
        .get("/api/public/conversions?limit=100")
        .bearer(&key)
        .await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 1);

    for shard in 0..16 {
        client
            .delete_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("acme#ROLLUP#T#{shard:02}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("{today}#")),
            )
            .send()
            .await
            .unwrap();
    }
    for _ in 0..2 {
        derive_batch(api.data.as_ref(), &Thresholds::default(), &events)
            .await
            .unwrap();
        assert_eq!(conversions_and_rollup(&api, &key, "acme").await, (1, 1));
    }
    let retried = api
        .client
        .post("/api/public/conversions")
        .bearer(&key)
        .json(body)
        .await;
    assert_eq!(retried.json()["duplicate"], true, "{}", retried.json());
    assert_eq!(
        derive_recorded_conversions(api.data.as_ref(), &brand).await,
        1
    );
    assert_eq!(conversions_and_rollup(&api, &key, "acme").await, (1, 1));
}
