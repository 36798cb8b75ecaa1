//! `POST /api/clicks/capture`: records a first-party click once per brand and click id, scores it
//! for fraud at constant cost, and raises fraud signals the public API lists. Each write also adds
//! to the brand's daily rollups, in the same transaction: the click (`clicks`, and
//! `flagged_clicks` if its user agent flags it), the rescoring that flags it, and its signals.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trcker_shared::brand_data::clicks::{ClickRecord, is_valid_click_id};
use trcker_shared::brand_data::rollups::{
    CLICKS, FLAGGED_CLICKS, RollupIncrement, SIGNALS_PREFIX, increments_for,
};
use trcker_shared::brand_data::{Document, DocumentKind};
use trcker_shared::caller_text;
use trcker_shared::clock::format_rfc3339;
use trcker_shared::edge::auth::Caller;
use trcker_shared::edge::error::ApiError;
use trcker_shared::error::ErrorCode;
use trcker_shared::ids::BrandId;
use trcker_shared::program::documents::is_id;
use trcker_shared::program::fraud::{FraudSignal, ReviewState};
use trcker_shared::program::{offers, partners, validate};
use trcker_shared::store::StoreError;

use crate::CaptureState;
use crate::fraud::{Finding, Thresholds, score, source_findings, user_agent_finding};

/// Bodies above this are refused with 413: a capture is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const MAX_SUB_ID_CHARS: usize = 255;
const MAX_URL_CHARS: usize = 2_048;
const HOUR_MS: i64 = 3_600_000;

/// What the snippet sends. Unknown fields are refused, like everywhere else on the edge.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    pub click_id: String,
    /// The offer's id or slug.
    #[serde(default)]
    pub offer: Option<String>,
    /// The partner's id or slug (the link's `via`).
    #[serde(default)]
    pub partner: Option<String>,
    #[serde(default)]
    pub sub1: Option<String>,
    #[serde(default)]
    pub sub2: Option<String>,
    #[serde(default)]
    pub sub3: Option<String>,
    #[serde(default)]
    pub sub4: Option<String>,
    #[serde(default)]
    pub sub5: Option<String>,
    #[serde(default)]
    pub landing_url: Option<String>,
    #[serde(default)]
    pub referrer: Option<String>,
}

/// The answer. It says whether the click was new, never how it was scored: the caller may be a
/// fraudster's browser.
#[derive(Debug, Serialize)]
pub struct CaptureResponse {
    pub status: &'static str,
    pub click_id: String,
}

