//! The MCP server function (`/api/mcp`): AI assistants read a brand's program data over
//! Streamable HTTP with the brand's API key as a bearer token. rmcp's `StreamableHttpService`
//! serves the protocol (stateless, JSON responses, both protocol eras); the shared guard in front
//! of it authenticates, rate-limits and audits every request, naming the tool in the audit record.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use lambda_http::tower::Service;
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
/// any Lambda instance), JSON responses, behind the `Host` check ([`McpService`]). Tools expect
/// the guard's [`trcker_shared::edge::auth::Caller`] in the request extensions.
pub fn mcp_service(app: Program, config: McpConfig) -> McpService {
    let server = TrckerMcp::new(app);
    let inner = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            // rmcp's check compares `Host` with one list fixed at start; the host API Gateway
            // vouches for is per request, so [`McpService`] checks `Host` in its place.
            .disable_allowed_hosts()
            .with_max_request_body_bytes(MAX_BODY_BYTES),
    );
    McpService {
        inner,
        allowed_hosts: config.allowed_hosts.into(),
    }
}

/// rmcp's service behind the DNS-rebinding check, which takes the place of rmcp's own.
///
/// # The `Host` check
///
/// A web page can make a browser send requests to any address its name resolves to, and through
/// DNS rebinding (its name re-resolved to the server's address) read the answers; the browser
/// still sends the page's own name as `Host`, which the page cannot change. So a request is
/// answered only if every name it presents (`Host`, and an absolute-form target's authority) is
///
/// - the domain name API Gateway recorded in the request context (`requestContext.domainName`:
///   the endpoint that took the request, the API's execute-api host or a custom domain mapped to
///   it), compared without the port. API Gateway sets it itself and answers only names mapped to
///   one of its APIs, so in AWS a rebinding page's name never matches it; or
/// - one of the configured hosts ([`McpConfig::allowed_hosts`]: loopback by default in
///   `trcker-local`, none by default in Lambda), a port given there having to match.
///
/// Anything else is 403 `host_not_allowed`. A request with no API Gateway context (or one without
/// a domain name) is judged by the configured list alone; the local gateway fills the context
/// without a domain name, for the name a local request arrives on is whatever the browser
/// resolved to loopback (`trcker-local`'s `api_gateway_request_context`).
#[derive(Clone)]
pub struct McpService {
    inner: StreamableHttpService<TrckerMcp, NeverSessionManager>,
    allowed_hosts: Arc<[String]>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request> for McpService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // rmcp's service is always ready (it clones itself for each call).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !request_host_is_allowed(&request, &self.allowed_hosts) {
            let refusal = ApiError::new(
                ErrorCode::HostNotAllowed,
                "the MCP server answers only requests addressed to the host API Gateway received \
                 them on, or to one of TRCKER_MCP_ALLOWED_HOSTS",
            )
            .into_response();
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        let answer = self.inner.call(request);
        Box::pin(async move { answer.await.map(IntoResponse::into_response) })
    }
}

/// The domain name API Gateway recorded for the request, if it has API Gateway's context: set by
/// API Gateway, never taken from the caller.
fn vouched_domain(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.domain_name.as_deref(),
        RequestContext::ApiGatewayV1(context) => context.domain_name.as_deref(),
        _ => None,
    }
}

/// Whether every name `request` presents (each `Host` header, and the target's authority if it
/// has one) passes [`host_is_allowed`]; a request presenting none is refused.
fn request_host_is_allowed(request: &Request, allowed: &[String]) -> bool {
    let vouched = vouched_domain(request);
    let mut presented = request
        .headers()
        .get_all(axum::http::header::HOST)
        .iter()
        .map(|value| value.to_str().ok())
        .collect::<Vec<_>>();
    // The Lambda adapter builds the target's authority from `Host` (or, without one, from the
    // domain name); an absolute-form target names the host too.
    if let Some(authority) = request.uri().authority() {
        presented.push(Some(authority.as_str()));
    }
    !presented.is_empty()
        && presented
            .iter()
            .all(|host| host.is_some_and(|host| host_is_allowed(host, vouched, allowed)))
}

