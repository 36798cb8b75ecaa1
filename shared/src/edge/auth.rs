//! The guard in front of every authenticated HTTP route: refuses keys in URLs, reads the bearer
//! (and, where allowed, `x-api-key`), verifies it, applies the per-key rate limit, and writes one
//! activity record per request (revoked-key attempts included) before the response leaves.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
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
use crate::program::draft::ActivityDraft;

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
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

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
    /// Requests per client address (after trusted hops) per minute, counted before the key's
    /// budget is spent (capture, where anyone can post to a brand's CDN path); `None` elsewhere.
    pub source_limit_per_minute: Option<u32>,
    /// Attempts with one revoked key recorded one by one per minute; beyond, they are refused with
    /// 429 and counted on one summary record per window.
    pub revoked_records_per_minute: u32,
    /// Every route behind this guard only reads program data (MCP), so its handler runs beside
    /// the key's rate check, as a `GET` or `HEAD` does everywhere; a refusal drops its answer.
    pub read_only_routes: bool,
    /// Writes behind this guard may carry their own activity record ([`ActivityDraft`]): the
    /// public API's updates, deletes and new conversions.
    pub records_in_writes: bool,
}

/// A summary record is rewritten for each of the first [`EXACT_SUMMARY_ATTEMPTS`] attempts beyond
/// a budget; past that, for one in every `stride` attempts, the stride being the largest power of
/// two not above the count, over 16. So a summary is exact up to 32 and less than 1/16 below the
/// true count beyond, at 16 writes per doubling of a flood, whatever its rate: a minute of 10,000
/// attempts a second costs about 270 writes, not 600,000.
const EXACT_SUMMARY_ATTEMPTS: u64 = 32;

/// The authenticated caller, put in the request's extensions by the guard (in an `Arc`, shared with
/// the guard's audit record; [`Caller::of`] reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub context: ClientContext,
}

impl Caller {
    /// The caller the guard put in a request's extensions, if it ran.
    pub fn of(extensions: &axum::http::Extensions) -> Option<&Caller> {
        extensions.get::<Arc<Caller>>().map(Arc::as_ref)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Caller::of(&parts.extensions).cloned().ok_or_else(|| {
            tracing::error!("a guarded route ran without the guard");
            ApiError::new(ErrorCode::Internal, "internal error")
        })
    }
}

/// A handler may name what it did (e.g. the MCP tool) for the audit record instead of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget(pub String);

/// On a response: the handler's own write holds this request's activity record (a new capture's
/// click item, whose record the delivery log lists from the click shards, or a write's
/// transaction: [`RecordedInWrite`]), so the guard writes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityInItem;

/// In a request's extensions behind the guard: when the guard took the request, for a handler
/// that builds the request's activity record itself (capture's click item).
#[derive(Debug, Clone, Copy)]
pub struct RequestStarted(pub Instant);

// A write's extensions behind the guard (any method but `GET` and `HEAD`, on a guard whose
// `records_in_writes` is set) hold the request's [`ActivityDraft`]: a handler whose write can
// carry its record (in the write's own transaction, durable with the write and no round trip
// after it) passes it to the operation and answers [`RecordedInWrite`].
impl<S: Send + Sync> FromRequestParts<S> for ActivityDraft {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<ActivityDraft>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!(
                    "a handler asked for an activity draft the request was not given (a read, a \
                     guard without records_in_writes, or no guard)"
                );
                ApiError::new(ErrorCode::Internal, "internal error")
            })
    }
}

/// A response whose activity record went in the handler's own write (see [`ActivityDraft`]): the
/// guard writes none for it (it carries the [`ActivityInItem`] mark).
pub struct RecordedInWrite<T>(pub T);

impl<T: IntoResponse> IntoResponse for RecordedInWrite<T> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.extensions_mut().insert(ActivityInItem);
        response
    }
}

