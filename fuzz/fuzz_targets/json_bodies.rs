//! Fuzz target `json_bodies`: every JSON request body the edge accepts, through the handler that
//! parses and validates it, on in-memory stores seeded with the demo brand. The first input byte
//! picks the body (public API create/update bodies of partners, offers, pricing rules, conversions
//! and fraud reviews; the capture body; the keys function's payload; an MCP JSON-RPC message), the
//! rest is the body, where `{partner}`, `{offer}`, `{pricing_rule}`, `{conversion}` and
//! `{fraud_signal}` become seeded ids. Invariants: never a panic or a 5xx; errors are typed client
//! errors that echo nothing key-shaped.
#![no_main]

use axum::http::Method;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trcker_fuzz::{World, assert_edge_invariants, assert_typed_client_error, send, with_world};

/// Where a body goes: a route of one of the HTTP functions, or the keys function's invocation.
enum Destination {
    PublicApi(Method, &'static str),
    Capture,
    Mcp,
    KeysPayload,
}

/// Every body the edge parses. In paths, `{partner}` and the like stand for a seeded id.
const DESTINATIONS: [Destination; 12] = [
    Destination::PublicApi(Method::POST, "/api/public/partners"),
    Destination::PublicApi(Method::PATCH, "/api/public/partners/{partner}"),
    Destination::PublicApi(Method::POST, "/api/public/offers"),
    Destination::PublicApi(Method::PATCH, "/api/public/offers/{offer}"),
    Destination::PublicApi(Method::POST, "/api/public/pricing-rules"),
    Destination::PublicApi(Method::PATCH, "/api/public/pricing-rules/{pricing_rule}"),
    Destination::PublicApi(Method::POST, "/api/public/conversions"),
    Destination::PublicApi(Method::PATCH, "/api/public/conversions/{conversion}"),
    Destination::PublicApi(Method::PATCH, "/api/public/fraud-signals/{fraud_signal}"),
    Destination::Capture,
    Destination::Mcp,
    Destination::KeysPayload,
];

/// Puts the seeded resources' ids where `text` names them.
fn fill_ids(world: &World, text: &str) -> String {
    let ids = &world.ids;
    text.replace("{partner}", &ids.partner)
        .replace("{offer}", &ids.offer)
        .replace("{pricing_rule}", &ids.pricing_rule)
        .replace("{conversion}", &ids.conversion)
        .replace("{fraud_signal}", &ids.fraud_signal)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    with_world(async |world: &World| {
        let (method, path, router) = match &DESTINATIONS[usize::from(selector) % DESTINATIONS.len()]
        {
            Destination::PublicApi(method, template) => {
                (method.clone(), fill_ids(world, template), &world.public_api)
            }
            Destination::Capture => (
                Method::POST,
                trcker_capture::CAPTURE_PATH.to_owned(),
                &world.capture,
            ),
            Destination::Mcp => (Method::POST, trcker_mcp::MCP_PATH.to_owned(), &world.mcp),
            Destination::KeysPayload => {
                let answer = trcker_keys::handle_payload_bytes(&world.keys, body).await;
                assert!(
                    answer.is_object(),
                    "the keys function answers an object: {answer}"
                );
                if answer.get("error").is_some() {
                    assert_typed_client_error(&answer, "keys payload");
                    let text = answer.to_string();
                    assert!(trcker_shared::testing::key_shaped_strings(&text).is_empty());
                }
                return;
            }
        };
        // Bodies may name seeded resources the same way paths do (`{offer}`, `{partner}`, …).
        let body = match std::str::from_utf8(body) {
            Ok(text) => fill_ids(world, text).into_bytes(),
            Err(_) => body.to_vec(),
        };
        let request = world.request(method.clone(), &path, body);
        let answer = send(router, request).await;
        let what = format!("{method} {path}");
        assert_edge_invariants(&answer, &what);
        // MCP answers JSON-RPC errors its own way; the other functions use the edge's envelope.
        if answer.status.is_client_error() && path != trcker_mcp::MCP_PATH {
            let error: Value = serde_json::from_slice(&answer.body)
                .unwrap_or_else(|_| panic!("{what}: a non-JSON {} error", answer.status));
            assert_typed_client_error(&error, &what);
        }
    });
});
