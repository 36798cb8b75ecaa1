//! The response and error shapes the public API documents: the error envelope, the errors each
//! kind of operation can answer with, health, and one page type per listing. Handlers name them
//! in their `#[utoipa::path]` attributes; the OpenAPI document gathers them.

use serde::Serialize;
use utoipa::ToSchema;

use trcker_shared::program::activity::ActivityEntry;
use trcker_shared::program::clicks::Click;
use trcker_shared::program::conversions::Conversion;
use trcker_shared::program::fraud::FraudSignal;
use trcker_shared::program::offers::Offer;
use trcker_shared::program::partners::Partner;
use trcker_shared::program::pricing::PricingRule;

/// `{"error":{"code":…,"message":…}}`
#[derive(Debug, ToSchema)]
#[schema(example = crate::examples::error)]
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
