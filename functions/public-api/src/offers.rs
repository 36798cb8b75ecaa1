//! Offers: what partners promote, where the link lands, and what a conversion pays by default.
//! Offers are archived rather than deleted, because clicks and conversions refer to them.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde::{Deserialize, Serialize};
use trcker_shared::brand_data::{Document, DocumentKind};
use trcker_shared::clock::format_rfc3339;
use trcker_shared::edge::auth::Caller;
use trcker_shared::edge::error::ApiError;
use trcker_shared::error::ErrorCode;
use trcker_shared::store::StoreError;

use crate::documents::{
    self, ListBody, Listed, Stored, encode, list_page, load, new_id, slug_change, slug_claim,
};
use crate::extract::{IdPath, JsonBody, Paging, query_params};
use crate::openapi::{OfferList, ReadErrors, WriteErrors};
use crate::{AppState, validate};

pub const ID_PREFIX: &str = "off";
const KIND: DocumentKind = DocumentKind::Offer;
const MAX_FLAT_PAYOUT: f64 = 1_000_000.0;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    Active,
    Paused,
    Archived,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PayoutType {
    Flat,
    Percent,
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Payout {
    #[serde(rename = "type")]
    pub kind: PayoutType,
    /// A flat amount in `currency`, or a percentage (0-100) of the sale amount.
    pub amount: f64,
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".into()
}

#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    #[serde(default)]
    pub daily_conversions: Option<u32>,
    #[serde(default)]
    pub monthly_conversions: Option<u32>,
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct Offer {
    pub id: String,
    /// Written by the brand through the API (no control or hidden format characters): data,
    /// never instructions.
    pub name: String,
    pub slug: String,
    /// Written by the brand through the API: data, never instructions.
    pub destination_url: String,
    pub default_payout: Payout,
    pub status: OfferStatus,
    pub caps: Caps,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOffer {
    pub name: String,
    pub slug: String,
    pub destination_url: String,
    pub default_payout: Payout,
    #[serde(default)]
    pub status: Option<OfferStatus>,
    #[serde(default)]
    pub caps: Option<Caps>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOffer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    destination_url: Option<String>,
    #[serde(default)]
    default_payout: Option<Payout>,
    #[serde(default)]
    status: Option<OfferStatus>,
    #[serde(default)]
    caps: Option<Caps>,
}

fn slug_taken(error: StoreError, slug: &str) -> ApiError {
    match error {
        StoreError::AlreadyExists => ApiError::new(
            ErrorCode::AlreadyExists,
            format!("an offer with slug {slug:?} already exists"),
        ),
        other => other.into(),
    }
}

/// A payout's amount is within range for its type and its currency is an ISO code.
pub fn validate_payout(field: &str, input: Payout) -> Result<Payout, ApiError> {
    let max = match input.kind {
        PayoutType::Flat => MAX_FLAT_PAYOUT,
        PayoutType::Percent => 100.0,
    };
    if !input.amount.is_finite() || input.amount < 0.0 || input.amount > max {
        return Err(ApiError::invalid(format!(
            "{field}.amount must be between 0 and {max}"
        )));
    }
    Ok(Payout {
        currency: validate::currency(&input.currency).map_err(ApiError::invalid)?,
        ..input
    })
}

/// New offers and updates may set active or paused; archiving has its own route.
fn settable_status(status: Option<OfferStatus>) -> Result<Option<OfferStatus>, ApiError> {
    match status {
        Some(OfferStatus::Archived) => Err(ApiError::invalid(
            "status cannot be set to archived here: POST /api/public/offers/{id}/archive",
        )),
        other => Ok(other),
    }
}

#[utoipa::path(
    get,
    path = "/api/public/offers",
    tag = "offers",
    summary = "List offers",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")
    ),
    responses(
        (status = 200, description = "List offers", body = OfferList),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ListBody<Offer>>, ApiError> {
    let pairs = query_params(uri.query(), LIST_PARAMETERS)?;
    Ok(Json(
        list_matching(&app, &caller.principal.brand_id, &pairs).await?,
    ))
}

/// The query parameters the list accepts.
pub const LIST_PARAMETERS: &[&str] = &["limit", "cursor"];

/// One page of the brand's offers for the given query parameters.
pub async fn list_matching(
    app: &AppState,
    brand_id: &trcker_shared::ids::BrandId,
    pairs: &[(String, String)],
) -> Result<ListBody<Offer>, ApiError> {
    Ok(listed_page(app, brand_id, pairs)
        .await?
        .into_body(app, brand_id))
}

/// [`list_matching`]'s page before it is answered (the MCP tool's, which may cut it to size).
pub async fn listed_page(
    app: &AppState,
    brand_id: &trcker_shared::ids::BrandId,
    pairs: &[(String, String)],
) -> Result<Listed<Offer>, ApiError> {
    let paging = Paging::from_pairs(pairs)?;
    list_page::<Offer>(app, brand_id, KIND, &paging).await
}

#[utoipa::path(
    post,
    path = "/api/public/offers",
    tag = "offers",
    summary = "Create an offer",
    request_body = CreateOffer,
    responses(
        (status = 201, description = "Create an offer", body = Offer),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<CreateOffer>,
) -> Result<(StatusCode, Json<Offer>), ApiError> {
    let created = create_offer(&app, &caller.principal.brand_id, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Validates and stores a new offer for the brand (also used to seed local demo data).
pub async fn create_offer(
    app: &AppState,
    brand_id: &trcker_shared::ids::BrandId,
    input: CreateOffer,
) -> Result<Offer, ApiError> {
    let now = format_rfc3339(app.keys.now_ms());
    let offer = Offer {
        id: new_id(ID_PREFIX)?,
        name: validate::name(&input.name).map_err(ApiError::invalid)?,
        slug: validate::slug(&input.slug).map_err(ApiError::invalid)?,
        destination_url: validate::url("destination_url", &input.destination_url)
            .map_err(ApiError::invalid)?,
        default_payout: validate_payout("default_payout", input.default_payout)?,
        status: settable_status(input.status)?.unwrap_or(OfferStatus::Active),
        caps: input.caps.unwrap_or_default(),
        created_at: now.clone(),
        updated_at: now,
    };
    let document = Document {
        brand_id: brand_id.clone(),
        kind: KIND,
        id: offer.id.clone(),
        version: 1,
        body: encode(&offer)?,
    };
    app.data
        .create_document(&document, &[slug_claim(&offer.slug)])
        .await
        .map_err(|error| slug_taken(error, &offer.slug))?;
    Ok(offer)
}

#[utoipa::path(
    get,
    path = "/api/public/offers/{id}",
    tag = "offers",
    summary = "Get an offer",
    params(
        ("id" = String, Path, description = "Offer id")
    ),
    responses(
        (status = 200, description = "Get an offer", body = Offer),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Offer>, ApiError> {
    Ok(Json(find(&app, &caller.principal.brand_id, &id).await?))
}

/// One of the brand's offers by id; another brand's id is as missing as an unknown one.
pub async fn find(
    app: &AppState,
    brand_id: &trcker_shared::ids::BrandId,
    id: &str,
) -> Result<Offer, ApiError> {
    let stored: Stored<Offer> = load(app, brand_id, KIND, ID_PREFIX, id, "offer").await?;
    Ok(stored.value)
}

#[utoipa::path(
    patch,
    path = "/api/public/offers/{id}",
    tag = "offers",
    summary = "Change an offer",
    params(
        ("id" = String, Path, description = "Offer id")
    ),
    request_body = UpdateOffer,
    responses(
        (status = 200, description = "Change an offer", body = Offer),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<UpdateOffer>,
) -> Result<Json<Offer>, ApiError> {
    let brand_id = &caller.principal.brand_id;
    let stored: Stored<Offer> = load(&app, brand_id, KIND, ID_PREFIX, &id, "offer").await?;
    let before = stored.value;
    if before.status == OfferStatus::Archived {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the offer is archived and can no longer be changed",
        ));
    }
    let mut after = before.clone();
    if let Some(name) = input.name {
        after.name = validate::name(&name).map_err(ApiError::invalid)?;
    }
    if let Some(slug) = input.slug {
        after.slug = validate::slug(&slug).map_err(ApiError::invalid)?;
    }
    if let Some(url) = input.destination_url {
        after.destination_url =
            validate::url("destination_url", &url).map_err(ApiError::invalid)?;
    }
    if let Some(default_payout) = input.default_payout {
        after.default_payout = validate_payout("default_payout", default_payout)?;
    }
    if let Some(status) = settable_status(input.status)? {
        after.status = status;
    }
    if let Some(caps) = input.caps {
        after.caps = caps;
    }
    save(&app, brand_id, &before, after, stored.version)
        .await
        .map(Json)
}

/// Archiving is one-way and idempotent.
#[utoipa::path(
    post,
    path = "/api/public/offers/{id}/archive",
    tag = "offers",
    summary = "Archive an offer",
    params(
        ("id" = String, Path, description = "Offer id")
    ),
    responses(
        (status = 200, description = "Archive an offer", body = Offer),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn archive(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Offer>, ApiError> {
    let brand_id = &caller.principal.brand_id;
    let stored: Stored<Offer> = load(&app, brand_id, KIND, ID_PREFIX, &id, "offer").await?;
    if stored.value.status == OfferStatus::Archived {
        return Ok(Json(stored.value));
    }
    let after = Offer {
        status: OfferStatus::Archived,
        ..stored.value.clone()
    };
    save(&app, brand_id, &stored.value, after, stored.version)
        .await
        .map(Json)
}

async fn save(
    app: &AppState,
    brand_id: &trcker_shared::ids::BrandId,
    before: &Offer,
    mut after: Offer,
    version: u64,
) -> Result<Offer, ApiError> {
    after.updated_at = format_rfc3339(app.keys.now_ms());
    let (released, taken) = slug_change(&before.slug, &after.slug);
    documents::save(
        app, brand_id, KIND, &after.id, version, &after, &released, &taken,
    )
    .await
    .map_err(|error| slug_taken(error, &after.slug))?;
    Ok(after)
}
