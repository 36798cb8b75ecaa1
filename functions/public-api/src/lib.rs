//! The public REST API (`/api/public/*`): brand-scoped access to a brand's program data with its
//! API key. Every route runs behind the shared guard (bearer auth, rate limit, audit) and only
//! ever sees the caller's own brand.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use trcker_shared::brand_data::{BrandDataStore, Surface};
use trcker_shared::edge::audit::AuditLog;
use trcker_shared::edge::auth::{
    Caller, CredentialHeaders, EdgeGuard, authenticate, refuse_credentials_in_url,
};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::error::ApiError;
use trcker_shared::edge::rate_limit::RateLimiter;
use trcker_shared::error::ErrorCode;
use trcker_shared::keys::KeyService;
use trcker_shared::program::Program;
use trcker_shared::program::whoami::Whoami;

pub mod activity;
pub mod clicks;
pub mod conversions;
pub mod examples;
pub mod extract;
pub mod fraud;
pub mod offers;
pub mod openapi;
pub mod partners;
pub mod pricing;
pub mod responses;

pub const ROUTE_PREFIX: &str = "/api/public";
/// The routes this function serves, as the API gateway declares them (method, path): the
/// infrastructure contract test holds the template and the local gateway to this list.
pub const ROUTES: &[(&str, &str)] = &[("ANY", "/api/public/{proxy+}")];

/// What handlers share: the program's domain (key service, brand data store, its one tunable).
pub type AppState = Program;

/// The public API as one axum router: the Lambda binary serves it through `lambda_http`, the local
/// gateway mounts it as is.
pub fn router(keys: Arc<KeyService>, data: Arc<dyn BrandDataStore>, limits: EdgeLimits) -> Router {
    let guard = Arc::new(EdgeGuard {
        keys: keys.clone(),
        audit: AuditLog::new(data.clone()),
        limiter: RateLimiter::new(data.clone(), "rate", limits.rate_limit_per_minute)
            .with_leases(limits.key_budget_leases),
        surface: Surface::Api,
        credential_headers: CredentialHeaders::BearerOnly,
        activity_retention_days: limits.activity_retention_days,
        source_limit_per_minute: None,
        revoked_records_per_minute: limits.revoked_key_records_per_minute,
        read_only_routes: false,
        records_in_writes: true,
    });
    let state = Program {
        keys,
        data,
        min_click_to_conversion_ms: limits.min_click_to_conversion_ms,
        activity_retention_days: limits.activity_retention_days,
    };
    let guarded = Router::new()
        .route("/api/public/whoami", get(whoami))
        .route(
            "/api/public/partners",
            get(partners::list).post(partners::create),
        )
        .route(
            "/api/public/partners/{id}",
            get(partners::get)
                .patch(partners::update)
                .delete(partners::delete),
        )
        .route("/api/public/offers", get(offers::list).post(offers::create))
        .route(
            "/api/public/offers/{id}",
            get(offers::get).patch(offers::update),
        )
        .route("/api/public/offers/{id}/archive", post(offers::archive))
        .route("/api/public/offers/{id}/payout", get(pricing::resolve))
        .route(
            "/api/public/pricing-rules",
            get(pricing::list).post(pricing::create),
        )
        .route(
            "/api/public/pricing-rules/{id}",
            get(pricing::get)
                .patch(pricing::update)
                .delete(pricing::delete),
        )
        .route("/api/public/activity", get(activity::list))
        .route("/api/public/clicks", get(clicks::list))
        .route("/api/public/clicks/{id}", get(clicks::get))
        .route(
            "/api/public/conversions",
            get(conversions::list).post(conversions::create),
        )
        .route(
            "/api/public/conversions/{id}",
            get(conversions::get).patch(conversions::update),
        )
        .route("/api/public/fraud-signals", get(fraud::list))
        .route(
            "/api/public/fraud-signals/{id}",
            get(fraud::get).patch(fraud::review),
        )
        // After routing (so the matched path is known) and after the guard.
        .route_layer(from_fn(refuse_undeclared_query))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // `layer`, not `route_layer`: unknown paths and wrong methods are authenticated and
        // audited like every other request.
        .layer(from_fn_with_state(guard, authenticate))
        .with_state(state);
    let unguarded = Router::new()
        .route("/api/public/health", get(health))
        .route(
            "/api/public/openapi.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    document_json(),
                )
            }),
        )
        .route_layer(from_fn(refuse_credentials_in_url))
        .method_not_allowed_fallback(method_not_allowed);
    unguarded
        .merge(guarded)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
}

