//! In-process cost of the authenticated edge, without a network or a load generator sharing the
//! CPU: a request through the whole router (health vs. whoami), and the guard's store writes on
//! their own (the activity append and the rate-limit increment), on the in-memory store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::{ActivityRecord, BrandDataStore, Surface};
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::audit::AuditLog;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::hashing::{KeyHasher, Pepper};
use trcker_shared::ids::BrandId;
use trcker_shared::keys::{KeyService, KeySettings};
use trcker_shared::store::memory::MemoryStore;

fn edge_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = Arc::new(KeyService::new(
        Arc::new(MemoryStore::new()),
        KeyHasher::new(&Pepper::insecure_dev()),
        Arc::new(SystemClock),
        KeySettings::default(),
    ));
    let data: Arc<dyn BrandDataStore> = Arc::new(MemoryBrandData::new());
    let limits = EdgeLimits {
        rate_limit_per_minute: 1_000_000_000,
        ..EdgeLimits::default()
    };
    let router = trcker_public_api::router(keys.clone(), data.clone(), limits);
    let brand = BrandId::parse("bench").unwrap();
    let key = runtime.block_on(async {
        keys.create_brand(&brand, "Bench").await.unwrap();
        keys.generate(&brand, None).await.unwrap().key
    });
    let request = |path: &str, authorized: bool| {
        let mut builder = Request::get(path).header("user-agent", "bench");
        if authorized {
            builder = builder.header("authorization", format!("Bearer {}", key.expose_secret()));
        }
        let mut request = builder.body(Body::empty()).unwrap();
        request.extensions_mut().insert(api_gateway_context(
            &axum::http::Method::GET,
            path,
            "192.0.2.1",
            Some("bench"),
            "bench-request",
            0,
        ));
        request
    };

    c.bench_function("router/health", |b| {
        b.iter(|| runtime.block_on(router.clone().oneshot(request("/api/public/health", false))))
    });
    let mut sequence = 0_u64;
    c.bench_function("router/whoami (auth + rate limit + audit)", |b| {
        b.iter(|| {
            // A fresh request id each time, as API Gateway gives.
            sequence += 1;
            let mut request = request("/api/public/whoami", true);
            request.extensions_mut().insert(api_gateway_context(
                &axum::http::Method::GET,
                "/api/public/whoami",
                "192.0.2.1",
                Some("bench"),
                &format!("bench-{sequence}"),
                0,
            ));
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            assert_eq!(response.status(), 200);
        })
    });

    let audit = AuditLog::new(data.clone());
    let mut record_number = 0_u64;
    c.bench_function("guard/activity_append", |b| {
        b.iter(|| {
            record_number += 1;
            let record = ActivityRecord {
                brand_id: brand.clone(),
                at: 1_795_000_000_000,
                request_id: format!("append-{record_number}"),
                surface: Surface::Mcp,
                method: "GET".into(),
                target: "/api/public/whoami".into(),
                status: 200,
                latency_ms: 1,
                key_id: "key_01a220049bd293cd7fce".into(),
                fingerprint: "fp_8909e66ff87a".into(),
                source_ip: "192.0.2.1".into(),
                user_agent: "bench".into(),
                outcome: "ok".into(),
                expires_at: 1_900_000_000,
            };
            runtime.block_on(audit.record(&record));
        })
    });
    c.bench_function("guard/rate_limit_increment", |b| {
        b.iter(|| {
            runtime
                .block_on(data.increment_counter(&brand, "rate#bench", 60_000, 1_900_000_000))
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = edge_benches
}
criterion_main!(benches);
