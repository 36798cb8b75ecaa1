//! What the browser and the CDN in front see: the CORS preflight and headers, which follow the
//! allowed origins (errors included), and the client address behind trusted proxy hops.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use trcker_capture::config::{AllowedOrigins, CaptureConfig};
use trcker_shared::testing::TestRequest;

use crate::{CAPTURE_PATH, Capture};

#[tokio::test]
async fn preflight_and_cors_headers_follow_the_allowed_origins() {
    let capture = Capture::in_memory(CaptureConfig {
        allowed_origins: AllowedOrigins::parse("https://shop.example").unwrap(),
        ..CaptureConfig::default()
    });
    let (_, key) = capture.brand("acme").await;
    let options = || capture.request(Method::OPTIONS, CAPTURE_PATH);
    let preflight = |origin: &str| {
        options()
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };
    let response = preflight("https://shop.example").await;
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

    let response = preflight("https://evil.example").await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(response.error_code(), "origin_not_allowed");
    assert_eq!(response.headers["vary"], "origin");
    assert!(
        response
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );

    let response = options().await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(response.headers["allow"], "POST, OPTIONS");
    assert_eq!(response.headers["vary"], "origin");

    // The real request from an allowed origin can read its answer (errors included).
    let response = capture
        .capture(json!({"click_id": "cors"}))
        .header("x-api-key", &key)
        .header("origin", "https://shop.example")
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let response = capture
        .capture(json!({"click_id": "cors-2"}))
        .header("origin", "https://shop.example")
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let response = capture
        .capture(json!({"click_id": "cors-3"}))
        .header("x-api-key", &key)
        .header("origin", "https://evil.example")
        .await;
    assert!(
        response
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// A capture with `key` in `x-api-key` from the CDN at `198.51.100.200`, whose
/// `X-Forwarded-For` holds a forged entry and then the client it saw.
fn through_cdn<'a>(capture: &'a Capture, key: &str, body: Value) -> TestRequest<'a> {
    capture
        .capture(body)
        .header("x-api-key", key)
        .source_ip("198.51.100.200")
        .header("x-forwarded-for", "10.9.9.9, 203.0.113.7")
}

#[tokio::test]
async fn behind_a_trusted_cdn_the_forwarded_client_is_the_source() {
    let capture = Capture::in_memory(CaptureConfig {
        trusted_proxy_hops: 1,
        ..CaptureConfig::default()
    });
    let (brand_id, key) = capture.brand("acme").await;
    let response = through_cdn(&capture, &key, json!({"click_id": "via-cdn"})).await;
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
    let direct = Capture::in_memory(CaptureConfig::default());
    let (brand_id, key) = direct.brand("acme").await;
    through_cdn(&direct, &key, json!({"click_id": "direct"})).await;
    let click = direct
        .data
        .get_click(&brand_id, "direct")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(click.source_ip, "198.51.100.200");
}
