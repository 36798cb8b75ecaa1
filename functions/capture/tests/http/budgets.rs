//! The rate budgets: capture's own per-key budget, one source's budget beside it (a flooder leaves
//! other visitors their clicks; counted in each container, at no store call, so a source gets at
//! most its budget from each container), and a revoked key's budget of records, each over-budget
//! run counted on one summary record.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use trcker_capture::config::CaptureConfig;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::store::memory::MemoryStore;

use crate::Capture;

#[tokio::test]
async fn capture_has_its_own_rate_budget() {
    let capture = Capture::in_memory(CaptureConfig {
        rate_limit_per_minute: 2,
        ..CaptureConfig::default()
    });
    let (_, key) = capture.brand("acme").await;
    for index in 0..2 {
        let response = capture
            .capture(json!({"click_id": format!("r{index}")}))
            .bearer(&key)
            .await;
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.headers["ratelimit-limit"], "2");
    }
    let response = capture
        .capture(json!({"click_id": "r2"}))
        .bearer(&key)
        .await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.error_code(), "rate_limited");
    assert!(response.headers.contains_key("retry-after"));
    // The budget is capture's own: the default capture budget is far above the API's 100/min.
    assert_eq!(CaptureConfig::default().rate_limit_per_minute, 6_000);
}

/// The review's attack: in the recommended CDN set-up anyone can post to the brand's capture path.
/// One source over its own budget is refused without spending the key's, so every other visitor
/// still gets their clicks; its refusals are counted on one summary record, not one each.
#[tokio::test]
async fn one_source_over_its_budget_leaves_other_visitors_their_clicks() {
    let capture = Capture::in_memory(CaptureConfig {
        rate_limit_per_minute: 10,
        source_rate_limit_per_minute: 3,
        trusted_proxy_hops: 1,
        ..CaptureConfig::default()
    });
    let (brand_id, key) = capture.brand("acme").await;
    let visitor = |client: &str, body| {
        capture
            .capture(body)
            .header("x-api-key", &key)
            .source_ip("198.51.100.200")
            .header("x-forwarded-for", client)
    };
    let flooder = "203.0.113.66";
    for index in 0..35 {
        let response = visitor(flooder, json!({"click_id": format!("flood-{index}")})).await;
        if index < 3 {
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        } else {
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.error_code(), "rate_limited");
            assert_eq!(response.headers["ratelimit-limit"], "3");
            assert!(response.headers.contains_key("retry-after"));
        }
    }
    // Other addresses still have the rest of the key's budget: 3 + 7.
    let others = [
        "198.51.100.7",
        "2001:db8:5::1",
        "2001:db8:5::2",
        "2001:db8:6::1",
        "198.51.100.8",
        "198.51.100.7",
        "198.51.100.9",
    ];
    for (index, client) in others.into_iter().enumerate() {
        let response = visitor(client, json!({"click_id": format!("ok-{index}")})).await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{client}: {}",
            response.text()
        );
    }
    let response = visitor("192.0.2.99", json!({"click_id": "over-the-key"})).await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers["ratelimit-limit"], "10",
        "now the key's own budget"
    );
    assert_eq!(capture.clicks(&brand_id).await.len(), 10);

    // New captures reach the activity log through the stream.
    capture.derive().await;
    let activity = capture.activity(&brand_id).await;
    let summaries: Vec<_> = activity.iter().filter(|r| r.attempts.is_some()).collect();
    assert_eq!(summaries.len(), 1, "{activity:?}");
    assert_eq!(
        summaries[0].attempts,
        Some(32),
        "exact up to 32 beyond the budget"
    );
    assert_eq!(summaries[0].source_ip, "203.0.113.66");
    assert_eq!(summaries[0].outcome, "rate_limited");
    assert_eq!(
        activity.len(),
        3 + 7 + 1 + 1,
        "admitted, key-refused, one summary"
    );
}

