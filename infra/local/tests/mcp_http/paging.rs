//! Paging under the result budget: pages of large items are smaller but still cover everything,
//! a page of large clicks is one store read, and trimmed activity pages resume after their last
//! entry.

use std::sync::Arc;

use axum::http::Method;
use serde_json::json;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::{ActivityRecord, ClickStoreExt, Surface};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::store::memory::MemoryStore;

use crate::{Brand, Edge, START_MS};

/// A click at the largest size capture stores: two 2,048-character URLs, five 255-character
/// sub-ids and a 512-character user agent (about 4.7 KB of JSON).
fn big_click(brand: &Brand, index: i64) -> ClickRecord {
    let long = |length: usize| Some("x".repeat(length));
    ClickRecord {
        brand_id: brand.id.clone(),
        click_id: format!("big-{index:03}"),
        at: START_MS - 1_000_000 + index * 1_000,
        offer_id: Some(brand.offer_id.clone()),
        partner_id: Some(brand.partner_id.clone()),
        sub_ids: [long(255), long(255), long(255), long(255), long(255)],
        landing_url: Some(format!("https://shop.example/{}", "p".repeat(2_020))),
        referrer: Some(format!("https://blog.example/{}", "r".repeat(2_020))),
        source_ip: "192.0.2.1".into(),
        user_agent: "u".repeat(512),
        fraud_score: 0,
        audit: None,
    }
}

#[tokio::test]
async fn large_items_give_smaller_pages_that_still_cover_everything() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 0).await;
    for index in 0..60_i64 {
        edge.data
            .insert_click(&big_click(&brand, index))
            .await
            .unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut arguments = json!({"limit": 100});
        if let Some(cursor) = &cursor {
            arguments["cursor"] = json!(cursor);
        }
        let result = edge.call(&brand.key, "list_clicks", arguments).await;
        let bytes = result["structuredContent"].to_string().len();
        assert!(
            bytes <= trcker_mcp::server::RESULT_BUDGET_BYTES,
            "page of {bytes} bytes"
        );
        let page = &result["structuredContent"];
        let items = page["data"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() < 100, "{}", items.len());
        for item in items {
            assert!(
                seen.insert(item["click_id"].as_str().unwrap().to_owned()),
                "no repeats"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 60, "every click, once, over {pages} pages");
    assert!(pages >= 3);
}

/// Issue 19: a page of maximum-size clicks is read once, at the limit asked for, and cut to the
/// result budget; it is never read again with smaller limits. Each `list_clicks` call costs the
/// store exactly what one REST page of the same query costs (one merge round: a query per click
/// shard), and walking the trimmed pages by their cursors returns every click exactly once, in
/// the REST API's order.
#[tokio::test]
async fn a_page_of_large_clicks_is_one_store_read_and_the_walk_misses_nothing() {
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let edge = Edge::new(
        Arc::new(MemoryStore::new()),
        data.clone(),
        EdgeLimits::default(),
    );
    let brand = edge.brand("acme", 0).await;
    for index in 0..60_i64 {
        edge.data
            .insert_click(&big_click(&brand, index))
            .await
            .unwrap();
    }
    // The wrapper forwards a listing whole to the store (one call, whatever the backend does
    // inside it), so a repeated read round shows up as a second listing.
    let listings = |calls: &[&str]| calls.iter().filter(|call| **call == "list_clicks").count();
    let everything = edge
        .rest(
            &brand.key,
            Method::GET,
            "/api/public/clicks?limit=100",
            None,
        )
        .await;
    let expected: Vec<&str> = everything["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|click| click["click_id"].as_str().unwrap())
        .collect();
    assert_eq!(expected.len(), 60);

    for limit in [100, 25] {
        let mut walked: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut arguments = json!({"limit": limit});
            let mut rest_path = format!("/api/public/clicks?limit={limit}");
            if let Some(cursor) = &cursor {
                arguments["cursor"] = json!(cursor);
                rest_path.push_str(&format!("&cursor={cursor}"));
            }
            data.take_calls();
            let page = edge.tool(&brand.key, "list_clicks", arguments).await;
            let tool_calls = data.take_calls();
            edge.rest(&brand.key, Method::GET, &rest_path, None).await;
            let rest_calls = data.take_calls();
            assert_eq!(
                listings(&tool_calls),
                1,
                "one read round (one listing), not one per smaller limit: {tool_calls:?}"
            );
            assert_eq!(
                listings(&tool_calls),
                listings(&rest_calls),
                "the tool costs what one REST page of the same query costs"
            );
            let items = page["data"].as_array().unwrap();
            assert!(!items.is_empty() && items.len() < limit, "{}", items.len());
            assert!(
                page.to_string().len() <= trcker_mcp::server::RESULT_BUDGET_BYTES,
                "within budget"
            );
            walked.extend(
                items
                    .iter()
                    .map(|click| click["click_id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            walked, expected,
            "limit {limit}: every click once, in order, nothing skipped or repeated"
        );
    }
}

/// A trimmed page of the delivery log (entries with long user agents) continues right after its
/// last entry too: the activity cursor is built from the entry's own position.
#[tokio::test]
async fn trimmed_activity_pages_resume_after_their_last_entry() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 0).await;
    for index in 0..90_i64 {
        let record = ActivityRecord {
            brand_id: brand.id.clone(),
            // Some share a millisecond, so the request id orders them.
            at: START_MS - 100_000 + index / 3 * 1_000,
            request_id: format!("req-big-{index:03}"),
            surface: Surface::Capture,
            method: "POST".into(),
            target: format!("/api/clicks/capture/{}", "t".repeat(40)),
            status: 201,
            latency_ms: 3,
            key_id: "key-1".into(),
            fingerprint: "fp".into(),
            source_ip: "192.0.2.9".into(),
            user_agent: format!("Mozilla/5.0 {}", "a".repeat(500)),
            outcome: "ok".into(),
            attempts: None,
            expires_at: 4_000_000_000,
            click_id: None,
        };
        edge.data.append_activity(&record).await.unwrap();
    }
    let expected: Vec<String> = edge
        .rest(
            &brand.key,
            Method::GET,
            "/api/public/activity?source=capture&limit=100",
            None,
        )
        .await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), 90);
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut arguments = json!({"source": "capture", "limit": 100});
        if let Some(cursor) = &cursor {
            arguments["cursor"] = json!(cursor);
        }
        let page = edge.tool(&brand.key, "list_activity", arguments).await;
        pages += 1;
        let items = page["data"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() < 90);
        walked.extend(
            items
                .iter()
                .map(|entry| entry["request_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 2, "the entries do not fit one page");
    assert_eq!(walked, expected, "every entry once, in order");
}
