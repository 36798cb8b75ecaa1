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
    operation_id = "createConversion",
    summary = "Record a conversion",
    description = "Records a conversion (an inbound postback) for a click: offer and partner \
        come from the click, and the payout from the pricing rules (a `percent` payout needs \
        `amount`). `currency` defaults to USD and `event` to `sale`. Answers `201` with the \
        conversion and `duplicate: false`; a repeated `txn_id` writes nothing and answers `200` \
        with the first conversion and `duplicate: true`. A conversion sooner after its click \
        than the configured minimum also raises a `fast_conversion` fraud signal. An unknown \
        click, another brand's click, a click without an offer, or a percent payout without \
        `amount` is `422 unprocessable_entity`.",
    request_body(content = CreateConversion, example = crate::examples::create_conversion),
    responses(
        (status = 201, description = "The conversion recorded, with duplicate = false", body = Recorded,
            example = crate::examples::recorded_conversion),
        (status = 200, description = "A conversion with this txn_id was already recorded: the original, with duplicate = true", body = Recorded,
            example = crate::examples::duplicate_conversion),
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
    operation_id = "getConversion",
    summary = "Get a conversion",
    description = "One conversion by id, with its payout (amount, currency, the rule or default \
        that decided) and status. An unknown id and another brand's both answer \
        `404 not_found`.",
    params(
        ("id" = String, Path, description = "Conversion id")
    ),
    responses(
        (status = 200, description = "The conversion", body = Conversion,
            example = crate::examples::conversion),
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
    operation_id = "updateConversion",
    summary = "Change a conversion status",
    description = "Moves the conversion to another `status`: `pending` to `approved` or \
        `rejected`, `approved` to `paid`. Answers the conversion as changed. Any other change \
        (paid back to pending, say) or a concurrent one is `409 conflict`; an unknown status is \
        `400 invalid_request`; `404 not_found` for an unknown id. The statistics count a \
        conversion as created: a status change does not change them.",
    params(
        ("id" = String, Path, description = "Conversion id")
    ),
    request_body(content = UpdateConversion, example = crate::examples::update_conversion),
    responses(
        (status = 200, description = "The conversion as changed", body = Conversion,
            example = crate::examples::approved_conversion),
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
    operation_id = "listConversions",
    summary = "List conversions, newest first",
    description = "The brand's conversions, newest first, a page at a time (`limit` 1-100, \
        default 25), optionally by `status`, between `from` and `to`, and for one offer or \
        partner. Filtered pages read a bounded slice, so a page can hold fewer than `limit` \
        conversions, or none, and still carry a `next_cursor`: keep paging until it is `null`. \
        A bad status or time is `400 invalid_request`, a foreign or damaged cursor \
        `400 invalid_cursor`.",
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
        (status = 200, description = "One page of conversions, newest first", body = ConversionList,
            example = crate::examples::conversion_page),
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
