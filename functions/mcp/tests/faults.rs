//! The MCP function under injected store faults (throttling, a 5xx, a timeout). Before the
//! request reaches MCP (the key lookup) a fault is HTTP 503 with `Retry-After` and the JSON error
//! body, as on every function. Inside a tool it is, as documented for MCP, a tool result with
//! `isError: true` and the stable code `store_unavailable`, which the model can read and retry;
//! never a protocol error, never a hang, and the tool works again once the store recovers.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::faulty_edge::{FaultyEdge, JsonResponse, send};
use trcker_shared::store::counting::StoreOperation;
use trcker_shared::store::fault::{Fault, Trigger};

/// Stands in for the SDK operation timeout; short, so the suite stays quick.
const TIMEOUT: Duration = Duration::from_millis(20);

/// The MCP function over stores that inject faults.
struct Edge {
    router: Router,
    edge: FaultyEdge<MemoryBrandData>,
}

impl std::ops::Deref for Edge {
    type Target = FaultyEdge<MemoryBrandData>;

    fn deref(&self) -> &FaultyEdge<MemoryBrandData> {
        &self.edge
    }
}

impl Edge {
    fn new() -> Self {
        let edge = FaultyEdge::memory();
        let config = McpConfig {
            allowed_hosts: vec!["localhost".into()],
        };
        Self {
            router: trcker_mcp::router(
                edge.keys.clone(),
                edge.data.clone(),
                EdgeLimits::default(),
                config,
            ),
            edge,
        }
    }

    async fn brand(&self, id: &str) -> String {
        self.brand_key(id).await
    }

    async fn call_tool(&self, key: &str, tool: &str) -> JsonResponse {
        let message = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                             "params": {"name": tool, "arguments": {}}});
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(message.to_string()))
            .unwrap();
        send(&self.router, request, "192.0.2.44", "mcp-faults/1.0").await
    }
}

#[tokio::test]
async fn a_key_store_fault_is_503_with_retry_after_and_a_json_error() {
    for fault in Fault::transient(TIMEOUT) {
        let edge = Edge::new();
        let key = edge.brand("acme").await;
        edge.key_store.inject(
            Some(StoreOperation::FindKeyByHash),
            fault.clone(),
            Trigger::Always,
        );
        let response = edge.call_tool(&key, "whoami").await;
        response.assert_unavailable(&format!("{fault:?}"));
        edge.key_store.clear();
        let recovered = edge.call_tool(&key, "whoami").await;
        assert_eq!(recovered.status, StatusCode::OK, "{fault:?}");
        assert_eq!(recovered.body["result"]["isError"], false, "{fault:?}");
    }
}

#[tokio::test]
async fn a_store_fault_inside_a_tool_is_a_retryable_tool_error() {
    let tools = [
        ("list_offers", "list_documents_by_prefix"),
        ("list_clicks", "list_clicks"),
        ("list_activity", "list_activity"),
        ("get_program_stats", "read_rollups"),
    ];
    for fault in Fault::transient(TIMEOUT) {
        for (tool, operation) in tools {
            let what = format!("{tool} with {operation} under {fault:?}");
            let edge = Edge::new();
            let key = edge.brand("acme").await;
            edge.data
                .inject(Some(operation), fault.clone(), Trigger::Always);
            let response = edge.call_tool(&key, tool).await;
            assert_eq!(response.status, StatusCode::OK, "{what}: {}", response.body);
            assert!(
                response.body["error"].is_null(),
                "{what}: not a protocol error"
            );
            let result = &response.body["result"];
            assert_eq!(result["isError"], true, "{what}: {result}");
            let text = result["content"][0]["text"].as_str().unwrap_or_default();
            assert!(
                text.starts_with("store_unavailable: ") && text.contains("retry"),
                "{what}: {text}"
            );
            assert!(
                edge.data.faults_fired() > 0,
                "{what}: the fault was reached"
            );

            edge.data.clear();
            let recovered = edge.call_tool(&key, tool).await;
            assert_eq!(
                recovered.body["result"]["isError"], false,
                "{what}: {}",
                recovered.body
            );
        }
    }
}
