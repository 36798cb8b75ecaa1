//! The public API through its HTTP layer, on both store backends (in memory and DynamoDB on moto),
//! one test per scenario and backend (`documents::partner_lifecycle::on_dynamodb`): every route,
//! every error status it can produce, brand isolation, cursors, rate limiting, the audit trail,
//! the daily rollups a conversion adds to, and the API Gateway sample events through the Lambda
//! request adapter. Requests go through `trcker_shared::testing::TestClient`.

mod audit;
mod conversions;
mod documents;
mod errors;
mod gateway;

use axum::http::StatusCode;
use serde_json::{Value, json};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::testing::{Backend, TestApp, TestClient};

/// The public API over `backend`, with the default limits.
fn api(backend: Backend) -> TestApp {
    api_with(backend, EdgeLimits::default())
}

/// Every answer of the public API is JSON (or empty), whatever a test reads of it.
fn api_with(backend: Backend, limits: EdgeLimits) -> TestApp {
    backend
        .serve(|keys, data| trcker_public_api::router(keys, data, limits))
        .with_client(TestClient::expect_json)
}

/// Creates a partner with `slug` and returns its id.
async fn create_partner(api: &TestApp, key: &str, slug: &str) -> String {
    let response = api
        .post("/api/public/partners")
        .bearer(key)
        .json(partner_body(slug))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()["id"].as_str().unwrap().to_owned()
}

/// The brand's last 100 activity records (the read itself is audited).
async fn activity_of(api: &TestApp, key: &str) -> Vec<Value> {
    let response = api.get("/api/public/activity?limit=100").bearer(key).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()["data"].as_array().unwrap().clone()
}

fn partner_body(slug: &str) -> Value {
    json!({"name": format!("Partner {slug}"), "email": format!("{slug}@partners.example"), "slug": slug})
}

fn offer_body(slug: &str) -> Value {
    json!({
        "name": format!("Offer {slug}"),
        "slug": slug,
        "destination_url": format!("https://shop.example/{slug}"),
        "default_payout": {"type": "flat", "amount": 12.5, "currency": "EUR"},
        "caps": {"daily_conversions": 100}
    })
}
