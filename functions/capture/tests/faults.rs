//! Click capture under injected store faults: throttling, a 5xx and a timeout at the key lookup,
//! the offer/partner slug lookup and the click write each answer 503 with `Retry-After` and a
//! JSON error, write no click and no rollup, are audited, and the same capture succeeds once the
//! store recovers (its rollup follows through the memory store's change feed).

use std::time::Duration;
use trcker_shared::brand_data::ActivityStore;
use trcker_shared::brand_data::ClickStore;
use trcker_shared::brand_data::RollupStore;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use trcker_capture::config::CaptureConfig;
use trcker_shared::brand_data::clicks::ClickFilter;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{CLICKS, RollupDimension, utc_day};
use trcker_shared::brand_data::{ActivityFilter, Surface};
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::faulty_edge::{FaultyEdge, JsonResponse, send};
use trcker_shared::ids::BrandId;
use trcker_shared::program::derived::MemoryFeed;
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::counting::StoreOperation;
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_shared::testing::create_capture_references;

/// Stands in for the SDK operation timeout; short, so the suite stays quick.
const TIMEOUT: Duration = Duration::from_millis(20);

/// The capture function over stores that inject faults.
struct Capture {
    router: Router,
    edge: FaultyEdge<MemoryBrandData>,
    feed: MemoryFeed,
}

impl std::ops::Deref for Capture {
    type Target = FaultyEdge<MemoryBrandData>;

    fn deref(&self) -> &FaultyEdge<MemoryBrandData> {
        &self.edge
    }
}

impl Capture {
    fn new() -> Self {
        let edge = FaultyEdge::memory();
        let feed = MemoryFeed::new(
            edge.data.clone(),
            FaultyBrandData::inner,
            Thresholds::default(),
        );
        Self {
            feed,
            router: trcker_capture::router(
                edge.keys.clone(),
                edge.data.clone(),
                EdgeLimits::default(),
                CaptureConfig::default(),
            ),
            edge,
        }
    }

    /// A brand with the offer `summer-sale` and the partner `alice`; its key.
    async fn brand(&self, id: &str) -> String {
        let key = self.brand_key(id).await;
        let brand_id = BrandId::parse(id).unwrap();
        create_capture_references(self.data.as_ref(), &brand_id).await;
        key
    }

    async fn capture(&self, key: &str, click_id: &str) -> JsonResponse {
        let body = json!({"click_id": click_id, "offer": "summer-sale", "partner": "alice"});
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/clicks/capture")
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .header("user-agent", "Mozilla/5.0 (faults test)")
            .body(Body::from(body.to_string()))
            .unwrap();
        send(
            &self.router,
            request,
            "198.51.100.23",
            "Mozilla/5.0 (faults test)",
        )
        .await
    }

    /// (clicks stored, clicks counted in today's rollup) for the brand.
    async fn clicks_and_rollup(&self, brand: &str) -> (usize, i64) {
        let brand_id = BrandId::parse(brand).unwrap();
        let clicks = self
            .data
            .list_clicks(&brand_id, &ClickFilter::default(), 100, None)
            .await
            .unwrap()
            .items
            .len();
        let today = utc_day(SystemClock.now_ms());
        let counted = self
            .data
            .read_rollups(&brand_id, RollupDimension::Total, &today, &today)
            .await
            .unwrap()
            .iter()
            .map(|row| row.counter(CLICKS))
            .sum();
        (clicks, counted)
    }
}

#[tokio::test]
async fn every_transient_fault_is_503_with_retry_after_and_nothing_written() {
    let points: [(&str, Option<&'static str>); 3] = [
        ("key lookup", None),
        ("offer and partner slugs", Some("claim_holder")),
        ("click write", Some("insert_click")),
    ];
    for fault in Fault::transient(TIMEOUT) {
        for (name, operation) in points {
            let what = format!("{name} under {fault:?}");
            let capture = Capture::new();
            let key = capture.brand("acme").await;
            match operation {
                None => capture.key_store.inject(
                    Some(StoreOperation::FindKeyByHash),
                    fault.clone(),
                    Trigger::Always,
                ),
                Some(operation) => {
                    capture
                        .data
                        .inject(Some(operation), fault.clone(), Trigger::Always)
                }
            }
            let response = capture.capture(&key, "click-1").await;
            response.assert_unavailable(&what);
            assert!(
                capture.key_store.faults_fired() + capture.data.faults_fired() > 0,
                "{what}: the fault was reached"
            );

            capture.key_store.clear();
            capture.data.clear();
            assert_eq!(
                capture.clicks_and_rollup("acme").await,
                (0, 0),
                "{what}: no click and no count"
            );
            if operation.is_some() {
                let audited = capture
                    .data
                    .list_activity(
                        &BrandId::parse("acme").unwrap(),
                        ActivityFilter {
                            surface: Some(Surface::Capture),
                            ..ActivityFilter::default()
                        },
                        10,
                        None,
                    )
                    .await
                    .unwrap()
                    .items;
                assert_eq!(
                    audited.iter().map(|r| r.status).collect::<Vec<_>>(),
                    [503],
                    "{what}: audited"
                );
            }
            let again = capture.capture(&key, "click-1").await;
            assert_eq!(again.status, StatusCode::CREATED, "{what}: {}", again.body);
            capture.feed.drain().await.unwrap();
            assert_eq!(capture.clicks_and_rollup("acme").await, (1, 1), "{what}");
        }
    }
}

/// A transaction conflict that outlived the store's retries is the store being busy, not the
/// caller's conflict to resolve: 503 with `Retry-After`, never 409, and nothing written.
#[tokio::test]
async fn contention_at_the_click_write_is_503_not_409() {
    let capture = Capture::new();
    let key = capture.brand("acme").await;
    capture.data.inject(
        Some("insert_click"),
        Fault::Error(trcker_shared::store::StoreError::Contention),
        Trigger::Always,
    );
    let response = capture.capture(&key, "click-1").await;
    response.assert_unavailable("contention at the click write");
    capture.data.clear();
    assert_eq!(capture.clicks_and_rollup("acme").await, (0, 0));
    let again = capture.capture(&key, "click-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}
