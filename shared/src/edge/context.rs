//! The caller's identity as API Gateway records it: request id, source IP and user agent, read
//! from the lambda_http request context (HTTP API v2 or REST API v1). The local gateway fills the
//! same context, so functions read it one way everywhere.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// Longer user agents are cut (with a marker) before they reach logs and the audit trail.
const MAX_USER_AGENT_CHARS: usize = 512;
const UNKNOWN: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    pub request_id: String,
    pub source_ip: String,
    pub user_agent: String,
}

/// The client address a function worked out from trusted proxy hops (capture behind a CDN). When
/// present in the request's extensions it replaces the context's source IP everywhere: in the
/// audit record, in logs and in what the handler stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedClient(pub String);

impl ClientContext {
    pub fn from_parts(parts: &Parts) -> Self {
        let (request_id, source_ip, user_agent) = match parts.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => (
                context.request_id.clone(),
                context.http.source_ip.clone(),
                context.http.user_agent.clone(),
            ),
            Some(RequestContext::ApiGatewayV1(context)) => (
                context.request_id.clone(),
                context.identity.source_ip.clone(),
                context.identity.user_agent.clone(),
            ),
            _ => (None, None, None),
        };
        // API Gateway copies the header into the context; fall back to the header itself, with
        // odd bytes escaped rather than the whole agent lost (a leak suspect could hide behind one).
        let user_agent = user_agent.or_else(|| {
            parts
                .headers
                .get(axum::http::header::USER_AGENT)
                .map(|value| crate::caller_text::escaped_header_text(value.as_bytes()))
        });
        Self {
            // Request ids key the audit records, so one is made up when the context has none.
            request_id: request_id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(generated_request_id),
            source_ip: match parts.extensions.get::<ForwardedClient>() {
                Some(ForwardedClient(client)) => client.clone(),
                None => source_ip.unwrap_or_else(|| UNKNOWN.into()),
            },
            user_agent: match user_agent {
                Some(agent) => crate::caller_text::for_record_marked(&agent, MAX_USER_AGENT_CHARS),
                None => UNKNOWN.to_owned(),
            },
        }
    }
}

/// The source address API Gateway recorded for the connection, if the request has a context.
pub fn context_source_ip(parts: &Parts) -> Option<String> {
    match parts.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => None,
    }
}

/// `gen-` + 16 hex digits, for a request whose context carries no id.
pub fn generated_request_id() -> String {
    request_id_with_prefix("gen")
}

/// `prefix-` + 16 hex digits, unique within the process and very unlikely to match another
/// process's: a sequence number mixed, by a keyed bijection, with two keys read once per process
/// from the OS's randomness. After the first, requests pay no system call for an id. Ids are not
/// secrets, but the keys keep one id from telling how many requests came before another.
pub fn request_id_with_prefix(prefix: &str) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    static PROCESS_KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    let (inner, outer) = *PROCESS_KEYS.get_or_init(process_keys);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:016x}",
        scramble(scramble(sequence ^ inner) ^ outer)
    )
}

/// Two keys from the OS's randomness; without it, from the clock and the process id, mixed so
/// that processes started close together still get unrelated keys.
fn process_keys() -> (u64, u64) {
    match (crate::token::random_u64(), crate::token::random_u64()) {
        (Ok(inner), Ok(outer)) => (inner, outer),
        _ => {
            tracing::warn!("no randomness from the OS for request ids; using the clock and pid");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64);
            let pid = u64::from(std::process::id());
            (
                scramble(nanos) ^ scramble(pid),
                scramble(nanos ^ scramble(pid)),
            )
        }
    }
}

