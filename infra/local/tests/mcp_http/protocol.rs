//! The MCP protocol on one stateless endpoint: both protocol eras (initialize, and 2026-07-28's
//! discovery and self-describing calls), notifications and the methods not served, and the API
//! Gateway sample events through the Lambda request adapter.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;
use trcker_shared::brand_data::ActivityFilter;

use crate::{Edge, LEGACY};

#[tokio::test]
async fn both_protocol_eras_are_served_on_one_endpoint() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    let key = Some(brand.key.as_str());

    for version in ["2025-06-18", "2025-11-25"] {
        let response = edge
            .rpc(
                key,
                version,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": version, "capabilities": {},
                               "clientInfo": {"name": "t", "version": "1"}}}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert!(
            response.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        assert!(
            response.headers.get("mcp-session-id").is_none(),
            "stateless"
        );
        let result = &response.json()["result"];
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["serverInfo"]["name"], "trcker");
        assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            result["instructions"]
                .as_str()
                .unwrap()
                .contains("read-only")
        );
        assert!(result["capabilities"]["tools"].is_object());
    }

    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}});
    let response = edge
        .mcp(Method::POST, "/api/mcp", key)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .json(
            json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
               "params": {"_meta": meta}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let result = &response.json()["result"];
    assert_eq!(
        result["supportedVersions"],
        json!(["2025-06-18", "2025-11-25", "2026-07-28"])
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "trcker"
    );

    // A 2026-07-28 tool call carries its own metadata; no initialize, no session.
    let response = edge
        .mcp(Method::POST, "/api/mcp", key)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "whoami", "arguments": {}, "_meta": meta}}))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(
        response.json()["result"]["structuredContent"]["brand_id"],
        "acme"
    );
}

#[tokio::test]
async fn notifications_are_accepted_and_get_and_delete_are_not_served() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    let key = Some(brand.key.as_str());

    let response = edge
        .rpc(
            key,
            LEGACY,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED);

    for method in [Method::GET, Method::DELETE] {
        let response = edge.mcp(method.clone(), "/api/mcp", key).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp")
}

fn event(name: &str, key: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("{{KEY}}", key)
}

#[tokio::test]
async fn api_gateway_events_pass_through_the_lambda_adapter() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    let mcp_only = edge.mcp_only();
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        let request = lambda_http::request::from_str(&event(&name, &brand.key)).unwrap();
        // Exactly as the adapter made it, with the event's own API Gateway context.
        let response = mcp_only
            .send_request(request.map(|body| Body::from(body.to_vec())))
            .await;
        let status = response.status;
        match name.as_str() {
            "get-stream.json" => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED),
            "notification-initialized.json" => assert_eq!(status, StatusCode::ACCEPTED),
            "initialize-2025-06-18.json" => {
                assert_eq!(status, StatusCode::OK);
                assert_eq!(response.json()["result"]["protocolVersion"], "2025-06-18");
            }
            "server-discover-2026-07-28.json" => {
                assert_eq!(status, StatusCode::OK);
                assert!(
                    response.json()["result"]["supportedVersions"].is_array(),
                    "{}",
                    response.text()
                );
            }
            "tools-call-list-offers.json" => {
                assert_eq!(status, StatusCode::OK);
                assert_eq!(
                    response.json()["result"]["structuredContent"]["data"][0]["id"],
                    brand.offer_id.as_str()
                );
            }
            "tools-call-whoami-2026-07-28.json" => {
                assert_eq!(status, StatusCode::OK, "{}", response.text());
                assert_eq!(
                    response.json()["result"]["structuredContent"]["brand_id"],
                    "acme"
                );
            }
            other => panic!("no expectation for {other}"),
        }
    }
    let page = edge
        .data
        .list_activity(&brand.id, ActivityFilter::default(), 20, None)
        .await
        .unwrap();
    let record = page
        .items
        .iter()
        .find(|record| record.request_id == "fixture-mcp-list-offers")
        .expect("the fixture's request id is in the activity log");
    assert_eq!(record.source_ip, "198.51.100.77");
    assert_eq!(record.target, "tools/call list_offers");
}
