//! Fuzz target `apigw_router`: API Gateway (HTTP API v2 and REST) event JSON, deserialised by
//! `lambda_http` into an HTTP request exactly as the Lambda runtime does, then sent through the
//! router of the function that path belongs to (public API, capture or MCP, each as its Lambda
//! binary builds it, on in-memory stores with the demo brand). `{{KEY}}` and `{{REVOKED_KEY}}` in
//! the input become the demo brand's live and revoked keys, so the fuzzer reaches past the guard.
//! Invariants: never a panic or a 5xx; an error answer echoes nothing key-shaped. Events that make
//! `lambda_http` itself panic on an invalid host or URI, or `aws_lambda_events` on a body marked
//! base64 that is not, are skipped (see `lambda_request`).
#![no_main]

use axum::body::Body;
use lambda_http::request::RequestContext;
use libfuzzer_sys::fuzz_target;
use trcker_fuzz::{World, assert_edge_invariants, send, unique_request_id, with_world};

/// `lambda_http`'s conversion of an event into a request (`src/request.rs`) unwraps URI and URL
/// parsing of the `Host` header, path and query: a host like `api.example.%com` or `exa}mple`
/// panics there (`Url::parse(..).unwrap()`, `.expect("failed to build request")`;
/// aws-lambda-rust-runtime#515 and its kin). API Gateway routes on the host and never forwards
/// such a request, so the harness skips these events instead of reporting the library's panic.
/// Likewise `aws_lambda_events` decodes a body marked `isBase64Encoded` with `.expect(..)`
/// (`src/encodings/http.rs`): an event whose body is not base64 panics in deserialisation, and
/// API Gateway, which does the encoding, never sends one. A panic anywhere else still reaches
/// libFuzzer.
fn panicked_in_lambda_http_conversion(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|location| {
        let file = location.file();
        (file.contains("lambda_http-") && file.ends_with("src/request.rs"))
            || (file.contains("aws_lambda_events-") && file.ends_with("src/encodings/http.rs"))
    })
}

/// The event as the Lambda runtime turns it into a request, or `None` when it is not an event or
/// hits the upstream panic above.
fn lambda_request(event: &str) -> Option<lambda_http::Request> {
    static FILTERED_HOOK: std::sync::Once = std::sync::Once::new();
    FILTERED_HOOK.call_once(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panicked_in_lambda_http_conversion(info) {
                libfuzzer_hook(info);
            }
        }));
    });
    std::panic::catch_unwind(|| lambda_http::request::from_str(event))
        .ok()?
        .ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = std::str::from_utf8(data) else {
        return;
    };
    with_world(async |world: &World| {
        let event = world.fill_placeholders(event);
        let Some(request) = lambda_request(&event) else {
            return;
        };
        let mut request = request.map(|body| Body::from(body.to_vec()));
        // API Gateway gives every request its own id (see `unique_request_id`).
        match request.extensions_mut().get_mut::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => {
                context.request_id = Some(unique_request_id());
            }
            Some(RequestContext::ApiGatewayV1(context)) => {
                context.request_id = Some(unique_request_id());
            }
            _ => {}
        }
        let path = request.uri().path().to_owned();
        // Like the HTTP API's routes; any other path goes to a router picked by the input, so
        // every function's fallback gets unknown paths too.
        let router = if path.starts_with(trcker_public_api::ROUTE_PREFIX) {
            &world.public_api
        } else if path == trcker_mcp::MCP_PATH {
            &world.mcp
        } else if path == trcker_capture::CAPTURE_PATH {
            &world.capture
        } else {
            match data.len() % 3 {
                0 => &world.public_api,
                1 => &world.mcp,
                _ => &world.capture,
            }
        };
        let what = format!(
            "{} {}",
            request.method(),
            path.chars().take(80).collect::<String>()
        );
        let answer = send(router, request).await;
        assert_edge_invariants(&answer, &what);
    });
});
