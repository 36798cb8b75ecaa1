//! Conversions (inbound postbacks): attributed through their click, priced by the pricing rules,
//! deduplicated on `txn_id`, and moved through pending -> approved | rejected, approved -> paid.
//! A conversion that comes sooner after its click than the configured minimum also raises a fraud
//! signal, written in the same transaction. The brand's daily rollups (conversions, revenue and
//! payout in micro-units per currency, the signal) are derived from the table's stream, a few
//! seconds later, exactly once; they count a conversion as created: a later status change does
//! not change them.

use crate::AppState;
use crate::extract::{IdPath, JsonBody, query_params};
use crate::responses::{ConversionList, ReadErrors, WriteErrors};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use trcker_shared::edge::auth::{Caller, RecordedInWrite};
use trcker_shared::edge::error::ApiError;
use trcker_shared::program;
use trcker_shared::program::conversions::{
    Conversion, CreateConversion, LIST_PARAMETERS, Recorded, UpdateConversion, find,
    record_conversion,
};
use trcker_shared::program::documents::ListBody;
use trcker_shared::program::draft::ActivityDraft;

#[utoipa::path(
    post,
    path = "/api/public/conversions",
    tag = "conversions",
    summary = "Record a conversion (200 with duplicate = true for a repeated txn_id)",
    request_body = CreateConversion,
    responses(
        (status = 201, description = "Record a conversion (200 with duplicate = true for a repeated txn_id)", body = Recorded),
        (status = 200, description = "A conversion with this txn_id was already recorded: the original, with duplicate = true", body = Recorded),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    JsonBody(input): JsonBody<CreateConversion>,
) -> Result<Response, ApiError> {
    let draft = draft.answering(StatusCode::CREATED.as_u16());
    let recorded = record_conversion(&app, &caller.principal.brand_id, input, Some(&draft)).await?;
    // A repeated txn_id wrote nothing, so its record is the guard's to write.
    Ok(if recorded.duplicate {
        (StatusCode::OK, Json(recorded)).into_response()
    } else {
        RecordedInWrite((StatusCode::CREATED, Json(recorded))).into_response()
    })
}

#[utoipa::path(
    get,
    path = "/api/public/conversions/{id}",
    tag = "conversions",
    summary = "Get a conversion",
    params(
        ("id" = String, Path, description = "Conversion id")
    ),
    responses(
        (status = 200, description = "Get a conversion", body = Conversion),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Conversion>, ApiError> {
    Ok(Json(find(&app, &caller.principal.brand_id, &id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/public/conversions/{id}",
    tag = "conversions",
    summary = "Change a conversion status",
    params(
        ("id" = String, Path, description = "Conversion id")
    ),
    request_body = UpdateConversion,
    responses(
        (status = 200, description = "Change a conversion status", body = Conversion),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<UpdateConversion>,
) -> Result<RecordedInWrite<Json<Conversion>>, ApiError> {
    let draft = draft.answering(StatusCode::OK.as_u16());
    let brand_id = &caller.principal.brand_id;
    let updated = program::conversions::update_conversion(&app, brand_id, &id, input, Some(&draft));
    Ok(RecordedInWrite(Json(updated.await?)))
}

#[utoipa::path(
    get,
    path = "/api/public/conversions",
    tag = "conversions",
    summary = "List conversions, newest first",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("status" = Option<String>, Query, description = "pending, approved, rejected or paid"),
        ("from" = Option<String>, Query, description = "RFC 3339 time or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 time or Unix ms"),
        ("offer_id" = Option<String>, Query, description = "Only this offer"),
        ("partner_id" = Option<String>, Query, description = "Only this partner")
    ),
    responses(
        (status = 200, description = "List conversions, newest first", body = ConversionList),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ListBody<Conversion>>, ApiError> {
    let pairs = query_params(uri.query(), LIST_PARAMETERS)?;
    let brand_id = &caller.principal.brand_id;
    let page = program::conversions::listed_page(
        &app,
        brand_id,
        &program::conversions::ConversionQuery::from_pairs(&pairs)?,
    )
    .await?;
    Ok(Json(page.into_body(&app, brand_id)))
}
