//! The click-capture function (`/api/clicks/capture`): the JavaScript snippet's endpoint, usually
//! reached through the brand's CDN. The key comes as `Authorization: Bearer` or `x-api-key`; every
//! capture is audited (surface `capture`: a new click's item is its record, the guard writes the
//! others) and counted against its own per-key budget.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use trcker_shared::brand_data::{BrandDataStore, Surface};
use trcker_shared::edge::audit::AuditLog;
use trcker_shared::edge::auth::{
    CredentialHeaders, EdgeGuard, authenticate, refuse_credentials_in_url,
};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::{ForwardedClient, context_source_ip};
use trcker_shared::edge::error::ApiError;
use trcker_shared::edge::rate_limit::RateLimiter;
use trcker_shared::error::ErrorCode;
use trcker_shared::keys::KeyService;

pub mod capture;
pub mod client_ip;
pub mod config;
pub mod references;

use config::CaptureConfig;
use references::ReferenceCache;

/// The one route this function serves.
pub const CAPTURE_PATH: &str = "/api/clicks/capture";
/// The routes this function serves, as the API gateway declares them (method, path): the
/// infrastructure contract test holds the template and the local gateway to this list.
pub const ROUTES: &[(&str, &str)] = &[("POST", CAPTURE_PATH), ("OPTIONS", CAPTURE_PATH)];
/// Headers a cross-origin caller may send.
const ALLOWED_REQUEST_HEADERS: &str = "authorization, content-type, x-api-key";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

#[derive(Clone)]
pub struct CaptureState {
    pub keys: Arc<KeyService>,
    pub data: Arc<dyn BrandDataStore>,
    pub config: Arc<CaptureConfig>,
    pub references: Arc<ReferenceCache>,
    /// How long the activity record a new click holds is kept.
    pub activity_retention_days: u32,
}

/// Capture as the Lambda binary serves it: [`routes`] plus a JSON 404 for any other path.
pub fn router(
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    limits: EdgeLimits,
    config: CaptureConfig,
) -> Router {
    routes(keys, data, limits, config).fallback(not_found)
}

/// The capture route with its guard, CORS and client-address handling, without a fallback, so the
/// local gateway can merge it next to the public API.
pub fn routes(
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    limits: EdgeLimits,
    config: CaptureConfig,
) -> Router {
    let guard = Arc::new(EdgeGuard {
        keys: keys.clone(),
        audit: AuditLog::new(data.clone()),
        limiter: RateLimiter::new(data.clone(), "capture", config.rate_limit_per_minute)
            .with_leases(config.key_budget_leases),
        surface: Surface::Capture,
        credential_headers: CredentialHeaders::BearerOrApiKey,
        activity_retention_days: limits.activity_retention_days,
        source_limit_per_minute: Some(config.source_rate_limit_per_minute),
        revoked_records_per_minute: limits.revoked_key_records_per_minute,
        read_only_routes: false,
        records_in_writes: false,
    });
    let state = CaptureState {
        keys,
        data,
        config: Arc::new(config),
        references: Arc::new(ReferenceCache::new()),
        activity_retention_days: limits.activity_retention_days,
    };
    // The preflight carries no key (browsers never send credentials on it), so it is the one
    // method outside the guard. Every other method is authenticated and audited, then answered.
    let capture_route = post(capture::capture)
        .fallback(method_not_allowed)
        .layer(from_fn_with_state(guard, authenticate))
        .options(preflight.layer(from_fn(refuse_credentials_in_url)));
    Router::new()
        .route(CAPTURE_PATH, capture_route)
        .layer(DefaultBodyLimit::max(capture::MAX_BODY_BYTES))
        .layer(from_fn_with_state(state.clone(), client_and_cors))
        .with_state(state)
}

/// Before the guard: the client's address behind trusted proxies. After the handler: CORS headers
/// for allowed origins, on every answer (errors included, so the browser can read them).
async fn client_and_cors(
    State(state): State<CaptureState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if state.config.trusted_proxy_hops > 0
        && let Some(source_ip) = context_source_ip(&parts)
    {
        let client =
            client_ip::client_ip(&source_ip, &parts.headers, state.config.trusted_proxy_hops);
        parts.extensions.insert(ForwardedClient(client));
    }
    let origin = allowed_origin(&state, &parts.headers);
    let is_preflight = parts.method == Method::OPTIONS;
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(origin) = origin
        && !is_preflight
    {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

fn allowed_origin(state: &CaptureState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    state
        .config
        .allowed_origins
        .allows(text)
        .then(|| origin.clone())
}

/// `OPTIONS /api/clicks/capture`: the CORS preflight. An allowed origin gets 204 with what it may
/// send; any other origin gets 403 `origin_not_allowed`. Without an `Origin` it is a plain OPTIONS.
async fn preflight(State(state): State<CaptureState>, headers: HeaderMap) -> Response {
    // Every answer depends on Origin, so a cache in front must keep them apart.
    let vary = (header::VARY, HeaderValue::from_static("origin"));
    if headers.get(header::ORIGIN).is_none() {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ALLOW, HeaderValue::from_static("POST, OPTIONS")),
                vary,
            ],
        )
            .into_response();
    }
    let Some(origin) = allowed_origin(&state, &headers) else {
        let mut refusal = ApiError::new(
            ErrorCode::OriginNotAllowed,
            "this origin may not call capture directly: post through your own domain (see the \
             README's CDN recipes) or ask the operator to allow the origin",
        )
        .into_response();
        refusal.headers_mut().insert(vary.0, vary.1);
        return refusal;
    };
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, OPTIONS"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_REQUEST_HEADERS),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            ),
            vary,
        ],
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "capture accepts POST (and the OPTIONS preflight)",
    )
}
