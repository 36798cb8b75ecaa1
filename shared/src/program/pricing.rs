//! Pricing rules: per-offer payouts, optionally for one partner, with a priority and an optional
//! validity window. Payout resolution, in order:
//! 1. the partner-specific rules of the offer that are valid at that time, highest priority first;
//! 2. then the offer's rules for every partner (no `partner_id`), highest priority first;
//! 3. then the offer's `default_payout`.
//!
//! Ties in priority go to the newer rule. A rule id embeds its offer id
//! (`rul_<offer hex>_<random hex>`), so an offer's rules are one query by id prefix.

use super::Program;
use super::ProgramError;
use crate::brand_data::DocumentStoreExt;
use crate::brand_data::{Document, DocumentKind};
use crate::clock::{UnixMillis, format_rfc3339};
use crate::error::ErrorCode;
use crate::ids::BrandId;
use crate::program::documents::{
    Listed, Stored, decode, encode, list_page, list_page_with_prefix, load, save,
};
use crate::program::draft::ActivityDraft;
use crate::program::offers::{Offer, Payout, validate_payout};
use crate::program::paging::{Paging, param, parse_time};
use crate::program::partners::Partner;
use crate::token::random_u64;
use serde::{Deserialize, Serialize};

const KIND: DocumentKind = DocumentKind::PricingRule;

/// More rules than this on one offer are refused, so resolving a payout stays one small query.
pub const MAX_RULES_PER_OFFER: u32 = 100;

pub const MAX_PRIORITY: i32 = 1_000;

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct PricingRule {
    pub id: String,
    pub offer_id: String,
    /// `None`: the rule applies to every partner of the offer.
    pub partner_id: Option<String>,
    pub payout: Payout,
    /// Higher wins.
    pub priority: i32,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    pub offer_id: String,
    #[serde(default)]
    pub partner_id: Option<String>,
    pub payout: Payout,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_until: Option<String>,
}

/// The offer and partner of a rule are fixed; to move a rule, delete it and create another.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRule {
    #[serde(default)]
    payout: Option<Payout>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(
        default,
        deserialize_with = "crate::program::documents::present_or_null"
    )]
    #[schema(value_type = Option<String>)]
    valid_from: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "crate::program::documents::present_or_null"
    )]
    #[schema(value_type = Option<String>)]
    valid_until: Option<Option<String>>,
}

