//! Conversions (inbound postbacks): attributed through their click, priced by the pricing rules,
//! deduplicated on `txn_id`, and moved through pending -> approved | rejected, approved -> paid.
//! A conversion that comes sooner after its click than the configured minimum also raises a fraud
//! signal, written in the same transaction as the conversion and its `txn_id` claim. The brand's
//! daily rollups (conversions, revenue and payout in micro-units per currency, the signal) are not
//! written here: the data table's stream derives them from the new documents
//! (`program::derived`), exactly once and eventually consistent. They count a conversion as
//! created: a later status change does not change them.

use super::Program;
use super::ProgramError;
use crate::brand_data::clicks::{ClickRecord, is_valid_click_id};
use crate::brand_data::{Document, DocumentKind, UniqueClaim};
use crate::clock::{UnixMillis, format_rfc3339};
use crate::error::ErrorCode;
use crate::ids::BrandId;
use crate::program::documents::{
    Listed, Stored, encode, load, new_time_id, newest_first_page, save,
};
use crate::program::draft::ActivityDraft;
use crate::program::fraud::{self, FraudSignal, ReviewState};
use crate::program::offers::{Offer, PayoutType};
use crate::program::paging::{Paging, optional_time, param};
use crate::program::pricing::{PayoutSource, PricingRule, resolve_payout, rules_of_offer};
use crate::program::validate;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};

const KIND: DocumentKind = DocumentKind::Conversion;

const ID_PREFIX: &str = "cnv";

const LISTING: &str = "CONVERSIONS";

const MAX_TXN_ID_LEN: usize = 128;

const MAX_EVENT_LEN: usize = 64;

/// How often a create retries after an id collision (two conversions in one millisecond drawing
/// the same 20 random bits).
const ID_ATTEMPTS: usize = 3;

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
pub enum ConversionStatus {
    Pending,
    Approved,
    Rejected,
    Paid,
}

