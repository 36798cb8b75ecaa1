//! The MCP server function (`/api/mcp`): AI assistants read a brand's program data over
//! Streamable HTTP with the brand's API key as a bearer token. rmcp's `StreamableHttpService`
//! serves the protocol (stateless, JSON responses, both protocol eras); the shared guard in front
//! of it authenticates, rate-limits and audits every request, naming the tool in the audit record.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use trcker_shared::brand_data::{BrandDataStore, Surface};
use trcker_shared::edge::audit::AuditLog;
use trcker_shared::edge::auth::{AuditTarget, CredentialHeaders, EdgeGuard, authenticate};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::error::ApiError;
use trcker_shared::error::ErrorCode;
use trcker_shared::keys::KeyService;
use trcker_shared::program::Program;

pub mod config;
pub mod parameters;
pub mod server;
pub mod stats;

use config::McpConfig;
use server::TrckerMcp;

/// The one endpoint, for the local gateway and the infrastructure contract.
pub const MCP_PATH: &str = "/api/mcp";
/// The routes this function serves, as the API gateway declares them (method, path): `GET` and
/// `DELETE` reach the function, which answers 405 itself (stateless Streamable HTTP).
pub const ROUTES: &[(&str, &str)] = &[("POST", MCP_PATH), ("GET", MCP_PATH), ("DELETE", MCP_PATH)];
/// Largest JSON-RPC request accepted; tool arguments are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_AUDITED_TOOL_CHARS: usize = 64;

/// The MCP route and a JSON 404 for every other path: what the Lambda binary serves.
pub fn router(
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    limits: EdgeLimits,
    config: McpConfig,
) -> Router {
    routes(keys, data, limits, config).fallback(not_found)
}

/// The MCP route alone, for the local gateway to merge with the other functions.
pub fn routes(
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    limits: EdgeLimits,
    config: McpConfig,
) -> Router {
    let guard = Arc::new(EdgeGuard {
        keys: keys.clone(),
        audit: AuditLog::new(data.clone()),
        // The same budget name as the public API: one key, one rate limit across REST and MCP.
        limiter: trcker_shared::edge::rate_limit::RateLimiter::new(
            data.clone(),
            "rate",
            limits.rate_limit_per_minute,
        )
        .with_leases(limits.key_budget_leases),
        surface: Surface::Mcp,
        credential_headers: CredentialHeaders::BearerOnly,
        activity_retention_days: limits.activity_retention_days,
        source_limit_per_minute: None,
        revoked_records_per_minute: limits.revoked_key_records_per_minute,
        // Every tool reads; the server writes nothing but its activity records and counters.
        read_only_routes: true,
        records_in_writes: false,
    });
    let program = Program {
        keys,
        data,
        min_click_to_conversion_ms: limits.min_click_to_conversion_ms,
        activity_retention_days: limits.activity_retention_days,
    };
    let service = mcp_service(program, config);
    Router::new()
        .route_service(MCP_PATH, service)
        // Inner: runs once the guard has let the request through.
        .layer(from_fn(name_audit_target))
        .layer(from_fn_with_state(guard, authenticate))
}

/// rmcp's Streamable HTTP service over the tools, without the guard: stateless (no sessions, on
/// any Lambda instance), JSON responses, `Host` checked against the configured names. Tools expect
/// the guard's [`trcker_shared::edge::auth::Caller`] in the request extensions.
pub fn mcp_service(
    app: Program,
    config: McpConfig,
) -> StreamableHttpService<TrckerMcp, NeverSessionManager> {
    let server = TrckerMcp::new(app);
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_allowed_hosts(config.allowed_hosts)
            .with_max_request_body_bytes(MAX_BODY_BYTES),
    )
}

/// The parts of a JSON-RPC message the audit record names: the method, and a tool call's tool.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<EnvelopeParams<'a>>,
}

#[derive(Deserialize)]
struct EnvelopeParams<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
}

