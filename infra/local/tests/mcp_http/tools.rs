//! The tools: every one against the REST API's answers (on both backends), brand isolation
//! through them (on both backends), and tool failures as `isError` results, not protocol errors.

use axum::http::Method;
use serde_json::json;

use crate::{Edge, LEGACY, TODAY};

trcker_shared::backend_tests! {
    in_memory: Edge::memory(),
    on_dynamodb: Edge::dynamodb().await;
    every_tool_answers_like_the_rest_api,
    brand_a_never_sees_brand_b,
}

/// Every tool, against what the REST API answers for the same key.
async fn every_tool_answers_like_the_rest_api(edge: &Edge) {
    let brand = edge.brand("acme", 12).await;
    let key = brand.key.as_str();

    let tools = edge
        .rpc(
            Some(key),
            LEGACY,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    let tools = tools.json()["result"]["tools"].as_array().unwrap().clone();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "get_conversion",
            "get_fraud_summary",
            "get_offer",
            "get_partner",
            "get_program_stats",
            "get_top_partners",
            "list_activity",
            "list_clicks",
            "list_conversions",
            "list_offers",
            "list_partners",
            "list_pricing_rules",
            "whoami"
        ]
    );
    for tool in &tools {
        if let Some(limit) = tool["inputSchema"]["properties"].get("limit") {
            assert_eq!(limit["minimum"], 1, "{}", tool["name"]);
            assert_eq!(limit["maximum"], 100, "{}", tool["name"]);
        }
        assert_eq!(
            tool["annotations"]["readOnlyHint"], true,
            "{}",
            tool["name"]
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{}", tool["name"]);
        assert_eq!(tool["outputSchema"]["type"], "object", "{}", tool["name"]);
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 10),
            "{}",
            tool["name"]
        );
    }

    assert_eq!(
        edge.tool(key, "whoami", json!({})).await,
        edge.rest(key, Method::GET, "/api/public/whoami", None)
            .await
    );
    for (tool, arguments, path) in [
        ("list_offers", json!({}), "/api/public/offers".to_owned()),
        (
            "list_partners",
            json!({"limit": 5}),
            "/api/public/partners?limit=5".to_owned(),
        ),
        (
            "list_pricing_rules",
            json!({"offer_id": brand.offer_id}),
            format!("/api/public/pricing-rules?offer_id={}", brand.offer_id),
        ),
        (
            "list_clicks",
            json!({"limit": 5, "partner_id": brand.partner_id}),
            format!("/api/public/clicks?limit=5&partner_id={}", brand.partner_id),
        ),
        (
            "list_conversions",
            json!({"status": "pending", "offer_id": brand.offer_id}),
            format!(
                "/api/public/conversions?status=pending&offer_id={}",
                brand.offer_id
            ),
        ),
        (
            "get_offer",
            json!({"id": brand.offer_id}),
            format!("/api/public/offers/{}", brand.offer_id),
        ),
        (
            "get_partner",
            json!({"id": brand.partner_id}),
            format!("/api/public/partners/{}", brand.partner_id),
        ),
        (
            "get_conversion",
            json!({"id": brand.conversion_id}),
            format!("/api/public/conversions/{}", brand.conversion_id),
        ),
    ] {
        let from_mcp = edge.tool(key, tool, arguments).await;
        let from_rest = edge.rest(key, Method::GET, &path, None).await;
        assert_eq!(from_mcp, from_rest, "{tool}");
        assert!(from_mcp.is_object(), "{tool}");
    }
    let rules = edge
        .tool(
            key,
            "list_pricing_rules",
            json!({"offer_id": brand.offer_id}),
        )
        .await;
    assert_eq!(rules["data"].as_array().unwrap().len(), 1);

    // Paging: the cursor of a tool's page continues the listing.
    let first = edge.tool(key, "list_clicks", json!({"limit": 5})).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = edge
        .tool(key, "list_clicks", json!({"limit": 5, "cursor": cursor}))
        .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 5);
    assert_ne!(first["data"][0], second["data"][0]);

    let stats = edge
        .tool(
            key,
            "get_program_stats",
            json!({"from_day": "2026-11-27", "to_day": TODAY, "group_by": "offer"}),
        )
        .await;
    assert_eq!(stats["totals"]["clicks"], 12);
    assert_eq!(stats["totals"]["flagged_clicks"], 3);
    assert_eq!(stats["totals"]["conversions"], 1);
    assert_eq!(stats["totals"]["revenue"]["USD"], 120.0);
    assert_eq!(stats["totals"]["payout"]["USD"], 12.0, "10% partner rule");
    assert_eq!(stats["days"][0]["day"], TODAY);
    assert_eq!(stats["groups"][0]["id"], brand.offer_id.as_str());
    assert_eq!(stats["groups"][0]["clicks"], 12);
    assert_eq!(stats["group_count"], 1);

    let top = edge
        .tool(key, "get_top_partners", json!({"by": "revenue"}))
        .await;
    assert_eq!(top["partners"][0]["partner_id"], brand.partner_id.as_str());
    assert_eq!(top["partners"][0]["conversions"], 1);
    assert_eq!(top["currency"], "USD");

    let fraud = edge.tool(key, "get_fraud_summary", json!({})).await;
    assert_eq!(fraud["clicks"], 12);
    assert_eq!(fraud["flagged_clicks"], 3);
    assert_eq!(fraud["flagged_share"], 0.25);
    assert_eq!(
        fraud["top_flagged_partners"][0]["partner_id"],
        brand.partner_id.as_str()
    );

    let activity = edge
        .tool(key, "list_activity", json!({"source": "mcp", "limit": 100}))
        .await;
    let targets: Vec<&str> = activity["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"tools/call get_fraud_summary"),
        "{targets:?}"
    );
    assert!(targets.contains(&"tools/list"), "{targets:?}");
    assert!(
        activity["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["source"] == "mcp")
    );
}

