//! Who may call the MCP endpoint: refusals with a bearer challenge, keys in URLs, no OAuth
//! discovery, hosts outside the allowed list (DNS rebinding), and answers that never echo a key.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use trcker_shared::ids::BrandId;

use crate::{Edge, HOST, LEGACY, as_mcp_client, numbered};

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}})
}

#[tokio::test]
async fn refusals_are_401_with_a_bearer_challenge() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;

    let revoked = edge.keys.generate(&brand.id, None).await.unwrap();
    edge.keys.revoke(&brand.id, &revoked.key_id).await.unwrap();
    // A well-formed key this edge has never issued (another deployment's).
    let other_edge = Edge::memory();
    other_edge
        .keys
        .create_brand(&BrandId::parse("other").unwrap(), "o")
        .await
        .unwrap();
    let unknown = other_edge
        .keys
        .generate(&BrandId::parse("other").unwrap(), None)
        .await
        .unwrap();
    for (name, key) in [
        ("missing", None),
        ("empty", Some("")),
        ("malformed", Some("tk_short")),
        ("unknown", Some(unknown.key.expose_secret())),
        ("revoked", Some(revoked.key.expose_secret())),
    ] {
        let response = edge.rpc(key, LEGACY, initialize()).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(response.headers["www-authenticate"], "Bearer", "{name}");
        assert_eq!(response.json()["error"]["code"], "unauthorized", "{name}");
        assert!(
            response.headers.get("mcp-session-id").is_none(),
            "{name}: no session"
        );
    }
}

#[tokio::test]
async fn keys_in_urls_are_refused() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    // A key in the query string is refused, whatever else the request carries.
    let response = edge
        .mcp(
            Method::POST,
            &format!("/api/mcp?api_key={}", brand.key),
            Some(&brand.key),
        )
        .json(initialize())
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.json()["error"]["code"], "credentials_in_url");
}

/// Static keys: no OAuth discovery documents.
#[tokio::test]
async fn there_are_no_oauth_discovery_documents() {
    let edge = Edge::memory();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = edge.mcp(Method::GET, path, None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let mcp_only = edge.mcp_only();
    let response = as_mcp_client(
        numbered(mcp_only.get("/.well-known/oauth-protected-resource")),
        HOST,
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

/// Hosts outside the configured list are refused (DNS rebinding).
#[tokio::test]
async fn hosts_outside_the_allowed_list_are_refused() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    let response = as_mcp_client(
        edge.request(Method::POST, "/api/mcp"),
        "evil.example",
        Some(&brand.key),
    )
    .header("mcp-protocol-version", LEGACY)
    .json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
    .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

/// Regression (fuzz target `apigw_router`): rmcp quotes a mismatched `Mcp-Method` header and
/// body method verbatim in a plain-text 400, and serde quotes unknown argument names; a key the
/// caller put there must not come back in the answer.
#[tokio::test]
async fn answers_never_echo_a_presented_key() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    let mismatched = edge
        .mcp(Method::POST, "/api/mcp", Some(&brand.key))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .json(json!({"jsonrpc": "2.0", "id": 1, "method": brand.key, "params": {}}));
    let unknown_argument = edge
        .mcp(Method::POST, "/api/mcp", Some(&brand.key))
        .header("mcp-protocol-version", LEGACY)
        .json(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "list_offers", "arguments": {brand.key.clone(): 1}}}));
    for (name, request) in [
        ("mismatched method", mismatched),
        ("unknown argument", unknown_argument),
    ] {
        let response = request.await;
        assert!(
            response.status.is_client_error() || response.status == StatusCode::OK,
            "{name}: {}",
            response.status
        );
        let text = response.text();
        assert!(!text.contains(&brand.key), "{name} echoed the key: {text}");
        assert!(
            !text.contains(&brand.key[3..]),
            "{name} echoed the key's body: {text}"
        );
    }
}