/// Unauthenticated liveness check (also the load-test baseline).
#[utoipa::path(
    get,
    path = "/api/public/health",
    tag = "meta",
    operation_id = "getHealth",
    summary = "Liveness; no key needed",
    description = "Answers `{\"status\":\"ok\"}` while the function is up. Needs no key, \
        reads no store and is not rate-limited or recorded in the activity log.",
    responses(
        (status = 200, description = "Up", body = responses::Health,
            example = crate::examples::health)
    )
)]
pub async fn health() -> Json<responses::Health> {
    Json(responses::Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/api/public/whoami",
    tag = "meta",
    operation_id = "getWhoami",
    summary = "The calling key's brand, id and fingerprint",
    description = "Which brand and key the bearer key is: `brand_id`, `key_id` and the key's \
        public `fingerprint` (never the key itself). A quick way to check a key: a missing, \
        malformed, unknown or revoked key is `401 unauthorized`.",
    responses(
        (status = 200, description = "The calling key", body = Whoami,
            example = crate::examples::whoami),
        responses::ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(Whoami::from(&caller.principal))
}

/// The OpenAPI document as served, serialized on its first request, not at init: building it
/// costs milliseconds of a cold start (BENCHMARKS.md, "Memory and CPU share, and init against a
/// networked baseline"), and most containers never serve it.
static DOCUMENT_JSON: OnceLock<Bytes> = OnceLock::new();

fn document_json() -> Bytes {
    DOCUMENT_JSON
        .get_or_init(|| Bytes::from(serde_json::to_vec(&openapi::document()).unwrap_or_default()))
        .clone()
}

/// The operations that declare no query parameter (every one but the lists and the payout
/// resolver), by the path template the router matches: written out rather than read from the
/// document at init, for the same cold-start reason, and held to the document by a test
/// (`tests::the_operations_without_a_query_are_those_the_document_declares`).
const TAKES_NO_QUERY: [(&str, Method); 20] = [
    ("/api/public/whoami", Method::GET),
    ("/api/public/partners", Method::POST),
    ("/api/public/partners/{id}", Method::GET),
    ("/api/public/partners/{id}", Method::PATCH),
    ("/api/public/partners/{id}", Method::DELETE),
    ("/api/public/offers", Method::POST),
    ("/api/public/offers/{id}", Method::GET),
    ("/api/public/offers/{id}", Method::PATCH),
    ("/api/public/offers/{id}/archive", Method::POST),
    ("/api/public/pricing-rules", Method::POST),
    ("/api/public/pricing-rules/{id}", Method::GET),
    ("/api/public/pricing-rules/{id}", Method::PATCH),
    ("/api/public/pricing-rules/{id}", Method::DELETE),
    ("/api/public/clicks/{id}", Method::GET),
    ("/api/public/conversions", Method::POST),
    ("/api/public/conversions/{id}", Method::GET),
    ("/api/public/conversions/{id}", Method::PATCH),
    ("/api/public/fraud-signals/{id}", Method::GET),
    ("/api/public/fraud-signals/{id}", Method::PATCH),
    ("/api/public/health", Method::GET),
];

fn takes_no_query(path: &str, method: &Method) -> bool {
    TAKES_NO_QUERY
        .iter()
        .any(|(template, declared)| *template == path && declared == method)
}

/// Unknown query parameters are refused on every route, like unknown body fields: the lists and
/// the payout resolver check their own; this refuses any query parameter on an operation that
/// declares none (a typo such as `?dry_run=1` on a write must not be silently ignored).
async fn refuse_undeclared_query(request: Request, next: Next) -> Response {
    let has_query = request.uri().query().is_some_and(|query| !query.is_empty());
    let takes_none = has_query
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|path| takes_no_query(path.as_str(), request.method()));
    if takes_none {
        return ApiError::invalid("this route takes no query parameters").into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not support that method",
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_operations_without_a_query_are_those_the_document_declares() {
        let document = serde_json::to_value(openapi::document()).unwrap();
        let mut declared = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let declares_query = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|parameter| parameter["in"] == "query");
                if !declares_query {
                    declared.insert((path.clone(), method.to_ascii_uppercase()));
                }
            }
        }
        let written: BTreeSet<_> = TAKES_NO_QUERY
            .iter()
            .map(|(path, method)| (path.to_string(), method.to_string()))
            .collect();
        assert_eq!(written, declared);
    }

    #[test]
    fn the_served_document_is_the_document() {
        let served: serde_json::Value = serde_json::from_slice(&document_json()).unwrap();
        assert_eq!(served, serde_json::to_value(openapi::document()).unwrap());
    }
}