/// The axum middleware: `middleware::from_fn_with_state(guard, authenticate)`.
pub async fn authenticate(
    State(guard): State<Arc<EdgeGuard>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let context = ClientContext::from_parts(&parts);

    if let Some(refusal) = credentials_in_url(&parts.uri) {
        log_refusal(&context, &parts, "credentials in URL", None);
        return refusal.into_response();
    }
    let (authorization, api_key) = match (
        single_value(&parts, AUTHORIZATION),
        single_value(&parts, X_API_KEY),
    ) {
        (Ok(authorization), Ok(api_key)) => (authorization, api_key),
        (Err(error), _) | (_, Err(error)) => {
            log_refusal(&context, &parts, credentials_reason(error), None);
            return credentials_error(error).into_response();
        }
    };
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
    let (principal, refresh) = match guard.keys.verify_key_for_request(token).await {
        Ok(verified) => verified,
        Err(Rejection::Revoked(principal)) => {
            return guard
                .refuse_revoked(&principal, &context, &parts, started)
                .await;
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

    // One copy of the caller, shared by the handler (through the request's extensions) and the
    // audit record: cloning its six strings per request showed up in the profile.
    let caller = Arc::new(Caller { principal, context });
    let (principal, context) = (&caller.principal, &caller.context);
    let now = guard.keys.now_ms();
    let key_budget = guard.limiter.key_budget(principal);
    // The source's budget is counted in this container alone, so it costs no store call: a
    // source gets at most its limit from each container that serves it (docs/ARCHITECTURE.md,
    // "The HTTP edge", step 5). It is asked first, so a request its source may not make takes
    // nothing from the key's budget.
    let source_refusal = guard.source_limit_per_minute.and_then(|limit| {
        let source_budget =
            guard
                .limiter
                .source_budget(&principal.brand_id, &context.source_ip, limit);
        Some(guard.limiter.count_local(&source_budget, now)).filter(|source| !source.allowed)
    });
    // The key's `last_used_at` is written beside the request's own store calls, never before
    // them (at most once per interval per key and container), and so is the re-read of a
    // cached verdict half-way through its life.
    let key_upkeep = async {
        let refresh = async {
            if let Some(refresh) = refresh {
                guard.keys.refresh(refresh).await;
            }
        };
        tokio::join!(guard.keys.note_use(principal, now), refresh);
    };
    if let Some(source) = source_refusal {
        let summary_id = format!(
            "summary-source-{}",
            super::rate_limit::source_of(&context.source_ip)
        );
        tokio::join!(
            key_upkeep,
            guard.record_summary(
                principal,
                context,
                &parts,
                started,
                &summary_id,
                &source,
                "rate_limited",
            )
        );
        return rate_limited(
            &source,
            format!(
                "too many requests from this address: the limit is {} per minute per address; \
                 retry in {} s",
                source.limit, source.reset_seconds
            ),
        );
    }
    parts.extensions.insert(caller.clone());
    parts.extensions.insert(RequestStarted(started));
    let audit_parts = AuditedRequest::of(&parts);
    let read_only = guard.read_only_routes || matches!(parts.method, Method::GET | Method::HEAD);
    // Only a write can carry its record, so only a write is given the draft of it.
    if guard.records_in_writes && !read_only {
        let record = guard.build_record(
            principal,
            context,
            audit_parts.method.clone(),
            audit_parts.path.clone(),
            0,
            started,
            "ok",
        );
        parts.extensions.insert(ActivityDraft::new(record, started));
    }
    let request = Request::from_parts(parts, body);
    let audited = Audited {
        guard: &guard,
        principal,
        context,
        request: &audit_parts,
        started,
    };
    // Most requests find a unit of the container's lease: the budget costs no round trip, and a
    // spent lease's successor is taken beside the request's own calls.
    match guard.limiter.count_key_locally(&key_budget, now) {
        Some(decision) if !decision.allowed => {
            let (_, response) = tokio::join!(key_upkeep, audited.refused(&decision));
            response
        }
        Some(decision) => {
            let (_, (), response) = tokio::join!(
                key_upkeep,
                guard.limiter.renew_leases(&key_budget, now),
                audited.answered(next.run(request), Some(decision))
            );
            response
        }
        // No unit held (a key new to this container, or a window's first request): the budget
        // needs a round trip, and the request goes beside it, its audit record too. Should the
        // budget refuse, a read is answered 429 after all (its record rewritten as the 429 it
        // became); a write has been made, so it stands: one write beyond the limit per container
        // (and request in flight) that starts a window without a unit (docs/ARCHITECTURE.md,
        // "The HTTP edge", step 5).
        None if read_only => {
            let (_, decision, (response, record)) = tokio::join!(
                key_upkeep,
                guard.limiter.count_key(&key_budget, now),
                audited.answered_with_record(next.run(request))
            );
            let Some(decision) = decision.filter(|decision| !decision.allowed) else {
                let mut response = response;
                if let Some(decision) = decision {
                    decision.write_headers(response.headers_mut());
                }
                return response;
            };
            let mut rewritten = audited.record(429, "rate_limited", None);
            // In place of the record written beside the lease: its time, request id and target
            // (an MCP tool's name) kept.
            if let Some(record) = record {
                rewritten.at = record.at;
                rewritten.target = record.target;
            }
            guard.audit.replace(&rewritten).await;
            rate_limited_response(&decision)
        }
        None => {
            let (_, decision, (mut response, _)) = tokio::join!(
                key_upkeep,
                guard.limiter.count_key(&key_budget, now),
                audited.answered_with_record(next.run(request))
            );
            if let Some(decision) = decision {
                if !decision.allowed {
                    tracing::warn!(
                        brand_id = %principal.brand_id,
                        key_id = %principal.key_id,
                        "a write made beside its key's lease is over the budget; it stands"
                    );
                }
                decision.write_headers(response.headers_mut());
            }
            response
        }
    }
}

/// One guarded request as its activity record describes it.
struct Audited<'a> {
    guard: &'a EdgeGuard,
    principal: &'a Principal,
    context: &'a ClientContext,
    request: &'a AuditedRequest,
    started: Instant,
}

impl Audited<'_> {
    fn record(&self, status: u16, outcome: &str, target: Option<String>) -> ActivityRecord {
        self.guard.build_record(
            self.principal,
            self.context,
            self.request.method.clone(),
            target.unwrap_or_else(|| self.request.path.clone()),
            status,
            self.started,
            outcome,
        )
    }

    /// The record the guard writes for this response: none when the handler's own write holds
    /// it ([`ActivityInItem`]); the handler's [`AuditTarget`] in place of the path if it named
    /// one.
    fn record_of(&self, response: &Response) -> Option<ActivityRecord> {
        if response.extensions().get::<ActivityInItem>().is_some() {
            return None;
        }
        let target = response
            .extensions()
            .get::<AuditTarget>()
            .map(|target| target.0.clone());
        Some(self.record(response.status().as_u16(), "ok", target))
    }

    /// The handler's response with the budget's headers, once its record is stored.
    async fn answered(
        &self,
        handler: impl std::future::Future<Output = Response>,
        decision: Option<RateDecision>,
    ) -> Response {
        let (mut response, _) = self.answered_with_record(handler).await;
        if let Some(decision) = decision {
            decision.write_headers(response.headers_mut());
        }
        response
    }

    /// The handler's response once its record is stored, and the record (none when the
    /// handler's own write held it).
    async fn answered_with_record(
        &self,
        handler: impl std::future::Future<Output = Response>,
    ) -> (Response, Option<ActivityRecord>) {
        let response = handler.await;
        let record = self.record_of(&response);
        if let Some(record) = &record {
            self.guard.audit.record(record).await;
        }
        (response, record)
    }

    /// The 429 for a request over its key's budget, recorded.
    async fn refused(&self, decision: &RateDecision) -> Response {
        let response = rate_limited_response(decision);
        self.guard
            .audit
            .record(&self.record(429, "rate_limited", None))
            .await;
        response
    }
}

