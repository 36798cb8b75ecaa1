//! The API Gateway sample events of `events/capture/` through the Lambda request adapter: a bearer
//! capture, an `x-api-key` capture through a CDN (and its duplicate), and the CORS preflight.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::StatusCode;
use trcker_capture::config::{AllowedOrigins, CaptureConfig};

use crate::Capture;

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
    let capture = Capture::in_memory(CaptureConfig {
        trusted_proxy_hops: 1,
        allowed_origins: AllowedOrigins::parse("https://shop.example").unwrap(),
        ..CaptureConfig::default()
    });
    let (brand_id, key) = capture.brand("acme").await;
    let send = |name: &str| {
        let request = lambda_http::request::from_str(&event(name, &[("{{KEY}}", &key)])).unwrap();
        capture.send_request(request.map(|body| Body::from(body.to_vec())))
    };

    let response = send("capture-bearer.json").await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
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
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
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
    assert_eq!(response.json()["status"], "duplicate");

    let response = send("preflight.json").await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://shop.example"
    );
}
