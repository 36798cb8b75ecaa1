//! The guard in front of every authenticated HTTP route: refuses keys in URLs, reads the bearer
//! (and, where allowed, `x-api-key`), verifies it, applies the per-key rate limit, and writes one
//! activity record per request (revoked-key attempts included) before the response leaves.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::AuditLog;
use super::context::ClientContext;
use super::error::ApiError;
use super::rate_limit::{RateDecision, RateLimiter};
use crate::brand_data::{ActivityRecord, Surface};
use crate::credentials::{CredentialsError, presented_token};
use crate::error::ErrorCode;
use crate::keys::{KeyService, Principal, Rejection};

/// Query parameter names that look like someone put a credential in the URL.
const CREDENTIAL_PARAMETERS: [&str; 6] = [
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "x-api-key",
];
const MAX_AUDITED_TARGET_CHARS: usize = 512;

/// Which headers may carry the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialHeaders {
    /// `Authorization: Bearer` only (public API, MCP); an `x-api-key` sent beside it must carry
    /// the same key, or the request is refused as conflicting.
    BearerOnly,
    /// `Authorization: Bearer` or `x-api-key` (capture, behind CDNs that strip Authorization).
    BearerOrApiKey,
}

pub struct EdgeGuard {
    pub keys: Arc<KeyService>,
    pub audit: AuditLog,
    pub limiter: RateLimiter,
    pub surface: Surface,
    pub credential_headers: CredentialHeaders,
    pub activity_retention_days: u32,
}

/// The authenticated caller, put in the request's extensions by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub context: ClientContext,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("a guarded route ran without the guard");
            ApiError::new(ErrorCode::Internal, "internal error")
        })
    }
}

/// A handler may name what it did (e.g. the MCP tool) for the audit record instead of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget(pub String);

/// The axum middleware: `middleware::from_fn_with_state(guard, authenticate)`.
pub async fn authenticate(
    State(guard): State<Arc<EdgeGuard>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let context = ClientContext::from_parts(&parts);

    if let Some(refusal) = credentials_in_url(parts.uri.query()) {
        log_refusal(&context, &parts, "credentials in URL", None);
        return refusal.into_response();
    }
    let authorization = parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes());
    let api_key = parts.headers.get("x-api-key").map(|v| v.as_bytes());
    let api_key = match guard.credential_headers {
        // `x-api-key` alone is no credential here, but next to a bearer it must name the same
        // key: two different keys in one request are refused on every surface, never guessed
        // between.
        CredentialHeaders::BearerOnly => api_key.filter(|_| authorization.is_some()),
        CredentialHeaders::BearerOrApiKey => api_key,
    };
    let token = match presented_token(authorization, api_key) {
        Ok(token) => token,
        Err(error) => {
            log_refusal(&context, &parts, credentials_reason(error), None);
            return credentials_error(error).into_response();
        }
    };
    let principal = match guard.keys.verify(token).await {
        Ok(principal) => principal,
        Err(Rejection::Revoked(principal)) => {
            let refusal = ApiError::new(
                ErrorCode::Unauthorized,
                Rejection::Revoked(principal.clone()).message(),
            );
            guard
                .audit
                .record(&guard.activity(&principal, &context, &parts, 401, started, "revoked_key"))
                .await;
            return refusal.into_response();
        }
        Err(rejection @ Rejection::StoreUnavailable(_)) => {
            return ApiError::new(rejection.code(), rejection.message()).into_response();
        }
        Err(rejection) => {
            let fingerprint = match &rejection {
                Rejection::UnknownKey { fingerprint } => Some(fingerprint.to_string()),
                _ => Some(guard.keys.fingerprint_of(token).to_string()),
            };
            log_refusal(&context, &parts, "unknown or malformed key", fingerprint);
            return ApiError::new(rejection.code(), rejection.message()).into_response();
        }
    };

    let decision = guard.limiter.check(&principal, guard.keys.now_ms()).await;
    if let Some(decision) = decision.filter(|decision| !decision.allowed) {
        let mut response = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "rate limit of {} requests per minute exceeded; retry in {} s",
                decision.limit, decision.reset_seconds
            ),
        )
        .with_retry_after(decision.reset_seconds)
        .into_response();
        decision.write_headers(response.headers_mut());
        guard
            .audit
            .record(&guard.activity(&principal, &context, &parts, 429, started, "rate_limited"))
            .await;
        return response;
    }

    parts.extensions.insert(Caller {
        principal: principal.clone(),
        context: context.clone(),
    });
    let audit_parts = AuditedRequest::of(&parts);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(decision) = decision {
        RateDecision::write_headers(&decision, response.headers_mut());
    }
    let target = response
        .extensions()
        .get::<AuditTarget>()
        .map(|target| target.0.clone())
        .unwrap_or(audit_parts.path);
    let record = guard.build_record(
        &principal,
        &context,
        audit_parts.method,
        target,
        response.status().as_u16(),
        started,
        "ok",
    );
    guard.audit.record(&record).await;
    response
}

struct AuditedRequest {
    method: String,
    path: String,
}

impl AuditedRequest {
    fn of(parts: &Parts) -> Self {
        Self {
            method: parts.method.to_string(),
            path: audited_path(parts),
        }
    }
}