/// The 429 of a request over its key's budget.
fn rate_limited_response(decision: &RateDecision) -> Response {
    rate_limited(
        decision,
        format!(
            "rate limit of {} requests per minute exceeded; retry in {} s",
            decision.limit, decision.reset_seconds
        ),
    )
}

/// Whether the attempt numbered `over` beyond its budget updates the window's summary.
fn updates_summary(over: u64) -> bool {
    match over {
        0 => false,
        1..=EXACT_SUMMARY_ATTEMPTS => true,
        _ => over.is_multiple_of((1u64 << over.ilog2()) / 16),
    }
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

/// A 429 with `Retry-After` and the budget's rate-limit headers.
fn rate_limited(decision: &RateDecision, message: String) -> Response {
    let mut response = ApiError::new(ErrorCode::RateLimited, message)
        .with_retry_after(decision.reset_seconds)
        .into_response();
    decision.write_headers(response.headers_mut());
    response
}

impl EdgeGuard {
    /// A revoked key is refused with 401 and recorded (the leak audit), up to its own budget of
    /// records per minute; beyond it, with 429, and counted on the window's one summary record.
    async fn refuse_revoked(
        &self,
        principal: &Principal,
        context: &ClientContext,
        parts: &Parts,
        started: Instant,
    ) -> Response {
        let budget = self
            .limiter
            .revoked_budget(principal, self.revoked_records_per_minute);
        let decision = self.limiter.count(&budget, self.keys.now_ms()).await;
        let message = Rejection::Revoked(principal.clone()).message();
        if let Some(decision) = decision.filter(|decision| !decision.allowed) {
            let summary_id = format!("summary-revoked-{}", principal.key_id);
            self.record_summary(
                principal,
                context,
                parts,
                started,
                &summary_id,
                &decision,
                "revoked_key",
            )
            .await;
            return rate_limited(
                &decision,
                format!(
                    "{message}; it was tried more than {} times this minute: retry in {} s, or \
                     better, replace it",
                    decision.limit, decision.reset_seconds
                ),
            );
        }
        self.audit
            .record(&self.activity(principal, context, parts, 401, started, "revoked_key"))
            .await;
        ApiError::new(ErrorCode::Unauthorized, message).into_response()
    }

    /// Updates the window's summary for an attempt refused beyond `decision`'s budget, when this
    /// attempt is one the summary stands for (see [`EXACT_SUMMARY_ATTEMPTS`]).
    #[allow(clippy::too_many_arguments)]
    async fn record_summary(
        &self,
        principal: &Principal,
        context: &ClientContext,
        parts: &Parts,
        started: Instant,
        summary_id: &str,
        decision: &RateDecision,
        outcome: &str,
    ) {
        let over = decision.count.saturating_sub(u64::from(decision.limit));
        if !updates_summary(over) {
            return;
        }
        let mut record = self.activity(principal, context, parts, 429, started, outcome);
        record.at = decision.window_start;
        record.request_id = summary_id.to_owned();
        record.attempts = Some(over);
        self.audit.record_summary(&record).await;
    }

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
            attempts: None,
            expires_at: at / 1000 + i64::from(self.activity_retention_days) * 86_400,
            click_id: None,
        }
    }
}

