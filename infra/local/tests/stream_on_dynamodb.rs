//! `trcker-local --store dynamodb` derives from the data table's stream what capture no longer
//! writes, as the stream function does on AWS: captures through the gateway on moto (a crawler, a
//! repeat from one address, one address over the hourly limit), the stream drained through the
//! DynamoDB Streams API ([`StreamPoller`]) with a store that fails some writes (the batch is
//! redelivered from its first failed record), and then: one capture activity record per new
//! click (there before the stream is read: the click item holds it), the rollups in agreement with the stored clicks and signals, a score raised by
//! velocity; nothing counted twice by a second drain, a second poller reading the stream again
//! from its trim horizon, or the backends' own poller; and that poller, run in the background as
//! the binary runs it, deriving a new capture and a conversion of it (with its fast-conversion
//! signal) within about a second, which a reader from the trim horizon does not count again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_capture::config::CaptureConfig;
use trcker_local::stream_poller::{POLL_INTERVAL, StreamPoller};
use trcker_local::{Backends, DynamoSettings, dynamodb_backends_with};
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::clicks::{ClickFilter, FLAGGED_SCORE};
use trcker_shared::brand_data::dynamo::DynamoBrandData;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::rollups::{
    CLICKS, CONVERSIONS, FLAGGED_CLICKS, REVENUE_MICROS_PREFIX, RollupDimension, SIGNALS_PREFIX,
    utc_day,
};
use trcker_shared::brand_data::{BrandDataStore, DocumentKind};
use trcker_shared::config::KEYS_TABLE_VAR;
use trcker_shared::edge::config::{DATA_TABLE_VAR, EdgeLimits};
use trcker_shared::ids::BrandId;
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_shared::store::schema::{DATA_TABLE, TableDefinition, create_table};
use trcker_shared::testing::{create_capture_references, moto_aws_config};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0 Safari/537.36";
const CRAWLER: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// Three clicks an hour from one address before the velocity signal; a repeat within a minute.
const THRESHOLDS: Thresholds = Thresholds {
    source_clicks_per_hour: 3,
    repeat_window_ms: 60_000,
};
const HOUR_MS: u128 = 3_600_000;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Settings for tables of their own on moto.
fn moto_settings() -> DynamoSettings {
    let suffix = format!("{:016x}", trcker_shared::token::random_u64().unwrap());
    let keys_table = format!("stream-keys-{suffix}");
    let data_table = format!("stream-data-{suffix}");
    DynamoSettings::from_lookup(|name| match name {
        KEYS_TABLE_VAR => Some(keys_table.clone()),
        DATA_TABLE_VAR => Some(data_table.clone()),
        _ => None,
    })
    .unwrap()
}

fn gateway(backends: &Backends) -> Router {
    trcker_local::gateway(
        backends.keys.clone(),
        backends.data.clone(),
        EdgeLimits::default(),
        CaptureConfig::default(),
        McpConfig::default(),
    )
}