/// Where a resolved payout came from.
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
pub enum PayoutSource {
    PartnerRule,
    OfferRule,
    OfferDefault,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct ResolvedPayout {
    pub payout: Payout,
    pub source: PayoutSource,
    pub rule_id: Option<String>,
}

/// The resolution order in the module docs, as a pure function over an offer's rules.
pub fn resolve_payout(
    offer: &Offer,
    rules: &[PricingRule],
    partner_id: Option<&str>,
    at: UnixMillis,
) -> ResolvedPayout {
    let valid = |rule: &&PricingRule| {
        let after_start = rule
            .valid_from
            .as_deref()
            .and_then(|from| parse_time("valid_from", from).ok())
            .is_none_or(|from| from <= at);
        let before_end = rule
            .valid_until
            .as_deref()
            .and_then(|until| parse_time("valid_until", until).ok())
            .is_none_or(|until| at < until);
        rule.offer_id == offer.id && after_start && before_end
    };
    let best = |matches: &dyn Fn(&PricingRule) -> bool| {
        rules
            .iter()
            .filter(valid)
            .filter(|rule| matches(rule))
            .max_by(|a, b| {
                a.priority
                    .cmp(&b.priority)
                    .then(a.created_at.cmp(&b.created_at))
            })
    };
    if let Some(partner_id) = partner_id
        && let Some(rule) = best(&|rule| rule.partner_id.as_deref() == Some(partner_id))
    {
        return ResolvedPayout {
            payout: rule.payout.clone(),
            source: PayoutSource::PartnerRule,
            rule_id: Some(rule.id.clone()),
        };
    }
    if let Some(rule) = best(&|rule| rule.partner_id.is_none()) {
        return ResolvedPayout {
            payout: rule.payout.clone(),
            source: PayoutSource::OfferRule,
            rule_id: Some(rule.id.clone()),
        };
    }
    ResolvedPayout {
        payout: offer.default_payout.clone(),
        source: PayoutSource::OfferDefault,
        rule_id: None,
    }
}

fn rule_prefix(offer_id: &str) -> Option<String> {
    crate::program::documents::is_id("off", offer_id).then(|| format!("rul_{}_", &offer_id[4..]))
}

/// `rul_<16 hex>_<16 hex>`
fn is_rule_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("rul_") else {
        return false;
    };
    let Some((offer, random)) = rest.split_once('_') else {
        return false;
    };
    let hex = |text: &str| {
        text.len() == 16
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    hex(offer) && hex(random)
}

/// Every rule of an offer (at most [`MAX_RULES_PER_OFFER`], one query).
pub async fn rules_of_offer(
    program: &Program,
    brand_id: &BrandId,
    offer_id: &str,
) -> Result<Vec<PricingRule>, ProgramError> {
    let Some(prefix) = rule_prefix(offer_id) else {
        return Ok(Vec::new());
    };
    let page = program
        .data
        .list_documents_by_prefix(brand_id, KIND, &prefix, MAX_RULES_PER_OFFER + 1, None)
        .await?;
    page.items.iter().map(decode).collect()
}

fn window(
    valid_from: Option<&str>,
    valid_until: Option<&str>,
) -> Result<(Option<String>, Option<String>), ProgramError> {
    let from = valid_from
        .map(|raw| parse_time("valid_from", raw))
        .transpose()?;
    let until = valid_until
        .map(|raw| parse_time("valid_until", raw))
        .transpose()?;
    if let (Some(from), Some(until)) = (from, until)
        && from >= until
    {
        return Err(ProgramError::invalid(
            "valid_from must be before valid_until",
        ));
    }
    Ok((from.map(format_rfc3339), until.map(format_rfc3339)))
}

fn priority(value: Option<i32>) -> Result<i32, ProgramError> {
    let priority = value.unwrap_or(0);
    if (0..=MAX_PRIORITY).contains(&priority) {
        Ok(priority)
    } else {
        Err(ProgramError::invalid(format!(
            "priority must be between 0 and {MAX_PRIORITY}"
        )))
    }
}

/// A reference to something missing (or another brand's) is 422; any other failure (the store
/// being down, say) keeps its own status.
fn missing_reference(error: ProgramError, message: &str) -> ProgramError {
    if error.code == ErrorCode::NotFound {
        ProgramError::new(ErrorCode::UnprocessableEntity, message)
    } else {
        error
    }
}

/// The query parameters the list accepts.
pub const LIST_PARAMETERS: &[&str] = &["limit", "cursor", "offer_id"];

/// Which pricing rules to list: a page, of all the brand's rules or of one offer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleQuery {
    pub paging: Paging,
    pub offer_id: Option<String>,
}

impl RuleQuery {
    /// The query from [`LIST_PARAMETERS`] pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ProgramError> {
        Ok(Self {
            paging: Paging::from_pairs(pairs)?,
            offer_id: param(pairs, "offer_id").map(str::to_owned),
        })
    }
}

/// One page of the brand's pricing rules before it is answered (the MCP tool may cut it to size).
pub async fn listed_page(
    program: &Program,
    brand_id: &BrandId,
    query: &RuleQuery,
) -> Result<Listed<PricingRule>, ProgramError> {
    let paging = &query.paging;
    match query.offer_id.as_deref() {
        None => list_page::<PricingRule>(program, brand_id, KIND, paging).await,
        Some(offer_id) => {
            let Some(prefix) = rule_prefix(offer_id) else {
                // An offer id that cannot exist has no rules.
                return Ok(Listed::new(KIND.as_str(), Vec::new(), None));
            };
            list_page_with_prefix::<PricingRule>(program, brand_id, KIND, &prefix, paging).await
        }
    }
}

