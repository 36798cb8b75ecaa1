//! What the guard does with every MCP request besides letting it in: an audit record naming the
//! tool (refused keys too), and the per-key rate limit it shares with the REST API.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::json;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::{ActivityFilter, Surface};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::store::memory::MemoryStore;

use crate::{Edge, LEGACY, SOURCE_IP, USER_AGENT};

#[tokio::test]
async fn every_request_is_audited_with_its_tool_and_refused_keys_too() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    edge.tool(&brand.key, "list_offers", json!({"limit": 2}))
        .await;
    edge.call(
        &brand.key,
        "get_offer",
        json!({"id": "off_00000000000000ff"}),
    )
    .await;
    let revoked = edge.keys.generate(&brand.id, None).await.unwrap();
    edge.keys.revoke(&brand.id, &revoked.key_id).await.unwrap();
    let response = edge
        .rpc(
            Some(revoked.key.expose_secret()),
            LEGACY,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let page = edge
        .data
        .list_activity(
            &brand.id,
            ActivityFilter {
                surface: Some(Surface::Mcp),
                ..ActivityFilter::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    let records: Vec<(&str, u16, &str)> = page
        .items
        .iter()
        .map(|r| (r.target.as_str(), r.status, r.outcome.as_str()))
        .collect();
    // Newest first. The revoked attempt is audited by path: a refused request's body is not read.
    assert_eq!(
        records,
        [
            ("/api/mcp", 401, "revoked_key"),
            ("tools/call get_offer", 200, "ok"),
            ("tools/call list_offers", 200, "ok"),
        ]
    );
    for record in &page.items {
        assert_eq!(record.source_ip, SOURCE_IP);
        assert_eq!(record.user_agent, USER_AGENT);
        assert!(record.fingerprint.starts_with("fp_"));
        assert!(!record.fingerprint.contains(&brand.key));
    }
}

#[tokio::test]
async fn mcp_and_rest_share_the_key_rate_limit() {
    let limits = EdgeLimits {
        rate_limit_per_minute: 3,
        ..EdgeLimits::default()
    };
    let edge = Edge::new(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryBrandData::new()),
        limits,
    );
    let brand_id = BrandId::parse("acme").unwrap();
    edge.keys.create_brand(&brand_id, "acme").await.unwrap();
    let key = edge.keys.generate(&brand_id, None).await.unwrap();
    let key = key.key.expose_secret();
    // Each surface's container leases from the one budget: MCP's takes all of it (3 is under one
    // lease) with its first call, so the public API's finds nothing left; MCP spends the rest.
    edge.tool(key, "whoami", json!({})).await;
    let refused = edge
        .request(Method::GET, "/api/public/whoami")
        .bearer(key)
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    edge.tool(key, "whoami", json!({})).await;
    edge.tool(key, "whoami", json!({})).await;
    let response = edge
        .rpc(
            Some(key),
            LEGACY,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "whoami", "arguments": {}}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.json()["error"]["code"], "rate_limited");
    assert!(response.headers.contains_key("retry-after"));
}
