//! Fraud signals: raised by conversions that follow their click too quickly (and, with capture, by
//! suspicious clicks). A brand reviews each one: open -> dismissed or confirmed (and back).

use crate::AppState;
use crate::extract::{IdPath, JsonBody, query_params};
use crate::responses::{FraudSignalList, ReadErrors, WriteErrors};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use trcker_shared::edge::auth::{Caller, RecordedInWrite};
use trcker_shared::edge::error::ApiError;
use trcker_shared::program;
use trcker_shared::program::documents::ListBody;
use trcker_shared::program::draft::ActivityDraft;
use trcker_shared::program::fraud::{FraudSignal, ReviewUpdate};

#[utoipa::path(
    get,
    path = "/api/public/fraud-signals",
    tag = "fraud-signals",
    summary = "List fraud signals, newest first",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("review_state" = Option<String>, Query, description = "open, dismissed or confirmed")
    ),
    responses(
        (status = 200, description = "List fraud signals, newest first", body = FraudSignalList),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ListBody<FraudSignal>>, ApiError> {
    let pairs = query_params(uri.query(), &["limit", "cursor", "review_state"])?;
    let query = program::fraud::SignalQuery::from_pairs(&pairs)?;
    Ok(Json(
        program::fraud::list_signals(&app, &caller.principal.brand_id, &query).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/public/fraud-signals/{id}",
    tag = "fraud-signals",
    summary = "Get a fraud signal",
    params(
        ("id" = String, Path, description = "Signal id")
    ),
    responses(
        (status = 200, description = "Get a fraud signal", body = FraudSignal),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<FraudSignal>, ApiError> {
    Ok(Json(
        program::fraud::find(&app, &caller.principal.brand_id, &id).await?,
    ))
}

#[utoipa::path(
    patch,
    path = "/api/public/fraud-signals/{id}",
    tag = "fraud-signals",
    summary = "Set the review state of a fraud signal",
    params(
        ("id" = String, Path, description = "Signal id")
    ),
    request_body = ReviewUpdate,
    responses(
        (status = 200, description = "Set the review state of a fraud signal", body = FraudSignal),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn review(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<ReviewUpdate>,
) -> Result<RecordedInWrite<Json<FraudSignal>>, ApiError> {
    let draft = draft.answering(StatusCode::OK.as_u16());
    let brand_id = &caller.principal.brand_id;
    let reviewed = program::fraud::review_signal(&app, brand_id, &id, input, Some(&draft));
    Ok(RecordedInWrite(Json(reviewed.await?)))
}