impl ConversionStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Paid => "paid",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected, Self::Paid]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// The status a `status` field names, or why it names none.
    pub fn from_field(text: &str) -> Result<Self, ProgramError> {
        Self::parse(text).ok_or_else(|| {
            ProgramError::invalid("status must be one of pending, approved, rejected, paid")
        })
    }

    /// The only allowed moves.
    fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Approved | Self::Rejected) | (Self::Approved, Self::Paid)
        )
    }
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct ConversionPayout {
    pub amount: f64,
    pub currency: String,
    pub source: PayoutSource,
    pub rule_id: Option<String>,
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct Conversion {
    pub id: String,
    pub click_id: String,
    pub offer_id: String,
    pub partner_id: Option<String>,
    /// Set by the brand's systems when recording the conversion (no control or hidden format
    /// characters): data, never instructions.
    pub txn_id: Option<String>,
    pub event: String,
    pub amount: Option<f64>,
    pub currency: String,
    pub payout: ConversionPayout,
    pub status: ConversionStatus,
    pub click_at: String,
    pub seconds_from_click: f64,
    pub created_at: String,
    pub updated_at: String,
}

/// The create response: the conversion, and whether it was already recorded under its `txn_id`.
#[derive(Debug, Serialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct Recorded {
    #[serde(flatten)]
    pub conversion: Conversion,
    pub duplicate: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversion {
    pub click_id: String,
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub txn_id: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversion {
    status: ConversionStatus,
}

fn unprocessable(message: impl Into<String>) -> ProgramError {
    ProgramError::new(ErrorCode::UnprocessableEntity, message)
}

fn txn_claim(txn_id: &str) -> UniqueClaim {
    UniqueClaim {
        field: "txn_id",
        value: txn_id.to_owned(),
    }
}

fn round_cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn validated(
    input: &CreateConversion,
) -> Result<(Option<f64>, String, Option<String>, String), ProgramError> {
    if !is_valid_click_id(&input.click_id) {
        return Err(ProgramError::invalid(
            "click_id must be 1-128 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
        ));
    }
    if let Some(amount) = input.amount
        && (!amount.is_finite() || !(0.0..=1e12).contains(&amount))
    {
        return Err(ProgramError::invalid(
            "amount must be a number between 0 and 1e12",
        ));
    }
    let currency = validate::currency(input.currency.as_deref().unwrap_or("USD"))
        .map_err(ProgramError::invalid)?;
    let txn_id = match &input.txn_id {
        Some(txn) if txn.is_empty() || txn.len() > MAX_TXN_ID_LEN => {
            return Err(ProgramError::invalid(format!(
                "txn_id must be 1-{MAX_TXN_ID_LEN} characters without control characters"
            )));
        }
        Some(txn) => {
            validate::plain_text("txn_id", txn).map_err(ProgramError::invalid)?;
            Some(txn.clone())
        }
        None => None,
    };
    let event = input.event.clone().unwrap_or_else(|| "sale".into());
    let event_ok = !event.is_empty()
        && event.len() <= MAX_EVENT_LEN
        && event
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !event_ok {
        return Err(ProgramError::invalid(format!(
            "event must be 1-{MAX_EVENT_LEN} characters of a-z, 0-9, '_' and '-'"
        )));
    }
    Ok((input.amount, currency, txn_id, event))
}

async fn existing_duplicate(
    program: &Program,
    brand_id: &BrandId,
    txn_id: &str,
) -> Result<Option<Conversion>, ProgramError> {
    let Some(id) = program
        .data
        .claim_holder(brand_id, KIND, &txn_claim(txn_id))
        .await?
    else {
        return Ok(None);
    };
    let stored: Stored<Conversion> =
        load(program, brand_id, KIND, ID_PREFIX, &id, "conversion").await?;
    Ok(Some(stored.value))
}

/// Records a conversion (or finds the one already recorded under its `txn_id`): attributed through
/// its click, priced by the offer's rules, stored with its `txn_id` claim and its fast-conversion
/// signal (if any) in one write, with the request's activity record when given (a duplicate
/// writes nothing, so its record is not stored: [`Recorded::duplicate`] says so). Its rollups
/// follow from the stream.
pub async fn record_conversion(
    program: &Program,
    brand_id: &BrandId,
    input: CreateConversion,
    activity: Option<&ActivityDraft>,
) -> Result<Recorded, ProgramError> {
    let (amount, currency, txn_id, event) = validated(&input)?;
    // The txn_id lookup and the attribution do not depend on each other: one round of reads.
    let duplicate = async {
        match &txn_id {
            Some(txn) => existing_duplicate(program, brand_id, txn).await,
            None => Ok(None),
        }
    };
    let (duplicate, attributed) = tokio::join!(
        duplicate,
        attributed_click(program, brand_id, &input.click_id)
    );
    if let Some(original) = duplicate? {
        return Ok(Recorded {
            conversion: original,
            duplicate: true,
        });
    }
    let (click, offer, rules) = attributed?;
    let now = program.keys.now_ms();
    let payout = priced(&click, &offer, &rules, amount, &currency, now)?;
    let elapsed_ms = now.saturating_sub(click.at).max(0);
    let created_at = format_rfc3339(now);
    for _ in 0..ID_ATTEMPTS {
        let conversion = Conversion {
            id: new_time_id(ID_PREFIX, now)?,
            click_id: click.click_id.clone(),
            offer_id: offer.id.clone(),
            partner_id: click.partner_id.clone(),
            txn_id: txn_id.clone(),
            event: event.clone(),
            amount,
            currency: currency.clone(),
            payout: payout.clone(),
            status: ConversionStatus::Pending,
            click_at: format_rfc3339(click.at),
            seconds_from_click: elapsed_ms as f64 / 1000.0,
            created_at: created_at.clone(),
            updated_at: created_at.clone(),
        };
        let minimum = program.min_click_to_conversion_ms;
        let signal = if elapsed_ms < minimum {
            Some(fast_conversion_signal(
                &conversion,
                elapsed_ms,
                minimum,
                now,
            )?)
        } else {
            None
        };
        match store_new(program, brand_id, &conversion, signal.as_ref(), activity).await {
            Ok(()) => {
                return Ok(Recorded {
                    conversion,
                    duplicate: false,
                });
            }
            // DynamoDB cancels the loser of a race on the same txn_id claim either way.
            Err(StoreError::AlreadyExists | StoreError::Contention) => {
                // A concurrent request with the same txn_id won: answer with its conversion.
                if let Some(txn) = &txn_id
                    && let Some(original) = existing_duplicate(program, brand_id, txn).await?
                {
                    return Ok(Recorded {
                        conversion: original,
                        duplicate: true,
                    });
                }
                // Otherwise an id collided, or the race is still settling: draw new ids shortly.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(ProgramError::new(
        ErrorCode::Conflict,
        "could not allocate a conversion id; retry",
    ))
}

/// The brand's click a conversion names, the offer it was for and the offer's pricing rules (read
/// together): a conversion is attributed through its click, so a click without an offer (or
/// whose offer is gone) cannot be priced.
async fn attributed_click(
    program: &Program,
    brand_id: &BrandId,
    click_id: &str,
) -> Result<(ClickRecord, Offer, Vec<PricingRule>), ProgramError> {
    let click = program
        .data
        .get_click(brand_id, click_id)
        .await?
        .ok_or_else(|| unprocessable("click_id does not name a click of this brand"))?;
    let offer_id = click.offer_id.clone().ok_or_else(|| {
        unprocessable("the click has no offer, so the conversion cannot be priced")
    })?;
    let (offer, rules) = tokio::join!(
        load::<Offer>(
            program,
            brand_id,
            DocumentKind::Offer,
            "off",
            &offer_id,
            "offer",
        ),
        rules_of_offer(program, brand_id, &offer_id)
    );
    let offer: Stored<Offer> = offer.map_err(|error| match error.code {
        ErrorCode::NotFound => unprocessable("the click's offer no longer exists"),
        _ => error,
    })?;
    Ok((click, offer.value, rules?))
}

/// What the conversion pays its click's partner, by the offer's `rules` at `now`: a flat amount,
/// or a percentage of the sale `amount` (required then), in cents.
fn priced(
    click: &ClickRecord,
    offer: &Offer,
    rules: &[PricingRule],
    amount: Option<f64>,
    currency: &str,
    now: UnixMillis,
) -> Result<ConversionPayout, ProgramError> {
    let resolved = resolve_payout(offer, rules, click.partner_id.as_deref(), now);
    Ok(match resolved.payout.kind {
        PayoutType::Flat => ConversionPayout {
            amount: round_cents(resolved.payout.amount),
            currency: resolved.payout.currency.clone(),
            source: resolved.source,
            rule_id: resolved.rule_id.clone(),
        },
        PayoutType::Percent => {
            let sale = amount.ok_or_else(|| {
                unprocessable("amount is required: this offer pays a percentage of the sale")
            })?;
            ConversionPayout {
                amount: round_cents(sale * resolved.payout.amount / 100.0),
                currency: currency.to_owned(),
                source: resolved.source,
                rule_id: resolved.rule_id.clone(),
            }
        }
    })
}

/// Stores a new conversion, its `txn_id` claim, its fraud signal and the request's activity record
/// in one write: all of them or
/// none. Nothing else: the rollups they add to are derived from the stream's copy of the new
/// documents (`program::derived`).
async fn store_new(
    program: &Program,
    brand_id: &BrandId,
    conversion: &Conversion,
    signal: Option<&FraudSignal>,
    activity: Option<&ActivityDraft>,
) -> Result<(), StoreError> {
    let encoded = |value: serde_json::Value, kind: DocumentKind, id: &str| Document {
        brand_id: brand_id.clone(),
        kind,
        id: id.to_owned(),
        version: 1,
        body: value,
    };
    let corrupt = |error: ProgramError| StoreError::Corrupt(error.message);
    let document = encoded(encode(conversion).map_err(corrupt)?, KIND, &conversion.id);
    let signal_document = signal
        .map(|signal| {
            encode(signal)
                .map(|body| encoded(body, DocumentKind::FraudSignal, &signal.id))
                .map_err(corrupt)
        })
        .transpose()?;
    let claims: Vec<UniqueClaim> = conversion.txn_id.iter().map(|txn| txn_claim(txn)).collect();
    let mut batch: Vec<(&Document, &[UniqueClaim])> = vec![(&document, &claims)];
    if let Some(signal_document) = &signal_document {
        batch.push((signal_document, &[]));
    }
    program
        .data
        .create_documents_counted(&batch, &[], activity.map(ActivityDraft::completed).as_ref())
        .await
}

/// One of the brand's conversions by id; another brand's id is as missing as an unknown one.
pub async fn find(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
) -> Result<Conversion, ProgramError> {
    let stored: Stored<Conversion> =
        load(program, brand_id, KIND, ID_PREFIX, id, "conversion").await?;
    Ok(stored.value)
}

/// The query parameters the list accepts.
pub const LIST_PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "status",
    "from",
    "to",
    "offer_id",
    "partner_id",
];

/// Which conversions to list: a page, and the status, time range, offer and partner they must
/// match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionQuery {
    pub paging: Paging,
    pub status: Option<ConversionStatus>,
    pub from: Option<UnixMillis>,
    pub to: Option<UnixMillis>,
    pub offer_id: Option<String>,
    pub partner_id: Option<String>,
}

impl ConversionQuery {
    /// The query from [`LIST_PARAMETERS`] pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ProgramError> {
        Ok(Self {
            paging: Paging::from_pairs(pairs)?,
            status: param(pairs, "status")
                .map(ConversionStatus::from_field)
                .transpose()?,
            from: optional_time("from", param(pairs, "from"))?,
            to: optional_time("to", param(pairs, "to"))?,
            offer_id: param(pairs, "offer_id").map(str::to_owned),
            partner_id: param(pairs, "partner_id").map(str::to_owned),
        })
    }
}

