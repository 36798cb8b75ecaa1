//! In-process cost of an MCP `tools/call list_offers` on the in-memory store: through the whole
//! router (guard: key verification, rate limit, audit record, then rmcp) and through rmcp's
//! service alone with the caller already attached. The difference is what the auth and audit
//! layer adds to a tool call.

use axum::body::Body;
use axum::http::{Method, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use trcker_mcp::config::McpConfig;
use trcker_shared::edge::auth::Caller;
use trcker_shared::edge::context::{ClientContext, api_gateway_context};
use trcker_shared::ids::BrandId;
use trcker_shared::program::Program;
use trcker_shared::program::offers::{CreateOffer, create_offer};
use trcker_shared::testing::in_memory_edge;

/// The allocator the function binaries use (their `main.rs`), so the figures are what a deployed
/// function spends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_offers","arguments":{"limit":10}}}"#;

fn mcp_benches(c: &mut Criterion) {
    let (runtime, keys, data, limits) = in_memory_edge();
    let program = Program {
        keys: keys.clone(),
        data: data.clone(),
        min_click_to_conversion_ms: limits.min_click_to_conversion_ms,
        activity_retention_days: limits.activity_retention_days,
    };
    let brand = BrandId::parse("bench").unwrap();
    let key = runtime.block_on(async {
        keys.create_brand(&brand, "Bench").await.unwrap();
        for index in 0..10 {
            let offer: CreateOffer = serde_json::from_value(serde_json::json!({
                "name": format!("Offer {index}"), "slug": format!("offer-{index}"),
                "destination_url": "https://shop.example/",
                "default_payout": {"type": "flat", "amount": 10, "currency": "USD"}
            }))
            .unwrap();
            create_offer(&program, &brand, offer).await.unwrap();
        }
        keys.generate(&brand, None).await.unwrap().key
    });
    let principal = runtime.block_on(keys.verify(key.expose_secret())).unwrap();
    let router = trcker_mcp::router(keys.clone(), data.clone(), limits, McpConfig::default());
    let service = trcker_mcp::mcp_service(program, McpConfig::default());

    let mut sequence = 0_u64;
    let mut request = |authorized: bool| {
        sequence += 1;
        let mut builder = Request::post("/api/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("user-agent", "bench");
        if authorized {
            builder = builder.header("authorization", format!("Bearer {}", key.expose_secret()));
        }
        let mut request = builder.body(Body::from(BODY)).unwrap();
        request.extensions_mut().insert(api_gateway_context(
            &Method::POST,
            "/api/mcp",
            "192.0.2.1",
            Some("bench"),
            &format!("bench-{sequence}"),
            0,
        ));
        request
    };

    // Both answer the same page (checked once, so the benchmarks measure real work).
    let guarded = runtime
        .block_on(router.clone().oneshot(request(true)))
        .unwrap();
    assert_eq!(guarded.status(), 200);
    c.bench_function("mcp/tools/call list_offers (guard + rmcp)", |b| {
        b.iter(|| runtime.block_on(router.clone().oneshot(request(true))))
    });
    c.bench_function("mcp/tools/call list_offers (rmcp only)", |b| {
        b.iter(|| {
            let (mut parts, body) = request(false).into_parts();
            let context = ClientContext::from_parts(&parts);
            parts.extensions.insert(std::sync::Arc::new(Caller {
                principal: principal.clone(),
                context,
            }));
            runtime.block_on(service.clone().oneshot(Request::from_parts(parts, body)))
        })
    });
}

criterion_group!(benches, mcp_benches);
criterion_main!(benches);
