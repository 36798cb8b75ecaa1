//! Pricing rules: per-offer payouts, optionally for one partner, with a priority and an optional
//! validity window. Payout resolution, in order:
//! 1. the partner-specific rules of the offer that are valid at that time, highest priority first;
//! 2. then the offer's rules for every partner (no `partner_id`), highest priority first;
//! 3. then the offer's `default_payout`.
//!
//! Ties in priority go to the newer rule. A rule id embeds its offer id
//! (`rul_<offer hex>_<random hex>`), so an offer's rules are one query by id prefix.

use crate::AppState;
use crate::extract::{IdPath, JsonBody, query_params};
use crate::responses::{PricingRuleList, ReadErrors, WriteErrors};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use trcker_shared::edge::auth::{Caller, RecordedInWrite};
use trcker_shared::edge::error::ApiError;
use trcker_shared::program;
use trcker_shared::program::documents::ListBody;
use trcker_shared::program::draft::ActivityDraft;
use trcker_shared::program::paging::{optional_time, param};
use trcker_shared::program::pricing::{
    CreateRule, LIST_PARAMETERS, PricingRule, ResolvedPayout, UpdateRule, create_rule,
};

#[utoipa::path(
    get,
    path = "/api/public/pricing-rules",
    tag = "pricing-rules",
    operation_id = "listPricingRules",
    summary = "List pricing rules",
    description = "The brand's pricing rules, or only one offer's (`offer_id`), a page at a \
        time (`limit` 1-100, default 25). Answers `{data, next_cursor}`; pass `next_cursor` \
        back as `cursor` until it is `null`. A foreign or damaged cursor is \
        `400 invalid_cursor`.",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("offer_id" = Option<String>, Query, description = "Only this offer's rules")
    ),
    responses(
        (status = 200, description = "One page of pricing rules", body = PricingRuleList,
            example = crate::examples::pricing_rule_page),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ListBody<PricingRule>>, ApiError> {
    let pairs = query_params(uri.query(), LIST_PARAMETERS)?;
    let brand_id = &caller.principal.brand_id;
    let page = program::pricing::listed_page(
        &app,
        brand_id,
        &program::pricing::RuleQuery::from_pairs(&pairs)?,
    )
    .await?;
    Ok(Json(page.into_body(&app, brand_id)))
}

#[utoipa::path(
    post,
    path = "/api/public/pricing-rules",
    tag = "pricing-rules",
    operation_id = "createPricingRule",
    summary = "Create a pricing rule",
    description = "Creates a payout rule for an offer, for one partner (`partner_id`) or for \
        all of them, with a `priority` (0-1000, default 0; higher wins, ties go to the newer \
        rule) and an optional validity window (`valid_from` before `valid_until`, RFC 3339 or \
        Unix ms). Answers `201` with the rule. An offer or partner the brand does not have is \
        `422 unprocessable_entity`; a priority out of range, a bad time or window, or a \
        malformed payout is `400 invalid_request`.",
    request_body(content = CreateRule, example = crate::examples::create_pricing_rule),
    responses(
        (status = 201, description = "The rule created", body = PricingRule,
            example = crate::examples::pricing_rule),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<CreateRule>,
) -> Result<(StatusCode, Json<PricingRule>), ApiError> {
    let rule = create_rule(&app, &caller.principal.brand_id, input).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

#[utoipa::path(
    get,
    path = "/api/public/pricing-rules/{id}",
    tag = "pricing-rules",
    operation_id = "getPricingRule",
    summary = "Get a pricing rule",
    description = "One pricing rule of the calling key's brand, by id. An unknown id and \
        another brand's id both answer `404 not_found`.",
    params(
        ("id" = String, Path, description = "Rule id")
    ),
    responses(
        (status = 200, description = "The rule", body = PricingRule,
            example = crate::examples::pricing_rule),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<PricingRule>, ApiError> {
    Ok(Json(
        program::pricing::find(&app, &caller.principal.brand_id, &id).await?,
    ))
}

#[utoipa::path(
    patch,
    path = "/api/public/pricing-rules/{id}",
    tag = "pricing-rules",
    operation_id = "updatePricingRule",
    summary = "Change a pricing rule",
    description = "Changes the payout, priority or validity window the body names; a rule's \
        offer and partner are fixed (delete it and create another to move it). Answers the rule \
        as changed. `404 not_found` for an unknown id, `409 conflict` for a concurrent change, \
        `400 invalid_request` for a value out of range or a window that ends before it starts.",
    params(
        ("id" = String, Path, description = "Rule id")
    ),
    request_body(content = UpdateRule, example = crate::examples::update_pricing_rule),
    responses(
        (status = 200, description = "The rule as changed", body = PricingRule,
            example = crate::examples::updated_pricing_rule),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<UpdateRule>,
) -> Result<RecordedInWrite<Json<PricingRule>>, ApiError> {
    let draft = draft.answering(StatusCode::OK.as_u16());
    let brand_id = &caller.principal.brand_id;
    let updated = program::pricing::update_rule(&app, brand_id, &id, input, Some(&draft));
    Ok(RecordedInWrite(Json(updated.await?)))
}

#[utoipa::path(
    delete,
    path = "/api/public/pricing-rules/{id}",
    tag = "pricing-rules",
    operation_id = "deletePricingRule",
    summary = "Delete a pricing rule",
    description = "Deletes the rule; conversions already priced by it keep their payout. \
        Answers `204` with no body; `404 not_found` for an unknown id.",
    params(
        ("id" = String, Path, description = "Rule id")
    ),
    responses(
        (status = 204, description = "Deleted"),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
) -> Result<RecordedInWrite<StatusCode>, ApiError> {
    let draft = draft.answering(StatusCode::NO_CONTENT.as_u16());
    program::pricing::delete_rule(&app, &caller.principal.brand_id, &id, Some(&draft)).await?;
    Ok(RecordedInWrite(StatusCode::NO_CONTENT))
}

/// `GET /offers/{id}/payout?partner_id=&at=`: what a conversion would pay, and why.
#[utoipa::path(
    get,
    path = "/api/public/offers/{id}/payout",
    tag = "pricing-rules",
    operation_id = "resolveOfferPayout",
    summary = "Resolve the payout of an offer",
    description = "What a conversion of this offer would pay now, or at `at`, for `partner_id` \
        (or for no partner), and which rule decided: the partner's highest-priority valid \
        rule, else the offer's highest-priority rule for every partner, else the offer's \
        `default_payout` (`source` says which, `rule_id` names the rule). Writes nothing. \
        `404 not_found` for an unknown offer; a bad `at` is `400 invalid_request`.",
    params(
        ("id" = String, Path, description = "Offer id"),
        ("partner_id" = Option<String>, Query, description = "Partner to price for"),
        ("at" = Option<String>, Query, description = "RFC 3339 time or Unix ms (default now)")
    ),
    responses(
        (status = 200, description = "The payout, and where it came from", body = ResolvedPayout,
            example = crate::examples::resolved_payout),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(offer_id): IdPath,
    uri: Uri,
) -> Result<Json<ResolvedPayout>, ApiError> {
    let pairs = query_params(uri.query(), &["partner_id", "at"])?;
    let at = optional_time("at", param(&pairs, "at"))?;
    let brand_id = &caller.principal.brand_id;
    let partner_id = param(&pairs, "partner_id");
    let resolved =
        program::pricing::resolve_for_offer(&app, brand_id, &offer_id, partner_id, at).await?;
    Ok(Json(resolved))
}
