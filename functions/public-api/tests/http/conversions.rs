//! Pricing rules and payout resolution, clicks, conversions (attribution, idempotency, status
//! transitions), fraud signals, and the daily rollups a conversion adds to (derived from its
//! documents as the stream function derives them).

use std::collections::BTreeMap;
use trcker_shared::brand_data::ClickStoreExt;

use axum::http::StatusCode;
use serde_json::{Value, json};
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::rollups::{
    CONVERSIONS, PAYOUT_MICROS_PREFIX, REVENUE_MICROS_PREFIX, RollupDimension, SIGNALS_PREFIX,
    utc_day,
};
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::ids::BrandId;
use trcker_shared::testing::{Backend, TestApp, TestResponse, derive_recorded_conversions};

use crate::{api, create_partner, offer_body};

trcker_shared::backend_tests! {
    in_memory: api(Backend::in_memory()),
    on_dynamodb: api(Backend::on_dynamodb().await);
    pricing_rules_and_payout_resolution,
    clicks_conversions_and_fraud_signals,
    conversions_count_in_rollups,
}

async fn pricing_rules_and_payout_resolution(api: &TestApp) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    let offer = api
        .post("/api/public/offers")
        .bearer(&key)
        .json(offer_body("rules"))
        .await;
    let offer_id = offer.json()["id"].as_str().unwrap().to_owned();
    let alice = create_partner(api, &key, "alice").await;
    let bob = create_partner(api, &key, "bob").await;
    let payout_for = |partner: Option<&str>, at: Option<&str>| {
        let mut path = format!("/api/public/offers/{offer_id}/payout?");
        if let Some(partner) = partner {
            path.push_str(&format!("partner_id={partner}&"));
        }
        if let Some(at) = at {
            path.push_str(&format!("at={at}"));
        }
        path
    };
    let resolved = api.get(&payout_for(Some(&alice), None)).bearer(&key).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.json());
    assert_eq!(resolved.json()["source"], "offer_default");
    assert_eq!(resolved.json()["payout"]["amount"], 12.5);

    let rule = |partner: Option<&str>, amount: f64, priority: i32, from: Option<&str>| {
        json!({"offer_id": offer_id, "partner_id": partner, "payout": {"type": "flat", "amount": amount},
               "priority": priority, "valid_from": from})
    };
    let low = api
        .post("/api/public/pricing-rules")
        .bearer(&key)
        .json(rule(None, 5.0, 1, None))
        .await;
    assert_eq!(low.status, StatusCode::CREATED, "{}", low.json());
    let high = api
        .post("/api/public/pricing-rules")
        .bearer(&key)
        .json(rule(None, 7.0, 5, None))
        .await;
    let for_alice = api
        .post("/api/public/pricing-rules")
        .bearer(&key)
        .json(rule(Some(&alice), 9.0, 0, None))
        .await;
    let future_bob = api
        .post("/api/public/pricing-rules")
        .bearer(&key)
        .json(rule(Some(&bob), 11.0, 0, Some("2999-01-01T00:00:00Z")))
        .await;
    assert_eq!(future_bob.status, StatusCode::CREATED);

    let amount = |response: &TestResponse| {
        (
            response.json()["source"].clone(),
            response.json()["payout"]["amount"].clone(),
        )
    };
    assert_eq!(
        amount(&api.get(&payout_for(Some(&alice), None)).bearer(&key).await),
        (json!("partner_rule"), json!(9.0))
    );
    assert_eq!(
        amount(&api.get(&payout_for(Some(&bob), None)).bearer(&key).await),
        (json!("offer_rule"), json!(7.0))
    );
    assert_eq!(
        amount(&api.get(&payout_for(None, None)).bearer(&key).await),
        (json!("offer_rule"), json!(7.0))
    );
    assert_eq!(
        amount(
            &api.get(&payout_for(Some(&bob), Some("2999-06-01T00:00:00Z")))
                .bearer(&key)
                .await
        ),
        (json!("partner_rule"), json!(11.0))
    );

    let high_path = format!(
        "/api/public/pricing-rules/{}",
        high.json()["id"].as_str().unwrap()
    );
    let lowered = api
        .patch(&high_path)
        .bearer(&key)
        .json(json!({"priority": 0}))
        .await;
    assert_eq!(lowered.status, StatusCode::OK, "{}", lowered.json());
    assert_eq!(
        amount(&api.get(&payout_for(Some(&bob), None)).bearer(&key).await),
        (json!("offer_rule"), json!(5.0))
    );
    let alice_path = format!(
        "/api/public/pricing-rules/{}",
        for_alice.json()["id"].as_str().unwrap()
    );
    assert_eq!(
        api.delete(&alice_path).bearer(&key).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        amount(&api.get(&payout_for(Some(&alice), None)).bearer(&key).await),
        (json!("offer_rule"), json!(5.0))
    );

    // References are resolved inside the brand only.
    let globex_offer = api
        .post("/api/public/offers")
        .bearer(&other)
        .json(offer_body("theirs"))
        .await;
    for (body, what) in [
        (
            json!({"offer_id": globex_offer.json()["id"], "payout": {"type": "flat", "amount": 1}}),
            "foreign offer",
        ),
        (
            json!({"offer_id": "off_0000000000000000", "payout": {"type": "flat", "amount": 1}}),
            "unknown offer",
        ),
        (
            json!({"offer_id": offer_id, "partner_id": "ptr_0000000000000000", "payout": {"type": "flat", "amount": 1}}),
            "unknown partner",
        ),
    ] {
        let refused = api
            .post("/api/public/pricing-rules")
            .bearer(&key)
            .json(body)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            refused.json()
        );
        assert_eq!(refused.error_code(), "unprocessable_entity");
    }
    for (body, what) in [
        (
            json!({"offer_id": offer_id, "payout": {"type": "flat", "amount": 1}, "valid_from": "2030-01-01T00:00:00Z", "valid_until": "2029-01-01T00:00:00Z"}),
            "window",
        ),
        (
            json!({"offer_id": offer_id, "payout": {"type": "flat", "amount": 1}, "priority": 5000}),
            "priority",
        ),
        (
            json!({"offer_id": offer_id, "payout": {"type": "percent", "amount": 101}}),
            "percent",
        ),
        (json!({"offer_id": offer_id}), "missing payout"),
    ] {
        let refused = api
            .post("/api/public/pricing-rules")
            .bearer(&key)
            .json(body)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            refused.json()
        );
    }
    let foreign = api.get(&high_path).bearer(&other).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(
        api.get("/api/public/pricing-rules")
            .bearer(&other)
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let foreign_payout = api.get(&payout_for(None, None)).bearer(&other).await;
    assert_eq!(foreign_payout.status, StatusCode::NOT_FOUND);
    let listed = api
        .get("/api/public/pricing-rules?limit=2")
        .bearer(&key)
        .await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 2);
    assert!(listed.json()["next_cursor"].is_string());
}