/// One request through the gateway from `ip` (the socket address API Gateway's source IP is taken
/// from): status, headers, JSON body.
async fn call(
    app: &Router,
    method: Method,
    path: &str,
    key: &str,
    (ip, user_agent): (&str, &str),
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"))
        .header("user-agent", user_agent)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .unwrap();
    let address = SocketAddr::new(ip.parse().unwrap(), 40_000);
    request.extensions_mut().insert(ConnectInfo(address));
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Everything the stream derives for a brand, to compare before and after a replay.
#[derive(Debug, PartialEq)]
struct Derived {
    /// The request ids of the brand's activity records of new captures (201), as the public API
    /// lists them.
    captures: Vec<String>,
    /// Its activity records of duplicate captures (200).
    duplicates: usize,
    /// Each click's fraud score.
    scores: BTreeMap<String, u8>,
    /// The click signals per kind, and the click that raised each.
    signals: BTreeMap<String, Vec<String>>,
    /// The brand's total rollup counters over the days of the test.
    totals: BTreeMap<String, i64>,
    /// Clicks per offer and per partner (their rollup rows).
    groups: BTreeMap<String, i64>,
}

async fn derived(
    app: &Router,
    key: &str,
    data: &dyn BrandDataStore,
    brand: &BrandId,
    days: (&str, &str),
) -> Derived {
    let (status, _, listed) = call(
        app,
        Method::GET,
        "/api/public/activity?source=capture&limit=100",
        key,
        ("127.0.0.1", BROWSER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let entries = listed["data"].as_array().unwrap();
    let mut captures = Vec::new();
    let mut duplicates = 0;
    for entry in entries {
        assert_eq!(
            (&entry["outcome"], &entry["method"]),
            (&json!("ok"), &json!("POST")),
            "{entry}"
        );
        match entry["status"].as_u64() {
            Some(201) => captures.push(entry["request_id"].as_str().unwrap().to_owned()),
            // A duplicate's record, which capture writes itself.
            Some(200) => duplicates += 1,
            _ => panic!("a capture record of neither 201 nor 200: {entry}"),
        }
    }
    captures.sort();
    let clicks = data
        .list_clicks(brand, &ClickFilter::default(), 100, None)
        .await
        .unwrap()
        .items;
    let scores = clicks
        .iter()
        .map(|click| (click.click_id.clone(), click.fraud_score))
        .collect();
    let mut signals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for document in data
        .query_documents(brand, DocumentKind::FraudSignal, "frd_", "frd_~", 100)
        .await
        .unwrap()
    {
        let kind = document.body["kind"].as_str().unwrap().to_owned();
        let click = document.body["click_id"].as_str().unwrap().to_owned();
        signals.entry(kind).or_default().push(click);
    }
    for clicks in signals.values_mut() {
        clicks.sort();
    }
    let mut totals = BTreeMap::new();
    let mut groups = BTreeMap::new();
    for dimension in [
        RollupDimension::Total,
        RollupDimension::Offer,
        RollupDimension::Partner,
    ] {
        for row in data
            .read_rollups(brand, dimension, days.0, days.1)
            .await
            .unwrap()
        {
            for (name, value) in &row.counters {
                match dimension {
                    RollupDimension::Total => *totals.entry(name.clone()).or_default() += value,
                    _ if name == CLICKS => *groups.entry(row.group.clone()).or_default() += value,
                    _ => {}
                }
            }
        }
    }
    Derived {
        captures,
        duplicates,
        scores,
        signals,
        totals,
        groups,
    }
}

#[tokio::test]
async fn the_dynamodb_backends_derive_the_stream_once() {
    // The velocity check needs the captures in one clock hour: not in an hour's last seconds.
    let into_hour = now_ms() % HOUR_MS;
    if into_hour > HOUR_MS - 10_000 {
        let wait = HOUR_MS - into_hour + 100;
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap())).await;
    }
    let first_day = utc_day(i64::try_from(now_ms()).unwrap());
    let settings = moto_settings();
    let data_table = settings.data_table.clone();
    let aws = moto_aws_config().await;
    let backends = dynamodb_backends_with(settings, aws.clone(), true)
        .await
        .unwrap();
    let own_poller = backends
        .stream
        .clone()
        .expect("the DynamoDB backends' poller");
    assert_eq!(own_poller.table(), data_table);
    assert!(backends.derivation.is_none());
    let app = gateway(&backends);
    let brand = BrandId::parse("acme").unwrap();
    backends.keys.create_brand(&brand, "Acme").await.unwrap();
    let key = backends.keys.generate(&brand, None).await.unwrap();
    let key = key.key.expose_secret();
    create_capture_references(backends.data.as_ref(), &brand).await;

    // A crawler; a browser twice from one address (a repeat), the first click again (a
    // duplicate: no new click); five from another address, over the limit of three an hour.
    let mut captured = Vec::new();
    let mut capture = async |click_id: &str, from: (&str, &str), body: Value| {
        let mut body = body;
        body["click_id"] = json!(click_id);
        let (status, headers, answer) = call(
            &app,
            Method::POST,
            "/api/clicks/capture",
            key,
            from,
            Some(body),
        )
        .await;
        if status == StatusCode::CREATED {
            let request_id = headers["apigw-requestid"].to_str().unwrap().to_owned();
            captured.push(request_id);
        }
        (status, answer)
    };
    let bot = ("198.51.100.1", CRAWLER);
    let repeat = ("198.51.100.2", BROWSER);
    let fast = ("198.51.100.3", BROWSER);
    let offer = json!({"offer": "summer-sale"});
    let partner = json!({"partner": "alice"});
    for (click_id, from, body, expected) in [
        ("bot-1", bot, &offer, StatusCode::CREATED),
        ("first", repeat, &partner, StatusCode::CREATED),
        ("second", repeat, &partner, StatusCode::CREATED),
        ("first", repeat, &partner, StatusCode::OK),
    ] {
        let (status, answer) = capture(click_id, from, body.clone()).await;
        assert_eq!(status, expected, "{click_id}: {answer}");
    }
    for index in 0..5 {
        let (status, answer) = capture(&format!("fast-{index}"), fast, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    assert_eq!(captured.len(), 8);
    captured.sort();

    // Nothing is derived until the stream is read; every capture is in the delivery log already
    // (a new one's record is its click item).
    let last_day = utc_day(i64::try_from(now_ms()).unwrap());
    let days = (first_day.as_str(), last_day.as_str());
    let before = derived(&app, key, backends.data.as_ref(), &brand, days).await;
    assert_eq!(before.captures, captured, "{before:?}");
    assert_eq!(before.duplicates, 1, "{before:?}");
    assert!(before.totals.is_empty(), "{before:?}");

    // The first reader's store loses the answer of its first rollup write (the write happened)
    // and fails its second source count: both batches are redelivered from the failed record.
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let faulty = Arc::new(FaultyBrandData::new(DynamoBrandData::new(
        client,
        &data_table,
    )));
    faulty.inject(
        Some("add_rollup_once"),
        Fault::ResponseLost,
        Trigger::Nth(1),
    );
    faulty.inject(
        Some("count_source_hits"),
        Fault::ServerError,
        Trigger::Nth(2),
    );
    let poller = StreamPoller::new(&aws, &data_table, faulty.clone(), THRESHOLDS);
    let records = poller.drain().await.unwrap();
    assert!(records >= 8, "{records} records derived");
    assert_eq!(faulty.faults_fired(), 2, "both faults were met");

    let after = derived(&app, key, backends.data.as_ref(), &brand, days).await;
    // One capture activity record per new click, the one its capture answered 201.
    assert_eq!(after.captures, captured);
    assert_eq!(after.duplicates, 1);
    // The crawler is flagged; the repeat scores 50; the fourth and fifth click from the fast
    // address are over the hourly limit (velocity 90 on top of the repeat's 50: 100), where the
    // third, a repeat only, stays at 50.
    let score = |click_id: &str| after.scores[click_id];
    assert!(score("bot-1") >= 90, "{:?}", after.scores);
    assert_eq!((score("first"), score("second")), (0, 50));
    let fast_scores: Vec<u8> = (0..5).map(|i| score(&format!("fast-{i}"))).collect();
    assert_eq!(fast_scores, [0, 50, 50, 100, 100]);
    // One signal per kind and source this hour: velocity raised by the click that crossed the
    // limit.
    let signals = |kind: &str| after.signals.get(kind).cloned().unwrap_or_default();
    assert_eq!(signals("bot_user_agent"), ["bot-1"]);
    assert_eq!(signals("source_repeat"), ["fast-1", "second"]);
    assert_eq!(signals("source_velocity"), ["fast-3"]);
    // The rollups agree with the stored clicks and signals.
    let flagged = after
        .scores
        .values()
        .filter(|score| **score >= FLAGGED_SCORE)
        .count();
    let total = |name: &str| after.totals.get(name).copied().unwrap_or(0);
    assert_eq!(total(CLICKS), i64::try_from(after.scores.len()).unwrap());
    assert_eq!(total(CLICKS), 8);
    assert_eq!(total(FLAGGED_CLICKS), i64::try_from(flagged).unwrap());
    assert_eq!(total(FLAGGED_CLICKS), 3, "bot-1, fast-3, fast-4");
    for (kind, clicks) in &after.signals {
        assert_eq!(
            total(&format!("{SIGNALS_PREFIX}{kind}")),
            i64::try_from(clicks.len()).unwrap(),
            "{kind}: {:?}",
            after.totals
        );
    }
    assert_eq!(
        after.groups,
        BTreeMap::from([
            ("off_00000000000000aa".to_owned(), 1),
            ("ptr_00000000000000bb".to_owned(), 2),
        ])
    );

    // Draining again derives only what came since (the activity of the reads above, which
    // derives nothing); a second reader from the trim horizon (the same thresholds), and the
    // backends' own poller (the environment's thresholds), derive every record again: nothing
    // is counted twice.
    let since = poller.drain().await.unwrap();
    assert!(since < records, "{since} records since, {records} before");
    assert_eq!(
        derived(&app, key, backends.data.as_ref(), &brand, days).await,
        after
    );
    let again = StreamPoller::new(&aws, &data_table, backends.data.clone(), THRESHOLDS);
    assert!(again.drain().await.unwrap() > records);
    assert_eq!(
        derived(&app, key, backends.data.as_ref(), &brand, days).await,
        after
    );
    assert!(own_poller.drain().await.unwrap() > records);
    assert_eq!(
        derived(&app, key, backends.data.as_ref(), &brand, days).await,
        after
    );

    // In the background, as `trcker-local --store dynamodb` runs it: a new capture is listed at
    // once, and it and a conversion of it (seconds after it: a fast one, with its signal) are
    // counted within about a second.
    let background = own_poller.clone().spawn(POLL_INTERVAL);
    let (status, _, offer) = call(
        &app,
        Method::POST,
        "/api/public/offers",
        key,
        ("127.0.0.1", BROWSER),
        Some(
            json!({"name": "Autumn", "slug": "autumn", "destination_url": "https://shop.example/",
            "default_payout": {"type": "flat", "amount": 10, "currency": "USD"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{offer}");
    let (status, headers, answer) = call(
        &app,
        Method::POST,
        "/api/clicks/capture",
        key,
        ("198.51.100.9", BROWSER),
        Some(json!({"click_id": "late", "offer": "autumn"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let request_id = headers["apigw-requestid"].to_str().unwrap().to_owned();
    let (status, _, conversion) = call(
        &app,
        Method::POST,
        "/api/public/conversions",
        key,
        ("127.0.0.1", BROWSER),
        Some(json!({"click_id": "late", "amount": 80.0, "txn_id": "order-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conversion}");
    let listed = derived(&app, key, backends.data.as_ref(), &brand, days).await;
    assert!(listed.captures.contains(&request_id), "{listed:?}");
    let started = Instant::now();
    let counted = loop {
        let now = derived(&app, key, backends.data.as_ref(), &brand, days).await;
        let total = |name: &str| now.totals.get(name).copied().unwrap_or(0);
        let fast = total(&format!("{SIGNALS_PREFIX}fast_conversion"));
        if total(CLICKS) == 9 && total(CONVERSIONS) == 1 && fast == 1 {
            assert_eq!(now.signals["fast_conversion"], ["late"]);
            assert_eq!(total(&format!("{REVENUE_MICROS_PREFIX}USD")), 80_000_000);
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the capture and the conversion not counted 5 s after them: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    background.abort();
    // Drained again from the trim horizon: the conversion too is counted once.
    let third = StreamPoller::new(&aws, &data_table, backends.data.clone(), THRESHOLDS);
    assert!(third.drain().await.unwrap() > records);
    let replayed = derived(&app, key, backends.data.as_ref(), &brand, days).await;
    assert_eq!(replayed.totals, counted.totals);
}

/// `--create-tables` enables the stream of a data table made before it had one; without it, the
/// poller says what is missing rather than deriving nothing in silence.
#[tokio::test]
async fn create_tables_enables_a_missing_stream() {
    let settings = moto_settings();
    let aws = moto_aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let streamless = TableDefinition {
        stream_view_type: None,
        ..DATA_TABLE
    };
    create_table(&client, &streamless, &settings.data_table)
        .await
        .unwrap();
    let backends = dynamodb_backends_with(settings.clone(), aws.clone(), false)
        .await
        .unwrap();
    let error = backends.stream.unwrap().drain().await.unwrap_err();
    assert!(error.contains("has no stream"), "{error}");

    let backends = dynamodb_backends_with(settings.clone(), aws.clone(), true)
        .await
        .unwrap();
    let described = client
        .describe_table()
        .table_name(&settings.data_table)
        .send()
        .await
        .unwrap();
    let table = described.table().unwrap();
    assert!(table.latest_stream_arn().is_some());
    assert_eq!(
        table
            .stream_specification()
            .and_then(|stream| stream.stream_view_type())
            .map(|view| view.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    let poller = backends.stream.unwrap();
    assert_eq!(poller.drain().await.unwrap(), 0, "nothing written yet");
}
