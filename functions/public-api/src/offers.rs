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
    let brand_id = &caller.principal.brand_id;
    let page = program::offers::listed_page(&app, brand_id, &Paging::from_pairs(&pairs)?).await?;
    Ok(Json(page.into_body(&app, brand_id)))
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
    Ok(Json(
        program::offers::archive_offer(&app, &caller.principal.brand_id, &id).await?,
    ))
}