/// Validates and stores a new rule for the brand (also used to seed local demo data).
pub async fn create_rule(
    program: &Program,
    brand_id: &BrandId,
    input: CreateRule,
) -> Result<PricingRule, ProgramError> {
    // References are checked inside the caller's brand: another brand's offer is "does not exist".
    let offer: Stored<Offer> = load(
        program,
        brand_id,
        DocumentKind::Offer,
        "off",
        &input.offer_id,
        "offer",
    )
    .await
    .map_err(|error| missing_reference(error, "offer_id does not name an offer of this brand"))?;
    if let Some(partner_id) = &input.partner_id {
        let _: Stored<Partner> = load(
            program,
            brand_id,
            DocumentKind::Partner,
            "ptr",
            partner_id,
            "partner",
        )
        .await
        .map_err(|error| {
            missing_reference(error, "partner_id does not name a partner of this brand")
        })?;
    }
    let existing = rules_of_offer(program, brand_id, &offer.value.id).await?;
    if existing.len() >= MAX_RULES_PER_OFFER as usize {
        return Err(ProgramError::new(
            ErrorCode::Conflict,
            format!("the offer already has {MAX_RULES_PER_OFFER} pricing rules"),
        ));
    }
    let (valid_from, valid_until) =
        window(input.valid_from.as_deref(), input.valid_until.as_deref())?;
    let prefix = rule_prefix(&offer.value.id).ok_or_else(|| ProgramError::not_found("offer"))?;
    let random =
        random_u64().map_err(|_| ProgramError::new(ErrorCode::Internal, "internal error"))?;
    let now = format_rfc3339(program.keys.now_ms());
    let rule = PricingRule {
        id: format!("{prefix}{random:016x}"),
        offer_id: offer.value.id,
        partner_id: input.partner_id,
        payout: validate_payout("payout", input.payout)?,
        priority: priority(input.priority)?,
        valid_from,
        valid_until,
        created_at: now.clone(),
        updated_at: now,
    };
    let document = Document {
        brand_id: brand_id.clone(),
        kind: KIND,
        id: rule.id.clone(),
        version: 1,
        body: encode(&rule)?,
    };
    program.data.create_document(&document, &[]).await?;
    Ok(rule)
}

/// One of the brand's pricing rules by id; another brand's id is as missing as an unknown one.
pub async fn find(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
) -> Result<PricingRule, ProgramError> {
    Ok(load_rule(program, brand_id, id).await?.value)
}

async fn load_rule(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
) -> Result<Stored<PricingRule>, ProgramError> {
    if !is_rule_id(id) {
        return Err(ProgramError::not_found("pricing rule"));
    }
    let document = program
        .data
        .get_document(brand_id, KIND, id)
        .await?
        .ok_or_else(|| ProgramError::not_found("pricing rule"))?;
    Ok(Stored {
        value: decode(&document)?,
        version: document.version,
    })
}

/// Changes a pricing rule's payout, priority or validity window, with the request's activity
/// record when given.
pub async fn update_rule(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
    input: UpdateRule,
    activity: Option<&ActivityDraft>,
) -> Result<PricingRule, ProgramError> {
    let stored = load_rule(program, brand_id, id).await?;
    let mut rule = stored.value;
    if let Some(payout) = input.payout {
        rule.payout = validate_payout("payout", payout)?;
    }
    if input.priority.is_some() {
        rule.priority = priority(input.priority)?;
    }
    let from = input.valid_from.unwrap_or(rule.valid_from.clone());
    let until = input.valid_until.unwrap_or(rule.valid_until.clone());
    (rule.valid_from, rule.valid_until) = window(from.as_deref(), until.as_deref())?;
    rule.updated_at = format_rfc3339(program.keys.now_ms());
    save(
        program,
        brand_id,
        KIND,
        id,
        stored.version,
        &rule,
        &[],
        &[],
        activity,
    )
    .await?;
    Ok(rule)
}

/// Deletes a pricing rule, with the request's activity record when given.
pub async fn delete_rule(
    program: &Program,
    brand_id: &BrandId,
    id: &str,
    activity: Option<&ActivityDraft>,
) -> Result<(), ProgramError> {
    let stored = load_rule(program, brand_id, id).await?;
    program
        .data
        .delete_document(
            brand_id,
            KIND,
            id,
            stored.version,
            &[],
            activity.map(ActivityDraft::completed).as_ref(),
        )
        .await?;
    Ok(())
}