/// SplitMix64's finaliser: a bijection on `u64` (distinct inputs give distinct outputs) whose
/// outputs look unrelated to each other.
fn scramble(value: u64) -> u64 {
    let mut mixed = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

/// Builds the API Gateway (HTTP API) request context the way AWS fills it, for the local gateway
/// and tests.
pub fn api_gateway_context(
    method: &axum::http::Method,
    path: &str,
    source_ip: &str,
    user_agent: Option<&str>,
    request_id: &str,
    now_ms: i64,
) -> RequestContext {
    let mut http = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = method.clone();
    http.path = Some(path.to_owned());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some(source_ip.to_owned());
    http.user_agent = user_agent.map(str::to_owned);
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.request_id = Some(request_id.to_owned());
    context.stage = Some("$default".into());
    context.time_epoch = now_ms;
    context.http = http;
    RequestContext::ApiGatewayV2(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_gateway_context_and_bounds_the_user_agent() {
        let long_agent = "a".repeat(2_000);
        let mut request = axum::http::Request::builder()
            .uri("/api/public/whoami")
            .body(())
            .unwrap();
        request.extensions_mut().insert(api_gateway_context(
            &axum::http::Method::GET,
            "/api/public/whoami",
            "203.0.113.9",
            Some(&long_agent),
            "req-1",
            0,
        ));
        let (parts, ()) = request.into_parts();
        let context = ClientContext::from_parts(&parts);
        assert_eq!(context.request_id, "req-1");
        assert_eq!(context.source_ip, "203.0.113.9");
        assert_eq!(context.user_agent.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(context.user_agent.ends_with('…'));
    }

    #[test]
    fn without_a_context_the_fields_say_unknown() {
        let request = axum::http::Request::builder()
            .header("user-agent", "curl/8")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let context = ClientContext::from_parts(&parts);
        assert_eq!(context.source_ip, "unknown");
        assert_eq!(context.user_agent, "curl/8");
        assert!(context.request_id.starts_with("gen-"));
        let again = ClientContext::from_parts(&parts);
        assert_ne!(
            context.request_id, again.request_id,
            "made-up ids are unique"
        );
    }

    #[test]
    fn made_up_request_ids_are_unique_and_well_formed() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| generated_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let digits = id.strip_prefix("gen-").unwrap();
            assert_eq!(digits.len(), 16, "{id}");
            assert!(digits.bytes().all(|byte| byte.is_ascii_hexdigit()), "{id}");
        }
        assert!(request_id_with_prefix("local").starts_with("local-"));
        // The scrambling is a bijection: consecutive sequence numbers never meet.
        let scrambled: std::collections::HashSet<u64> = (0..100_000).map(scramble).collect();
        assert_eq!(scrambled.len(), 100_000);
    }

    #[test]
    fn a_key_in_the_user_agent_is_redacted() {
        let key = crate::token::generate_key().unwrap();
        let request = axum::http::Request::builder()
            .header("user-agent", format!("bot {}", key.expose_secret()))
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let context = ClientContext::from_parts(&parts);
        assert_eq!(context.user_agent, "bot tk_<redacted>");
    }

    /// A key straddling the length cut, hidden characters around it, and a byte that is not
    /// ASCII: the agent is still recorded, with no key material and nothing invisible.
    #[test]
    fn odd_user_agents_are_recorded_escaped_redacted_and_visible() {
        let key = crate::token::generate_key().unwrap();
        let key = key.expose_secret();
        let padding = "a".repeat(MAX_USER_AGENT_CHARS - 20);
        let cases: [(Vec<u8>, String); 3] = [
            (
                format!("{padding}{key}").into_bytes(),
                format!("{padding}tk_<redacted>"),
            ),
            (
                format!("Mozilla\u{E0041}\u{202E}/5.0 {}", &key[..37]).into_bytes(),
                "Mozilla/5.0 tk_<redacted>".to_owned(),
            ),
            (
                b"agent \xe9 (Windows)".to_vec(),
                "agent \\xe9 (Windows)".to_owned(),
            ),
        ];
        for (agent, expected) in cases {
            let request = axum::http::Request::builder()
                .header(
                    "user-agent",
                    axum::http::HeaderValue::from_bytes(&agent).unwrap(),
                )
                .body(())
                .unwrap();
            let (parts, ()) = request.into_parts();
            let recorded = ClientContext::from_parts(&parts).user_agent;
            assert_eq!(recorded, expected);
        }
    }
}