fn click_record(
    brand: &str,
    click_id: &str,
    ago_ms: i64,
    offer: Option<&str>,
    partner: Option<&str>,
) -> ClickRecord {
    ClickRecord {
        brand_id: BrandId::parse(brand).unwrap(),
        click_id: click_id.to_owned(),
        at: SystemClock.now_ms() - ago_ms,
        offer_id: offer.map(str::to_owned),
        partner_id: partner.map(str::to_owned),
        sub_ids: [Some("s1".into()), None, None, None, None],
        landing_url: Some("https://shop.example/landing".into()),
        referrer: None,
        source_ip: "198.51.100.7".into(),
        user_agent: "Mozilla/5.0".into(),
        fraud_score: if click_id == "c2" { 95 } else { 0 },
        audit: None,
    }
}

async fn clicks_conversions_and_fraud_signals(api: &TestApp) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    let offer = api
        .post("/api/public/offers")
        .bearer(&key)
        .json(offer_body("sale"))
        .await;
    let offer_id = offer.json()["id"].as_str().unwrap().to_owned();
    let mut percent_body = offer_body("percent");
    percent_body["default_payout"] = json!({"type": "percent", "amount": 10});
    let percent = api
        .post("/api/public/offers")
        .bearer(&key)
        .json(percent_body)
        .await;
    let percent_id = percent.json()["id"].as_str().unwrap().to_owned();
    let alice = create_partner(api, &key, "alice").await;
    let bob = create_partner(api, &key, "bob").await;
    let rule = json!({"offer_id": offer_id, "partner_id": alice, "payout": {"type": "flat", "amount": 15, "currency": "EUR"}});
    assert_eq!(
        api.post("/api/public/pricing-rules")
            .bearer(&key)
            .json(rule)
            .await
            .status,
        StatusCode::CREATED
    );
    for click in [
        click_record("acme", "c1", 60_000, Some(&offer_id), Some(&alice)),
        click_record("acme", "c2", 5_000, Some(&offer_id), Some(&bob)),
        click_record("acme", "c3", 70_000, None, None),
        click_record("acme", "c4", 120_000, Some(&percent_id), Some(&alice)),
        click_record("globex", "g1", 60_000, None, None),
    ] {
        api.data.insert_click(&click).await.unwrap();
    }

    // Clicks.
    let clicks = api.get("/api/public/clicks").bearer(&key).await;
    assert_eq!(clicks.status, StatusCode::OK, "{}", clicks.json());
    assert_eq!(
        clicks.headers[axum::http::header::CONTENT_TYPE],
        "application/json",
        "the page is written by hand, not by Json"
    );
    let ids: Vec<&str> = clicks.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["click_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c2", "c1", "c3", "c4"], "newest first");
    let by_partner = api
        .get(&format!(
            "/api/public/clicks?partner_id={alice}&offer_id={offer_id}"
        ))
        .bearer(&key)
        .await;
    assert_eq!(by_partner.json()["data"].as_array().unwrap().len(), 1);
    let flagged = api.get("/api/public/clicks/c2").bearer(&key).await;
    assert_eq!(
        (
            flagged.json()["fraud_score"].clone(),
            flagged.json()["flagged"].clone()
        ),
        (json!(95), json!(true))
    );
    assert_eq!(flagged.json()["sub1"], "s1");
    assert_eq!(
        api.get("/api/public/clicks/g1").bearer(&key).await.status,
        StatusCode::NOT_FOUND,
        "another brand's click"
    );
    assert_eq!(
        api.get("/api/public/clicks/a%20b")
            .bearer(&key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        api.get("/api/public/clicks").bearer(&other).await.json()["data"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );

    // A conversion is attributed through its click and priced by the rules.
    let order = json!({"click_id": "c1", "amount": 100, "txn_id": "order-1"});
    let created = api
        .post("/api/public/conversions")
        .bearer(&key)
        .json(order.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    assert_eq!(created.json()["duplicate"], false);
    assert_eq!(created.json()["partner_id"], alice.as_str());
    assert_eq!(created.json()["offer_id"], offer_id.as_str());
    assert_eq!(created.json()["status"], "pending");
    assert_eq!(created.json()["event"], "sale");
    assert_eq!(created.json()["currency"], "USD");
    assert_eq!(created.json()["payout"]["amount"], 15.0);
    assert_eq!(created.json()["payout"]["currency"], "EUR");
    assert_eq!(created.json()["payout"]["source"], "partner_rule");
    let conversion_id = created.json()["id"].as_str().unwrap().to_owned();

    let repeat = api
        .post("/api/public/conversions")
        .bearer(&key)
        .json(json!({"click_id": "c2", "txn_id": "order-1"}))
        .await;
    assert_eq!(repeat.status, StatusCode::OK, "{}", repeat.json());
    assert_eq!(repeat.json()["duplicate"], true);
    assert_eq!(repeat.json()["id"], conversion_id.as_str());
    assert_eq!(repeat.json()["click_id"], "c1", "the original, unchanged");

    for (body, status, what) in [
        (
            json!({"click_id": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown click",
        ),
        (
            json!({"click_id": "g1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "another brand's click",
        ),
        (
            json!({"click_id": "c3"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "click without offer",
        ),
        (
            json!({"click_id": "c4"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "percent payout without amount",
        ),
        (
            json!({"click_id": "c1", "amount": -5}),
            StatusCode::BAD_REQUEST,
            "negative amount",
        ),
        (
            json!({"click_id": "c1", "amount": "10"}),
            StatusCode::BAD_REQUEST,
            "amount type",
        ),
        (
            json!({"click_id": "c1", "currency": "euro"}),
            StatusCode::BAD_REQUEST,
            "currency",
        ),
        (
            json!({"click_id": "c1", "event": "Big Sale!"}),
            StatusCode::BAD_REQUEST,
            "event",
        ),
        (
            json!({"click_id": "a b"}),
            StatusCode::BAD_REQUEST,
            "click id shape",
        ),
        (
            json!({"click_id": "c1", "coupon": "x"}),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            json!({"amount": 5}),
            StatusCode::BAD_REQUEST,
            "missing click_id",
        ),
    ] {
        let refused = api
            .post("/api/public/conversions")
            .bearer(&key)
            .json(body)
            .await;
        assert_eq!(refused.status, status, "{what}: {}", refused.json());
    }
    let listed = api.get("/api/public/conversions").bearer(&key).await;
    assert_eq!(
        listed.json()["data"].as_array().unwrap().len(),
        1,
        "refusals and duplicates wrote nothing"
    );
    assert!(
        api.get("/api/public/fraud-signals")
            .bearer(&key)
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Percent payout, in the conversion's currency.
    let percent_sale = api
        .post("/api/public/conversions")
        .bearer(&key)
        .json(json!({"click_id": "c4", "amount": 80, "currency": "GBP"}))
        .await;
    assert_eq!(
        percent_sale.status,
        StatusCode::CREATED,
        "{}",
        percent_sale.json()
    );
    assert_eq!(
        percent_sale.json()["payout"],
        json!({"amount": 8.0, "currency": "GBP", "source": "offer_default", "rule_id": null})
    );

    // Too soon after its click: a fraud signal, written with the conversion.
    let fast = api
        .post("/api/public/conversions")
        .bearer(&key)
        .json(json!({"click_id": "c2", "amount": 10}))
        .await;
    assert_eq!(fast.status, StatusCode::CREATED, "{}", fast.json());
    assert_eq!(fast.json()["payout"]["amount"], 12.5);
    assert_eq!(fast.json()["payout"]["source"], "offer_default");
    let signals = api.get("/api/public/fraud-signals").bearer(&key).await;
    let signals = signals.json()["data"].as_array().unwrap().clone();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0]["kind"], "fast_conversion");
    assert_eq!(signals[0]["conversion_id"], fast.json()["id"]);
    assert_eq!(signals[0]["review_state"], "open");
    let signal_path = format!(
        "/api/public/fraud-signals/{}",
        signals[0]["id"].as_str().unwrap()
    );
    let reviewed = api
        .patch(&signal_path)
        .bearer(&key)
        .json(json!({"review_state": "confirmed"}))
        .await;
    assert_eq!(reviewed.status, StatusCode::OK, "{}", reviewed.json());
    assert_eq!(reviewed.json()["review_state"], "confirmed");
    assert!(
        api.get("/api/public/fraud-signals?review_state=open")
            .bearer(&key)
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let bad_state = api
        .patch(&signal_path)
        .bearer(&key)
        .json(json!({"review_state": "maybe"}))
        .await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);

    // Status transitions.
    let path = format!("/api/public/conversions/{conversion_id}");
    let fast_path = format!(
        "/api/public/conversions/{}",
        fast.json()["id"].as_str().unwrap()
    );
    let set = |status: &str| json!({"status": status});
    assert_eq!(
        api.patch(&fast_path)
            .bearer(&key)
            .json(set("paid"))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.patch(&path)
            .bearer(&key)
            .json(set("approved"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.patch(&path).bearer(&key).json(set("paid")).await.status,
        StatusCode::OK
    );
    let back = api.patch(&path).bearer(&key).json(set("approved")).await;
    assert_eq!(back.status, StatusCode::CONFLICT);
    assert_eq!(back.error_code(), "conflict");
    assert_eq!(
        api.patch(&fast_path)
            .bearer(&key)
            .json(set("rejected"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.patch(&fast_path)
            .bearer(&key)
            .json(set("approved"))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.patch(&path).bearer(&key).json(set("lost")).await.status,
        StatusCode::BAD_REQUEST
    );

    // Lists with filters, pages.
    let paid = api
        .get("/api/public/conversions?status=paid")
        .bearer(&key)
        .await;
    assert_eq!(paid.json()["data"].as_array().unwrap().len(), 1);
    let future = api
        .get("/api/public/conversions?from=2999-01-01T00:00:00Z")
        .bearer(&key)
        .await;
    assert!(future.json()["data"].as_array().unwrap().is_empty());
    let mut seen = 0;
    let mut next = "/api/public/conversions?limit=1".to_owned();
    loop {
        let page = api.get(&next).bearer(&key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json());
        seen += page.json()["data"].as_array().unwrap().len();
        match page.json()["next_cursor"].as_str() {
            Some(cursor) => next = format!("/api/public/conversions?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, 3);

    // Another brand sees none of it.
    assert_eq!(
        api.get(&path).bearer(&other).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.patch(&path)
            .bearer(&other)
            .json(set("rejected"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&signal_path).bearer(&other).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        api.get("/api/public/conversions")
            .bearer(&other)
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        api.get("/api/public/fraud-signals")
            .bearer(&other)
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let foreign_click = api
        .post("/api/public/conversions")
        .bearer(&other)
        .json(json!({"click_id": "c1"}))
        .await;
    assert_eq!(foreign_click.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A brand's rollups of `dimension` from yesterday to tomorrow (the API runs on the system clock,
/// so a test may straddle midnight), summed over the days: group -> counter -> total.
async fn rollup_totals(
    api: &TestApp,
    brand: &str,
    dimension: RollupDimension,
) -> BTreeMap<String, BTreeMap<String, i64>> {
    let now = SystemClock.now_ms();
    let rows = api
        .data
        .read_rollups(
            &BrandId::parse(brand).unwrap(),
            dimension,
            &utc_day(now - 86_400_000),
            &utc_day(now + 86_400_000),
        )
        .await
        .unwrap();
    let mut totals: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in rows {
        let group = totals.entry(row.group).or_default();
        for (name, value) in row.counters {
            *group.entry(name).or_default() += value;
        }
    }
    totals
}

fn counters(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), *value))
        .collect()
}

/// Each new conversion adds one conversion, its sale amount and its payout (micro-units per
/// currency) and its fast-conversion signal to the brand's rollups, for the brand, its offer and
/// its partner, once the stream has derived them: nothing before; a duplicate `txn_id`, a refused
/// request, a status change and a repeated delivery add nothing.
async fn conversions_count_in_rollups(api: &TestApp) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    let create_offer = |body: Value| {
        let key = key.clone();
        async move {
            let created = api.post("/api/public/offers").bearer(&key).json(body).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
            created.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let offer_id = create_offer(offer_body("sale")).await;
    let mut percent_body = offer_body("percent");
    percent_body["default_payout"] = json!({"type": "percent", "amount": 10});
    let percent_id = create_offer(percent_body).await;
    let alice = create_partner(api, &key, "alice").await;
    for click in [
        click_record("acme", "k1", 60_000, Some(&offer_id), Some(&alice)),
        click_record("acme", "k2", 5_000, Some(&offer_id), Some(&alice)),
        click_record("acme", "k3", 120_000, Some(&percent_id), None),
        click_record("globex", "k1", 60_000, None, None),
    ] {
        api.data.insert_click(&click).await.unwrap();
    }
    let convert = |who: &str, body: Value| {
        let who = who.to_owned();
        async move {
            api.post("/api/public/conversions")
                .bearer(&who)
                .json(body)
                .await
        }
    };

    let first = convert(
        &key,
        json!({"click_id": "k1", "amount": 100.1, "txn_id": "o-1"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json());
    let repeat = convert(
        &key,
        json!({"click_id": "k2", "amount": 7, "txn_id": "o-1"}),
    )
    .await;
    assert_eq!(repeat.json()["duplicate"], true, "{}", repeat.json());
    // Five seconds after its click: a fast-conversion signal, counted with the conversion.
    let fast = convert(&key, json!({"click_id": "k2", "amount": 0.1})).await;
    assert_eq!(fast.status, StatusCode::CREATED, "{}", fast.json());
    let percent = convert(
        &key,
        json!({"click_id": "k3", "amount": 80, "currency": "GBP"}),
    )
    .await;
    assert_eq!(percent.status, StatusCode::CREATED, "{}", percent.json());
    // Without an amount: no revenue, still the payout.
    let no_amount = convert(&key, json!({"click_id": "k1", "txn_id": "o-2"})).await;
    assert_eq!(
        no_amount.status,
        StatusCode::CREATED,
        "{}",
        no_amount.json()
    );
    let refused = convert(&key, json!({"click_id": "k3"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let foreign = convert(&other, json!({"click_id": "k2", "amount": 1})).await;
    assert_eq!(
        foreign.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "acme's click"
    );
    assert!(
        rollup_totals(api, "acme", RollupDimension::Total)
            .await
            .is_empty(),
        "the conversion's own write adds to no rollup: the stream derives them"
    );
    let acme = BrandId::parse("acme").unwrap();
    // Four conversions, and the signal of the fast one.
    assert_eq!(
        derive_recorded_conversions(api.data.as_ref(), &acme).await,
        5
    );
    let derived = rollup_totals(api, "acme", RollupDimension::Total).await;
    // A status change after creation, and the creation delivered again, change nothing.
    let path = format!(
        "/api/public/conversions/{}",
        first.json()["id"].as_str().unwrap()
    );
    let approved = api
        .patch(&path)
        .bearer(&key)
        .json(json!({"status": "approved"}))
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.json());
    derive_recorded_conversions(api.data.as_ref(), &acme).await;
    assert_eq!(
        rollup_totals(api, "acme", RollupDimension::Total).await,
        derived
    );
    let globex = BrandId::parse("globex").unwrap();
    assert_eq!(
        derive_recorded_conversions(api.data.as_ref(), &globex).await,
        0
    );

    let revenue = |currency: &str| format!("{REVENUE_MICROS_PREFIX}{currency}");
    let payout = |currency: &str| format!("{PAYOUT_MICROS_PREFIX}{currency}");
    let fast_signal = format!("{SIGNALS_PREFIX}fast_conversion");
    let total = rollup_totals(api, "acme", RollupDimension::Total).await;
    assert_eq!(
        total,
        BTreeMap::from([(
            String::new(),
            counters(&[
                (CONVERSIONS, 4),
                (&revenue("USD"), 100_200_000),
                (&revenue("GBP"), 80_000_000),
                (&payout("EUR"), 37_500_000),
                (&payout("GBP"), 8_000_000),
                (&fast_signal, 1),
            ])
        )])
    );
    let offers = rollup_totals(api, "acme", RollupDimension::Offer).await;
    assert_eq!(
        offers,
        BTreeMap::from([
            (
                offer_id.clone(),
                counters(&[
                    (CONVERSIONS, 3),
                    (&revenue("USD"), 100_200_000),
                    (&payout("EUR"), 37_500_000),
                    (&fast_signal, 1),
                ])
            ),
            (
                percent_id.clone(),
                counters(&[
                    (CONVERSIONS, 1),
                    (&revenue("GBP"), 80_000_000),
                    (&payout("GBP"), 8_000_000),
                ])
            ),
        ])
    );
    let partners = rollup_totals(api, "acme", RollupDimension::Partner).await;
    assert_eq!(partners.len(), 1, "k3 has no partner: {partners:?}");
    assert_eq!(partners[&alice][CONVERSIONS], 3);
    assert_eq!(partners[&alice][&fast_signal], 1);
    assert!(
        rollup_totals(api, "globex", RollupDimension::Total)
            .await
            .is_empty(),
        "another brand's rollups are its own"
    );
}