pub async fn capture(
    State(state): State<CaptureState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::invalid("the request body could not be read")
        }
    })?;
    let request = parse(&body)?;
    validate(&request)?;
    let brand_id = &caller.principal.brand_id;
    let offer_id = resolve(&state, brand_id, Reference::Offer, request.offer.as_deref()).await?;
    let partner_id = resolve(
        &state,
        brand_id,
        Reference::Partner,
        request.partner.as_deref(),
    )
    .await?;

    let now = state.keys.now_ms();
    let source_ip = caller.context.source_ip.clone();
    let user_agent = caller.context.user_agent.clone();
    let mut findings: Vec<Finding> = user_agent_finding(&user_agent).into_iter().collect();
    let mut click = ClickRecord {
        brand_id: brand_id.clone(),
        click_id: request.click_id.clone(),
        at: now,
        offer_id,
        partner_id,
        sub_ids: [
            stored_text(request.sub1, MAX_SUB_ID_CHARS),
            stored_text(request.sub2, MAX_SUB_ID_CHARS),
            stored_text(request.sub3, MAX_SUB_ID_CHARS),
            stored_text(request.sub4, MAX_SUB_ID_CHARS),
            stored_text(request.sub5, MAX_SUB_ID_CHARS),
        ],
        landing_url: stored_text(request.landing_url, MAX_URL_CHARS),
        referrer: stored_text(request.referrer, MAX_URL_CHARS),
        source_ip,
        user_agent,
        fraud_score: score(&findings),
    };
    // A click is counted as flagged exactly once: here if its user agent alone flags it, or by the
    // rescoring below if the source counter does (scores only grow, and a click is rescored once).
    let flagged_at_insert = click.flagged();
    let mut counters = vec![(CLICKS.to_owned(), 1)];
    if flagged_at_insert {
        counters.push((FLAGGED_CLICKS.to_owned(), 1));
    }
    match state
        .data
        .insert_click_counted(&click, &click_increments(&click, &counters))
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            // The first capture won; this one changes nothing and reads nothing.
            return Ok(answer(StatusCode::OK, "duplicate", request.click_id));
        }
        Err(error) => return Err(error.into()),
    }

    // The click is recorded from here on: the source counter and the signals refine it, and their
    // failure is logged rather than turned into an error the snippet would retry in vain.
    let window_start = now - now.rem_euclid(HOUR_MS);
    let expires_at = (window_start + 2 * HOUR_MS) / 1000;
    match state
        .data
        .record_source_hit(brand_id, &click.source_ip, window_start, now, expires_at)
        .await
    {
        Ok(hit) => findings.extend(source_findings(
            &click.source_ip,
            hit,
            now,
            Thresholds {
                source_clicks_per_hour: state.config.source_clicks_per_hour,
                repeat_window_ms: state.config.repeat_window_ms,
            },
        )),
        Err(error) => tracing::error!(
            brand_id = %brand_id,
            click_id = %click.click_id,
            error = %error,
            "source counter unavailable: the click is recorded without its velocity checks"
        ),
    }
    let final_score = score(&findings);
    if final_score != click.fraud_score {
        click.fraud_score = final_score;
        let newly_flagged = click.flagged() && !flagged_at_insert;
        let increments = if newly_flagged {
            click_increments(&click, &[(FLAGGED_CLICKS.to_owned(), 1)])
        } else {
            Vec::new()
        };
        if let Err(error) = state.data.update_click_counted(&click, &increments).await {
            tracing::error!(
                brand_id = %brand_id,
                click_id = %click.click_id,
                score = final_score,
                error = %error,
                "click score not updated"
            );
        }
    }
    raise_signals(&state, &click, &findings, now).await;
    Ok(answer(StatusCode::CREATED, "recorded", request.click_id))
}

/// Rollup increments for `counters` of a click: the brand total, its offer and its partner, on
/// the click's day, in the click id's shard.
fn click_increments(click: &ClickRecord, counters: &[(String, i64)]) -> Vec<RollupIncrement> {
    increments_for(
        click.at,
        &click.click_id,
        click.offer_id.as_deref(),
        click.partner_id.as_deref(),
        counters,
    )
}

fn answer(status: StatusCode, outcome: &'static str, click_id: String) -> Response {
    (
        status,
        Json(CaptureResponse {
            status: outcome,
            click_id,
        }),
    )
        .into_response()
}

fn parse(body: &[u8]) -> Result<CaptureRequest, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "the request body is empty: send a JSON object with a click_id",
        ));
    }
    // serde reads a struct from a JSON array too (fields by position): the body is an object.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid(
            "the request body must be a JSON object with a click_id",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))
}

fn validate(request: &CaptureRequest) -> Result<(), ApiError> {
    if !is_valid_click_id(&request.click_id) {
        return Err(ApiError::invalid(
            "click_id must be 1-128 characters of A-Z a-z 0-9 - _ .",
        ));
    }
    let sub_ids = [
        ("sub1", &request.sub1),
        ("sub2", &request.sub2),
        ("sub3", &request.sub3),
        ("sub4", &request.sub4),
        ("sub5", &request.sub5),
    ];
    for (name, value) in sub_ids {
        plain_text(name, value.as_deref(), Some(MAX_SUB_ID_CHARS))?;
    }
    // Page URLs can be long; they are cut to MAX_URL_CHARS when stored rather than losing the click.
    plain_text("landing_url", request.landing_url.as_deref(), None)?;
    plain_text("referrer", request.referrer.as_deref(), None)?;
    Ok(())
}

fn plain_text(name: &str, value: Option<&str>, max_chars: Option<usize>) -> Result<(), ApiError> {
    let Some(value) = value else { return Ok(()) };
    if let Some(max_chars) = max_chars
        && value.chars().count() > max_chars
    {
        return Err(ApiError::invalid(format!(
            "{name} is longer than {max_chars} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{name} contains control characters"
        )));
    }
    Ok(())
}

