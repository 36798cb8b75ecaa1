//! Who called: `whoami`, the audit record every request leaves (revoked keys' attempts too), the
//! activity filters, and the rate limit's 429.

use axum::http::StatusCode;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::testing::{Backend, TestApp, TestClient};

use crate::{activity_of, api, api_with};

trcker_shared::backend_tests! {
    in_memory: api(Backend::in_memory()),
    on_dynamodb: api(Backend::on_dynamodb().await);
    whoami_and_audit,
    revoked_keys_are_refused_and_audited,
    activity_filters,
    writes_carry_their_own_record,
}

/// Three requests a minute.
fn rate_limited(backend: Backend) -> TestApp {
    api_with(
        backend,
        EdgeLimits {
            rate_limit_per_minute: 3,
            ..EdgeLimits::default()
        },
    )
}

trcker_shared::backend_tests! {
    in_memory: rate_limited(Backend::in_memory()),
    on_dynamodb: rate_limited(Backend::on_dynamodb().await);
    rate_limit_answers_429,
    a_container_without_a_lease_refuses_reads_over_the_budget,
}

async fn whoami_and_audit(api: &TestApp) {
    let key = api.brand("acme").await;
    let response = api.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["brand_id"], "acme");
    assert!(
        response.json()["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("fp_")
    );
    assert_eq!(response.headers["ratelimit-limit"], "100");
    assert_eq!(response.headers["x-ratelimit-remaining"], "99");

    let activity = activity_of(api, &key).await;
    assert_eq!(activity.len(), 1, "one record per request: {activity:?}");
    let record = &activity[0];
    assert_eq!(record["target"], "/api/public/whoami");
    assert_eq!(record["status"], 200);
    assert_eq!(record["source"], "api");
    assert_eq!(record["source_ip"], "192.0.2.10");
    assert_eq!(record["user_agent"], "http-test/1.0");
    assert_eq!(record["fingerprint"], response.json()["fingerprint"]);
    assert_eq!(record["key_id"], response.json()["key_id"]);
    assert_eq!(record["outcome"], "ok");
    assert_eq!(
        activity_of(api, &key).await.len(),
        2,
        "the activity read is itself audited"
    );
}

async fn revoked_keys_are_refused_and_audited(api: &TestApp) {
    let key = api.brand("acme").await;
    let brand_id = BrandId::parse("acme").unwrap();
    let replacement = api
        .keys
        .generate(&brand_id, Some("replacement"))
        .await
        .unwrap();
    let whoami = api.get("/api/public/whoami").bearer(&key).await;
    let old_key_id = whoami.json()["key_id"].as_str().unwrap().to_owned();
    api.keys
        .revoke(
            &brand_id,
            &trcker_shared::ids::KeyId::parse(&old_key_id).unwrap(),
        )
        .await
        .unwrap();
    let refused = api.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers["www-authenticate"], "Bearer");
    let activity = activity_of(api, replacement.key.expose_secret()).await;
    let attempt = activity
        .iter()
        .find(|record| record["outcome"] == "revoked_key")
        .expect("the revoked attempt is in the brand's activity");
    assert_eq!(attempt["key_id"], old_key_id.as_str());
    assert_eq!(attempt["status"], 401);
    assert_eq!(attempt["source_ip"], "192.0.2.10");
    assert_eq!(attempt["user_agent"], "http-test/1.0");
}

async fn rate_limit_answers_429(api_limited: &TestApp) {
    let key = api_limited.brand("acme").await;
    for _ in 0..3 {
        assert_eq!(
            api_limited
                .get("/api/public/whoami")
                .bearer(&key)
                .await
                .status,
            StatusCode::OK
        );
    }
    let limited = api_limited.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    assert_eq!(limited.headers["x-ratelimit-limit"], "3");
    let brand_id = BrandId::parse("acme").unwrap();
    let page = api_limited
        .data
        .list_activity(&brand_id, Default::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4, "the refused request is audited too");
    // Records within one millisecond order by request id, so find the refusal rather than
    // assume its position.
    let refused: Vec<_> = page
        .items
        .iter()
        .filter(|r| r.outcome == "rate_limited")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status, 429);
}

/// Another container of the same function: its own rate limiter (and leases), the same stores.
fn another_container(api: &TestApp) -> TestClient {
    let limits = EdgeLimits {
        rate_limit_per_minute: 3,
        ..EdgeLimits::default()
    };
    TestClient::router(trcker_public_api::router(
        api.keys.clone(),
        api.data.clone(),
        limits,
    ))
}

