//! One click per click id: fifty concurrent captures of one id record one click (on each backend,
//! on a multi-threaded runtime) and count it once (through the memory store's change feed), and
//! the store calls a new, a warm and a duplicate capture make.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use trcker_capture::config::CaptureConfig;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{CLICKS, RollupDimension};
use trcker_shared::store::memory::MemoryStore;

use crate::Capture;

/// Written out rather than through `backend_tests!`, whose tests run on a current-thread runtime:
/// these captures race on four worker threads. Named as the macro names its tests.
mod concurrent_captures_of_one_click_id_record_one_click {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn in_memory() {
        let capture = Capture::in_memory(CaptureConfig::default());
        super::concurrent_captures_of_one_click_id_record_one_click(&capture).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_dynamodb() {
        let capture = Capture::on_dynamodb(CaptureConfig::default()).await;
        super::concurrent_captures_of_one_click_id_record_one_click(&capture).await;
    }
}

async fn concurrent_captures_of_one_click_id_record_one_click(capture: &Capture) {
    let (brand_id, key) = capture.brand("acme").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let capture = capture.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            capture
                .capture(json!({"click_id": "same-click", "partner": "alice", "sub1": "x"}))
                .bearer(&key)
                .await
        }));
    }
    let mut recorded = 0;
    let mut duplicates = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match (response.status, response.json()["status"].as_str()) {
            (StatusCode::CREATED, Some("recorded")) => recorded += 1,
            (StatusCode::OK, Some("duplicate")) => duplicates += 1,
            other => panic!("unexpected answer {other:?}: {}", response.text()),
        }
    }
    assert_eq!((recorded, duplicates), (1, 49));
    let clicks = capture.clicks(&brand_id).await;
    assert_eq!(clicks.len(), 1);
    if capture.feed.is_some() {
        capture.derive().await;
        let totals = capture.rollups(&brand_id, RollupDimension::Total).await;
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].counter(CLICKS), 1, "counted once: {totals:?}");
        let partners = capture.rollups(&brand_id, RollupDimension::Partner).await;
        assert_eq!(partners.len(), 1);
        assert_eq!(partners[0].counter(CLICKS), 1);
        assert_eq!(
            capture.activity(&brand_id).await.len(),
            50,
            "every capture audited"
        );
    }
    assert_eq!(
        clicks[0].partner_id.as_deref(),
        Some("ptr_00000000000000bb")
    );
    assert_eq!(clicks[0].sub_ids[0].as_deref(), Some("x"));
}

#[tokio::test]
async fn store_calls_per_new_and_duplicate_capture() {
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let capture = Capture::over(
        Arc::new(MemoryStore::new()),
        data.clone(),
        CaptureConfig::default(),
    );
    let (_, key) = capture.brand("acme").await;
    let body = |id: &str| json!({"click_id": id, "offer": "summer-sale", "partner": "alice"});

    data.take_calls();
    capture.capture(body("cold")).bearer(&key).await;
    assert_eq!(
        data.take_calls(),
        [
            "increment_counter",
            "claim_holder",
            "claim_holder",
            "insert_click"
        ],
        "a cold container leases the key's budget and resolves the offer and partner slugs once"
    );
    capture.clock.advance_ms(120_000);
    let response = capture.capture(body("warm")).bearer(&key).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(
        data.take_calls(),
        ["increment_counter", "insert_click"],
        "new capture in a new minute: a lease of the key's budget, then the one conditional write \
         (the click item is its activity record)"
    );
    let response = capture.capture(body("warm-again")).bearer(&key).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(
        data.take_calls(),
        ["insert_click"],
        "within the lease: the click alone"
    );
    let response = capture.capture(body("warm")).bearer(&key).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        data.take_calls(),
        ["insert_click", "append_activity"],
        "duplicate: the failed conditional write, then its activity record"
    );
}