impl EdgeGuard {
    fn activity(
        &self,
        principal: &Principal,
        context: &ClientContext,
        parts: &Parts,
        status: u16,
        started: Instant,
        outcome: &str,
    ) -> ActivityRecord {
        let request = AuditedRequest::of(parts);
        self.build_record(
            principal,
            context,
            request.method,
            request.path,
            status,
            started,
            outcome,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build_record(
        &self,
        principal: &Principal,
        context: &ClientContext,
        method: String,
        target: String,
        status: u16,
        started: Instant,
        outcome: &str,
    ) -> ActivityRecord {
        let at = self.keys.now_ms();
        ActivityRecord {
            brand_id: principal.brand_id.clone(),
            at,
            request_id: context.request_id.clone(),
            surface: self.surface,
            method,
            target,
            status,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            key_id: principal.key_id.to_string(),
            fingerprint: principal.fingerprint.to_string(),
            source_ip: context.source_ip.clone(),
            user_agent: context.user_agent.clone(),
            outcome: outcome.to_owned(),
            expires_at: at / 1000 + i64::from(self.activity_retention_days) * 86_400,
        }
    }
}

/// The path as it may be stored and logged: bounded, and with anything key-shaped redacted (a key
/// pasted into a path must not land in the audit trail).
fn audited_path(parts: &Parts) -> String {
    let path = parts.uri.path();
    let bounded = match path.char_indices().nth(MAX_AUDITED_TARGET_CHARS) {
        Some((cut, _)) => &path[..cut],
        None => path,
    };
    crate::token::redact_key_shaped(bounded).into_owned()
}

/// The credentials-in-URL refusal alone, for routes outside the guard (health, the OpenAPI
/// document, capture's preflight): a key in a URL is refused on every route, with or without auth.
pub async fn refuse_credentials_in_url(request: Request, next: Next) -> Response {
    match credentials_in_url(request.uri().query()) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// A key (or a credential-named parameter) in the query string is refused: URLs end up in logs,
/// histories and referrers.
fn credentials_in_url(query: Option<&str>) -> Option<ApiError> {
    // Decoded exactly as the handlers decode their parameters (form-urlencoded, as axum's
    // `Query`); names and values with nothing to decode are borrowed, not copied.
    let suspicious = form_urlencoded::parse(query?.as_bytes()).any(|(name, value)| {
        CREDENTIAL_PARAMETERS
            .iter()
            .any(|parameter| name.eq_ignore_ascii_case(parameter))
            || is_key_shaped(&name)
            || is_key_shaped(&value)
    });
    suspicious.then(|| {
        ApiError::new(
            ErrorCode::CredentialsInUrl,
            "API keys are never accepted in the URL: send `Authorization: Bearer tk_…`, and \
             treat a key that was put in a URL as leaked",
        )
    })
}

/// Whether redaction would change the text, i.e. it holds something shaped like a key.
fn is_key_shaped(text: &str) -> bool {
    crate::token::redact_key_shaped(text) != text
}

fn credentials_reason(error: CredentialsError) -> &'static str {
    match error {
        CredentialsError::Missing => "no credentials",
        CredentialsError::UnsupportedScheme => "unsupported authorization scheme",
        CredentialsError::EmptyToken => "empty bearer token",
        CredentialsError::NotText => "credentials are not text",
        CredentialsError::Conflicting => "conflicting credentials",
    }
}

fn credentials_error(error: CredentialsError) -> ApiError {
    let code = match error {
        CredentialsError::Conflicting => ErrorCode::ConflictingCredentials,
        _ => ErrorCode::Unauthorized,
    };
    ApiError::new(code, error.to_string())
}

/// Refusals without a brand go to the structured logs: never the token, only its fingerprint.
fn log_refusal(context: &ClientContext, parts: &Parts, reason: &str, fingerprint: Option<String>) {
    tracing::warn!(
        reason,
        fingerprint = fingerprint.as_deref().unwrap_or("none"),
        source_ip = %context.source_ip,
        user_agent = %context.user_agent,
        request_id = %context.request_id,
        method = %parts.method,
        path = %audited_path(parts),
        "request refused before authentication"
    );
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn keys_and_credential_parameters_in_urls_are_refused() {
        let key = crate::token::generate_key().unwrap();
        let key = key.expose_secret();
        for query in [
            format!("x={key}"),
            "api_key=abc".to_owned(),
            "API_KEY=1".to_owned(),
            "limit=5&token=a".to_owned(),
            format!("q=%74k_{}", &key[3..]),
            format!("{key}=1"),
            "api%5Fkey=1".to_owned(),
            "%61pi_key=1".to_owned(),
            "Access%5FToken=x".to_owned(),
            "X-Api-Key=1".to_owned(),
        ] {
            assert!(credentials_in_url(Some(&query)).is_some(), "{query}");
        }
        for query in ["limit=5&cursor=abc", "source=api", "", "tk_short=1"] {
            assert!(credentials_in_url(Some(query)).is_none(), "{query}");
        }
        assert!(credentials_in_url(None).is_none());
    }

    /// The decoding the check relies on: lenient, and borrowed when there is nothing to decode.
    #[test]
    fn percent_decoding_is_lenient() {
        let percent_decode = |text: &'static str| {
            form_urlencoded::parse(text.as_bytes())
                .next()
                .map(|(name, _)| name)
                .unwrap()
        };
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert!(matches!(percent_decode("limit"), Cow::Borrowed("limit")));
    }
}