/// The source budget is counted in the container, so it costs no store call: under the paused
/// clock with every store call taking L, a new capture in a new minute waits 1 L (its click, with
/// the lease of the key's budget taken beside it) and one its source may not make 1 L (the
/// summary record), with nothing taken from the key's budget.
#[tokio::test(start_paused = true)]
async fn the_source_budget_costs_no_store_call() {
    use trcker_shared::store::fault::{Fault, Trigger};
    const L: std::time::Duration = std::time::Duration::from_millis(10);
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let capture = Capture::over(
        Arc::new(MemoryStore::new()),
        data.clone(),
        CaptureConfig {
            source_rate_limit_per_minute: 1,
            ..CaptureConfig::default()
        },
    );
    let (_, key) = capture.brand("acme").await;
    capture
        .capture(json!({"click_id": "warm"}))
        .bearer(&key)
        .await;
    capture.clock.advance_ms(120_000);
    data.inject(None, Fault::Latency(L), Trigger::Always);
    data.take_calls();
    let timed = |id: &'static str| {
        let capture = &capture;
        let key = &key;
        async move {
            let started = tokio::time::Instant::now();
            let response = capture.capture(json!({"click_id": id})).bearer(key).await;
            (response.status, started.elapsed())
        }
    };
    assert_eq!(timed("new").await, (StatusCode::CREATED, L));
    assert_eq!(data.take_calls(), ["increment_counter", "insert_click"]);
    assert_eq!(timed("refused").await, (StatusCode::TOO_MANY_REQUESTS, L));
    assert_eq!(data.take_calls(), ["record_activity_summary"]);
}

/// The bound on over-admission: a source's budget is counted per container, so two containers
/// admit it twice its budget in a minute, and not one request more.
#[tokio::test]
async fn a_source_gets_its_budget_from_each_container_at_most() {
    let key_store: Arc<dyn trcker_shared::store::KeyStore> = Arc::new(MemoryStore::new());
    let data: Arc<dyn trcker_shared::brand_data::BrandDataStore> = Arc::new(MemoryBrandData::new());
    let config = || CaptureConfig {
        source_rate_limit_per_minute: 3,
        ..CaptureConfig::default()
    };
    let first = Capture::over(key_store.clone(), data.clone(), config());
    let second = Capture::over(key_store, data, config());
    let (_, key) = first.brand("acme").await;
    let mut admitted = 0;
    for index in 0..20 {
        let container = if index % 2 == 0 { &first } else { &second };
        let response = container
            .capture(json!({"click_id": format!("c{index}")}))
            .bearer(&key)
            .source_ip("203.0.113.5")
            .await;
        match response.status {
            StatusCode::CREATED => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}: {}", response.text()),
        }
    }
    assert_eq!(admitted, 2 * 3, "the budget of 3, once per container");
}

/// A revoked key keeps getting its 401 and one record per attempt up to its own budget; beyond it
/// a 429, and the attempts are counted on one summary per minute: 2,050 attempts leave the
/// brand's other records in place and cost a few hundred writes, not 2,050 records.
#[tokio::test]
async fn revoked_key_attempts_have_a_budget_and_a_summary() {
    let capture = Capture::in_memory(CaptureConfig::default());
    let (brand_id, live_key) = capture.brand("acme").await;
    capture
        .capture(json!({"click_id": "before"}))
        .bearer(&live_key)
        .await;
    let revoked = capture.keys.generate(&brand_id, None).await.unwrap();
    capture
        .keys
        .revoke(&brand_id, &revoked.key_id)
        .await
        .unwrap();
    let key = revoked.key.expose_secret().to_owned();
    let budget = EdgeLimits::default().revoked_key_records_per_minute;
    for attempt in 1..=2_050u32 {
        let response = capture
            .capture(json!({"click_id": format!("after-{attempt}")}))
            .bearer(&key)
            .await;
        if attempt <= budget {
            assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        } else {
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(response.error_code() == "rate_limited");
            assert!(
                response.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("revoked")
            );
        }
    }
    let activity = capture.activity(&brand_id).await;
    let revoked: Vec<_> = activity
        .iter()
        .filter(|r| r.outcome == "revoked_key")
        .collect();
    let summaries: Vec<_> = revoked.iter().filter(|r| r.attempts.is_some()).collect();
    assert_eq!(revoked.len(), budget as usize + 1);
    assert_eq!(summaries.len(), 1);
    let true_count = u64::from(2_050 - budget);
    let counted = summaries[0].attempts.unwrap();
    assert!(
        counted <= true_count && true_count - counted < true_count / 16,
        "{counted}"
    );
    assert!(
        activity.iter().any(|r| r.outcome == "ok"),
        "the brand's own record is still there"
    );
    // The next minute starts a new budget.
    capture.clock.advance_ms(60_000);
    let response = capture
        .capture(json!({"click_id": "next-minute"}))
        .bearer(&key)
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}