/// A container that holds no lease of the key's budget sends its request beside the lease it
/// takes. A read the lease refuses is answered 429, and the record written beside it is
/// rewritten as that 429; a write has been made by then, so it stands (one request per
/// container and window at most beyond the limit).
async fn a_container_without_a_lease_refuses_reads_over_the_budget(api_limited: &TestApp) {
    let key = api_limited.brand("acme").await;
    for _ in 0..3 {
        let response = api_limited.get("/api/public/whoami").bearer(&key).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    let second = another_container(api_limited);
    let refused = second.get("/api/public/partners").bearer(&key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.error_code(), "rate_limited");
    let brand_id = BrandId::parse("acme").unwrap();
    let records = api_limited
        .data
        .list_activity(&brand_id, Default::default(), 10, None)
        .await
        .unwrap()
        .items;
    assert_eq!(records.len(), 4, "one record per request: {records:?}");
    let listing: Vec<_> = records
        .iter()
        .filter(|record| record.target == "/api/public/partners")
        .collect();
    assert_eq!(listing.len(), 1);
    assert_eq!(
        (listing[0].status, listing[0].outcome.as_str()),
        (429, "rate_limited")
    );
    // The same container now knows the budget is spent: refused locally.
    let again = second.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);

    let third = another_container(api_limited);
    let written = third
        .post("/api/public/partners")
        .bearer(&key)
        .json(crate::partner_body("beside-the-lease"))
        .await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.text());
    assert_eq!(written.headers["ratelimit-remaining"], "0");
    // It stands, and so does its record.
    let created: Vec<_> = api_records(api_limited, &brand_id)
        .await
        .into_iter()
        .filter(|record| record.method == "POST")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].status, 201);
    let then_refused = third
        .post("/api/public/partners")
        .bearer(&key)
        .json(crate::partner_body("after-the-lease"))
        .await;
    assert_eq!(then_refused.status, StatusCode::TOO_MANY_REQUESTS);
}

/// An update and a delete put their record in their own transaction: exactly one record each,
/// with the status the caller got; a write that fails stores none of it, and the guard records
/// the failure as for any request.
async fn writes_carry_their_own_record(api: &TestApp) {
    let key = api.brand("acme").await;
    let id = crate::create_partner(api, &key, "carried").await;
    let path = format!("/api/public/partners/{id}");
    let updated = api
        .patch(&path)
        .bearer(&key)
        .json(serde_json::json!({"name": "Carried"}))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    let refused = api
        .patch(&path)
        .bearer(&key)
        .json(serde_json::json!({"slug": "Not A Slug"}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    let deleted = api.delete(&path).bearer(&key).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let brand_id = BrandId::parse("acme").unwrap();
    let records = api_records(api, &brand_id).await;
    let mut of_partner: Vec<(&str, u16, &str)> = records
        .iter()
        .filter(|record| record.target == path)
        .map(|record| {
            (
                record.method.as_str(),
                record.status,
                record.outcome.as_str(),
            )
        })
        .collect();
    // Records within one millisecond order by request id: compare them as a set.
    of_partner.sort_unstable();
    assert_eq!(
        of_partner,
        [
            ("DELETE", 204, "ok"),
            ("PATCH", 200, "ok"),
            ("PATCH", 400, "ok")
        ]
    );
}

async fn api_records(
    api: &TestApp,
    brand_id: &BrandId,
) -> Vec<trcker_shared::brand_data::ActivityRecord> {
    api.data
        .list_activity(brand_id, Default::default(), 100, None)
        .await
        .unwrap()
        .items
}

async fn activity_filters(api: &TestApp) {
    let key = api.brand("acme").await;
    api.get("/api/public/whoami").bearer(&key).await;
    let api_only = api
        .get("/api/public/activity?source=api")
        .bearer(&key)
        .await;
    assert_eq!(api_only.json()["data"].as_array().unwrap().len(), 1);
    let mcp_only = api
        .get("/api/public/activity?source=mcp")
        .bearer(&key)
        .await;
    assert!(mcp_only.json()["data"].as_array().unwrap().is_empty());
    let future = api
        .get("/api/public/activity?from=2999-01-01T00:00:00Z")
        .bearer(&key)
        .await;
    assert!(future.json()["data"].as_array().unwrap().is_empty());
    let past = api
        .get("/api/public/activity?to=2000-01-01T00:00:00Z")
        .bearer(&key)
        .await;
    assert!(past.json()["data"].as_array().unwrap().is_empty());
    for bad in ["source=email", "from=yesterday", "to=13"] {
        let response = api
            .get(&format!("/api/public/activity?{bad}"))
            .bearer(&key)
            .await;
        if bad == "to=13" {
            assert_eq!(
                response.status,
                StatusCode::OK,
                "Unix milliseconds are accepted"
            );
        } else {
            assert_eq!(response.error_code(), "invalid_request", "{bad}");
        }
    }
}