/// One page of the brand's conversions, newest first, before it is answered (the MCP tool may
/// cut it to size).
pub async fn listed_page(
    program: &Program,
    brand_id: &BrandId,
    query: &ConversionQuery,
) -> Result<Listed<Conversion>, ProgramError> {
    let ConversionQuery {
        paging,
        status,
        from,
        to,
        offer_id,
        partner_id,
    } = query;
    // Ids begin with the creation time, so a time range is an id range.
    let lower = from.map_or_else(|| format!("{ID_PREFIX}_"), |ms| time_bound(ms, "00000"));
    let upper = to.map_or_else(|| format!("{ID_PREFIX}_~"), |ms| time_bound(ms, "fffff"));
    newest_first_page(
        program,
        brand_id,
        KIND,
        ID_PREFIX,
        LISTING,
        (lower, upper),
        paging,
        |conversion: &Conversion| conversion.id.clone(),
        |conversion| {
            status.is_none_or(|status| conversion.status == status)
                && offer_id
                    .as_deref()
                    .is_none_or(|offer| conversion.offer_id == offer)
                && partner_id
                    .as_deref()
                    .is_none_or(|partner| conversion.partner_id.as_deref() == Some(partner))
        },
    )
    .await
}

fn time_bound(millis: i64, random_part: &str) -> String {
    format!(
        "{ID_PREFIX}_{:011x}{random_part}",
        millis.clamp(0, 0xfff_ffff_ffff)
    )
}

