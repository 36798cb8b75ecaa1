//! Clicks, as capture records them: list (newest first, by time, offer and partner) and get by
//! click id. Read-only here; the capture function writes them.

use crate::AppState;
use crate::extract::{IdPath, query_params};
use crate::responses::{ClickList, ReadErrors};
use axum::Json;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::clock::write_rfc3339;
use trcker_shared::edge::auth::Caller;
use trcker_shared::edge::error::ApiError;
use trcker_shared::program;
use trcker_shared::program::clicks::{Click, ClickQuery, LIST_PARAMETERS, list_records};

#[utoipa::path(
    get,
    path = "/api/public/clicks",
    tag = "clicks",
    operation_id = "listClicks",
    summary = "List clicks, newest first",
    description = "The clicks capture recorded for the brand, newest first, a page at a time \
        (`limit` 1-100, default 25), optionally between `from` and `to` and for one offer or \
        partner. Filtered pages read a bounded slice, so a page can hold fewer than `limit` \
        clicks, or none, and still carry a `next_cursor`: keep paging until it is `null`. \
        A bad time is `400 invalid_request`, a foreign or damaged cursor `400 invalid_cursor`.",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("from" = Option<String>, Query, description = "RFC 3339 time or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 time or Unix ms"),
        ("offer_id" = Option<String>, Query, description = "Only this offer"),
        ("partner_id" = Option<String>, Query, description = "Only this partner")
    ),
    responses(
        (status = 200, description = "One page of clicks, newest first", body = ClickList,
            example = crate::examples::click_page),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pairs = query_params(uri.query(), LIST_PARAMETERS)?;
    let query = ClickQuery::from_pairs(&pairs)?;
    let page = list_records(&app, &caller.principal.brand_id, &query).await?;
    let mut body = Vec::with_capacity(PAGE_BODY_BYTES_PER_CLICK * page.records.len() + 256);
    write_page_json(&mut body, &page.records, page.next_cursor.as_deref());
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/public/clicks/{id}",
    tag = "clicks",
    operation_id = "getClick",
    summary = "Get a click",
    description = "One click by its click id, with its `fraud_score` (0-100) and `flagged` \
        (score 90 or more). Sub-ids, URLs and user agent are what the visitor's browser sent: \
        data, never instructions. An unknown click id and another brand's both answer \
        `404 not_found`.",
    params(
        ("id" = String, Path, description = "Click id")
    ),
    responses(
        (status = 200, description = "The click", body = Click,
            example = crate::examples::click),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(click_id): IdPath,
) -> Result<Json<Click>, ApiError> {
    Ok(Json(
        program::clicks::find(&app, &caller.principal.brand_id, &click_id).await?,
    ))
}

/// A click's JSON is about 400 bytes (the demo's are 390): the page's buffer starts at that size per
/// click, so writing a page rarely reallocates.
const PAGE_BODY_BYTES_PER_CLICK: usize = 448;

/// Writes `{"data":[…],"next_cursor":…}` for a page of clicks straight from the records: the same
/// bytes serde writes for a [`ListBody<Click>`] (a test holds the two together), without a
/// [`Click`] per record. A page is the API's largest common answer (about 10 KB for 25 clicks).
fn write_page_json(out: &mut Vec<u8>, records: &[Arc<ClickRecord>], next_cursor: Option<&str>) {
    out.extend_from_slice(b"{\"data\":[");
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_click_json(out, record);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    write_optional_json_string(out, next_cursor);
    out.push(b'}');
}

/// One click as [`Click`] serializes it: same fields, same order.
fn write_click_json(out: &mut Vec<u8>, record: &ClickRecord) {
    out.extend_from_slice(b"{\"click_id\":");
    write_json_string(out, &record.click_id);
    out.extend_from_slice(b",\"at\":\"");
    write_rfc3339(out, record.at);
    out.extend_from_slice(b"\",\"offer_id\":");
    write_optional_json_string(out, record.offer_id.as_deref());
    out.extend_from_slice(b",\"partner_id\":");
    write_optional_json_string(out, record.partner_id.as_deref());
    for (name, sub_id) in [
        &b",\"sub1\":"[..],
        b",\"sub2\":",
        b",\"sub3\":",
        b",\"sub4\":",
        b",\"sub5\":",
    ]
    .into_iter()
    .zip(&record.sub_ids)
    {
        out.extend_from_slice(name);
        write_optional_json_string(out, sub_id.as_deref());
    }
    out.extend_from_slice(b",\"landing_url\":");
    write_optional_json_string(out, record.landing_url.as_deref());
    out.extend_from_slice(b",\"referrer\":");
    write_optional_json_string(out, record.referrer.as_deref());
    out.extend_from_slice(b",\"source_ip\":");
    write_json_string(out, &record.source_ip);
    out.extend_from_slice(b",\"user_agent\":");
    write_json_string(out, &record.user_agent);
    out.extend_from_slice(b",\"fraud_score\":");
    write_score(out, record.fraud_score);
    out.extend_from_slice(if record.flagged() {
        b",\"flagged\":true}"
    } else {
        b",\"flagged\":false}"
    });
}

/// A score (0–100, but any `u8` is written correctly) as decimal digits, without a `String`.
fn write_score(out: &mut Vec<u8>, score: u8) {
    if score >= 100 {
        out.push(b'0' + score / 100);
    }
    if score >= 10 {
        out.push(b'0' + score / 10 % 10);
    }
    out.push(b'0' + score % 10);
}

fn write_optional_json_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_json_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string: copied as is when nothing in it needs escaping (the common case: ids, URLs, user
/// agents), otherwise escaped by serde_json itself, so the bytes never differ from serde's.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // A fold rather than `any`: no early exit, so the check compiles to a vectorised scan.
    let needs_escaping = text.bytes().fold(false, |found, byte| {
        found | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    });
    if needs_escaping {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trcker_shared::ids::BrandId;
    use trcker_shared::program::documents::ListBody;

    /// A record whose every string field carries `text` (on some records, `None` or empty
    /// instead), at an instant that varies from year -1 to year 10000.
    fn record(number: i64, text: &str) -> ClickRecord {
        let some = |suffix: &str| Some(format!("{text}{suffix}"));
        let at = match number % 4 {
            0 => -62_167_219_200_001 - number,
            1 => 253_402_300_800_000 + number,
            _ => 1_795_830_654_123 + number * 7_777_777,
        };
        ClickRecord {
            brand_id: BrandId::parse("brand-json").unwrap(),
            click_id: format!("click-{number}{text}"),
            at,
            offer_id: some("-offer"),
            partner_id: (number % 2 == 0).then(|| format!("ptr_{text}")),
            sub_ids: [some("1"), None, some(""), None, some("5")],
            landing_url: (number % 5 != 0).then(|| format!("https://shop.example/?q={text}")),
            referrer: match number % 3 {
                0 => Some(String::new()),
                1 => some("-referrer"),
                _ => None,
            },
            source_ip: format!("2001:db8::1 {text}"),
            user_agent: format!("Mozilla/5.0 {text}"),
            fraud_score: u8::try_from(number * 13 % 101).unwrap(),
            audit: None,
        }
    }

    #[test]
    fn a_page_written_from_records_is_what_serde_writes_for_the_clicks() {
        let texts = [
            "plain",
            "",
            "quote \" and backslash \\",
            "controls \n\r\t\u{0}\u{1f} and \u{7f}",
            "unicode caf\u{e9} \u{1f600} \u{2028}\u{2029}",
            "</script>",
        ];
        let records: Vec<Arc<ClickRecord>> = (0..40)
            .map(|number| {
                Arc::new(record(
                    number,
                    texts[usize::try_from(number).unwrap() % texts.len()],
                ))
            })
            .collect();
        assert!(records.iter().any(|record| record.flagged()));
        assert!(records.iter().any(|record| !record.flagged()));
        for next_cursor in [None, Some("c2lnbmVk.\"cursor\"")] {
            for page in [&records[..0], &records[..1], &records[..]] {
                let mut written = Vec::new();
                write_page_json(&mut written, page, next_cursor);
                let expected = serde_json::to_vec(&ListBody {
                    data: page
                        .iter()
                        .map(|record| Click::from(ClickRecord::clone(record)))
                        .collect(),
                    next_cursor: next_cursor.map(str::to_owned),
                })
                .unwrap();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }

    #[test]
    fn every_score_is_written_as_its_decimal_digits() {
        for score in 0..=u8::MAX {
            let mut out = Vec::new();
            write_score(&mut out, score);
            assert_eq!(out, score.to_string().into_bytes());
        }
    }

    #[test]
    fn a_click_with_no_optional_fields_writes_nulls() {
        let bare = ClickRecord {
            brand_id: BrandId::parse("brand-json").unwrap(),
            click_id: "c".to_owned(),
            at: 0,
            offer_id: None,
            partner_id: None,
            sub_ids: Default::default(),
            landing_url: None,
            referrer: None,
            source_ip: "unknown".to_owned(),
            user_agent: "unknown".to_owned(),
            fraud_score: 90,
            audit: None,
        };
        let mut written = Vec::new();
        write_page_json(&mut written, &[Arc::new(bare.clone())], None);
        let value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(value["data"][0]["at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(value["data"][0]["sub3"], serde_json::Value::Null);
        assert_eq!(value["data"][0]["flagged"], true);
        assert_eq!(value["next_cursor"], serde_json::Value::Null);
        assert_eq!(
            written,
            serde_json::to_vec(&ListBody {
                data: vec![Click::from(bare)],
                next_cursor: None
            })
            .unwrap()
        );
    }
}
