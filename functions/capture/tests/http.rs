//! Click capture through its HTTP layer, on the in-memory store and on DynamoDB (moto): both key
//! headers, idempotency under concurrency, each fraud signal, the daily rollups (each click,
//! flag and signal counted once), CORS, the client address behind a CDN, bad input (a 4xx with a
//! stable code and nothing written), store calls per capture, and the API Gateway sample events
//! through the Lambda request adapter.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_capture::config::{AllowedOrigins, CaptureConfig};
use trcker_shared::brand_data::clicks::{ClickFilter, ClickRecord};
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{
    CLICKS, FLAGGED_CLICKS, RollupDimension, RollupRow, SIGNALS_PREFIX, utc_day,
};
use trcker_shared::brand_data::{
    ActivityFilter, ActivityRecord, BrandDataStore, DocumentKind, Surface,
};
use trcker_shared::clock::ManualClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{
    create_capture_references, fresh_dynamo_brand_data, fresh_dynamo_store,
};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0 Safari/537.36";
const START_MS: i64 = 1_795_000_000_000;

struct Capture {
    router: Router,
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    clock: Arc<ManualClock>,
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// How a test request presents itself.
struct Call<'a> {
    bearer: Option<&'a str>,
    api_key: Option<&'a str>,
    user_agent: &'a str,
    source_ip: &'a str,
    extra_headers: Vec<(&'a str, String)>,
}

impl Default for Call<'_> {
    fn default() -> Self {
        Self {
            bearer: None,
            api_key: None,
            user_agent: BROWSER,
            source_ip: "192.0.2.10",
            extra_headers: Vec::new(),
        }
    }
}

