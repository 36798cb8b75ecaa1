//! In-process cost of a capture, without a network or a load generator sharing the CPU: a new
//! click and a duplicate through the capture router, next to the public API's health and whoami in
//! the same run, on the in-memory stores, with the settings of `scripts/bench-load`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use trcker_capture::CAPTURE_PATH;
use trcker_capture::config::CaptureConfig;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::testing::{create_capture_references, in_memory_edge};

/// The allocator the function binaries use (their `main.rs`), so the figures are what a deployed
/// function spends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A request as the local gateway hands it on: API Gateway's context with a fresh request id.
fn gateway_request(
    method: Method,
    path: &str,
    request_id: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("user-agent", "bench/1");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(body).unwrap();
    request.extensions_mut().insert(api_gateway_context(
        &method,
        path,
        "192.0.2.1",
        Some("bench/1"),
        request_id,
        0,
    ));
    request
}

/// A capture's client address and body for the request with this sequence number.
type ClientAndBody = dyn Fn(u64) -> (String, String);

fn capture_benches(c: &mut Criterion) {
    let (runtime, keys, data, limits) = in_memory_edge();
    // Budgets out of the way and one trusted proxy hop, as scripts/bench-load runs the gateway.
    let config = CaptureConfig {
        rate_limit_per_minute: 1_000_000_000,
        // The duplicate case sends from one address again and again.
        source_rate_limit_per_minute: 1_000_000_000,
        trusted_proxy_hops: 1,
        ..CaptureConfig::default()
    };
    let public_api = trcker_public_api::router(keys.clone(), data.clone(), limits);
    let capture = trcker_capture::router(keys.clone(), data.clone(), limits, config);
    let brand = BrandId::parse("bench").unwrap();
    let key = runtime.block_on(async {
        keys.create_brand(&brand, "Bench").await.unwrap();
        create_capture_references(data.as_ref(), &brand).await;
        keys.generate(&brand, None).await.unwrap().key
    });
    let bearer = format!("Bearer {}", key.expose_secret());

    let mut sequence = 0_u64;
    // The public API's reference routes, measured in this run.
    for (name, path, authorization) in [
        ("capture-run/health", "/api/public/health", None),
        (
            "capture-run/whoami (auth + rate limit + audit)",
            "/api/public/whoami",
            Some(bearer.as_str()),
        ),
    ] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        c.bench_function(name, |b| {
            b.iter(|| {
                sequence += 1;
                let request = gateway_request(
                    Method::GET,
                    path,
                    &format!("bench-{sequence}"),
                    &headers,
                    Body::empty(),
                );
                let response = runtime
                    .block_on(public_api.clone().oneshot(request))
                    .unwrap();
                assert_eq!(response.status(), 200);
            })
        });
    }
    // One capture through the router, as the local gateway hands it on; its status.
    let send = |sequence: u64, client: &str, body: String| {
        let request = gateway_request(
            Method::POST,
            CAPTURE_PATH,
            &format!("bench-{sequence}"),
            &[
                ("x-api-key", key.expose_secret()),
                ("content-type", "application/json"),
                ("x-forwarded-for", client),
            ],
            Body::from(body),
        );
        runtime
            .block_on(capture.clone().oneshot(request))
            .unwrap()
            .status()
    };
    // As wrk-load.lua sends it: a new click id from a new client address behind one proxy hop.
    let new_click = |sequence: u64| {
        let client = format!(
            "10.{}.{}.{}",
            (sequence >> 16) & 0xff,
            (sequence >> 8) & 0xff,
            sequence & 0xff
        );
        let body = format!(
            r#"{{"click_id":"bench-{sequence}","offer":"summer-sale","partner":"alice","sub1":"load"}}"#
        );
        (client, body)
    };
    // One click id, recorded once here, then sent again and again: every iteration a duplicate.
    let duplicate = |_: u64| {
        let body = r#"{"click_id":"bench-duplicate","offer":"summer-sale","partner":"alice"}"#;
        ("10.0.0.1".to_owned(), body.to_owned())
    };
    let (client, body) = duplicate(0);
    assert_eq!(send(0, &client, body), StatusCode::CREATED);
    let cases: [(&str, &ClientAndBody, StatusCode); 2] = [
        (
            "capture-run/capture (new click)",
            &new_click,
            StatusCode::CREATED,
        ),
        (
            "capture-run/capture (duplicate)",
            &duplicate,
            StatusCode::OK,
        ),
    ];
    for (name, client_and_body, expected) in cases {
        c.bench_function(name, |b| {
            b.iter(|| {
                sequence += 1;
                let (client, body) = client_and_body(sequence);
                assert_eq!(send(sequence, &client, body), expected, "{name}");
            })
        });
    }
}

criterion_group!(benches, capture_benches);
criterion_main!(benches);
