//! Offers: what partners promote, where the link lands, and what a conversion pays by default.
//! Offers are archived rather than deleted, because clicks and conversions refer to them.

use crate::AppState;
use crate::extract::{IdPath, JsonBody, query_params};
use crate::responses::{OfferList, ReadErrors, WriteErrors};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use trcker_shared::edge::auth::{Caller, RecordedInWrite};
use trcker_shared::edge::error::ApiError;
use trcker_shared::program;
use trcker_shared::program::documents::ListBody;
use trcker_shared::program::draft::ActivityDraft;
use trcker_shared::program::offers::{
    CreateOffer, LIST_PARAMETERS, Offer, UpdateOffer, create_offer, find,
};
use trcker_shared::program::paging::Paging;

#[utoipa::path(
    get,
    path = "/api/public/offers",
    tag = "offers",
    operation_id = "listOffers",
    summary = "List offers",
    description = "The brand's offers, archived ones included, a page at a time (`limit` \
        1-100, default 25), in id order. Answers `{data, next_cursor}`; pass `next_cursor` back \
        as `cursor` until it is `null`. A foreign or damaged cursor is `400 invalid_cursor`.",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")
    ),
    responses(
        (status = 200, description = "One page of offers", body = OfferList,
            example = crate::examples::offer_page),
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
    let brand_id = &caller.principal.brand_id;
    let page = program::offers::listed_page(&app, brand_id, &Paging::from_pairs(&pairs)?).await?;
    Ok(Json(page.into_body(&app, brand_id)))
}

#[utoipa::path(
    post,
    path = "/api/public/offers",
    tag = "offers",
    operation_id = "createOffer",
    summary = "Create an offer",
    description = "Creates an offer: `name`, `slug` (unique per brand), `destination_url` (where \
        the tracking link lands) and `default_payout` (`flat` amount in a currency, or `percent` \
        of the sale) are required; `status` (`active` or `paused`, default `active`) and `caps` \
        are optional. Answers `201` with the offer. A slug already taken is \
        `409 already_exists`; a malformed slug, URL, currency or payout is \
        `400 invalid_request`.",
    request_body(content = CreateOffer, example = crate::examples::create_offer),
    responses(
        (status = 201, description = "The offer created", body = Offer,
            example = crate::examples::offer),
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

#[utoipa::path(
    get,
    path = "/api/public/offers/{id}",
    tag = "offers",
    operation_id = "getOffer",
    summary = "Get an offer",
    description = "One offer of the calling key's brand, by id, archived or not. An unknown id \
        and another brand's id both answer `404 not_found`.",
    params(
        ("id" = String, Path, description = "Offer id")
    ),
    responses(
        (status = 200, description = "The offer", body = Offer,
            example = crate::examples::offer),
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

#[utoipa::path(
    patch,
    path = "/api/public/offers/{id}",
    tag = "offers",
    operation_id = "updateOffer",
    summary = "Change an offer",
    description = "Changes the fields the body names and leaves the others as they are. \
        Answers the offer as changed. Archived offers are read-only: changing one is \
        `409 conflict` (so is a concurrent change); a slug already taken is \
        `409 already_exists`; `404 not_found` for an unknown id.",
    params(
        ("id" = String, Path, description = "Offer id")
    ),
    request_body(content = UpdateOffer, example = crate::examples::update_offer),
    responses(
        (status = 200, description = "The offer as changed", body = Offer,
            example = crate::examples::updated_offer),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<UpdateOffer>,
) -> Result<RecordedInWrite<Json<Offer>>, ApiError> {
    let draft = draft.answering(StatusCode::OK.as_u16());
    let brand_id = &caller.principal.brand_id;
    let updated = program::offers::update_offer(&app, brand_id, &id, input, Some(&draft));
    Ok(RecordedInWrite(Json(updated.await?)))
}

/// Archiving is one-way and idempotent.
#[utoipa::path(
    post,
    path = "/api/public/offers/{id}/archive",
    tag = "offers",
    operation_id = "archiveOffer",
    summary = "Archive an offer",
    description = "Archives the offer: it stays readable (clicks and conversions refer to it) \
        but can no longer be changed. Offers are never deleted. One-way and idempotent: \
        archiving an archived offer answers it unchanged. Answers the archived offer; \
        `404 not_found` for an unknown id.",
    params(
        ("id" = String, Path, description = "Offer id")
    ),
    responses(
        (status = 200, description = "The offer, archived", body = Offer,
            example = crate::examples::archived_offer),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn archive(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Offer>, ApiError> {
    Ok(Json(
        program::offers::archive_offer(&app, &caller.principal.brand_id, &id).await?,
    ))
}