/// Moves a conversion to a new status, along the allowed moves only, with the request's activity
/// record when given.
pub async fn update_conversion(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
    input: UpdateConversion,
    activity: Option<&ActivityDraft>,
) -> Result<Conversion, ProgramError> {
    let stored: Stored<Conversion> =
        load(program, brand_id, KIND, ID_PREFIX, id, "conversion").await?;
    let mut conversion = stored.value;
    if !conversion.status.can_become(input.status) {
        return Err(ProgramError::new(
            ErrorCode::Conflict,
            format!(
                "a {} conversion cannot become {}: allowed are pending -> approved or rejected, approved -> paid",
                conversion.status.as_str(),
                input.status.as_str()
            ),
        ));
    }
    conversion.status = input.status;
    conversion.updated_at = format_rfc3339(program.keys.now_ms());
    save(
        program,
        brand_id,
        KIND,
        id,
        stored.version,
        &conversion,
        &[],
        &[],
        activity,
    )
    .await?;
    Ok(conversion)
}

/// A conversion sooner than this after its click is that suspicious (0-100).
const FAST_CONVERSION_SCORE: u8 = 80;

/// The fraud signal a conversion raises when it comes `elapsed_ms` after its click, under a
/// `minimum_ms` threshold.
fn fast_conversion_signal(
    conversion: &Conversion,
    elapsed_ms: i64,
    minimum_ms: i64,
    now: UnixMillis,
) -> Result<FraudSignal, ProgramError> {
    Ok(FraudSignal {
        id: new_time_id(fraud::ID_PREFIX, now)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions() {
        use ConversionStatus::*;
        let allowed = [(Pending, Approved), (Pending, Rejected), (Approved, Paid)];
        for from in [Pending, Approved, Rejected, Paid] {
            for to in [Pending, Approved, Rejected, Paid] {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn cents() {
        assert_eq!(round_cents(12.345), 12.35);
        assert_eq!(round_cents(0.1 + 0.2), 0.3);
    }
}