/// The path as it may be stored and logged: key material redacted (percent-encoded or not), then
/// bounded. Requests with a key in the path are refused, but the refusal itself is logged.
fn audited_path(parts: &Parts) -> String {
    crate::caller_text::for_record(parts.uri.path(), MAX_AUDITED_TARGET_CHARS)
}

/// The credentials-in-URL refusal alone, for routes outside the guard (health, the OpenAPI
/// document, capture's preflight): a key in a URL is refused on every route, with or without auth.
pub async fn refuse_credentials_in_url(request: Request, next: Next) -> Response {
    match credentials_in_url(request.uri()) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// A key in the path or the query string, or a credential-named parameter, is refused: URLs end up
/// in logs, histories and referrers.
fn credentials_in_url(uri: &Uri) -> Option<ApiError> {
    // The path is read through its percent-encoding (`/%74k_…`), as a router would decode it.
    let in_path = is_key_shaped(uri.path());
    // Decoded exactly as the handlers decode their parameters (form-urlencoded, as axum's
    // `Query`); names and values with nothing to decode are borrowed, not copied.
    let in_query = || {
        let Some(query) = uri.query() else {
            return false;
        };
        form_urlencoded::parse(query.as_bytes()).any(|(name, value)| {
            CREDENTIAL_PARAMETERS
                .iter()
                .any(|parameter| name.eq_ignore_ascii_case(parameter))
                || is_key_shaped(&name)
                || is_key_shaped(&value)
        })
    };
    (in_path || in_query()).then(|| {
        ApiError::new(
            ErrorCode::CredentialsInUrl,
            "API keys are never accepted in the URL: send `Authorization: Bearer tk_…`, and \
             treat a key that was put in a URL as leaked",
        )
    })
}

/// Whether the text holds key material, in any spelling redaction recognises.
fn is_key_shaped(text: &str) -> bool {
    crate::caller_text::contains_key_material(text)
}

/// The one value of a credential header, if sent. Two values (two headers, or one joined list as
/// some proxies forward them) are refused: which one to believe is not the edge's guess to make.
fn single_value(parts: &Parts, name: HeaderName) -> Result<Option<&[u8]>, CredentialsError> {
    let mut values = parts.headers.get_all(&name).iter();
    let first = values.next().map(HeaderValue::as_bytes);
    if values.next().is_some() {
        return Err(CredentialsError::Repeated);
    }
    Ok(first)
}

fn credentials_reason(error: CredentialsError) -> &'static str {
    match error {
        CredentialsError::Missing => "no credentials",
        CredentialsError::UnsupportedScheme => "unsupported authorization scheme",
        CredentialsError::EmptyToken => "empty bearer token",
        CredentialsError::NotText => "credentials are not text",
        CredentialsError::Conflicting => "conflicting credentials",
        CredentialsError::Repeated => "repeated credential header",
    }
}

