//! The OpenAPI 3.1 document of the public API, generated from the handlers' `#[utoipa::path]`
//! attributes and the request and response types themselves, served at
//! `GET /api/public/openapi.json`.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use trcker_shared::program::activity::ActivityEntry;
use trcker_shared::program::clicks::Click;
use trcker_shared::program::conversions::Conversion;
use trcker_shared::program::fraud::FraudSignal;
use trcker_shared::program::offers::Offer;
use trcker_shared::program::partners::Partner;
use trcker_shared::program::pricing::PricingRule;

/// `{"error":{"code":…,"message":…}}`
#[derive(Debug, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `rate_limited`.
    pub code: String,
    pub message: String,
}

/// The errors every read can answer with, documented once.
#[derive(utoipa::IntoResponses)]
pub enum ReadErrors {
    #[response(
        status = 400,
        description = "invalid_request, invalid_cursor or credentials_in_url"
    )]
    BadRequest(ErrorResponse),
    #[response(
        status = 401,
        description = "unauthorized: missing, malformed, unknown or revoked key"
    )]
    Unauthorized(ErrorResponse),
    #[response(status = 404, description = "not_found")]
    NotFound(ErrorResponse),
    #[response(status = 405, description = "method_not_allowed")]
    MethodNotAllowed(ErrorResponse),
    #[response(status = 429, description = "rate_limited (Retry-After)")]
    RateLimited(ErrorResponse),
    #[response(status = 503, description = "store_unavailable (Retry-After)")]
    StoreUnavailable(ErrorResponse),
}

/// The errors every write can answer with: the read errors plus conflicts, size and semantics.
#[derive(utoipa::IntoResponses)]
pub enum WriteErrors {
    #[response(
        status = 400,
        description = "invalid_request, invalid_cursor or credentials_in_url"
    )]
    BadRequest(ErrorResponse),
    #[response(
        status = 401,
        description = "unauthorized: missing, malformed, unknown or revoked key"
    )]
    Unauthorized(ErrorResponse),
    #[response(status = 404, description = "not_found")]
    NotFound(ErrorResponse),
    #[response(status = 405, description = "method_not_allowed")]
    MethodNotAllowed(ErrorResponse),
    #[response(status = 409, description = "already_exists or conflict")]
    Conflict(ErrorResponse),
    #[response(status = 413, description = "payload_too_large")]
    PayloadTooLarge(ErrorResponse),
    #[response(status = 422, description = "unprocessable_entity")]
    Unprocessable(ErrorResponse),
    #[response(status = 429, description = "rate_limited (Retry-After)")]
    RateLimited(ErrorResponse),
    #[response(status = 503, description = "store_unavailable (Retry-After)")]
    StoreUnavailable(ErrorResponse),
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct Health {
    pub status: &'static str,
}

macro_rules! list_schema {
    ($name:ident, $item:ty) => {
        /// One page: `data`, and the cursor of the next page (`null` on the last).
        #[derive(Debug, ToSchema)]
        pub struct $name {
            pub data: Vec<$item>,
            pub next_cursor: Option<String>,
        }
    };
}

list_schema!(PartnerList, Partner);
list_schema!(OfferList, Offer);
list_schema!(PricingRuleList, PricingRule);
list_schema!(ClickList, Click);
list_schema!(ConversionList, Conversion);
list_schema!(FraudSignalList, FraudSignal);
list_schema!(ActivityList, ActivityEntry);

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tk_ + 40 alphanumerics")
                    .description(Some("The brand API key: `Authorization: Bearer tk_…`"))
                    .build(),
            ),
        );
    }
}

/// Every list's `limit` query parameter as the code enforces it: an integer from 1 to 100.
struct PageLimits;

impl Modify for PageLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.name == "limit" {
                        parameter.schema = Some(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(1))
                                .maximum(Some(trcker_shared::keys::MAX_PAGE_LIMIT))
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Trcker public API",
        description = "Brand-scoped access to a brand's affiliate program data with its API key."
    ),
    paths(
        crate::health,
        crate::whoami,
        crate::partners::list,
        crate::partners::create,
        crate::partners::get,
        crate::partners::update,
        crate::partners::delete,
        crate::offers::list,
        crate::offers::create,
        crate::offers::get,
        crate::offers::update,
        crate::offers::archive,
        crate::pricing::resolve,
        crate::pricing::list,
        crate::pricing::create,
        crate::pricing::get,
        crate::pricing::update,
        crate::pricing::delete,
        crate::clicks::list,
        crate::clicks::get,
        crate::conversions::list,
        crate::conversions::create,
        crate::conversions::get,
        crate::conversions::update,
        crate::fraud::list,
        crate::fraud::get,
        crate::fraud::review,
        crate::activity::list,
    ),
    components(schemas(ErrorResponse, ErrorDetail)),
    modifiers(&BearerKey, &PageLimits)
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
}
