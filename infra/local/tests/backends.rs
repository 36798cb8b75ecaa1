//! The backends `trcker-local` serves with, built by the library functions the binary calls,
//! behind the real gateway: the in-memory store with its seeded demo brand (and behind the
//! DynamoDB capacity model, `--store model`, whose capture is derived), and DynamoDB (moto)
//! with `--create-tables` and the key service the Lambda functions get (`bootstrap`), so
//! `TRCKER_KEY_CACHE_TTL_MS` bounds revocation here as it does there.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use trcker_capture::config::CaptureConfig;
use trcker_local::{
    Backends, DynamoSettings, dynamodb_backends_with, memory_backends, model_backends,
};
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::rollups::{self, RollupDimension, utc_day};
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::config::{CACHE_TTL_VAR, KEYS_TABLE_VAR, PepperSource};
use trcker_shared::edge::config::{DATA_TABLE_VAR, EdgeLimits};
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeySettings;
use trcker_shared::testing::moto_aws_config;

fn gateway(backends: &Backends) -> Router {
    trcker_local::gateway(
        backends.keys.clone(),
        backends.data.clone(),
        EdgeLimits::default(),
        CaptureConfig::default(),
        McpConfig::default(),
    )
}

/// `GET /api/public/whoami` with `key`, as a local client sends it: status and body.
async fn whoami(app: &Router, key: &str) -> (StatusCode, Value) {
    let request = Request::get("/api/public/whoami")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_memory_backends_serve_the_demo_brand() {
    let (backends, demo_key) = memory_backends().await.unwrap();
    assert!(backends.memory_data.is_some(), "the soak counters' store");
    let (status, body) = whoami(&gateway(&backends), demo_key.expose_secret()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["brand_id"], trcker_local::seed::DEMO_BRAND);
    // The seed's clicks come with their rollups; its two conversions (one fast, with its signal)
    // are derived from the feed, as every conversion is: counted once, once it is drained.
    let totals = || async {
        let brand = BrandId::parse(trcker_local::seed::DEMO_BRAND).unwrap();
        let now = SystemClock.now_ms();
        let rows = backends
            .data
            .read_rollups(
                &brand,
                RollupDimension::Total,
                &utc_day(now - 86_400_000),
                &utc_day(now + 86_400_000),
            )
            .await
            .unwrap();
        let total = |name: &str| rows.iter().map(|row| row.counter(name)).sum::<i64>();
        (
            total(rollups::CLICKS),
            total(rollups::CONVERSIONS),
            total(&format!("{}USD", rollups::REVENUE_MICROS_PREFIX)),
            total(&format!("{}fast_conversion", rollups::SIGNALS_PREFIX)),
        )
    };
    assert_eq!(totals().await, (200, 0, 0, 0));
    let derivation = backends.derivation.as_ref().unwrap();
    assert_eq!(
        derivation.drain().await.unwrap(),
        3,
        "two conversions, one signal"
    );
    assert_eq!(totals().await, (200, 2, 125_000_000, 1));
    assert_eq!(derivation.drain().await.unwrap(), 0);
}

/// `--store model`: the demo brand behind the capacity model; a capture through the gateway is
/// derived from the feed into the activity log and the rollups, through the model.
#[tokio::test]
async fn the_model_backends_serve_the_demo_brand_and_derive_captures() {
    let (backends, demo_key) = model_backends().await.unwrap();
    let app = gateway(&backends);
    let (status, _) = whoami(&app, demo_key.expose_secret()).await;
    assert_eq!(status, StatusCode::OK);
    let request = Request::post("/api/clicks/capture")
        .header("host", "localhost")
        .header("x-api-key", demo_key.expose_secret())
        .header("content-type", "application/json")
        .body(Body::from(r#"{"click_id":"model-click"}"#))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let derived = backends.derivation.as_ref().unwrap().drain().await.unwrap();
    assert!(derived >= 1, "the new click went through the feed");
    let brand = BrandId::parse(trcker_local::seed::DEMO_BRAND).unwrap();
    let records = backends
        .data
        .list_activity(
            &brand,
            trcker_shared::brand_data::ActivityFilter {
                surface: Some(trcker_shared::brand_data::Surface::Capture),
                ..Default::default()
            },
            10,
            None,
        )
        .await
        .unwrap()
        .items;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].status, records[0].target.as_str()),
        (201, "/api/clicks/capture")
    );
}

/// Settings for tables of their own on moto, with `extra` variables set.
fn moto_settings(suffix: &str, extra: &[(&str, &str)]) -> DynamoSettings {
    let keys_table = format!("local-keys-{suffix}");
    let data_table = format!("local-data-{suffix}");
    DynamoSettings::from_lookup(|name| match name {
        KEYS_TABLE_VAR => Some(keys_table.clone()),
        DATA_TABLE_VAR => Some(data_table.clone()),
        _ => extra
            .iter()
            .find(|(set, _)| *set == name)
            .map(|(_, value)| (*value).to_owned()),
    })
    .unwrap()
}

#[tokio::test]
async fn the_dynamodb_backends_create_their_tables_and_honour_the_key_cache_ttl() {
    let suffix = format!("{:016x}", trcker_shared::token::random_u64().unwrap());
    let uncached = moto_settings(&suffix, &[(CACHE_TTL_VAR, "0")]);
    assert_eq!(uncached.edge.pepper, PepperSource::InsecureDev);
    // Created, then found (with every index) by a second start.
    let operator = dynamodb_backends_with(uncached.clone(), moto_aws_config().await, true)
        .await
        .unwrap();
    let no_cache = dynamodb_backends_with(uncached, moto_aws_config().await, true)
        .await
        .unwrap();
    let default_ttl = KeySettings::default().cache_ttl_ms;
    let cached =
        dynamodb_backends_with(moto_settings(&suffix, &[]), moto_aws_config().await, false)
            .await
            .unwrap();
    assert!(no_cache.memory_data.is_none());
    assert_eq!(no_cache.keys.settings().cache_ttl_ms, 0);
    assert_eq!(cached.keys.settings(), KeySettings::default());
    assert!(default_ttl >= 1_000, "the contrast needs a cache");

    let brand = BrandId::parse("ttl").unwrap();
    operator.keys.create_brand(&brand, "TTL").await.unwrap();
    let generated = operator.keys.generate(&brand, None).await.unwrap();
    let key = generated.key.expose_secret();
    let (no_cache_app, cached_app) = (gateway(&no_cache), gateway(&cached));
    let started = Instant::now();
    for app in [&no_cache_app, &cached_app] {
        let (status, body) = whoami(app, key).await;
        assert_eq!(
            (status, &body["brand_id"]),
            (StatusCode::OK, &serde_json::json!("ttl"))
        );
    }
    operator
        .keys
        .revoke(&brand, &generated.key_id)
        .await
        .unwrap();
    let (status, body) = whoami(&no_cache_app, key).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "TRCKER_KEY_CACHE_TTL_MS=0: refused on the next request: {body}"
    );
    let (status, body) = whoami(&cached_app, key).await;
    if started.elapsed() < Duration::from_millis(default_ttl as u64 * 4 / 5) {
        assert_eq!(
            status,
            StatusCode::OK,
            "the default TTL: the cached verdict still answers: {body}"
        );
    }
}
