//! Every error status the API answers with: missing and bad keys, keys in URLs, bodies that are
//! not JSON or too large, unknown routes and methods, odd ids, and a key store outage.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::store::StoreError;
use trcker_shared::store::counting::StoreOperation;
use trcker_shared::store::faulty::FaultyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{Backend, TestApp};

use crate::{activity_of, api};

trcker_shared::backend_tests! {
    in_memory: api(Backend::in_memory()),
    on_dynamodb: api(Backend::on_dynamodb().await);
    error_statuses,
}

async fn error_statuses(api: &TestApp) {
    let key = api.brand("acme").await;

    let missing = api.get("/api/public/whoami").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    assert_eq!(missing.error_code(), "unauthorized");
    for bad in [
        "tk_short",
        "",
        &format!("{key}x"),
        "tk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = api.get("/api/public/whoami").bearer(bad).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(!response.json().to_string().contains(&key[3..]));
    }
    let unknown = trcker_shared::token::generate_key().unwrap();
    let response = api
        .get("/api/public/whoami")
        .bearer(unknown.expose_secret())
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let in_url = api.get(&format!("/api/public/whoami?api_key={key}")).await;
    assert_eq!(in_url.status, StatusCode::BAD_REQUEST);
    assert_eq!(in_url.error_code(), "credentials_in_url");
    assert!(!in_url.json().to_string().contains(&key[3..]));

    let not_json = api
        .post("/api/public/partners")
        .bearer(&key)
        .body("{\"name\":")
        .without_user_agent()
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    // Without an API Gateway context, too.
    let not_utf8 = api
        .post("/api/public/partners")
        .bearer(&key)
        .body(vec![0x7b, 0xff, 0x7d])
        .without_user_agent()
        .without_context()
        .await;
    assert_eq!(not_utf8.status, StatusCode::BAD_REQUEST);
    let empty = api.post("/api/public/partners").bearer(&key).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let huge = api
        .post("/api/public/partners")
        .bearer(&key)
        .json(json!({"name": "x".repeat(1_100_000)}))
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.error_code(), "payload_too_large");

    let route = api.get("/api/public/nothing-here").bearer(&key).await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_eq!(route.error_code(), "not_found");
    let method = api.put("/api/public/whoami").bearer(&key).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    for id in [
        "ptr_%23x",
        "..%2F..%2Fkeys",
        "ptr_%C3%A9",
        &"a".repeat(1024),
    ] {
        let response = api
            .get(&format!("/api/public/partners/{id}"))
            .bearer(&key)
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{id}");
    }
    // Nothing above created anything.
    assert!(
        api.get("/api/public/partners").bearer(&key).await.json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Unknown paths are authenticated and audited like any route.
    let anonymous = api.get("/api/public/nothing-here").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let undecodable = api.get("/api/public/partners/%FF%FE").bearer(&key).await;
    assert_eq!(undecodable.status, StatusCode::NOT_FOUND);
    assert_eq!(undecodable.error_code(), "not_found");
    // A key pasted into a path is refused like one in the query string (before authentication,
    // so it is logged, not audited), and never echoed.
    let pasted = trcker_shared::token::generate_key().unwrap();
    let pasted_path = format!("/api/public/partners/{}", pasted.expose_secret());
    let refused = api.get(&pasted_path).bearer(&key).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "credentials_in_url");
    assert!(
        !refused
            .json()
            .to_string()
            .contains(&pasted.expose_secret()[3..])
    );
    let activity = activity_of(api, &key).await;
    let targets: Vec<&str> = activity
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"/api/public/nothing-here"), "{targets:?}");
    assert!(
        !serde_json::to_string(&activity)
            .unwrap()
            .contains(&pasted.expose_secret()[3..])
    );
    let methods: Vec<(&str, u64)> = activity
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert!(
        methods.contains(&("PUT", 405)),
        "wrong methods are audited too: {methods:?}"
    );
}

#[tokio::test]
async fn a_key_store_outage_is_503_with_retry_after() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let api = api(Backend::over(
        faulty.clone(),
        Arc::new(MemoryBrandData::new()),
    ));
    let key = api.brand("acme").await;
    faulty.fail_always(StoreOperation::FindKeyByHash, StoreError::Throttled);
    let response = api.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.error_code(), "store_unavailable");
    assert_eq!(response.headers["retry-after"], "1");
    faulty.clear();
    assert_eq!(
        api.get("/api/public/whoami").bearer(&key).await.status,
        StatusCode::OK
    );
}