/// Whether the `Host` value `presented` names `vouched` (API Gateway's domain name for the
/// request; any port) or one of `allowed` (`name` matching any port, `name:port` that port only).
/// Names compare without case and IPv6 brackets; a malformed `Host` is never allowed.
pub fn host_is_allowed(presented: &str, vouched: Option<&str>, allowed: &[String]) -> bool {
    let Some((name, port)) = parse_authority(presented) else {
        return false;
    };
    let is_vouched = vouched
        .and_then(parse_authority)
        .is_some_and(|(domain, _)| domain == name);
    is_vouched
        || allowed.iter().any(|entry| {
            // Configured entries are checked at start (`McpConfig`); a bare IPv6 address such as
            // `::1` is not an authority and stands for that name on any port.
            let (allowed_name, allowed_port) =
                parse_authority(entry).unwrap_or_else(|| (bare_host(entry), None));
            allowed_name == name && allowed_port.is_none_or(|allowed| port == Some(allowed))
        })
}

/// A `host[:port]` authority as (lower-case name without brackets, port); `None` if it is not
/// one (user info, an empty or out-of-range port, stray characters).
fn parse_authority(text: &str) -> Option<(String, Option<u16>)> {
    let authority = axum::http::uri::Authority::try_from(text).ok()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    // What follows the name is nothing or `:` and a port; `name:` and `name:99999` parse as
    // authorities without a port, and must not pass as the bare name.
    let port = match authority.as_str().get(authority.host().len()..)? {
        "" => None,
        rest => {
            let digits = rest.strip_prefix(':')?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some((bare_host(authority.host()), port))
}

fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
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
    use axum::http::{Method, StatusCode};
    use serde_json::Value;
    use trcker_shared::brand_data::memory::MemoryBrandData;
    use trcker_shared::clock::SystemClock;
    use trcker_shared::ids::BrandId;
    use trcker_shared::store::memory::MemoryStore;
    use trcker_shared::testing::{TestClient, TestResponse};

    #[test]
    fn hosts_match_the_vouched_domain_or_the_list() {
        let vouched = Some("abc123.execute-api.eu-west-1.amazonaws.com");
        let none: &[String] = &[];
        // API Gateway's domain name, in any case and on any port; nothing else without a list.
        for host in [
            "abc123.execute-api.eu-west-1.amazonaws.com",
            "ABC123.execute-api.eu-west-1.amazonaws.com:443",
        ] {
            assert!(host_is_allowed(host, vouched, none), "{host}");
        }
        for host in [
            "evil.example",
            "abc123.execute-api.eu-west-1.amazonaws.com.evil.example",
            "localhost",
            "abc123.execute-api.eu-west-1.amazonaws.com:",
            "abc123.execute-api.eu-west-1.amazonaws.com:99999",
            "abc123.execute-api.eu-west-1.amazonaws.com:+443",
            "user@abc123.execute-api.eu-west-1.amazonaws.com",
            "",
        ] {
            assert!(!host_is_allowed(host, vouched, none), "{host:?}");
        }
        // Without a vouched domain, the list alone; a listed port must match, a bare name or
        // IPv6 address takes any port.
        let local = McpConfig::default().allowed_hosts;
        for host in [
            "localhost",
            "LOCALHOST:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
        ] {
            assert!(host_is_allowed(host, None, &local), "{host}");
        }
        for host in ["127.0.0.7", "evil.example", "localhost:99999", "localhost:"] {
            assert!(!host_is_allowed(host, None, &local), "{host}");
        }
        let listed = vec!["api.example.com:8443".to_owned()];
        assert!(host_is_allowed("api.example.com:8443", None, &listed));
        assert!(!host_is_allowed("api.example.com", None, &listed));
        assert!(!host_is_allowed("api.example.com:443", None, &listed));
        // An empty list is no host, not rmcp's "any host".
        assert!(!host_is_allowed("evil.example", None, none));
    }

    /// The MCP Lambda's router (as `main.rs` builds it, over memory stores) and a key of a brand.
    async fn lambda_router(allowed_hosts: Vec<String>) -> (TestClient, String) {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
        ));
        let brand = BrandId::parse("acme").unwrap();
        keys.create_brand(&brand, "Acme").await.unwrap();
        let key = keys.generate(&brand, None).await.unwrap().key;
        let router = router(
            keys,
            Arc::new(MemoryBrandData::new()),
            EdgeLimits::default(),
            McpConfig { allowed_hosts },
        );
        (TestClient::router(router), key.expose_secret().to_owned())
    }

    /// The API Gateway sample event for `tools/call list_offers` (its request context names
    /// `api.trcker.example` as the domain), sent with `host` as its `Host` header through the
    /// Lambda adapter, as the function receives it.
    async fn send_event(client: &TestClient, key: &str, host: &str, id: &str) -> TestResponse {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/mcp/tools-call-list-offers.json"
        );
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("{{KEY}}", key);
        let mut event: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(event["requestContext"]["domainName"], "api.trcker.example");
        event["headers"]["host"] = Value::from(host);
        event["requestContext"]["requestId"] = Value::from(id);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        client
            .send_request(request.map(|body| Body::from(body.to_vec())))
            .await
    }

    /// One deploy serves MCP: with no host configured (the template's default), the host API
    /// Gateway received the request on is answered, and any other `Host` refused.
    #[tokio::test]
    async fn the_host_api_gateway_vouches_for_needs_no_configuration() {
        let (client, key) = lambda_router(
            McpConfig::lambda_from_lookup(|_| None)
                .unwrap()
                .allowed_hosts,
        )
        .await;
        let answered = send_event(&client, &key, "api.trcker.example", "req-vouched").await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
        assert!(answered.json()["result"]["structuredContent"]["data"].is_array());

        // A page on a rebinding name behind the same endpoint: not the domain API Gateway took
        // the request on, and not configured.
        for host in ["evil.example", "localhost", "127.0.0.1"] {
            let refused = send_event(&client, &key, host, &format!("req-{host}")).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{host}");
            assert_eq!(refused.error_code(), "host_not_allowed", "{host}");
        }
    }

    /// `TRCKER_MCP_ALLOWED_HOSTS` (the template's `McpAllowedHosts`) adds names to the vouched
    /// one; it does not replace it.
    #[tokio::test]
    async fn configured_hosts_are_answered_beside_the_vouched_one() {
        let config = McpConfig::lambda_from_lookup(|_| Some("mcp.brand.example".into())).unwrap();
        let (client, key) = lambda_router(config.allowed_hosts).await;
        for (host, status) in [
            ("mcp.brand.example", StatusCode::OK),
            ("api.trcker.example", StatusCode::OK),
            ("evil.example", StatusCode::FORBIDDEN),
        ] {
            let response = send_event(&client, &key, host, &format!("req-list-{host}")).await;
            assert_eq!(response.status, status, "{host}: {}", response.text());
        }
    }

    /// Without API Gateway's context nothing is vouched for: only the configured list counts, so
    /// an unconfigured Lambda answers no request that lacks one.
    #[tokio::test]
    async fn without_a_context_only_the_list_counts() {
        let (client, key) = lambda_router(Vec::new()).await;
        let response = client
            .post(MCP_PATH)
            .without_context()
            .header("host", "api.trcker.example")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .bearer(&key)
            .json(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .await;
        assert_eq!(
            response.status,
            StatusCode::FORBIDDEN,
            "{}",
            response.text()
        );
        assert_eq!(response.error_code(), "host_not_allowed");
    }

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
