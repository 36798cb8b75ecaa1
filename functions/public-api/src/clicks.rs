//! Clicks, as capture records them: list (newest first, by time, offer and partner) and get by
//! click id. Read-only here; the capture function writes them.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::Serialize;
use trcker_shared::brand_data::clicks::{
    ClickFilter, ClickRecord, is_click_sort_key, is_valid_click_id,
};
use trcker_shared::clock::format_rfc3339;
use trcker_shared::edge::auth::Caller;
use trcker_shared::edge::error::ApiError;
use trcker_shared::ids::BrandId;

use crate::AppState;
use crate::documents::{ListBody, decode_cursor, encode_cursor};
use crate::extract::{IdPath, Paging, param, parse_time, query_params};
use crate::openapi::{ClickList, ReadErrors};

const LISTING: &str = "CLICKS";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct Click {
    pub click_id: String,
    pub at: String,
    pub offer_id: Option<String>,
    pub partner_id: Option<String>,
    pub sub1: Option<String>,
    pub sub2: Option<String>,
    pub sub3: Option<String>,
    pub sub4: Option<String>,
    pub sub5: Option<String>,
    pub landing_url: Option<String>,
    pub referrer: Option<String>,
    pub source_ip: String,
    pub user_agent: String,
    pub fraud_score: u8,
    pub flagged: bool,
}

impl From<ClickRecord> for Click {
    fn from(record: ClickRecord) -> Self {
        let flagged = record.flagged();
        let [sub1, sub2, sub3, sub4, sub5] = record.sub_ids;
        Self {
            click_id: record.click_id,
            at: format_rfc3339(record.at),
            offer_id: record.offer_id,
            partner_id: record.partner_id,
            sub1,
            sub2,
            sub3,
            sub4,
            sub5,
            landing_url: record.landing_url,
            referrer: record.referrer,
            source_ip: record.source_ip,
            user_agent: record.user_agent,
            fraud_score: record.fraud_score,
            flagged,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/public/clicks",
    tag = "clicks",
    summary = "List clicks, newest first",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("from" = Option<String>, Query, description = "RFC 3339 time or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 time or Unix ms"),
        ("offer_id" = Option<String>, Query, description = "Only this offer"),
        ("partner_id" = Option<String>, Query, description = "Only this partner")
    ),
    responses(
        (status = 200, description = "List clicks, newest first", body = ClickList),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ListBody<Click>>, ApiError> {
    let pairs = query_params(uri.query(), LIST_PARAMETERS)?;
    Ok(Json(
        list_matching(&app, &caller.principal.brand_id, &pairs).await?,
    ))
}

/// The query parameters the list accepts.
pub const LIST_PARAMETERS: &[&str] = &["limit", "cursor", "from", "to", "offer_id", "partner_id"];

/// One page of the brand's clicks, newest first, for the given query parameters (also the MCP
/// tool's answer).
pub async fn list_matching(
    app: &AppState,
    brand_id: &BrandId,
    pairs: &[(String, String)],
) -> Result<ListBody<Click>, ApiError> {
    let paging = Paging::from_pairs(pairs)?;
    let filter = ClickFilter {
        from: param(pairs, "from")
            .map(|raw| parse_time("from", raw))
            .transpose()?,
        to: param(pairs, "to")
            .map(|raw| parse_time("to", raw))
            .transpose()?,
        offer_id: param(pairs, "offer_id").map(str::to_owned),
        partner_id: param(pairs, "partner_id").map(str::to_owned),
    };
    let after = paging
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(app, brand_id, LISTING, cursor))
        .transpose()?;
    if after
        .as_deref()
        .is_some_and(|position| !is_click_sort_key(position))
    {
        return Err(trcker_shared::cursor::InvalidCursor.into());
    }
    let page = app
        .data
        .list_clicks(brand_id, &filter, paging.limit, after.as_deref())
        .await?;
    let data: Vec<Click> = page.items.into_iter().map(Click::from).collect();
    Ok(ListBody {
        data,
        next_cursor: page
            .next_position
            .map(|position| encode_cursor(app, brand_id, LISTING, &position)),
    })
}

#[utoipa::path(
    get,
    path = "/api/public/clicks/{id}",
    tag = "clicks",
    summary = "Get a click",
    params(
        ("id" = String, Path, description = "Click id")
    ),
    responses(
        (status = 200, description = "Get a click", body = Click),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(click_id): IdPath,
) -> Result<Json<Click>, ApiError> {
    if !is_valid_click_id(&click_id) {
        return Err(ApiError::not_found("click"));
    }
    app.data
        .get_click(&caller.principal.brand_id, &click_id)
        .await?
        .map(|record| Json(Click::from(record)))
        .ok_or_else(|| ApiError::not_found("click"))
}
