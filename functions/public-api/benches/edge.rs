//! In-process cost of the authenticated edge, without a network or a load generator sharing the
//! CPU: a request through the whole router (health vs. whoami), and the guard's store writes on
//! their own (the activity append and the rate-limit increment), and a page of clicks through the
//! router and from the store alone, on the in-memory store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use trcker_shared::brand_data::clicks::{ClickFilter, ClickRecord};
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::{ActivityRecord, BrandDataStore, ClickStoreExt, Surface};
use trcker_shared::edge::audit::AuditLog;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::testing::in_memory_edge;

/// The allocator the function binaries use (their `main.rs`), so the figures are what a deployed
/// function spends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn edge_benches(c: &mut Criterion) {
    let (runtime, keys, data, limits) = in_memory_edge();
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

    // A page of 25 out of 200 clicks spread over the 32 shards, as the local demo seeds them. The
    // same clicks go into a second memory store read through the trait's merge across the shards
    // (`FaultyBrandData` keeps it): the CPU a DynamoDB page spends merging, without the network.
    let merged = FaultyBrandData::new(MemoryBrandData::new());
    runtime.block_on(async {
        for index in 0..200_i64 {
            let click = ClickRecord {
                brand_id: brand.clone(),
                click_id: format!("bench-click-{index:04}"),
                at: 1_795_000_000_000 + index * 1_000,
                offer_id: Some("off_0123456789abcdef".into()),
                partner_id: Some("ptn_0123456789abcdef".into()),
                sub_ids: [Some("newsletter".into()), None, None, None, None],
                landing_url: Some("https://shop.example/landing?click_id=abc".into()),
                referrer: Some("https://partner.example/blog".into()),
                source_ip: "198.51.100.7".into(),
                user_agent:
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                             Chrome/131.0 Safari/537.36"
                        .into(),
                fraud_score: 0,
                audit: None,
            };
            data.insert_click(&click).await.unwrap();
            merged.insert_click(&click).await.unwrap();
        }
    });
    c.bench_function("router/list clicks (limit 25 of 200)", |b| {
        b.iter(|| {
            sequence += 1;
            let mut request = request("/api/public/clicks", true);
            *request.uri_mut() = "/api/public/clicks?limit=25".parse().unwrap();
            request.extensions_mut().insert(api_gateway_context(
                &axum::http::Method::GET,
                "/api/public/clicks",
                "192.0.2.1",
                Some("bench"),
                &format!("bench-{sequence}"),
                0,
            ));
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            assert_eq!(response.status(), 200);
        })
    });
    let mut store_only = runtime.block_on(async {
        data.list_clicks(&brand, &ClickFilter::default(), 25, None)
            .await
            .unwrap()
    });
    assert_eq!(store_only.items.len(), 25);
    let listings: [(&str, &dyn BrandDataStore); 2] = [
        ("memory: one range", data.as_ref()),
        ("merged across 32 shards", &merged),
    ];
    for (how, store) in listings {
        c.bench_function(
            &format!("store/list clicks (limit 25 of 200, {how})"),
            |b| {
                b.iter(|| {
                    store_only = runtime
                        .block_on(store.list_clicks(&brand, &ClickFilter::default(), 25, None))
                        .unwrap();
                })
            },
        );
    }

    let audit = AuditLog::new(data.clone());
    let mut record_number = 0_u64;
    let activity = |number: u64| ActivityRecord {
        brand_id: brand.clone(),
        at: 1_795_000_000_000,
        request_id: format!("append-{number}"),
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
        attempts: None,
        expires_at: 1_900_000_000,
        click_id: None,
    };
    c.bench_function("guard/activity_append", |b| {
        b.iter(|| {
            record_number += 1;
            runtime.block_on(audit.record(&activity(record_number)));
        })
    });
    // The audit's cost on a real DynamoDB wire endpoint, when one is configured (scripts/test's
    // moto, or any endpoint in TRCKER_TEST_DYNAMODB_ENDPOINT): one PutItem per request. moto is a
    // Python process on loopback, so this is an upper bound on the client side's share, not
    // DynamoDB's own latency.
    if std::env::var_os("TRCKER_TEST_DYNAMODB_ENDPOINT").is_some() {
        let dynamo: Arc<dyn BrandDataStore> =
            Arc::new(runtime.block_on(trcker_shared::testing::fresh_dynamo_brand_data()));
        let dynamo_audit = AuditLog::new(dynamo.clone());
        let mut group = c.benchmark_group("dynamodb");
        group.sample_size(20);
        group.bench_function("guard/activity_append", |b| {
            b.iter(|| {
                record_number += 1;
                runtime.block_on(dynamo_audit.record(&activity(record_number)));
            })
        });
        group.bench_function("guard/rate_limit_increment", |b| {
            b.iter(|| {
                runtime
                    .block_on(dynamo.increment_counter(
                        &brand,
                        "rate#bench",
                        60_000,
                        1,
                        1_900_000_000,
                    ))
                    .unwrap()
            })
        });
        group.finish();
    }
    c.bench_function("guard/rate_limit_increment", |b| {
        b.iter(|| {
            runtime
                .block_on(data.increment_counter(&brand, "rate#bench", 60_000, 1, 1_900_000_000))
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
