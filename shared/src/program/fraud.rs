//! Fraud signals: raised by conversions that follow their click too quickly (and, with capture, by
//! suspicious clicks). A brand reviews each one: open -> dismissed or confirmed (and back).

use super::Program;
use super::ProgramError;
use crate::brand_data::DocumentKind;
use crate::clock::format_rfc3339;
use crate::ids::BrandId;
use crate::program::documents::{ListBody, Stored, load, newest_first_page, save};
use crate::program::draft::ActivityDraft;
use crate::program::paging::{Paging, param};
use serde::{Deserialize, Serialize};

const KIND: DocumentKind = DocumentKind::FraudSignal;

pub const ID_PREFIX: &str = "frd";

const LISTING: &str = "FRAUD";

/// The score of a conversion that came too soon after its click.

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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewUpdate {
    review_state: ReviewState,
}

/// Which fraud signals to list: a page, and the review state they must be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalQuery {
    pub paging: Paging,
    pub review_state: Option<ReviewState>,
}

impl SignalQuery {
    /// The query from `limit`, `cursor` and `review_state` pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ProgramError> {
        Ok(Self {
            paging: Paging::from_pairs(pairs)?,
            review_state: param(pairs, "review_state")
                .map(|raw| {
                    ReviewState::parse(raw).ok_or_else(|| {
                        ProgramError::invalid(
                            "review_state must be one of open, dismissed, confirmed",
                        )
                    })
                })
                .transpose()?,
        })
    }
}

/// One page of the brand's fraud signals, newest first.
pub async fn list_signals(
    program: &Program,
    brand_id: &BrandId,
    query: &SignalQuery,
) -> Result<ListBody<FraudSignal>, ProgramError> {
    let SignalQuery {
        paging,
        review_state,
    } = query;
    let page = newest_first_page(
        program,
        brand_id,
        KIND,
        ID_PREFIX,
        LISTING,
        (format!("{ID_PREFIX}_"), format!("{ID_PREFIX}_~")),
        paging,
        |signal: &FraudSignal| signal.id.clone(),
        |signal| review_state.is_none_or(|state| signal.review_state == state),
    )
    .await?;
    Ok(page.into_body(program, brand_id))
}

/// One of the brand's fraud signals by id.
pub async fn find(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
) -> Result<FraudSignal, ProgramError> {
    let stored: Stored<FraudSignal> =
        load(program, brand_id, KIND, ID_PREFIX, id, "fraud signal").await?;
    Ok(stored.value)
}

/// Sets the review state of one of the brand's fraud signals, with the request's activity record
/// when given.
pub async fn review_signal(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
    input: ReviewUpdate,
    activity: Option<&ActivityDraft>,
) -> Result<FraudSignal, ProgramError> {
    let stored: Stored<FraudSignal> =
        load(program, brand_id, KIND, ID_PREFIX, id, "fraud signal").await?;
    let mut signal = stored.value;
    signal.review_state = input.review_state;
    signal.updated_at = format_rfc3339(program.keys.now_ms());
    save(
        program,
        brand_id,
        KIND,
        id,
        stored.version,
        &signal,
        &[],
        &[],
        activity,
    )
    .await?;
    Ok(signal)
}
