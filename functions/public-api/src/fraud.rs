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
    operation_id = "listFraudSignals",
    summary = "List fraud signals, newest first",
    description = "The brand's fraud signals (a conversion too soon after its click, suspicious \
        clicks), newest first, a page at a time (`limit` 1-100, default 25), optionally by \
        `review_state`. Filtered pages read a bounded slice, so a page can hold fewer than \
        `limit` signals and still carry a `next_cursor`: keep paging until it is `null`. An \
        unknown review state is `400 invalid_request`.",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("review_state" = Option<String>, Query, description = "open, dismissed or confirmed")
    ),
    responses(
        (status = 200, description = "One page of fraud signals, newest first", body = FraudSignalList,
            example = crate::examples::fraud_signal_page),
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
    operation_id = "getFraudSignal",
    summary = "Get a fraud signal",
    description = "One fraud signal by id: what was detected (`kind`, `detail`), its score, \
        the click (and conversion) it is about, and its review state. An unknown id and \
        another brand's both answer `404 not_found`.",
    params(
        ("id" = String, Path, description = "Signal id")
    ),
    responses(
        (status = 200, description = "The fraud signal", body = FraudSignal,
            example = crate::examples::fraud_signal),
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
    operation_id = "reviewFraudSignal",
    summary = "Set the review state of a fraud signal",
    description = "Records the brand's review of a signal: `review_state` `open`, `dismissed` \
        or `confirmed` (and back). Answers the signal as changed. An unknown review state is \
        `400 invalid_request`, a concurrent change `409 conflict`, an unknown id \
        `404 not_found`.",
    params(
        ("id" = String, Path, description = "Signal id")
    ),
    request_body(content = ReviewUpdate, example = crate::examples::review_fraud_signal),
    responses(
        (status = 200, description = "The fraud signal as reviewed", body = FraudSignal,
            example = crate::examples::reviewed_fraud_signal),
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
