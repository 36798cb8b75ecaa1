//! Fraud signals: raised by conversions that follow their click too quickly (and, with capture, by
//! suspicious clicks). A brand reviews each one: open -> dismissed or confirmed (and back).

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::{Deserialize, Serialize};
use trcker_shared::brand_data::DocumentKind;
use trcker_shared::clock::{UnixMillis, format_rfc3339};
use trcker_shared::edge::auth::Caller;
use trcker_shared::edge::error::ApiError;

use crate::AppState;
use crate::conversions::Conversion;
use crate::documents::{ListBody, Stored, load, new_time_id, newest_first_page, save};
use crate::extract::{IdPath, JsonBody, Paging, param, query_params};
use crate::openapi::{FraudSignalList, ReadErrors, WriteErrors};

const KIND: DocumentKind = DocumentKind::FraudSignal;
pub const ID_PREFIX: &str = "frd";
const LISTING: &str = "FRAUD";
/// The score of a conversion that came too soon after its click.
const FAST_CONVERSION_SCORE: u8 = 80;

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
pub enum ReviewState {
    Open,
    Dismissed,
    Confirmed,
}

impl ReviewState {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "dismissed" => Some(Self::Dismissed),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct FraudSignal {
    pub id: String,
    /// What was detected, e.g. `fast_conversion`.
    pub kind: String,
    pub click_id: String,
    pub conversion_id: Option<String>,
    pub partner_id: Option<String>,
    pub offer_id: Option<String>,
    pub score: u8,
    pub detail: String,
    pub review_state: ReviewState,
    pub created_at: String,
    pub updated_at: String,
}

impl FraudSignal {
    /// The signal for a conversion `elapsed_ms` after its click, under a `minimum_ms` threshold.
    pub fn fast_conversion(
        conversion: &Conversion,
        elapsed_ms: i64,
        minimum_ms: i64,
        now: UnixMillis,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            id: new_time_id(ID_PREFIX, now)?,
            kind: "fast_conversion".into(),
            click_id: conversion.click_id.clone(),
            conversion_id: Some(conversion.id.clone()),
            partner_id: conversion.partner_id.clone(),
            offer_id: Some(conversion.offer_id.clone()),
            score: FAST_CONVERSION_SCORE,
            detail: format!(
                "converted {:.1} s after the click; the minimum is {:.1} s",
                elapsed_ms as f64 / 1000.0,
                minimum_ms as f64 / 1000.0
            ),
            review_state: ReviewState::Open,
            created_at: format_rfc3339(now),
            updated_at: format_rfc3339(now),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewUpdate {
    review_state: ReviewState,
}

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
    let paging = Paging::from_pairs(&pairs)?;
    let review_state = param(&pairs, "review_state")
        .map(|raw| {
            ReviewState::parse(raw).ok_or_else(|| {
                ApiError::invalid("review_state must be one of open, dismissed, confirmed")
            })
        })
        .transpose()?;
    let page = newest_first_page(
        &app,
        &caller.principal.brand_id,
        KIND,
        ID_PREFIX,
        LISTING,
        (format!("{ID_PREFIX}_"), format!("{ID_PREFIX}_~")),
        &paging,
        |signal: &FraudSignal| signal.id.clone(),
        |signal| review_state.is_none_or(|state| signal.review_state == state),
    )
    .await?;
    Ok(Json(page.into_body(&app, &caller.principal.brand_id)))
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
    let stored: Stored<FraudSignal> = load(
        &app,
        &caller.principal.brand_id,
        KIND,
        ID_PREFIX,
        &id,
        "fraud signal",
    )
    .await?;
    Ok(Json(stored.value))
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
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<ReviewUpdate>,
) -> Result<Json<FraudSignal>, ApiError> {
    let brand_id = &caller.principal.brand_id;
    let stored: Stored<FraudSignal> =
        load(&app, brand_id, KIND, ID_PREFIX, &id, "fraud signal").await?;
    let mut signal = stored.value;
    signal.review_state = input.review_state;
    signal.updated_at = format_rfc3339(app.keys.now_ms());
    save(&app, brand_id, KIND, &id, stored.version, &signal, &[], &[]).await?;
    Ok(Json(signal))
}
