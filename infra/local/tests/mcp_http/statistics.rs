//! Statistics tools: day series for one offer or partner, store calls that do not grow with the
//! number of events, and answers that stay within one tool result's budget.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{self, increments_for};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::program::conversions::{CreateConversion, record_conversion};
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::derive_recorded_conversions;

use crate::{Brand, Edge, START_MS, TODAY, test_click, write_clicks};

#[tokio::test]
async fn statistics_for_one_offer_or_partner_have_their_own_day_series() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 4).await;
    let other_partner = edge
        .rest(
            &brand.key,
            Method::POST,
            "/api/public/partners",
            Some(json!({"name": "Other", "email": "o@example.com", "slug": "other"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    write_clicks(
        &*edge.data,
        &brand.id,
        &brand.offer_id,
        &other_partner,
        4..6,
    )
    .await;
    let only = edge
        .tool(
            &brand.key,
            "get_program_stats",
            json!({"partner_id": other_partner}),
        )
        .await;
    assert_eq!(only["only"], other_partner.as_str());
    assert_eq!(only["totals"]["clicks"], 2);
    assert_eq!(only["days"][0]["clicks"], 2);
    let whole = edge.tool(&brand.key, "get_program_stats", json!({})).await;
    assert_eq!(whole["totals"]["clicks"], 6);
    assert!(whole["only"].is_null());
    let offer = edge
        .tool(
            &brand.key,
            "get_program_stats",
            json!({"offer_id": brand.offer_id, "group_by": "partner"}),
        )
        .await;
    assert_eq!(offer["totals"]["clicks"], 6);
    assert_eq!(offer["group_count"], 2);
    let both = edge
        .call(
            &brand.key,
            "get_program_stats",
            json!({"offer_id": brand.offer_id, "partner_id": brand.partner_id}),
        )
        .await;
    assert_eq!(both["isError"], true);
}

/// Store calls of one statistics request after `events` clicks and a conversion on every
/// sixtieth of them, derived.
async fn stats_calls(events: usize, tool: &str, arguments: Value) -> Vec<&'static str> {
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let edge = Edge::new(
        Arc::new(MemoryStore::new()),
        data.clone(),
        EdgeLimits::default(),
    );
    let brand = edge.brand("acme", 0).await;
    let app = trcker_shared::program::Program {
        keys: edge.keys.clone(),
        data: edge.data.clone(),
        min_click_to_conversion_ms: EdgeLimits::default().min_click_to_conversion_ms,
        activity_retention_days: EdgeLimits::default().activity_retention_days,
    };
    // Sixty clicks (one per 10-minute slot of `write_clicks`), then a conversion on the first,
    // the newest: the memory store keeps a brand's newest 2,000 clicks, so it still holds it.
    for index in (0..events).step_by(60) {
        write_clicks(
            &*edge.data,
            &brand.id,
            &brand.offer_id,
            &brand.partner_id,
            index..(index + 60).min(events),
        )
        .await;
        let conversion = CreateConversion {
            click_id: format!("{}-click-{index}", brand.id),
            amount: Some(10.0),
            currency: None,
            txn_id: Some(format!("txn-{index}")),
            event: None,
        };
        record_conversion(&app, &brand.id, conversion, None)
            .await
            .unwrap();
    }
    // As the stream function would: the conversions' rollups come from their documents.
    assert_eq!(
        derive_recorded_conversions(&*edge.data, &brand.id).await,
        events.div_ceil(60)
    );
    let stats = edge.tool(&brand.key, "get_program_stats", json!({})).await;
    assert_eq!(
        stats["totals"]["clicks"], events as i64,
        "the rollups saw every click"
    );
    assert_eq!(
        stats["totals"]["conversions"],
        events.div_ceil(60) as i64,
        "and every conversion"
    );
    data.take_calls();
    edge.tool(&brand.key, tool, arguments).await;
    data.take_calls()
}

#[tokio::test]
async fn statistics_cost_the_same_for_10_and_10000_events() {
    for (tool, arguments) in [
        ("get_program_stats", json!({})),
        ("get_program_stats", json!({"group_by": "partner"})),
        ("get_top_partners", json!({"by": "clicks"})),
        ("get_fraud_summary", json!({})),
    ] {
        let few = stats_calls(10, tool, arguments.clone()).await;
        let many = stats_calls(10_000, tool, arguments.clone()).await;
        assert_eq!(few, many, "{tool} {arguments}");
        let rollup_reads = few.iter().filter(|call| call.contains("rollup")).count();
        assert!(rollup_reads > 0, "{tool}: {few:?}");
        assert!(
            few.len() <= 2 * rollups::ROLLUP_SHARDS as usize + 2,
            "{tool}: one query per shard and dimension, plus the guard's two calls: {few:?}"
        );
    }
}

/// A click on `day_offset` days before the start, for `partner_id`, counted with `counters`.
async fn write_counted_click(
    edge: &Edge,
    brand: &Brand,
    index: usize,
    day_offset: i64,
    partner_id: &str,
    counters: &[(String, i64)],
) {
    let click = test_click(
        &brand.id,
        format!("budget-{index}"),
        START_MS - day_offset * 86_400_000,
        &brand.offer_id,
        partner_id,
    );
    let increments = increments_for(
        click.at,
        &click.click_id,
        click.offer_id.as_deref(),
        click.partner_id.as_deref(),
        counters,
    );
    edge.data
        .insert_click_counted(&click, &increments)
        .await
        .unwrap();
}

/// Revenue and payout counters in `currencies` made-up currencies, besides the click itself.
fn money_counters(currencies: usize) -> Vec<(String, i64)> {
    let mut counters = vec![(rollups::CLICKS.to_owned(), 1)];
    for index in 0..currencies {
        let code: String = [b'A' + (index / 26) as u8, b'A' + (index % 26) as u8, b'X']
            .iter()
            .map(|&byte| char::from(byte))
            .collect();
        counters.push((
            format!("{}{code}", rollups::REVENUE_MICROS_PREFIX),
            1_234_567,
        ));
        counters.push((format!("{}{code}", rollups::PAYOUT_MICROS_PREFIX), 123_456));
    }
    counters
}

/// Statistics answers stay within one tool result's budget: the ranked lists are cut (the counts
/// still say how many there are), and a day series too large on its own is refused with advice.
#[tokio::test]
async fn statistics_answers_stay_within_the_result_budget() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 0).await;
    // 100 partners, each with money in 8 currencies: far more than one result carries.
    for index in 0..100 {
        let partner = format!("ptr_{index:016x}");
        write_counted_click(&edge, &brand, index, 0, &partner, &money_counters(8)).await;
    }
    let budget = trcker_mcp::server::RESULT_BUDGET_BYTES;
    for (tool, arguments, list, count) in [
        (
            "get_program_stats",
            json!({"group_by": "partner", "limit": 100}),
            "groups",
            "group_count",
        ),
        (
            "get_top_partners",
            json!({"by": "clicks", "limit": 100}),
            "partners",
            "partner_count",
        ),
    ] {
        let answer = edge.tool(&brand.key, tool, arguments).await;
        let size = answer.to_string().len();
        let kept = answer[list].as_array().unwrap().len();
        assert!(size <= budget, "{tool}: {size} bytes");
        assert!((1..100).contains(&kept), "{tool}: cut to fit, {kept} kept");
        assert_eq!(answer[count], 100, "{tool}: the count still says how many");
    }
    let stats = edge.tool(&brand.key, "get_program_stats", json!({})).await;
    assert_eq!(stats["totals"]["clicks"], 100, "totals are never cut");

    // 92 days with money in 40 currencies each: the day series alone is over the budget.
    let other = edge.brand("globex", 0).await;
    for day in 0..92 {
        write_counted_click(
            &edge,
            &other,
            1_000 + day as usize,
            day,
            &other.partner_id,
            &money_counters(40),
        )
        .await;
    }
    let range = json!({"from_day": "2026-08-29", "to_day": TODAY});
    let refused = edge.call(&other.key, "get_program_stats", range).await;
    assert_eq!(refused["isError"], true, "{refused}");
    let message = refused["content"][0]["text"].as_str().unwrap();
    assert!(message.starts_with("invalid_request: "), "{message}");
    assert!(message.contains("ask for fewer days"), "{message}");
    let week = json!({"from_day": "2026-11-22", "to_day": TODAY});
    let answered = edge.tool(&other.key, "get_program_stats", week).await;
    assert_eq!(answered["days"].as_array().unwrap().len(), 7);
}
