//! The public API when the guard's own writes fail (the rate counter, the audit record), with all
//! log output captured: its own test binary, as `LogCapture::install_global` asks.

use std::sync::Arc;

use axum::http::StatusCode;
use trcker_shared::brand_data::ActivityStore;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{Backend, TestClient};

/// The guard's own writes failing: the rate limiter fails open (and says so), and an activity
/// record is retried once, then preserved whole in an error log line; the caller is not failed.
#[tokio::test]
async fn limiter_fails_open_and_audit_records_survive_store_failures() {
    let logs = trcker_shared::testing::LogCapture::install_global();
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let api = Backend::over(Arc::new(MemoryStore::new()), data.clone())
        .serve(|keys, data| trcker_public_api::router(keys, data, EdgeLimits::default()))
        .with_client(TestClient::expect_json);
    let key = api.brand("acme").await;
    let stored = |data: Arc<FaultyBrandData<MemoryBrandData>>| async move {
        data.list_activity(
            &BrandId::parse("acme").unwrap(),
            Default::default(),
            100,
            None,
        )
        .await
        .unwrap()
        .items
    };

    data.set_counters_down(true);
    let open = api.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(
        open.status,
        StatusCode::OK,
        "the limiter's failure does not block"
    );
    assert!(
        open.headers.get("ratelimit-limit").is_none(),
        "no budget to report"
    );
    assert!(
        logs.text()
            .contains("rate limiter unavailable; failing open")
    );
    data.set_counters_down(false);

    data.fail_next_appends(1);
    assert_eq!(
        api.get("/api/public/whoami").bearer(&key).await.status,
        StatusCode::OK
    );
    assert_eq!(
        stored(data.clone()).await.len(),
        2,
        "a failed append is retried"
    );

    data.fail_next_appends(2);
    let lost = api.get("/api/public/whoami").bearer(&key).await;
    assert_eq!(
        lost.status,
        StatusCode::OK,
        "the caller is not failed for the audit"
    );
    assert_eq!(stored(data.clone()).await.len(), 2);
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("activity record could not be stored"))
        .expect("the record is preserved in one error log line");
    assert!(line.contains("\"level\":\"ERROR\""), "{line}");
    for field in [
        "\\\"brand_id\\\":\\\"acme\\\"",
        "/api/public/whoami",
        "192.0.2.10",
        "http-test/1.0",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    assert!(
        !text.contains(&key[3..]),
        "and the key itself is in no log line"
    );
}
