//! Regression tests for inputs the fuzz targets (`fuzz/`, docs/FUZZING.md) turned up: each one
//! failed before its fix (a panic, or bad input taken as valid) and must stay a typed 4xx.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::program::paging::parse_time;
use trcker_shared::store::memory::MemoryStore;

/// Signed or oddly sized RFC 3339 fields: `i64::parse` accepted `-5` as an hour, and a huge
/// negative hour overflowed the millisecond arithmetic (a panic with overflow checks on).
const SIGNED_OR_MISSIZED_TIMES: [&str; 8] = [
    "2026-11-01T-9223372036854775808:00:00Z",
    "2026-11-01T-5:00:00Z",
    "2026-11-01T10:-1:00Z",
    "2026-11-01T10:00:-30Z",
    "+2026-11-01T10:00:00Z",
    "2026-+1-01T10:00:00Z",
    "2026-11-1T10:00:00Z",
    "2026-11-01T1:00:00Z",
];

#[test]
fn signed_or_missized_time_fields_are_refused() {
    for raw in SIGNED_OR_MISSIZED_TIMES {
        let refused = parse_time("from", raw).expect_err(raw);
        assert_eq!(refused.code.as_str(), "invalid_request", "{raw}");
    }
    // Well-formed times still parse, fractions included.
    assert_eq!(
        parse_time("from", "2026-11-28T01:50:54.5Z").unwrap(),
        1_795_830_654_500
    );
}

#[tokio::test]
async fn a_negative_hour_in_a_query_is_a_400_not_a_panic() {
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
    ));
    let brand = BrandId::parse("acme").unwrap();
    keys.create_brand(&brand, "Acme").await.unwrap();
    let key = keys.generate(&brand, None).await.unwrap().key;
    let router = trcker_public_api::router(
        keys.clone(),
        Arc::new(MemoryBrandData::new()),
        EdgeLimits::default(),
    );
    for collection in ["clicks", "conversions", "activity"] {
        let path = format!("/api/public/{collection}");
        let uri = format!("{path}?from=2026-11-01T-9223372036854775808:00:00Z");
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(&uri)
            .header("authorization", format!("Bearer {}", key.expose_secret()))
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(api_gateway_context(
            &Method::GET,
            &path,
            "192.0.2.10",
            Some("fuzz-regression/1.0"),
            &format!("fuzz-regression-{collection}"),
            keys.now_ms(),
        ));
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{uri}: {body}");
    }
}
