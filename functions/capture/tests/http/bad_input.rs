//! Bad input: each malformed or unresolvable capture, a wrong method, a key in the URL and an
//! unknown path answer a 4xx with a stable code, write no click and no signal, and are audited;
//! over-long URLs are cut and keys pasted into fields redacted before they are stored.

use axum::http::StatusCode;
use serde_json::json;
use trcker_capture::config::CaptureConfig;

use crate::{CAPTURE_PATH, Capture};

trcker_shared::backend_tests! {
    in_memory: Capture::in_memory(CaptureConfig::default()),
    on_dynamodb: Capture::on_dynamodb(CaptureConfig::default()).await;
    bad_input_is_refused_and_writes_nothing,
}

async fn bad_input_is_refused_and_writes_nothing(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let activity_before = capture.activity(&brand_id).await.len();
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "invalid JSON",
            "{\"click_id\":".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "empty body",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "not an object",
            "[1,2]".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no click id",
            "{\"offer\":\"summer-sale\"}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "wrong type",
            "{\"click_id\":42}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bad click id",
            "{\"click_id\":\"a b/#\"}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "long click id",
            json!({"click_id": "a".repeat(129)}).to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown field",
            "{\"click_id\":\"x\",\"price\":1}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "invalid UTF-8",
            vec![b'{', 0xff, 0xfe, b'}'],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "control characters",
            json!({"click_id": "x", "sub1": "a\u{0}b"})
                .to_string()
                .into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "long sub id",
            json!({"click_id": "x", "sub2": "s".repeat(256)})
                .to_string()
                .into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown offer",
            "{\"click_id\":\"x\",\"offer\":\"winter\"}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            "unknown partner id",
            "{\"click_id\":\"x\",\"partner\":\"ptr_00000000000000ff\"}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        // Neither an id nor a slug (longer than any store key allows): refused before the store.
        (
            "huge unicode offer",
            json!({"click_id": "x", "offer": "\u{1F600}".repeat(255)})
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            "offer with #",
            "{\"click_id\":\"x\",\"offer\":\"a#b\"}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            "body over 16 KB",
            json!({"click_id": "x", "referrer": "r".repeat(17 * 1024)})
                .to_string()
                .into(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    let count = cases.len();
    for (name, body, status, expected_code) in cases {
        let response = capture.capture_raw(body).bearer(&key).await;
        assert_eq!(response.status, status, "{name}: {}", response.text());
        assert_eq!(response.error_code(), expected_code, "{name}");
    }
    let response = capture.get(CAPTURE_PATH).bearer(&key).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.error_code(), "method_not_allowed");
    let response = capture
        .post(&format!("{CAPTURE_PATH}?api_key={key}"))
        .json(json!({"click_id": "x"}))
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), "credentials_in_url");
    let response = capture.post("/api/clicks/elsewhere").bearer(&key).await;
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
async fn long_urls_are_cut_and_keys_in_them_redacted() {
    let capture = Capture::in_memory(CaptureConfig::default());
    let (brand_id, key) = capture.brand("acme").await;
    let leaked = trcker_shared::token::generate_key().unwrap();
    let landing = format!(
        "https://shop.example/landing?click_id=long&token={}&pad={}",
        leaked.expose_secret(),
        "p".repeat(3_000)
    );
    let response = capture
        .capture(
            json!({"click_id": "long", "landing_url": landing, "sub3": leaked.expose_secret()}),
        )
        .bearer(&key)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
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
