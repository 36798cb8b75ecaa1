//! Click capture through its HTTP layer, on the in-memory store and on DynamoDB (moto), one test per
//! scenario and backend (`idempotency::...::on_dynamodb`): both key headers, idempotency under
//! concurrency, CORS, the client address behind a CDN, bad input (a 4xx with a stable code and
//! nothing written), the rate budgets, store calls per capture, and the API Gateway sample events
//! through the Lambda request adapter. What the stream function derives from captures (each fraud
//! signal, the daily rollups: each click, flag and signal counted once) is checked here through
//! the memory store's change feed, drained as the stream would be; on DynamoDB it is checked
//! through the table's stream by the stream function's and the local gateway's tests. Requests go
//! through `trcker_shared::testing::TestClient`.

mod bad_input;
mod budgets;
mod cors_and_addresses;
mod fraud;
mod idempotency;
mod keys_and_headers;
mod lambda_events;
mod rollups;

use std::sync::Arc;

use serde_json::Value;
use trcker_capture::config::CaptureConfig;
use trcker_shared::brand_data::clicks::{ClickFilter, ClickRecord};
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{RollupDimension, RollupRow, utc_day};
use trcker_shared::brand_data::{
    ActivityFilter, ActivityRecord, BrandDataStore, DocumentKind, Surface,
};
use trcker_shared::clock::ManualClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::program::derived::MemoryFeed;
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::KeyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{
    TestClient, TestRequest, create_capture_references, fresh_dynamo_brand_data, fresh_dynamo_store,
};

/// The user agent of every request unless a test says otherwise.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0 Safari/537.36";
/// A crawler's user agent: flagged on its own.
const CRAWLER: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// Where the test clock starts.
const START_MS: i64 = 1_795_000_000_000;
/// The route under test.
const CAPTURE_PATH: &str = "/api/clicks/capture";

/// The capture router over a key store and a brand data store, on a manual clock, and a client
/// to it (what the fixture derefs to): every request is in process with the API Gateway context
/// (source IP `192.0.2.10` unless told otherwise), sends [`BROWSER`] as its user agent, and every
/// answer must be JSON (or empty).
#[derive(Clone)]
struct Capture {
    client: TestClient,
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    clock: Arc<ManualClock>,
    /// The memory store's change feed, derived as the stream function derives the table's.
    feed: Option<Arc<MemoryFeed>>,
}

impl std::ops::Deref for Capture {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.client
    }
}

impl Capture {
    /// Over these stores (wrapped ones: faulty, counting), with the default edge limits.
    fn over(
        key_store: Arc<dyn KeyStore>,
        data: Arc<dyn BrandDataStore>,
        config: CaptureConfig,
    ) -> Self {
        let clock = Arc::new(ManualClock::starting_at(START_MS));
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store,
            clock.clone(),
        ));
        let router =
            trcker_capture::router(keys.clone(), data.clone(), EdgeLimits::default(), config);
        Self {
            client: TestClient::router(router)
                .with_user_agent(BROWSER)
                .expect_json(),
            keys,
            data,
            clock,
            feed: None,
        }
    }

    /// Both stores in memory, with the default fraud thresholds.
    fn in_memory(config: CaptureConfig) -> Self {
        Self::in_memory_scored(config, Thresholds::default())
    }

    /// Both stores in memory, the stream's derivation scoring with `thresholds`.
    fn in_memory_scored(config: CaptureConfig, thresholds: Thresholds) -> Self {
        let data = Arc::new(MemoryBrandData::new());
        let feed = MemoryFeed::new(data.clone(), |memory| memory, thresholds);
        Self {
            feed: Some(Arc::new(feed)),
            ..Self::over(Arc::new(MemoryStore::new()), data, config)
        }
    }

    /// Derives everything the captures so far imply, as the stream function would: what a test
    /// waits for before it reads scores, signals or rollups.
    async fn derive(&self) {
        let feed = self
            .feed
            .as_ref()
            .expect("derived data is checked on the memory store's change feed");
        feed.drain().await.unwrap();
    }

    /// Both stores on moto, each on a table of its own.
    async fn on_dynamodb(config: CaptureConfig) -> Self {
        let (_, keys) = fresh_dynamo_store().await;
        Self::over(
            Arc::new(keys),
            Arc::new(fresh_dynamo_brand_data().await),
            config,
        )
    }

    /// A brand with one offer (`summer-sale`) and one partner (`alice`), and its key.
    async fn brand(&self, id: &str) -> (BrandId, String) {
        let brand_id = BrandId::parse(id).unwrap();
        self.keys.create_brand(&brand_id, id).await.unwrap();
        let key = self.keys.generate(&brand_id, None).await.unwrap();
        create_capture_references(self.data.as_ref(), &brand_id).await;
        (brand_id, key.key.expose_secret().to_owned())
    }

    /// `POST /api/clicks/capture` with `body` as JSON, no credentials yet.
    fn capture(&self, body: Value) -> TestRequest<'_> {
        self.post(CAPTURE_PATH).json(body)
    }

    /// `POST /api/clicks/capture` with these bytes as its body, labelled `application/json`
    /// whatever they are, no credentials yet.
    fn capture_raw(&self, body: impl Into<Vec<u8>>) -> TestRequest<'_> {
        self.post(CAPTURE_PATH)
            .header("content-type", "application/json")
            .body(body)
    }

    async fn clicks(&self, brand_id: &BrandId) -> Vec<ClickRecord> {
        self.data
            .list_clicks(brand_id, &ClickFilter::default(), 100, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(std::sync::Arc::unwrap_or_clone)
            .collect()
    }

    async fn signals(&self, brand_id: &BrandId) -> Vec<Value> {
        self.data
            .query_documents(brand_id, DocumentKind::FraudSignal, "frd_", "frd_~", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|document| document.body)
            .collect()
    }

    /// The brand's rollup rows of `dimension` on the day the test clock started.
    async fn rollups(&self, brand_id: &BrandId, dimension: RollupDimension) -> Vec<RollupRow> {
        let day = utc_day(START_MS);
        self.data
            .read_rollups(brand_id, dimension, &day, &day)
            .await
            .unwrap()
    }

    /// The brand's capture records, newest first, as the delivery log lists them: a new
    /// capture's from its click item, with nothing to derive first.
    async fn activity(&self, brand_id: &BrandId) -> Vec<ActivityRecord> {
        let filter = ActivityFilter {
            surface: Some(Surface::Capture),
            ..ActivityFilter::default()
        };
        self.data
            .list_activity(brand_id, filter, 100, None)
            .await
            .unwrap()
            .items
    }
}

/// Three clicks an hour from one source before the velocity signal.
const STRICT_THRESHOLDS: Thresholds = Thresholds {
    source_clicks_per_hour: 3,
    repeat_window_ms: 60_000,
};

/// Capture in memory, the derivation scoring with [`STRICT_THRESHOLDS`].
fn strictly_scored() -> Capture {
    Capture::in_memory_scored(CaptureConfig::default(), STRICT_THRESHOLDS)
}
