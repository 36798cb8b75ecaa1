//! The public REST API (`/api/public/*`): brand-scoped access to a brand's program data with its
//! API key. Every route runs behind the shared guard (bearer auth, rate limit, audit) and only
//! ever sees the caller's own brand.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request, State};
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
    let document = prepare();
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
        .route_layer(from_fn_with_state(
            document.takes_no_query.clone(),
            refuse_undeclared_query,
        ))
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
                    prepare().json.clone(),
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
    summary = "Liveness; no key needed",
    responses((status = 200, description = "Up", body = responses::Health))
)]
pub async fn health() -> Json<responses::Health> {
    Json(responses::Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/api/public/whoami",
    tag = "meta",
    summary = "The calling key's brand, id and fingerprint",
    responses(
        (status = 200, description = "The calling key", body = Whoami),
        responses::ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(Whoami::from(&caller.principal))
}

/// The OpenAPI document as served, and what the router reads from it: the same for every router
/// in the process, so built once ([`prepare`]).
struct PreparedDocument {
    /// The document, serialized once.
    json: Bytes,
    takes_no_query: Arc<TakesNoQuery>,
}

static PREPARED_DOCUMENT: OnceLock<PreparedDocument> = OnceLock::new();

/// Builds the OpenAPI document and what the router derives from it, once per process: every
/// router shares them, and `/openapi.json` answers with the bytes serialized here.
fn prepare() -> &'static PreparedDocument {
    PREPARED_DOCUMENT.get_or_init(|| {
        let document = openapi::document();
        PreparedDocument {
            // Serialized from the document itself, so its fields keep their order (`openapi`
            // first); the query check reads the same document as a JSON value.
            json: Bytes::from(serde_json::to_vec(&document).unwrap_or_default()),
            takes_no_query: Arc::new(TakesNoQuery::declared_in(
                &serde_json::to_value(&document).unwrap_or_default(),
            )),
        }
    })
}

/// The operations of the OpenAPI document that declare no query parameter: per path template
/// (`/api/public/partners/{id}`, as the router matches it), their methods.
struct TakesNoQuery(HashMap<String, Vec<Method>>);

impl TakesNoQuery {
    fn declared_in(document: &serde_json::Value) -> Self {
        let mut operations: HashMap<String, Vec<Method>> = HashMap::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                    continue;
                };
                let declares_query = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|parameter| parameter["in"] == "query");
                if !declares_query {
                    operations.entry(path.clone()).or_default().push(method);
                }
            }
        }
        Self(operations)
    }
}

/// Unknown query parameters are refused on every route, like unknown body fields: the lists and
/// the payout resolver check their own; this refuses any query parameter on an operation that
/// declares none (a typo such as `?dry_run=1` on a write must not be silently ignored).
async fn refuse_undeclared_query(
    State(takes_no_query): State<Arc<TakesNoQuery>>,
    request: Request,
    next: Next,
) -> Response {
    let has_query = request.uri().query().is_some_and(|query| !query.is_empty());
    let takes_none = has_query
        && request
            .extensions()
            .get::<MatchedPath>()
            .and_then(|path| takes_no_query.0.get(path.as_str()))
            .is_some_and(|methods| methods.contains(request.method()));
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
