//! What reaches the router from outside: API Gateway sample events through the Lambda request
//! adapter, and the served OpenAPI document against the router.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;
use trcker_shared::ids::BrandId;
use trcker_shared::testing::Backend;

use crate::api;

fn event(name: &str, substitutions: &[(&str, &str)]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/public-api")
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
    let api = api(Backend::in_memory());
    let key = api.brand("acme").await;
    let brand_id = BrandId::parse("acme").unwrap();
    let revoked = api.keys.generate(&brand_id, None).await.unwrap();
    api.keys.revoke(&brand_id, &revoked.key_id).await.unwrap();

    let whoami =
        lambda_http::request::from_str(&event("whoami.json", &[("{{KEY}}", &key)])).unwrap();
    let response = api
        .send_request(whoami.map(|body| Body::from(body.to_vec())))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json());
    assert_eq!(response.json()["brand_id"], "acme");

    let create =
        lambda_http::request::from_str(&event("create-partner.json", &[("{{KEY}}", &key)]))
            .unwrap();
    let response = api
        .send_request(create.map(|body| Body::from(body.to_vec())))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.json());
    assert_eq!(response.json()["slug"], "fixture-partner");

    let leaked = lambda_http::request::from_str(&event(
        "list-partners-revoked-key.json",
        &[("{{REVOKED_KEY}}", revoked.key.expose_secret())],
    ))
    .unwrap();
    let response = api
        .send_request(leaked.map(|body| Body::from(body.to_vec())))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let page = api
        .data
        .list_activity(&brand_id, Default::default(), 10, None)
        .await
        .unwrap();
    let by_request: Vec<(&str, &str, &str, &str)> = page
        .items
        .iter()
        .map(|r| {
            (
                r.request_id.as_str(),
                r.source_ip.as_str(),
                r.user_agent.as_str(),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        by_request,
        [
            (
                "fixture-request-3",
                "203.0.113.99",
                "leaky-ci/2.3",
                "revoked_key"
            ),
            (
                "fixture-request-2",
                "198.51.100.23",
                "fixture-agent/1.0",
                "ok"
            ),
            (
                "fixture-request-1",
                "198.51.100.23",
                "fixture-agent/1.0",
                "ok"
            ),
        ],
        "the API Gateway context (request id, source IP, user agent) reaches the audit trail"
    );
}

/// The served OpenAPI document and the router agree: every documented operation is routed (not
/// "no such route", not 405) and answers with a status the document lists for it.
#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let api = api(Backend::in_memory());
    let key = api.brand("acme").await;
    let document = api.get("/api/public/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.json()["openapi"], "3.1.0");
    assert!(document.json()["components"]["securitySchemes"]["bearer"].is_object());
    let mut operations = 0;
    for (path, item) in document.json()["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let concrete = path.replace("{id}", "x");
            let response = api
                .request(method.clone(), &concrete)
                .bearer(&key)
                .json_opt(body)
                .await;
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_ne!(
                response.json()["error"]["message"],
                "no such route",
                "{method} {path}"
            );
            let documented: Vec<&String> =
                operation["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.contains(&&response.status.as_u16().to_string()),
                "{method} {path} answered {} which is not documented ({documented:?})",
                response.status
            );
        }
    }
    assert_eq!(operations, 28, "every route of the router is documented");
}