/// What a conversion of the offer would pay at `at` (default now) for `partner_id`, and which
/// rule decided.
pub async fn resolve_for_offer(
    program: &Program,
    brand_id: &BrandId,
    offer_id: &str,
    partner_id: Option<&str>,
    at: Option<UnixMillis>,
) -> Result<ResolvedPayout, ProgramError> {
    let offer: Stored<Offer> = load(
        program,
        brand_id,
        DocumentKind::Offer,
        "off",
        offer_id,
        "offer",
    )
    .await?;
    let at = at.unwrap_or_else(|| program.keys.now_ms());
    let rules = rules_of_offer(program, brand_id, &offer.value.id).await?;
    Ok(resolve_payout(&offer.value, &rules, partner_id, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::offers::{Caps, OfferStatus, PayoutType};

    fn payout(amount: f64) -> Payout {
        Payout {
            kind: PayoutType::Flat,
            amount,
            currency: "USD".into(),
        }
    }

    fn offer() -> Offer {
        Offer {
            id: "off_00000000000000aa".into(),
            name: "Offer".into(),
            slug: "offer".into(),
            destination_url: "https://x.example".into(),
            default_payout: payout(1.0),
            status: OfferStatus::Active,
            caps: Caps::default(),
            created_at: format_rfc3339(0),
            updated_at: format_rfc3339(0),
        }
    }

    fn rule(
        id: &str,
        partner: Option<&str>,
        amount: f64,
        priority: i32,
        window: (Option<i64>, Option<i64>),
        created: i64,
    ) -> PricingRule {
        PricingRule {
            id: id.into(),
            offer_id: "off_00000000000000aa".into(),
            partner_id: partner.map(str::to_owned),
            payout: payout(amount),
            priority,
            valid_from: window.0.map(format_rfc3339),
            valid_until: window.1.map(format_rfc3339),
            created_at: format_rfc3339(created),
            updated_at: format_rfc3339(created),
        }
    }

    #[test]
    fn partner_rule_then_offer_rule_then_default() {
        let rules = vec![
            rule("r-offer-low", None, 2.0, 1, (None, None), 0),
            rule("r-offer-high", None, 3.0, 5, (None, None), 0),
            rule("r-alice", Some("ptr_a"), 4.0, 0, (None, None), 0),
        ];
        let alice = resolve_payout(&offer(), &rules, Some("ptr_a"), 1_000);
        assert_eq!(
            (alice.source, alice.payout.amount),
            (PayoutSource::PartnerRule, 4.0)
        );
        let bob = resolve_payout(&offer(), &rules, Some("ptr_b"), 1_000);
        assert_eq!(
            (bob.source, bob.rule_id.as_deref()),
            (PayoutSource::OfferRule, Some("r-offer-high"))
        );
        let anonymous = resolve_payout(&offer(), &rules, None, 1_000);
        assert_eq!(anonymous.source, PayoutSource::OfferRule);
        let none = resolve_payout(&offer(), &[], Some("ptr_a"), 1_000);
        assert_eq!(
            (none.source, none.payout.amount),
            (PayoutSource::OfferDefault, 1.0)
        );
    }

    #[test]
    fn validity_windows_and_ties() {
        let rules = vec![
            rule("r-past", Some("ptr_a"), 9.0, 9, (Some(0), Some(1_000)), 0),
            rule("r-old", Some("ptr_a"), 5.0, 1, (None, None), 10),
            rule("r-new", Some("ptr_a"), 6.0, 1, (None, None), 20),
            rule("r-future", None, 7.0, 1, (Some(5_000), None), 0),
        ];
        let now = resolve_payout(&offer(), &rules, Some("ptr_a"), 2_000);
        assert_eq!(
            now.rule_id.as_deref(),
            Some("r-new"),
            "expired rules never apply; ties go to the newer"
        );
        let during = resolve_payout(&offer(), &rules, Some("ptr_a"), 500);
        assert_eq!(during.rule_id.as_deref(), Some("r-past"));
        let at_end = resolve_payout(&offer(), &rules, Some("ptr_a"), 1_000);
        assert_eq!(
            at_end.rule_id.as_deref(),
            Some("r-new"),
            "valid_until is exclusive"
        );
        let before_future = resolve_payout(&offer(), &rules, None, 4_999);
        assert_eq!(before_future.source, PayoutSource::OfferDefault);
        let after_future = resolve_payout(&offer(), &rules, None, 5_000);
        assert_eq!(after_future.rule_id.as_deref(), Some("r-future"));
    }

    #[test]
    fn rule_ids_embed_their_offer() {
        assert_eq!(
            rule_prefix("off_00000000000000aa").as_deref(),
            Some("rul_00000000000000aa_")
        );
        assert_eq!(rule_prefix("off_bad"), None);
        assert!(is_rule_id("rul_00000000000000aa_0123456789abcdef"));
        for bad in [
            "rul_",
            "rul_00000000000000aa",
            "rul_xx_yy",
            "off_00000000000000aa",
        ] {
            assert!(!is_rule_id(bad), "{bad}");
        }
    }
}
