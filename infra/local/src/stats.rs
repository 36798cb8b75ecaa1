//! Counters for soak runs (`scripts/soak`): requests answered and activity records stored, served
//! at `GET /_local/stats` on the gateway's loopback address. The memory store keeps only the newest
//! 2,000 activity records per brand and surface, so the activity API cannot count a long run; the
//! memory store's all-time append counts can.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use trcker_shared::brand_data::Surface;
use trcker_shared::brand_data::memory::MemoryBrandData;

pub const STATS_PATH: &str = "/_local/stats";

#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Responses sent, every route but this one.
    requests: AtomicU64,
    /// The memory store, when the gateway runs on it (with `--dynamodb` the activity counts are
    /// null: DynamoDB holds every record, so the activity API counts them).
    memory_data: Option<Arc<MemoryBrandData>>,
}

impl GatewayStats {
    pub fn new(memory_data: Option<Arc<MemoryBrandData>>) -> Self {
        Self {
            requests: AtomicU64::new(0),
            memory_data,
        }
    }

    fn snapshot(&self) -> serde_json::Value {
        let activity_appended = self.memory_data.as_ref().map(|data| {
            let [api, mcp, capture] =
                [Surface::Api, Surface::Mcp, Surface::Capture].map(|s| data.activity_appended(s));
            json!({"api": api, "mcp": mcp, "capture": capture, "total": api + mcp + capture})
        });
        json!({
            "requests": self.requests.load(Ordering::SeqCst),
            "activity_appended": activity_appended,
        })
    }
}

/// `GET /_local/stats`.
pub fn routes(stats: Arc<GatewayStats>) -> Router {
    Router::new()
        .route(
            STATS_PATH,
            get(|State(stats): State<Arc<GatewayStats>>| async move {
                axum::Json(stats.snapshot()).into_response()
            }),
        )
        .with_state(stats)
}

/// Counts every response but the stats route's own.
pub async fn count_requests(
    State(stats): State<Arc<GatewayStats>>,
    request: Request,
    next: Next,
) -> Response {
    let counted = request.uri().path() != STATS_PATH;
    let response = next.run(request).await;
    if counted {
        stats.requests.fetch_add(1, Ordering::SeqCst);
    }
    response
}

#[cfg(test)]
mod tests {
    //! The soak counters: what is counted, and what is null without the memory store.

    use axum::body::Body;
    use axum::middleware;
    use tower::ServiceExt;
    use trcker_shared::brand_data::ActivityStore;

    use trcker_shared::brand_data::conformance::sample_activity;
    use trcker_shared::ids::BrandId;

    use super::*;

    async fn get_json(app: &Router, path: &str) -> serde_json::Value {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    }

    #[tokio::test]
    async fn counts_requests_but_its_own_and_every_stored_activity_record() {
        // A cap of one record: the counts must still include the records the cap dropped.
        let data = Arc::new(MemoryBrandData::with_activity_cap(1));
        let brand_id = BrandId::parse("soak").unwrap();
        for (at, surface) in [(1, Surface::Api), (2, Surface::Api), (3, Surface::Capture)] {
            let record = sample_activity(&brand_id, at, surface, &format!("r{at}"));
            data.append_activity(&record).await.unwrap();
        }
        let stats = Arc::new(GatewayStats::new(Some(data)));
        let app = Router::new()
            .route("/hello", get(|| async { axum::Json(json!({})) }))
            .merge(routes(stats.clone()))
            .layer(middleware::from_fn_with_state(stats, count_requests));
        get_json(&app, "/hello").await;
        get_json(&app, "/nowhere").await;
        let snapshot = get_json(&app, STATS_PATH).await;
        assert_eq!(
            snapshot,
            json!({
                "requests": 2,
                "activity_appended": {"api": 2, "mcp": 0, "capture": 1, "total": 3},
            })
        );
        // Its own requests are not counted.
        assert_eq!(get_json(&app, STATS_PATH).await["requests"], 2);
    }

    #[tokio::test]
    async fn without_the_memory_store_the_activity_counts_are_null() {
        let stats = GatewayStats::new(None);
        assert_eq!(
            stats.snapshot(),
            json!({"requests": 0, "activity_appended": null})
        );
    }
}
