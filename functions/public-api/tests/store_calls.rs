//! What each public-API request costs in store calls, asserted as exact call lists on a warm
//! container (key cached): whoami, a list, a create, and a conversion new and repeated. The
//! figures and the minimum each is compared with are in BENCHMARKS.md ("Store calls per operation").

use std::sync::Arc;
use trcker_shared::brand_data::ClickStoreExt;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::rate_limit::LeaseSettings;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::counting::CountingStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{TestClient, TestResponse};

/// A router whose key store counts its calls and whose brand-data store logs them, and a client
/// to it.
struct CountedApi {
    client: TestClient,
    key_store: Arc<CountingStore<MemoryStore>>,
    data: Arc<FaultyBrandData<MemoryBrandData>>,
    key: String,
}

/// The calls one request made: key-store calls (total) and brand-data calls (in order).
#[derive(Debug, PartialEq, Eq)]
struct Cost {
    key_store: u64,
    brand_data: Vec<&'static str>,
}

impl CountedApi {
    async fn new() -> Self {
        let key_store = Arc::new(CountingStore::new(MemoryStore::new()));
        let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store.clone(),
            Arc::new(SystemClock),
        ));
        let brand_id = BrandId::parse("acme").unwrap();
        keys.create_brand(&brand_id, "Acme").await.unwrap();
        let key = keys
            .generate(&brand_id, None)
            .await
            .unwrap()
            .key
            .expose_secret()
            .to_owned();
        // A lease that outlasts the test, so every request's calls are its own: the renewals
        // (one counter write per lease, beside a request) are counted in round_trips.rs.
        let limits = EdgeLimits {
            key_budget_leases: LeaseSettings {
                shards: 1,
                lease: 100,
            },
            ..EdgeLimits::default()
        };
        let router = trcker_public_api::router(keys, data.clone(), limits);
        let api = Self {
            client: TestClient::router(router)
                .with_source_ip("192.0.2.20")
                .with_user_agent("store-calls-test/1.0"),
            key_store,
            data,
            key,
        };
        // Warm the key cache, as any request after the first on a container would.
        api.send(Method::GET, "/api/public/whoami", None).await;
        api
    }

    /// A request with the brand's key.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        self.client
            .request(method, path)
            .bearer(&self.key)
            .json_opt(body)
            .await
    }

    /// Sends the request and returns its status and what it cost.
    async fn cost_of(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Cost) {
        self.key_store.reset();
        self.data.take_calls();
        let response = self.send(method, path, body).await;
        let cost = Cost {
            key_store: self.key_store.total_calls(),
            brand_data: self.data.take_calls(),
        };
        (response.status, response.json().clone(), cost)
    }
}

/// The guard's one write after a request on a warm container: the audit record (the key's budget
/// is decided by the container's lease, with no store call).
const GUARD_AFTER: &str = "append_activity";

fn with_guard(handler: &[&'static str]) -> Vec<&'static str> {
    let mut calls = handler.to_vec();
    calls.push(GUARD_AFTER);
    calls
}

#[tokio::test]
async fn each_request_type_costs_its_minimum_of_store_calls() {
    let api = CountedApi::new().await;

    let (status, _, whoami) = api.cost_of(Method::GET, "/api/public/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        whoami,
        Cost {
            key_store: 0,
            brand_data: with_guard(&[]),
        },
        "whoami on a warm container: the audit record and nothing else"
    );

    let (status, created, create) = api
        .cost_of(
            Method::POST,
            "/api/public/partners",
            Some(json!({"name": "Jane", "email": "jane@example.com", "slug": "jane"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        create,
        Cost {
            key_store: 0,
            brand_data: with_guard(&["create_documents"]),
        },
        "a create is one conditional transaction (document + slug claim)"
    );
    let partner_id = created["id"].as_str().unwrap().to_owned();

    let (status, _, list) = api
        .cost_of(Method::GET, "/api/public/partners?limit=25", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        Cost {
            key_store: 0,
            brand_data: with_guard(&["list_documents_by_prefix"]),
        },
        "a list page is one query"
    );

    let offer = api
        .send(
            Method::POST,
            "/api/public/offers",
            Some(json!({
                "name": "Summer Sale",
                "slug": "summer-sale",
                "destination_url": "https://shop.example/summer",
                "default_payout": {"type": "flat", "amount": 5.0, "currency": "USD"},
            })),
        )
        .await;
    assert_eq!(offer.status, StatusCode::CREATED, "{}", offer.text());

    // A click to convert, as capture would have written it.
    let brand_id = BrandId::parse("acme").unwrap();
    let click = ClickRecord {
        brand_id,
        click_id: "click-1".into(),
        at: SystemClock.now_ms() - 60_000,
        offer_id: Some(offer.json()["id"].as_str().unwrap().to_owned()),
        partner_id: Some(partner_id),
        sub_ids: Default::default(),
        landing_url: None,
        referrer: None,
        source_ip: "198.51.100.7".into(),
        user_agent: "Mozilla/5.0".into(),
        fraud_score: 0,
        audit: None,
    };
    api.data.insert_click(&click).await.unwrap();

    let conversion = json!({"click_id": "click-1", "amount": 10.0, "txn_id": "order-1"});
    let (status, body, new_conversion) = api
        .cost_of(
            Method::POST,
            "/api/public/conversions",
            Some(conversion.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body, duplicate) = api
        .cost_of(Method::POST, "/api/public/conversions", Some(conversion))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], json!(true));
    assert_eq!(
        duplicate,
        Cost {
            key_store: 0,
            brand_data: with_guard(&[
                "claim_holder",
                "get_document",
                "get_click",
                "get_document",
                "list_documents_by_prefix",
            ]),
        },
        "a repeated txn_id reads the claim and the original beside the attribution (the click, \
         its offer and rules, read in the same round: no round trip more, three reads more), and \
         writes nothing"
    );
    assert_eq!(
        new_conversion,
        Cost {
            key_store: 0,
            brand_data: vec![
                "claim_holder",
                "get_click",
                "get_document",
                "list_documents_by_prefix",
                "create_documents",
            ],
        },
        "a new conversion: the txn_id check, the click, its offer, the offer's rules, then one \
         transaction (conversion, txn_id claim, any fraud signal and the request's audit record; \
         the stream derives the rollups)"
    );
}
