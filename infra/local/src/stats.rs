//! Counters for soak runs (`scripts/soak`): requests answered and activity records stored, served
//! at `GET /_local/stats` on the gateway's loopback address. The memory store keeps only the newest
//! 2,000 activity records per brand and surface, so the activity API cannot count a long run;
//! these counters count every append as it is stored, whatever the store later drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::rollups::{RollupDimension, RollupIncrement, RollupRow};
use trcker_shared::brand_data::{
    ActivityRecord, BrandDataStore, Document, DocumentKind, SourceHit, Surface, UniqueClaim,
};
use trcker_shared::clock::UnixMillis;
use trcker_shared::ids::BrandId;
use trcker_shared::store::{Page, StoreError};

pub const STATS_PATH: &str = "/_local/stats";

#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Responses sent, every route but this one.
    requests: AtomicU64,
    /// Activity records stored, per surface (api, mcp, capture).
    appended: [AtomicU64; 3],
    /// Activity writes the store refused (each is retried once by the audit log).
    append_failures: AtomicU64,
}

impl GatewayStats {
    fn surface_index(surface: Surface) -> usize {
        match surface {
            Surface::Api => 0,
            Surface::Mcp => 1,
            Surface::Capture => 2,
        }
    }

    fn snapshot(&self) -> serde_json::Value {
        let appended: Vec<u64> = self
            .appended
            .iter()
            .map(|count| count.load(Ordering::SeqCst))
            .collect();
        json!({
            "requests": self.requests.load(Ordering::SeqCst),
            "activity_appended": {
                "api": appended[0],
                "mcp": appended[1],
                "capture": appended[2],
                "total": appended.iter().sum::<u64>(),
            },
            "activity_append_failures": self.append_failures.load(Ordering::SeqCst),
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

/// The brand data store, counting the activity records it stores.
pub struct CountingActivity {
    inner: Arc<dyn BrandDataStore>,
    stats: Arc<GatewayStats>,
}

impl CountingActivity {
    pub fn new(inner: Arc<dyn BrandDataStore>, stats: Arc<GatewayStats>) -> Self {
        Self { inner, stats }
    }
}

#[async_trait]
impl BrandDataStore for CountingActivity {
    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let result = self.inner.append_activity(record).await;
        match &result {
            Ok(()) => self.stats.appended[GatewayStats::surface_index(record.surface)]
                .fetch_add(1, Ordering::SeqCst),
            Err(_) => self.stats.append_failures.fetch_add(1, Ordering::SeqCst),
        };
        result
    }

    async fn create_documents_counted(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        self.inner
            .create_documents_counted(documents, increments)
            .await
    }

    async fn claim_holder(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<Option<String>, StoreError> {
        self.inner.claim_holder(brand_id, kind, claim).await
    }

    async fn query_documents(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        self.inner
            .query_documents(brand_id, kind, lower, upper, limit)
            .await
    }

    async fn get_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        self.inner.get_document(brand_id, kind, id).await
    }

    async fn update_document(
        &self,
        document: &Document,
        released_claims: &[UniqueClaim],
        new_claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        self.inner
            .update_document(document, released_claims, new_claims)
            .await
    }

    async fn delete_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
        version: u64,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        self.inner
            .delete_document(brand_id, kind, id, version, claims)
            .await
    }

    async fn list_documents_by_prefix(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id_prefix: &str,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        self.inner
            .list_documents_by_prefix(brand_id, kind, id_prefix, limit, after_position)
            .await
    }

    async fn query_activity(
        &self,
        brand_id: &BrandId,
        surface: Surface,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        self.inner
            .query_activity(brand_id, surface, lower, upper, limit)
            .await
    }

    async fn insert_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        self.inner.insert_click_counted(click, increments).await
    }

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError> {
        self.inner.get_click(brand_id, click_id).await
    }

    async fn query_clicks(
        &self,
        brand_id: &BrandId,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ClickRecord>, StoreError> {
        self.inner
            .query_clicks(brand_id, shard, lower, upper, limit)
            .await
    }

    async fn update_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        self.inner.update_click_counted(click, increments).await
    }

    async fn record_source_hit(
        &self,
        brand_id: &BrandId,
        source: &str,
        window_start: UnixMillis,
        now: UnixMillis,
        expires_at: i64,
    ) -> Result<SourceHit, StoreError> {
        self.inner
            .record_source_hit(brand_id, source, window_start, now, expires_at)
            .await
    }

    async fn query_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        shard: u32,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.inner
            .query_rollups(brand_id, dimension, shard, from_day, to_day)
            .await
    }

    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        expires_at: i64,
    ) -> Result<u64, StoreError> {
        self.inner
            .increment_counter(brand_id, name, window_start, expires_at)
            .await
    }
}