/// A visitor-written text as it is stored: empty means absent; hidden format characters stripped
/// (they would reach a brand's screen or an AI assistant unseen), key material redacted, then cut
/// to at most `max_chars` (a key pasted into a URL must not end up in the click record).
fn stored_text(value: Option<String>, max_chars: usize) -> Option<String> {
    let value = value.filter(|value| !value.trim().is_empty())?;
    Some(caller_text::for_record(&value, max_chars)).filter(|stored| !stored.trim().is_empty())
}

#[derive(Clone, Copy)]
enum Reference {
    Offer,
    Partner,
}

/// The id an offer or partner reference names; unknown is a 422.
async fn resolve(
    state: &CaptureState,
    brand_id: &BrandId,
    reference: Reference,
    value: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(value) = value.filter(|value| !value.trim().is_empty()) else {
        return Ok(None);
    };
    let (kind, prefix, what) = match reference {
        Reference::Offer => (DocumentKind::Offer, offers::ID_PREFIX, "offer"),
        Reference::Partner => (DocumentKind::Partner, partners::ID_PREFIX, "partner"),
    };
    // A key is never a reference, and is not quoted back or looked up.
    if caller_text::contains_key_material(value) {
        return Err(ApiError::invalid(format!(
            "{what} must be an id or slug; it holds what looks like an API key (treat that key as \
             leaked)"
        )));
    }
    let unknown = || {
        ApiError::new(
            ErrorCode::UnprocessableEntity,
            format!(
                "no {what} with id or slug {:?} in this brand",
                caller_text::for_record(value, 64)
            ),
        )
    };
    // Neither an id nor a slug cannot name anything: answered without a store call.
    if !is_id(prefix, value) && validate::slug(value).is_err() {
        return Err(unknown());
    }
    match state
        .references
        .resolve(state.data.as_ref(), brand_id, kind, prefix, value)
        .await?
    {
        Some(id) => Ok(Some(id)),
        None => Err(unknown()),
    }
}

/// Stores one fraud-signal item per new finding, together, and counts them (`signals:<kind>`) in
/// the click's rollups in the same transaction.
async fn raise_signals(state: &CaptureState, click: &ClickRecord, findings: &[Finding], now: i64) {
    let mut documents = Vec::new();
    let mut counters: Vec<(String, i64)> = Vec::new();
    for finding in findings.iter().filter(|finding| finding.raises_signal) {
        let Ok(id) = trcker_shared::program::documents::new_time_id(
            trcker_shared::program::fraud::ID_PREFIX,
            now,
        ) else {
            continue;
        };
        let signal = FraudSignal {
            id: id.clone(),
            kind: finding.kind.to_owned(),
            click_id: click.click_id.clone(),
            conversion_id: None,
            partner_id: click.partner_id.clone(),
            offer_id: click.offer_id.clone(),
            score: finding.score,
            detail: finding.detail.clone(),
            review_state: ReviewState::Open,
            created_at: format_rfc3339(now),
            updated_at: format_rfc3339(now),
        };
        match serde_json::to_value(&signal) {
            Ok(body) => {
                documents.push(Document {
                    brand_id: click.brand_id.clone(),
                    kind: DocumentKind::FraudSignal,
                    id,
                    version: 1,
                    body,
                });
                counters.push((format!("{SIGNALS_PREFIX}{}", finding.kind), 1));
            }
            Err(error) => tracing::error!(error = %error, "fraud signal does not encode"),
        }
    }
    if documents.is_empty() {
        return;
    }
    let batch: Vec<(&Document, &[_])> = documents
        .iter()
        .map(|document| (document, &[][..]))
        .collect();
    let increments = click_increments(click, &counters);
    if let Err(error) = state
        .data
        .create_documents_counted(&batch, &increments)
        .await
    {
        tracing::error!(
            brand_id = %click.brand_id,
            click_id = %click.click_id,
            signals = documents.len(),
            error = %error,
            "fraud signals not stored"
        );
    }
}
