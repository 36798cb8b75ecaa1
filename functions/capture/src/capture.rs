//! `POST /api/clicks/capture`: records a first-party click once per brand and click id, in one
//! conditional write of the click item, which also holds the capture's activity record. Its user
//! agent scores it at once; the stream function derives the rest from the table's stream (the
//! activity record, the source counters and rescoring, fraud signals, rollups).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trcker_shared::brand_data::clicks::{CaptureAudit, ClickRecord, is_valid_click_id};
use trcker_shared::brand_data::{ClickStoreExt, DocumentKind};
use trcker_shared::caller_text;
use trcker_shared::edge::auth::{Caller, RecordedInWrite, RequestStarted};
use trcker_shared::edge::error::ApiError;
use trcker_shared::error::ErrorCode;
use trcker_shared::ids::BrandId;
use trcker_shared::program::documents::is_id;
use trcker_shared::program::scoring::{score, user_agent_finding};
use trcker_shared::program::{offers, partners, validate};
use trcker_shared::store::StoreError;

use crate::{CAPTURE_PATH, CaptureState};

/// Bodies above this are refused with 413: a capture is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const MAX_SUB_ID_CHARS: usize = 255;
const MAX_URL_CHARS: usize = 2_048;
/// Seconds a caller waits before retrying a capture the store could not take.
const RETRY_AFTER_SECONDS: u64 = 1;

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
    started: Option<Extension<RequestStarted>>,
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
    let started = started.map_or_else(Instant::now, |Extension(RequestStarted(at))| at);
    let user_agent = caller.context.user_agent.clone();
    let fraud_score = score(user_agent_finding(&user_agent).as_slice());
    let click = ClickRecord {
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
        source_ip: caller.context.source_ip.clone(),
        user_agent,
        fraud_score,
        // The click item is the capture's activity record: its latency is the time to this
        // write, the one store call a new capture waits on.
        audit: Some(CaptureAudit {
            request_id: caller.context.request_id.clone(),
            method: "POST".to_owned(),
            target: CAPTURE_PATH.to_owned(),
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            key_id: caller.principal.key_id.to_string(),
            fingerprint: caller.principal.fingerprint.to_string(),
            expires_at: now / 1000 + i64::from(state.activity_retention_days) * 86_400,
        }),
    };
    match state.data.insert_click(&click).await {
        Ok(()) => Ok(
            RecordedInWrite(answer(StatusCode::CREATED, "recorded", request.click_id))
                .into_response(),
        ),
        // The first capture won; the guard records this one as a duplicate.
        Err(StoreError::AlreadyExists) => Ok(answer(StatusCode::OK, "duplicate", request.click_id)),
        Err(error) => Err(not_recorded(error)),
    }
}

/// A click the store did not take is never a silent loss, and never the caller's conflict to
/// resolve: throttling or contention that outlived the SDK's retries is a 503 the snippet retries.
fn not_recorded(error: StoreError) -> ApiError {
    if matches!(error, StoreError::Contention) || error.is_transient() {
        tracing::warn!(error = %error, "click not recorded: the store is busy");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the click was not recorded: storage is busy; retry shortly",
        )
        .with_retry_after(RETRY_AFTER_SECONDS)
    } else {
        error.into()
    }
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
