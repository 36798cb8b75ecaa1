//! Each fraud signal (a crawler's user agent, a repeat from one source, one source's velocity over
//! the hourly limit), scored on the click and written as a signal document by the stream's
//! derivation, never told to the caller, and kept to the one source and brand.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{CRAWLER, strictly_scored};

#[tokio::test]
async fn fraud_signals() {
    let capture = &strictly_scored();
    let (brand_id, key) = capture.brand("acme").await;
    let kinds = |signals: &[Value]| -> Vec<String> {
        signals
            .iter()
            .map(|signal| signal["kind"].as_str().unwrap().to_owned())
            .collect()
    };

    // A crawler: flagged on its own.
    let response = capture
        .capture(json!({"click_id": "bot-1"}))
        .bearer(&key)
        .user_agent(CRAWLER)
        .source_ip("198.51.100.1")
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert!(
        response.json().get("fraud_score").is_none(),
        "scores are not told to the caller"
    );
    capture.derive().await;
    let click = capture
        .data
        .get_click(&brand_id, "bot-1")
        .await
        .unwrap()
        .unwrap();
    assert!(click.flagged(), "score {}", click.fraud_score);
    assert_eq!(
        kinds(&capture.signals(&brand_id).await),
        vec!["bot_user_agent"]
    );

    // The same IP again 10 s later: a repeat (scored, not flagged on its own).
    let browser = |ip, body| capture.capture(body).bearer(&key).source_ip(ip);
    browser("198.51.100.2", json!({"click_id": "first"})).await;
    capture.clock.advance_ms(10_000);
    browser("198.51.100.2", json!({"click_id": "second"})).await;
    capture.derive().await;
    let second = capture
        .data
        .get_click(&brand_id, "second")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.fraud_score, 50);
    assert!(!second.flagged());
    assert_eq!(
        capture
            .data
            .get_click(&brand_id, "first")
            .await
            .unwrap()
            .unwrap()
            .fraud_score,
        0
    );
    let signals = capture.signals(&brand_id).await;
    assert_eq!(
        kinds(&signals)[0],
        "source_repeat",
        "newest first: {signals:?}"
    );
    assert_eq!(signals[0]["click_id"], "second");

    // Past the hourly limit (3 in this test): the crossing click raises one velocity signal,
    // later ones are flagged without another. Two minutes apart, so no repeats.
    capture.clock.advance_ms(120_000);
    for index in 0..5 {
        browser("198.51.100.3", json!({"click_id": format!("fast-{index}")})).await;
        capture.clock.advance_ms(120_000);
    }
    capture.derive().await;
    let mut scores = Vec::new();
    for index in 0..5 {
        let click = capture
            .data
            .get_click(&brand_id, &format!("fast-{index}"))
            .await
            .unwrap()
            .unwrap();
        scores.push(click.fraud_score);
    }
    assert_eq!(scores, vec![0, 0, 0, 90, 90]);
    let kinds_now = kinds(&capture.signals(&brand_id).await);
    assert_eq!(
        kinds_now
            .iter()
            .filter(|kind| *kind == "source_velocity")
            .count(),
        1,
        "{kinds_now:?}"
    );
    // The velocity of one IP does not touch another IP or another brand.
    let (other_brand, other_key) = capture.brand("globex").await;
    capture
        .capture(json!({"click_id": "elsewhere"}))
        .bearer(&other_key)
        .source_ip("198.51.100.3")
        .await;
    capture.derive().await;
    let elsewhere = capture
        .data
        .get_click(&other_brand, "elsewhere")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(elsewhere.fraud_score, 0);
    assert!(capture.signals(&other_brand).await.is_empty());
}