/// Reads the (bounded) body once to name the audit target (`tools/call list_offers`,
/// `initialize`, `server/discover`, …), then hands the same bytes to the MCP service.
async fn name_audit_target(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("an MCP request is at most {MAX_BODY_BYTES} bytes"),
            )
            .into_response();
        }
    };
    let target = audit_target(&parts.method, &bytes);
    if let Some(refusal) = method_refusal(&parts.method) {
        let mut response = refusal.into_response();
        response.extensions_mut().insert(AuditTarget(target));
        return response;
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    // rmcp parses the message itself; only when it refuses the request is the body parsed a
    // second time, to answer a body that is not one JSON-RPC message in the edge's format.
    let response = if response.status().is_client_error() {
        body_refusal(&bytes).unwrap_or(response)
    } else {
        response
    };
    let mut response = without_key_shaped_text(response).await;
    response.extensions_mut().insert(AuditTarget(target));
    response
}

/// Largest MCP response body the redaction pass reads (pages are budgeted far below it).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// rmcp writes some of the caller's words into its answers verbatim (a plain-text 400 quotes a
/// mismatched `Mcp-Method` header and body method; serde quotes unknown argument names), outside
/// the edge's own error format. A presented key must never come back in a response, so every
/// answer of the MCP route is passed through the same redaction as the audit target. Found by the
/// `apigw_router` fuzz target (docs/FUZZING.md).
async fn without_key_shaped_text(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await else {
        return ApiError::new(ErrorCode::Internal, "the MCP response could not be read")
            .into_response();
    };
    let redacted = std::str::from_utf8(&bytes)
        .ok()
        .map(trcker_shared::caller_text::redact_keys)
        .filter(|text| matches!(text, std::borrow::Cow::Owned(_)));
    match redacted {
        Some(text) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(text.into_owned()))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// What the transport refuses in the edge's JSON error format like the guard's own refusals,
/// where rmcp would answer in plain text: another method than POST (stateless: no GET stream, no
/// session to DELETE) is 405 with `Allow: POST`, before rmcp sees the request.
fn method_refusal(method: &axum::http::Method) -> Option<Response> {
    if method == axum::http::Method::POST {
        return None;
    }
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        "MCP is served statelessly: POST JSON-RPC messages to /api/mcp",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static("POST"),
    );
    Some(response)
}

/// A body that is not one JSON-RPC message (not JSON, not UTF-8, a batch, a bare value) is 400
/// `invalid_request`; rmcp itself answers it in plain text, as 415 although the media type was
/// right.
fn body_refusal(body: &[u8]) -> Option<Response> {
    let error = serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(body).err()?;
    Some(
        ApiError::invalid(format!(
            "the body is not one JSON-RPC message: {}",
            bounded(&error.to_string())
        ))
        .into_response(),
    )
}

fn audit_target(method: &axum::http::Method, body: &[u8]) -> String {
    if method != axum::http::Method::POST {
        return MCP_PATH.to_owned();
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return "invalid JSON-RPC".to_owned();
    };
    let Some(method) = envelope.method else {
        return "JSON-RPC response".to_owned();
    };
    let method = bounded(&method);
    match envelope.params.and_then(|params| params.name) {
        Some(tool) if method == "tools/call" => format!("tools/call {}", bounded(&tool)),
        _ => method,
    }
}

/// Client-chosen names, bounded and with anything key-shaped redacted before they are stored.
fn bounded(text: &str) -> String {
    trcker_shared::caller_text::for_record(text, MAX_AUDITED_TOOL_CHARS)
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route: MCP is served at /api/mcp",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn audit_targets_name_the_tool() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_offers","arguments":{}}}"#;
        assert_eq!(audit_target(&Method::POST, call), "tools/call list_offers");
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        assert_eq!(audit_target(&Method::POST, init), "initialize");
        assert_eq!(audit_target(&Method::POST, b"[1,2]"), "invalid JSON-RPC");
        assert_eq!(audit_target(&Method::GET, b""), MCP_PATH);
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
            "x".repeat(500)
        );
        assert_eq!(audit_target(&Method::POST, long.as_bytes()).len(), 11 + 64);
    }
}