impl Capture {
    fn new(
        key_store: Arc<dyn KeyStore>,
        data: Arc<dyn BrandDataStore>,
        config: CaptureConfig,
    ) -> Self {
        let clock = Arc::new(ManualClock::starting_at(START_MS));
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store,
            clock.clone(),
        ));
        Self {
            router: trcker_capture::router(
                keys.clone(),
                data.clone(),
                EdgeLimits::default(),
                config,
            ),
            keys,
            data,
            clock,
        }
    }

    fn memory(config: CaptureConfig) -> Self {
        Self::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBrandData::new()),
            config,
        )
    }

    async fn dynamodb(config: CaptureConfig) -> Self {
        let (_, keys) = fresh_dynamo_store().await;
        Self::new(
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

    async fn send(&self, request: Request<Body>) -> Response {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    async fn request(&self, method: Method, uri: &str, call: &Call<'_>, body: Body) -> Response {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("user-agent", call.user_agent)
            .header("content-type", "application/json");
        if let Some(key) = call.bearer {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        if let Some(key) = call.api_key {
            builder = builder.header("x-api-key", key);
        }
        for (name, value) in &call.extra_headers {
            builder = builder.header(*name, value);
        }
        let mut request = builder.body(body).unwrap();
        request.extensions_mut().insert(api_gateway_context(
            &method,
            uri,
            call.source_ip,
            Some(call.user_agent),
            &format!("req-{:x}", trcker_shared::token::random_u64().unwrap()),
            0,
        ));
        self.send(request).await
    }

    async fn capture(&self, call: &Call<'_>, body: Value) -> Response {
        self.request(
            Method::POST,
            "/api/clicks/capture",
            call,
            Body::from(body.to_string()),
        )
        .await
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

fn bearer(key: &str) -> Call<'_> {
    Call {
        bearer: Some(key),
        ..Call::default()
    }
}

fn code(response: &Response) -> &str {
    response.body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {}", response.body))
}

async fn both_headers_and_conflicts(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let response = capture
        .capture(&bearer(&key), json!({"click_id": "by-bearer"}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    assert_eq!(
        response.body,
        json!({"status": "recorded", "click_id": "by-bearer"})
    );

    let api_key = Call {
        api_key: Some(&key),
        ..Call::default()
    };
    let response = capture
        .capture(
            &api_key,
            json!({"click_id": "by-api-key", "offer": "summer-sale"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);

    // The same key in both headers is one credential; two different ones are refused.
    let same = Call {
        bearer: Some(&key),
        api_key: Some(&key),
        ..Call::default()
    };
    let response = capture.capture(&same, json!({"click_id": "by-both"})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let other = trcker_shared::token::generate_key().unwrap();
    let conflicting = Call {
        bearer: Some(&key),
        api_key: Some(other.expose_secret()),
        ..Call::default()
    };
    let response = capture
        .capture(&conflicting, json!({"click_id": "conflict"}))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&response), "conflicting_credentials");

    let response = capture
        .capture(&Call::default(), json!({"click_id": "anonymous"}))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers["www-authenticate"], "Bearer");

    let ids: Vec<String> = capture
        .clicks(&brand_id)
        .await
        .into_iter()
        .map(|click| click.click_id)
        .collect();
    assert_eq!(ids.len(), 3);
    for id in ["by-bearer", "by-api-key", "by-both"] {
        assert!(ids.contains(&id.to_owned()), "{id} in {ids:?}");
    }
    let stored = capture
        .data
        .get_click(&brand_id, "by-api-key")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.offer_id.as_deref(), Some("off_00000000000000aa"));
    assert_eq!(stored.user_agent, BROWSER);
    assert_eq!(stored.source_ip, "192.0.2.10");

    // Every authenticated capture is one activity record of surface `capture`.
    let activity = capture.activity(&brand_id).await;
    // (Conflicting and missing credentials name no brand: they go to the logs instead.)
    assert_eq!(activity.len(), 3, "{activity:?}");
    assert!(
        activity
            .iter()
            .all(|record| record.user_agent == BROWSER && record.status == 201)
    );
}

#[tokio::test]
async fn both_headers_and_conflicts_on_memory() {
    both_headers_and_conflicts(&Capture::memory(CaptureConfig::default())).await;
}

#[tokio::test]
async fn both_headers_and_conflicts_on_dynamodb() {
    both_headers_and_conflicts(&Capture::dynamodb(CaptureConfig::default()).await).await;
}

async fn one_click_from_concurrent_captures(capture: Arc<Capture>) {
    let (brand_id, key) = capture.brand("acme").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let capture = capture.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            capture
                .capture(
                    &bearer(&key),
                    json!({"click_id": "same-click", "partner": "alice", "sub1": "x"}),
                )
                .await
        }));
    }
    let mut recorded = 0;
    let mut duplicates = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match (response.status, response.body["status"].as_str()) {
            (StatusCode::CREATED, Some("recorded")) => recorded += 1,
            (StatusCode::OK, Some("duplicate")) => duplicates += 1,
            other => panic!("unexpected answer {other:?}: {}", response.body),
        }
    }
    assert_eq!((recorded, duplicates), (1, 49));
    let clicks = capture.clicks(&brand_id).await;
    assert_eq!(clicks.len(), 1);
    let totals = capture.rollups(&brand_id, RollupDimension::Total).await;
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].counter(CLICKS), 1, "counted once: {totals:?}");
    let partners = capture.rollups(&brand_id, RollupDimension::Partner).await;
    assert_eq!(partners.len(), 1);
    assert_eq!(partners[0].counter(CLICKS), 1);
    assert_eq!(
        clicks[0].partner_id.as_deref(),
        Some("ptr_00000000000000bb")
    );
    assert_eq!(clicks[0].sub_ids[0].as_deref(), Some("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_captures_of_one_click_id_record_one_click_on_memory() {
    one_click_from_concurrent_captures(Arc::new(Capture::memory(CaptureConfig::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_captures_of_one_click_id_record_one_click_on_dynamodb() {
    one_click_from_concurrent_captures(Arc::new(Capture::dynamodb(CaptureConfig::default()).await))
        .await;
}

async fn fraud_signals(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let kinds = |signals: &[Value]| -> Vec<String> {
        signals
            .iter()
            .map(|signal| signal["kind"].as_str().unwrap().to_owned())
            .collect()
    };

    // A crawler: flagged on its own.
    let crawler = Call {
        bearer: Some(&key),
        user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        source_ip: "198.51.100.1",
        ..Call::default()
    };
    let response = capture
        .capture(&crawler, json!({"click_id": "bot-1"}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert!(
        response.body.get("fraud_score").is_none(),
        "scores are not told to the caller"
    );
    let click = capture
        .data
        .get_click(&brand_id, "bot-1")
        .await
        .unwrap()
        .unwrap();
    assert!(click.flagged(), "score {}", click.fraud_score);
    assert_eq!(
        kinds(&capture.signals(&brand_id).await),
        vec!["bot_user_agent"]
    );

    // The same IP again 10 s later: a repeat (scored, not flagged on its own).
    let browser = |ip| Call {
        bearer: Some(&key),
        source_ip: ip,
        ..Call::default()
    };
    capture
        .capture(&browser("198.51.100.2"), json!({"click_id": "first"}))
        .await;
    capture.clock.advance_ms(10_000);
    capture
        .capture(&browser("198.51.100.2"), json!({"click_id": "second"}))
        .await;
    let second = capture
        .data
        .get_click(&brand_id, "second")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.fraud_score, 50);
    assert!(!second.flagged());
    assert_eq!(
        capture
            .data
            .get_click(&brand_id, "first")
            .await
            .unwrap()
            .unwrap()
            .fraud_score,
        0
    );
    let signals = capture.signals(&brand_id).await;
    assert_eq!(
        kinds(&signals)[0],
        "source_repeat",
        "newest first: {signals:?}"
    );
    assert_eq!(signals[0]["click_id"], "second");

    // Past the hourly limit (3 in this test): the crossing click raises one velocity signal,
    // later ones are flagged without another. Two minutes apart, so no repeats.
    capture.clock.advance_ms(120_000);
    for index in 0..5 {
        capture
            .capture(
                &browser("198.51.100.3"),
                json!({"click_id": format!("fast-{index}")}),
            )
            .await;
        capture.clock.advance_ms(120_000);
    }
    let mut scores = Vec::new();
    for index in 0..5 {
        let click = capture
            .data
            .get_click(&brand_id, &format!("fast-{index}"))
            .await
            .unwrap()
            .unwrap();
        scores.push(click.fraud_score);
    }
    assert_eq!(scores, vec![0, 0, 0, 90, 90]);
    let kinds_now = kinds(&capture.signals(&brand_id).await);
    assert_eq!(
        kinds_now
            .iter()
            .filter(|kind| *kind == "source_velocity")
            .count(),
        1,
        "{kinds_now:?}"
    );
    // The velocity of one IP does not touch another IP or another brand.
    let (other_brand, other_key) = capture.brand("globex").await;
    let other = Call {
        bearer: Some(&other_key),
        source_ip: "198.51.100.3",
        ..Call::default()
    };
    capture
        .capture(&other, json!({"click_id": "elsewhere"}))
        .await;
    let elsewhere = capture
        .data
        .get_click(&other_brand, "elsewhere")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(elsewhere.fraud_score, 0);
    assert!(capture.signals(&other_brand).await.is_empty());
}

/// Every click, flag and signal is counted once, in the brand's total and per offer and partner;
/// duplicates, refusals and another brand's captures add nothing.
async fn rollups_count_each_click_flag_and_signal_once(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let (other_brand, other_key) = capture.brand("globex").await;
    let browser = |ip| Call {
        bearer: Some(&key),
        source_ip: ip,
        ..Call::default()
    };
    let crawler = Call {
        user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ..browser("198.51.100.2")
    };
    let both = json!({"click_id": "plain", "offer": "summer-sale", "partner": "alice"});
    let status = |response: Response| response.status;

    // A plain click, and the same click id again (a duplicate: counted once).
    assert_eq!(
        status(
            capture
                .capture(&browser("198.51.100.1"), both.clone())
                .await
        ),
        StatusCode::CREATED
    );
    capture.clock.advance_ms(120_000);
    assert_eq!(
        status(capture.capture(&browser("198.51.100.1"), both).await),
        StatusCode::OK
    );
    // A crawler: flagged at insert. The same crawler 10 s later: flagged at insert too, and the
    // repeat finding rescores it (90 -> 100) without counting it as flagged a second time.
    let bot_1 = json!({"click_id": "bot-1", "offer": "summer-sale"});
    assert_eq!(
        status(capture.capture(&crawler, bot_1).await),
        StatusCode::CREATED
    );
    capture.clock.advance_ms(10_000);
    assert_eq!(
        status(
            capture
                .capture(&crawler, json!({"click_id": "bot-2"}))
                .await
        ),
        StatusCode::CREATED
    );
    assert_eq!(
        capture
            .data
            .get_click(&brand_id, "bot-2")
            .await
            .unwrap()
            .unwrap()
            .fraud_score,
        100
    );
    // Five browser clicks from one address, two minutes apart, over a limit of 3 an hour: the
    // fourth is flagged by rescoring and raises the velocity signal, the fifth is flagged by
    // rescoring without a signal.
    capture.clock.advance_ms(120_000);
    for index in 0..5 {
        let body = json!({"click_id": format!("fast-{index}"), "partner": "alice"});
        assert_eq!(
            status(capture.capture(&browser("198.51.100.3"), body).await),
            StatusCode::CREATED
        );
        capture.clock.advance_ms(120_000);
    }
    // Refused input and another brand's click add nothing here.
    let refused = capture
        .capture(
            &browser("198.51.100.4"),
            json!({"click_id": "x", "offer": "winter"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let elsewhere = Call {
        bearer: Some(&other_key),
        ..Call::default()
    };
    capture
        .capture(&elsewhere, json!({"click_id": "plain"}))
        .await;

    let totals = capture.rollups(&brand_id, RollupDimension::Total).await;
    assert_eq!(totals.len(), 1, "{totals:?}");
    let total = &totals[0];
    assert_eq!(
        (total.day.as_str(), total.group.as_str()),
        (utc_day(START_MS).as_str(), "")
    );
    assert_eq!(
        total.counter(CLICKS),
        8,
        "plain, bot-1, bot-2, fast-0..4: {total:?}"
    );
    assert_eq!(
        total.counter(FLAGGED_CLICKS),
        4,
        "bot-1, bot-2, fast-3, fast-4: {total:?}"
    );
    let signal = |row: &RollupRow, kind: &str| row.counter(&format!("{SIGNALS_PREFIX}{kind}"));
    assert_eq!(signal(total, "bot_user_agent"), 2);
    assert_eq!(signal(total, "source_repeat"), 1);
    assert_eq!(signal(total, "source_velocity"), 1);
    // The signal counters agree with the signal documents.
    let counted: i64 = total
        .counters
        .iter()
        .filter(|(name, _)| name.starts_with(SIGNALS_PREFIX))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(
        usize::try_from(counted).unwrap(),
        capture.signals(&brand_id).await.len()
    );
    // The flagged counter agrees with the stored clicks.
    let flagged = capture
        .clicks(&brand_id)
        .await
        .iter()
        .filter(|click| click.flagged())
        .count();
    assert_eq!(flagged, 4);

    let offers = capture.rollups(&brand_id, RollupDimension::Offer).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].group, "off_00000000000000aa");
    assert_eq!(
        (
            offers[0].counter(CLICKS),
            offers[0].counter(FLAGGED_CLICKS),
            signal(&offers[0], "bot_user_agent")
        ),
        (2, 1, 1),
        "plain and bot-1"
    );
    let partners = capture.rollups(&brand_id, RollupDimension::Partner).await;
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(partners[0].group, "ptr_00000000000000bb");
    assert_eq!(
        (
            partners[0].counter(CLICKS),
            partners[0].counter(FLAGGED_CLICKS),
            signal(&partners[0], "source_velocity")
        ),
        (6, 2, 1),
        "plain and fast-0..4"
    );
    let foreign = capture.rollups(&other_brand, RollupDimension::Total).await;
    assert_eq!(foreign.len(), 1);
    assert_eq!(foreign[0].counter(CLICKS), 1);
}

#[tokio::test]
async fn rollups_count_each_click_flag_and_signal_once_on_memory() {
    rollups_count_each_click_flag_and_signal_once(&Capture::memory(strict_fraud_config())).await;
}

#[tokio::test]
async fn rollups_count_each_click_flag_and_signal_once_on_dynamodb() {
    rollups_count_each_click_flag_and_signal_once(&Capture::dynamodb(strict_fraud_config()).await)
        .await;
}

fn strict_fraud_config() -> CaptureConfig {
    CaptureConfig {
        source_clicks_per_hour: 3,
        ..CaptureConfig::default()
    }
}

#[tokio::test]
async fn fraud_signals_on_memory() {
    fraud_signals(&Capture::memory(strict_fraud_config())).await;
}

#[tokio::test]
async fn fraud_signals_on_dynamodb() {
    fraud_signals(&Capture::dynamodb(strict_fraud_config()).await).await;
}

async fn bad_input_is_refused_and_writes_nothing(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let activity_before = capture.activity(&brand_id).await.len();
    let cases: Vec<(&str, Body, StatusCode, &str)> = vec![
        (
            "invalid JSON",
            Body::from("{\"click_id\":"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "empty body",
            Body::empty(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "not an object",
            Body::from("[1,2]"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no click id",
            Body::from("{\"offer\":\"summer-sale\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "wrong type",
            Body::from("{\"click_id\":42}"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bad click id",
            Body::from("{\"click_id\":\"a b/#\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "long click id",
            Body::from(json!({"click_id": "a".repeat(129)}).to_string()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown field",
            Body::from("{\"click_id\":\"x\",\"price\":1}"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "invalid UTF-8",
            Body::from(vec![b'{', 0xff, 0xfe, b'}']),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "control characters",
            Body::from(json!({"click_id": "x", "sub1": "a\u{0}b"}).to_string()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "long sub id",
            Body::from(json!({"click_id": "x", "sub2": "s".repeat(256)}).to_string()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown offer",
            Body::from("{\"click_id\":\"x\",\"offer\":\"winter\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            "unknown partner id",
            Body::from("{\"click_id\":\"x\",\"partner\":\"ptr_00000000000000ff\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        // Neither an id nor a slug (longer than any store key allows): refused before the store.
        (
            "huge unicode offer",
            Body::from(json!({"click_id": "x", "offer": "\u{1F600}".repeat(255)}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            "offer with #",
            Body::from("{\"click_id\":\"x\",\"offer\":\"a#b\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            "body over 16 KB",
            Body::from(json!({"click_id": "x", "referrer": "r".repeat(17 * 1024)}).to_string()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    let count = cases.len();
    for (name, body, status, expected_code) in cases {
        let response = capture
            .request(Method::POST, "/api/clicks/capture", &bearer(&key), body)
            .await;
        assert_eq!(response.status, status, "{name}: {}", response.body);
        assert_eq!(code(&response), expected_code, "{name}");
    }
    let response = capture
        .request(
            Method::GET,
            "/api/clicks/capture",
            &bearer(&key),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&response), "method_not_allowed");
    let response = capture
        .request(
            Method::POST,
            &format!("/api/clicks/capture?api_key={key}"),
            &Call::default(),
            Body::from("{\"click_id\":\"x\"}"),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&response), "credentials_in_url");
    let response = capture
        .request(
            Method::POST,
            "/api/clicks/elsewhere",
            &bearer(&key),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);

    assert!(
        capture.clicks(&brand_id).await.is_empty(),
        "no click was written"
    );
    assert!(
        capture.signals(&brand_id).await.is_empty(),
        "no signal was written"
    );
    // Refusals by the handler are still audited: one record per authenticated request.
    assert_eq!(
        capture.activity(&brand_id).await.len(),
        activity_before + count + 1
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing_on_memory() {
    bad_input_is_refused_and_writes_nothing(&Capture::memory(CaptureConfig::default())).await;
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing_on_dynamodb() {
    bad_input_is_refused_and_writes_nothing(&Capture::dynamodb(CaptureConfig::default()).await)
        .await;
}

#[tokio::test]
async fn long_urls_are_cut_and_keys_in_them_redacted() {
    let capture = Capture::memory(CaptureConfig::default());
    let (brand_id, key) = capture.brand("acme").await;
    let leaked = trcker_shared::token::generate_key().unwrap();
    let landing = format!(
        "https://shop.example/landing?click_id=long&token={}&pad={}",
        leaked.expose_secret(),
        "p".repeat(3_000)
    );
    let response = capture
        .capture(
            &bearer(&key),
            json!({"click_id": "long", "landing_url": landing, "sub3": leaked.expose_secret()}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let click = capture
        .data
        .get_click(&brand_id, "long")
        .await
        .unwrap()
        .unwrap();
    let stored = click.landing_url.unwrap();
    assert!(
        stored.chars().count() <= 2_048,
        "{} characters",
        stored.chars().count()
    );
    assert!(
        !stored.contains(leaked.expose_secret()),
        "the key was redacted: {stored}"
    );
    assert!(stored.starts_with("https://shop.example/landing?click_id=long&token="));
    assert!(
        !click.sub_ids[2]
            .clone()
            .unwrap()
            .contains(leaked.expose_secret())
    );
}

#[tokio::test]
async fn preflight_and_cors_headers_follow_the_allowed_origins() {
    let capture = Capture::memory(CaptureConfig {
        allowed_origins: AllowedOrigins::parse("https://shop.example").unwrap(),
        ..CaptureConfig::default()
    });
    let (_, key) = capture.brand("acme").await;
    let preflight = |origin: &'static str| Call {
        extra_headers: vec![
            ("origin", origin.to_owned()),
            ("access-control-request-method", "POST".to_owned()),
            ("access-control-request-headers", "content-type".to_owned()),
        ],
        ..Call::default()
    };
    let response = capture
        .request(
            Method::OPTIONS,
            "/api/clicks/capture",
            &preflight("https://shop.example"),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(
        response.headers["access-control-allow-methods"],
        "POST, OPTIONS"
    );
    assert!(
        response.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-api-key")
    );
    assert_eq!(response.headers["vary"], "origin");

    let response = capture
        .request(
            Method::OPTIONS,
            "/api/clicks/capture",
            &preflight("https://evil.example"),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&response), "origin_not_allowed");
    assert_eq!(response.headers["vary"], "origin");
    assert!(
        response
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );

    let response = capture
        .request(
            Method::OPTIONS,
            "/api/clicks/capture",
            &Call::default(),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(response.headers["allow"], "POST, OPTIONS");
    assert_eq!(response.headers["vary"], "origin");

    // The real request from an allowed origin can read its answer (errors included).
    let from_shop = Call {
        api_key: Some(&key),
        extra_headers: vec![("origin", "https://shop.example".to_owned())],
        ..Call::default()
    };
    let response = capture
        .capture(&from_shop, json!({"click_id": "cors"}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let response = capture
        .capture(
            &Call {
                extra_headers: vec![("origin", "https://shop.example".to_owned())],
                ..Call::default()
            },
            json!({"click_id": "cors-2"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let response = capture
        .capture(
            &Call {
                api_key: Some(&key),
                extra_headers: vec![("origin", "https://evil.example".to_owned())],
                ..Call::default()
            },
            json!({"click_id": "cors-3"}),
        )
        .await;
    assert!(
        response
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn behind_a_trusted_cdn_the_forwarded_client_is_the_source() {
    let capture = Capture::memory(CaptureConfig {
        trusted_proxy_hops: 1,
        ..CaptureConfig::default()
    });
    let (brand_id, key) = capture.brand("acme").await;
    let through_cdn = Call {
        api_key: Some(&key),
        source_ip: "198.51.100.200",
        extra_headers: vec![("x-forwarded-for", "10.9.9.9, 203.0.113.7".to_owned())],
        ..Call::default()
    };
    let response = capture
        .capture(&through_cdn, json!({"click_id": "via-cdn"}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let click = capture
        .data
        .get_click(&brand_id, "via-cdn")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        click.source_ip, "203.0.113.7",
        "the entry the CDN appended, not the forged one"
    );
    let activity = capture.activity(&brand_id).await;
    assert_eq!(activity[0].source_ip, "203.0.113.7");

    // Without trusted hops the header is ignored.
    let direct = Capture::memory(CaptureConfig::default());
    let (brand_id, key) = direct.brand("acme").await;
    let through_cdn = Call {
        api_key: Some(&key),
        ..through_cdn
    };
    direct
        .capture(&through_cdn, json!({"click_id": "direct"}))
        .await;
    let click = direct
        .data
        .get_click(&brand_id, "direct")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(click.source_ip, "198.51.100.200");
}

#[tokio::test]
async fn capture_has_its_own_rate_budget() {
    let capture = Capture::memory(CaptureConfig {
        rate_limit_per_minute: 2,
        ..CaptureConfig::default()
    });
    let (_, key) = capture.brand("acme").await;
    for index in 0..2 {
        let response = capture
            .capture(&bearer(&key), json!({"click_id": format!("r{index}")}))
            .await;
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.headers["ratelimit-limit"], "2");
    }
    let response = capture
        .capture(&bearer(&key), json!({"click_id": "r2"}))
        .await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&response), "rate_limited");
    assert!(response.headers.contains_key("retry-after"));
    // The budget is capture's own: the default capture budget is far above the API's 100/min.
    assert_eq!(CaptureConfig::default().rate_limit_per_minute, 6_000);
}

#[tokio::test]
async fn store_calls_per_new_and_duplicate_capture() {
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let capture = Capture::new(
        Arc::new(MemoryStore::new()),
        data.clone(),
        CaptureConfig::default(),
    );
    let (_, key) = capture.brand("acme").await;
    let body = |id: &str| json!({"click_id": id, "offer": "summer-sale", "partner": "alice"});

    data.take_calls();
    capture.capture(&bearer(&key), body("cold")).await;
    assert_eq!(
        data.take_calls(),
        vec![
            "increment_counter",
            "increment_counter",
            "claim_holder",
            "claim_holder",
            "insert_click",
            "record_source_hit",
            "append_activity"
        ],
        "a cold container resolves the offer and partner slugs once"
    );
    // Minutes later (a repeat within a minute would add the signal writes, tested above).
    capture.clock.advance_ms(120_000);
    let response = capture.capture(&bearer(&key), body("warm")).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(
        data.take_calls(),
        vec![
            "increment_counter",
            "increment_counter",
            "insert_click",
            "record_source_hit",
            "append_activity"
        ],
        "new capture: the source's and the key's budgets together, one conditional write, the \
         source counter, the audit record"
    );
    let response = capture.capture(&bearer(&key), body("warm")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        data.take_calls(),
        vec![
            "increment_counter",
            "increment_counter",
            "insert_click",
            "append_activity"
        ],
        "duplicate: no read beyond the failed conditional write"
    );
}

fn event(name: &str, substitutions: &[(&str, &str)]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/capture")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (placeholder, value) in substitutions {
        text = text.replace(placeholder, value);
    }
    text
}

#[tokio::test]
async fn api_gateway_events_pass_through_the_lambda_adapter() {
    let capture = Capture::memory(CaptureConfig {
        trusted_proxy_hops: 1,
        allowed_origins: AllowedOrigins::parse("https://shop.example").unwrap(),
        ..CaptureConfig::default()
    });
    let (brand_id, key) = capture.brand("acme").await;
    let send = |name: &str| {
        let request = lambda_http::request::from_str(&event(name, &[("{{KEY}}", &key)])).unwrap();
        capture.send(request.map(|body| Body::from(body.to_vec())))
    };

    let response = send("capture-bearer.json").await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let click = capture
        .data
        .get_click(&brand_id, "fixture-click-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(click.offer_id.as_deref(), Some("off_00000000000000aa"));
    assert_eq!(click.user_agent, "Mozilla/5.0 (fixture browser)");
    assert_eq!(click.source_ip, "198.51.100.23");

    let response = send("capture-x-api-key-via-cdn.json").await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let click = capture
        .data
        .get_click(&brand_id, "fixture-click-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(click.partner_id.as_deref(), Some("ptr_00000000000000bb"));
    assert_eq!(click.sub_ids[0].as_deref(), Some("newsletter"));
    assert_eq!(click.source_ip, "203.0.113.50", "the client behind the CDN");

    let response = send("capture-x-api-key-via-cdn.json").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["status"], "duplicate");

    let response = send("preflight.json").await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
}

/// The review's attack: in the recommended CDN set-up anyone can post to the brand's capture path.
/// One source over its own budget is refused without spending the key's, so every other visitor
/// still gets their clicks; its refusals are counted on one summary record, not one each.
#[tokio::test]
async fn one_source_over_its_budget_leaves_other_visitors_their_clicks() {
    let capture = Capture::memory(CaptureConfig {
        rate_limit_per_minute: 10,
        source_rate_limit_per_minute: 3,
        trusted_proxy_hops: 1,
        ..CaptureConfig::default()
    });
    let (brand_id, key) = capture.brand("acme").await;
    let visitor = |client: &'static str| Call {
        api_key: Some(&key),
        source_ip: "198.51.100.200",
        extra_headers: vec![("x-forwarded-for", client.to_owned())],
        ..Call::default()
    };
    let flooder = visitor("203.0.113.66");
    for index in 0..35 {
        let response = capture
            .capture(&flooder, json!({"click_id": format!("flood-{index}")}))
            .await;
        if index < 3 {
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        } else {
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(code(&response), "rate_limited");
            assert_eq!(response.headers["ratelimit-limit"], "3");
            assert!(response.headers.contains_key("retry-after"));
        }
    }
    // Other addresses still have the rest of the key's budget: 3 + 7.
    let others = [
        "198.51.100.7",
        "2001:db8:5::1",
        "2001:db8:5::2",
        "2001:db8:6::1",
        "198.51.100.8",
        "198.51.100.7",
        "198.51.100.9",
    ];
    for (index, client) in others.iter().enumerate() {
        let response = capture
            .capture(&visitor(client), json!({"click_id": format!("ok-{index}")}))
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{client}: {}",
            response.body
        );
    }
    let response = capture
        .capture(&visitor("192.0.2.99"), json!({"click_id": "over-the-key"}))
        .await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers["ratelimit-limit"], "10",
        "now the key's own budget"
    );
    assert_eq!(capture.clicks(&brand_id).await.len(), 10);

    let activity = capture.activity(&brand_id).await;
    let summaries: Vec<_> = activity.iter().filter(|r| r.attempts.is_some()).collect();
    assert_eq!(summaries.len(), 1, "{activity:?}");
    assert_eq!(
        summaries[0].attempts,
        Some(32),
        "exact up to 32 beyond the budget"
    );
    assert_eq!(summaries[0].source_ip, "203.0.113.66");
    assert_eq!(summaries[0].outcome, "rate_limited");
    assert_eq!(
        activity.len(),
        3 + 7 + 1 + 1,
        "admitted, key-refused, one summary"
    );
}

/// The source budget is counted beside the key's, so it adds no store round trip: under the
/// paused clock with every store call taking L, a new capture waits 4 L (counters, click, source
/// hit, audit) and a refused one 2 L (counters, then the refund beside the summary).
#[tokio::test(start_paused = true)]
async fn the_source_budget_adds_no_round_trip() {
    use trcker_shared::store::fault::{Fault, Trigger};
    const L: std::time::Duration = std::time::Duration::from_millis(10);
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let capture = Capture::new(
        Arc::new(MemoryStore::new()),
        data.clone(),
        CaptureConfig {
            source_rate_limit_per_minute: 1,
            ..CaptureConfig::default()
        },
    );
    let (_, key) = capture.brand("acme").await;
    capture
        .capture(&bearer(&key), json!({"click_id": "warm"}))
        .await;
    capture.clock.advance_ms(120_000);
    data.inject(None, Fault::Latency(L), Trigger::Always);
    data.take_calls();
    let timed = |id: &'static str| {
        let capture = &capture;
        let key = &key;
        async move {
            let started = tokio::time::Instant::now();
            let response = capture.capture(&bearer(key), json!({"click_id": id})).await;
            (response.status, started.elapsed())
        }
    };
    assert_eq!(timed("new").await, (StatusCode::CREATED, 4 * L));
    assert_eq!(
        data.take_calls(),
        [
            "increment_counter",
            "increment_counter",
            "insert_click",
            "record_source_hit",
            "append_activity"
        ]
    );
    assert_eq!(
        timed("refused").await,
        (StatusCode::TOO_MANY_REQUESTS, 2 * L)
    );
    assert_eq!(
        data.take_calls(),
        [
            "increment_counter",
            "increment_counter",
            "increment_counter",
            "record_activity_summary"
        ],
        "the refund and the summary go together"
    );
}

/// A revoked key keeps getting its 401 and one record per attempt up to its own budget; beyond it
/// a 429, and the attempts are counted on one summary per minute: 2,050 attempts leave the
/// brand's other records in place and cost a few hundred writes, not 2,050 records.
#[tokio::test]
async fn revoked_key_attempts_have_a_budget_and_a_summary() {
    let capture = Capture::memory(CaptureConfig::default());
    let (brand_id, live_key) = capture.brand("acme").await;
    capture
        .capture(&bearer(&live_key), json!({"click_id": "before"}))
        .await;
    let revoked = capture.keys.generate(&brand_id, None).await.unwrap();
    capture
        .keys
        .revoke(&brand_id, &revoked.key_id)
        .await
        .unwrap();
    let key = revoked.key.expose_secret().to_owned();
    let budget = EdgeLimits::default().revoked_key_records_per_minute;
    for attempt in 1..=2_050u32 {
        let response = capture
            .capture(
                &bearer(&key),
                json!({"click_id": format!("after-{attempt}")}),
            )
            .await;
        if attempt <= budget {
            assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        } else {
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(code(&response) == "rate_limited");
            assert!(
                response.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("revoked")
            );
        }
    }
    let activity = capture.activity(&brand_id).await;
    let revoked: Vec<_> = activity
        .iter()
        .filter(|r| r.outcome == "revoked_key")
        .collect();
    let summaries: Vec<_> = revoked.iter().filter(|r| r.attempts.is_some()).collect();
    assert_eq!(revoked.len(), budget as usize + 1);
    assert_eq!(summaries.len(), 1);
    let true_count = u64::from(2_050 - budget);
    let counted = summaries[0].attempts.unwrap();
    assert!(
        counted <= true_count && true_count - counted < true_count / 16,
        "{counted}"
    );
    assert!(
        activity.iter().any(|r| r.outcome == "ok"),
        "the brand's own record is still there"
    );
    // The next minute starts a new budget.
    capture.clock.advance_ms(60_000);
    let response = capture
        .capture(&bearer(&key), json!({"click_id": "next-minute"}))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

/// Two credential headers are refused, even two copies of one key: which to believe is not the
/// edge's guess to make (HTTP API joins duplicates; REST multi-value headers and load balancers
/// keep both).
#[tokio::test]
async fn repeated_credential_headers_are_refused() {
    let capture = Capture::memory(CaptureConfig::default());
    let (brand_id, key) = capture.brand("acme").await;
    let (_, other) = capture.brand("globex").await;
    for headers in [
        vec![("x-api-key", key.clone()), ("x-api-key", other.clone())],
        vec![("x-api-key", key.clone()), ("x-api-key", key.clone())],
        vec![
            ("authorization", format!("Bearer {key}")),
            ("authorization", format!("Bearer {other}")),
        ],
    ] {
        let call = Call {
            extra_headers: headers,
            ..Call::default()
        };
        let response = capture.capture(&call, json!({"click_id": "twice"})).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&response), "conflicting_credentials");
    }
    assert!(capture.clicks(&brand_id).await.is_empty());
}
