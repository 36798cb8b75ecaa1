//! The key headers: `Authorization: Bearer` and `x-api-key` each work and agree with each other,
//! two different keys or a repeated credential header are refused, and no key is a 401; what a
//! capture stores and audits of its caller.

use axum::http::StatusCode;
use serde_json::json;
use trcker_capture::config::CaptureConfig;

use crate::{BROWSER, Capture};

trcker_shared::backend_tests! {
    in_memory: Capture::in_memory(CaptureConfig::default()),
    on_dynamodb: Capture::on_dynamodb(CaptureConfig::default()).await;
    both_headers_and_conflicts,
}

async fn both_headers_and_conflicts(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let response = capture
        .capture(json!({"click_id": "by-bearer"}))
        .bearer(&key)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(
        *response.json(),
        json!({"status": "recorded", "click_id": "by-bearer"})
    );

    let response = capture
        .capture(json!({"click_id": "by-api-key", "offer": "summer-sale"}))
        .header("x-api-key", &key)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());

    // The same key in both headers is one credential; two different ones are refused.
    let response = capture
        .capture(json!({"click_id": "by-both"}))
        .bearer(&key)
        .header("x-api-key", &key)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let other = trcker_shared::token::generate_key().unwrap();
    let response = capture
        .capture(json!({"click_id": "conflict"}))
        .bearer(&key)
        .header("x-api-key", other.expose_secret())
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.error_code(), "conflicting_credentials");

    let response = capture.capture(json!({"click_id": "anonymous"})).await;
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

/// Two credential headers are refused, even two copies of one key: which to believe is not the
/// edge's guess to make (HTTP API joins duplicates; REST multi-value headers and load balancers
/// keep both).
#[tokio::test]
async fn repeated_credential_headers_are_refused() {
    let capture = Capture::in_memory(CaptureConfig::default());
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
        let mut request = capture.capture(json!({"click_id": "twice"}));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(response.error_code(), "conflicting_credentials");
    }
    assert!(capture.clicks(&brand_id).await.is_empty());
}