/// Brand A's key reaches nothing of brand B's: not by id, not by cursor, not in any listing or
/// statistic.
async fn brand_a_never_sees_brand_b(edge: &Edge) {
    let a = edge.brand("brand-a", 3).await;
    let b = edge.brand("brand-b", 4).await;
    for (tool, id) in [
        ("get_offer", &b.offer_id),
        ("get_partner", &b.partner_id),
        ("get_conversion", &b.conversion_id),
    ] {
        let result = edge.call(&a.key, tool, json!({"id": id})).await;
        assert_eq!(result["isError"], true, "{tool}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("not_found")
        );
    }
    let b_cursor = edge.tool(&b.key, "list_clicks", json!({"limit": 1})).await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let result = edge
        .call(&a.key, "list_clicks", json!({"cursor": b_cursor}))
        .await;
    assert_eq!(result["isError"], true, "another brand's cursor");

    let a_ids = [a.offer_id.as_str(), a.partner_id.as_str()];
    let b_text = [
        b.offer_id.as_str(),
        b.partner_id.as_str(),
        b.conversion_id.as_str(),
        "brand-b",
    ];
    for (tool, arguments) in [
        ("whoami", json!({})),
        ("list_offers", json!({})),
        ("list_partners", json!({})),
        ("list_clicks", json!({"limit": 100})),
        ("list_clicks", json!({"offer_id": b.offer_id})),
        ("list_conversions", json!({})),
        ("list_conversions", json!({"partner_id": b.partner_id})),
        ("list_pricing_rules", json!({})),
        ("list_pricing_rules", json!({"offer_id": b.offer_id})),
        ("list_activity", json!({"limit": 100})),
        ("get_program_stats", json!({"group_by": "partner"})),
        ("get_top_partners", json!({})),
        ("get_fraud_summary", json!({})),
    ] {
        let answer = edge.tool(&a.key, tool, arguments).await.to_string();
        for foreign in b_text {
            assert!(
                !answer.contains(foreign),
                "{tool} leaked {foreign}: {answer}"
            );
        }
        if tool == "list_offers" {
            assert!(answer.contains(a_ids[0]));
        }
    }
    let stats = edge.tool(&a.key, "get_program_stats", json!({})).await;
    assert_eq!(stats["totals"]["clicks"], 3, "only brand A's clicks");
}

#[tokio::test]
async fn tool_failures_are_error_results_not_protocol_errors() {
    let edge = Edge::memory();
    let brand = edge.brand("acme", 1).await;
    let key = brand.key.as_str();
    for (tool, arguments, expected) in [
        (
            "get_offer",
            json!({"id": "off_00000000000000ff"}),
            "not_found",
        ),
        ("get_offer", json!({"id": "x#/é".repeat(300)}), "not_found"),
        ("get_partner", json!({}), "missing field `id`"),
        ("list_offers", json!({"limit": "ten"}), "invalid arguments"),
        ("list_offers", json!({"limit": 0}), "limit must be"),
        ("list_offers", json!({"limit": 101}), "limit must be"),
        ("list_offers", json!({"cursor": "garbage"}), "cursor"),
        ("list_offers", json!({"colour": "red"}), "unknown field"),
        ("whoami", json!({"bogus": 1}), "unknown field"),
        ("list_clicks", json!({"from": "yesterday"}), "from must be"),
        (
            "list_conversions",
            json!({"status": "won"}),
            "status must be",
        ),
        (
            "list_activity",
            json!({"source": "email"}),
            "source must be",
        ),
        (
            "get_program_stats",
            json!({"from_day": "2026-02-30"}),
            "from_day",
        ),
        (
            "get_program_stats",
            json!({"from_day": "2025-01-01", "to_day": TODAY}),
            "at most 92 days",
        ),
        (
            "get_program_stats",
            json!({"group_by": "country"}),
            "invalid arguments",
        ),
        ("get_top_partners", json!({"currency": "usd"}), "currency"),
        ("get_top_partners", json!({"limit": 1000}), "limit must be"),
    ] {
        let result = edge.call(key, tool, arguments.clone()).await;
        assert_eq!(result["isError"], true, "{tool} {arguments}: {result}");
        let message = result["content"][0]["text"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{tool} {arguments}: {message:?} should mention {expected:?}"
        );
    }
    // An unknown tool is the one protocol error: the client asked for something that is not there.
    let response = edge
        .rpc(
            Some(key),
            LEGACY,
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                   "params": {"name": "delete_everything", "arguments": {}}}),
        )
        .await;
    assert!(
        response.json()["error"]["code"].is_i64(),
        "{}",
        response.text()
    );
    // Nothing was written by any of it: the brand still has its one offer.
    let offers = edge.tool(key, "list_offers", json!({})).await;
    assert_eq!(offers["data"].as_array().unwrap().len(), 1);
}