fn credentials_error(error: CredentialsError) -> ApiError {
    let code = match error {
        CredentialsError::Conflicting | CredentialsError::Repeated => {
            ErrorCode::ConflictingCredentials
        }
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
            assert!(
                credentials_in_url(&uri(&format!("/p?{query}"))).is_some(),
                "{query}"
            );
        }
        for query in ["limit=5&cursor=abc", "source=api", "", "tk_short=1"] {
            assert!(
                credentials_in_url(&uri(&format!("/p?{query}"))).is_none(),
                "{query}"
            );
        }
        assert!(credentials_in_url(&uri("/api/public/partners")).is_none());
    }

    #[test]
    fn keys_in_paths_are_refused_in_every_spelling() {
        let key = crate::token::generate_key().unwrap();
        let key = key.expose_secret();
        for path in [
            format!("/api/public/partners/{key}"),
            format!("/api/public/{key}/x"),
            format!("/api/public/partners/%74k_{}", &key[3..]),
            format!("/api/public/partners/tk%5f{}", &key[3..]),
            format!("/api/public/partners/{}", &key[..30]),
            format!("/api/mcp/x{key}y"),
        ] {
            assert!(credentials_in_url(&uri(&path)).is_some(), "{path}");
        }
        for path in [
            "/api/public/partners/prt_01HZX",
            "/api/public/tk_short",
            "/%zz",
        ] {
            assert!(credentials_in_url(&uri(path)).is_none(), "{path}");
        }
    }

    #[test]
    fn summaries_are_exact_then_within_a_sixteenth_at_sixteen_writes_per_doubling() {
        let writes = |up_to: u64| (1..=up_to).filter(|&over| updates_summary(over)).count();
        assert!(!updates_summary(0));
        assert_eq!(writes(EXACT_SUMMARY_ATTEMPTS), 32);
        assert_eq!(writes(64), 32 + 16);
        assert_eq!(writes(1 << 20), 32 + 16 * 15);
        // The latest count written is never more than a sixteenth behind the true one.
        let mut latest = 0;
        for over in 1..=100_000u64 {
            if updates_summary(over) {
                latest = over;
            }
            assert!(over - latest < over.div_ceil(16).max(1), "{over}: {latest}");
        }
    }

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
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
