//! The daily rollups the stream's derivation adds captures to: every click, flag and signal
//! counted once, in the brand's total and per offer and partner, in agreement with the stored
//! clicks and signal documents.

use axum::http::StatusCode;
use serde_json::json;
use trcker_shared::brand_data::rollups::{
    CLICKS, FLAGGED_CLICKS, RollupDimension, RollupRow, SIGNALS_PREFIX, utc_day,
};
use trcker_shared::testing::TestResponse;

use crate::{CRAWLER, START_MS, strictly_scored};

/// Every click, flag and signal is counted once, in the brand's total and per offer and partner;
/// duplicates, refusals and another brand's captures add nothing.
#[tokio::test]
async fn rollups_count_each_click_flag_and_signal_once() {
    let capture = &strictly_scored();
    let (brand_id, key) = capture.brand("acme").await;
    let (other_brand, other_key) = capture.brand("globex").await;
    let browser = |ip, body| capture.capture(body).bearer(&key).source_ip(ip);
    let crawler = |body| browser("198.51.100.2", body).user_agent(CRAWLER);
    let both = json!({"click_id": "plain", "offer": "summer-sale", "partner": "alice"});
    let status = |response: TestResponse| response.status;

    // A plain click, and the same click id again (a duplicate: counted once).
    assert_eq!(
        status(browser("198.51.100.1", both.clone()).await),
        StatusCode::CREATED
    );
    capture.clock.advance_ms(120_000);
    assert_eq!(status(browser("198.51.100.1", both).await), StatusCode::OK);
    // A crawler: flagged at insert. The same crawler 10 s later: flagged at insert too, and the
    // repeat finding rescores it (90 -> 100) without counting it as flagged a second time. Its
    // crawler signal is the source's one of this hour, raised by bot-1.
    let bot_1 = json!({"click_id": "bot-1", "offer": "summer-sale"});
    assert_eq!(status(crawler(bot_1).await), StatusCode::CREATED);
    capture.derive().await;
    capture.clock.advance_ms(10_000);
    assert_eq!(
        status(crawler(json!({"click_id": "bot-2"})).await),
        StatusCode::CREATED
    );
    capture.derive().await;
    assert_eq!(
        capture
            .data
            .get_click(&brand_id, "bot-2")
            .await
            .unwrap()
            .unwrap()
            .fraud_score,
        100
    );
    // Five browser clicks from one address, two minutes apart, over a limit of 3 an hour: the
    // fourth is flagged by rescoring and raises the velocity signal, the fifth is flagged by
    // rescoring without a signal.
    capture.clock.advance_ms(120_000);
    for index in 0..5 {
        let body = json!({"click_id": format!("fast-{index}"), "partner": "alice"});
        assert_eq!(
            status(browser("198.51.100.3", body).await),
            StatusCode::CREATED
        );
        capture.clock.advance_ms(120_000);
    }
    // Refused input and another brand's click add nothing here.
    let refused = browser("198.51.100.4", json!({"click_id": "x", "offer": "winter"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    capture
        .capture(json!({"click_id": "plain"}))
        .bearer(&other_key)
        .await;
    capture.derive().await;

    let totals = capture.rollups(&brand_id, RollupDimension::Total).await;
    assert_eq!(totals.len(), 1, "{totals:?}");
    let total = &totals[0];
    assert_eq!(
        (total.day.as_str(), total.group.as_str()),
        (utc_day(START_MS).as_str(), "")
    );
    assert_eq!(
        total.counter(CLICKS),
        8,
        "plain, bot-1, bot-2, fast-0..4: {total:?}"
    );
    assert_eq!(
        total.counter(FLAGGED_CLICKS),
        4,
        "bot-1, bot-2, fast-3, fast-4: {total:?}"
    );
    let signal = |row: &RollupRow, kind: &str| row.counter(&format!("{SIGNALS_PREFIX}{kind}"));
    assert_eq!(signal(total, "bot_user_agent"), 1, "one a source and hour");
    assert_eq!(signal(total, "source_repeat"), 1);
    assert_eq!(signal(total, "source_velocity"), 1);
    // The signal counters agree with the signal documents.
    let counted: i64 = total
        .counters
        .iter()
        .filter(|(name, _)| name.starts_with(SIGNALS_PREFIX))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(
        usize::try_from(counted).unwrap(),
        capture.signals(&brand_id).await.len()
    );
    // The flagged counter agrees with the stored clicks.
    let flagged = capture
        .clicks(&brand_id)
        .await
        .iter()
        .filter(|click| click.flagged())
        .count();
    assert_eq!(flagged, 4);

    let offers = capture.rollups(&brand_id, RollupDimension::Offer).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].group, "off_00000000000000aa");
    assert_eq!(
        (
            offers[0].counter(CLICKS),
            offers[0].counter(FLAGGED_CLICKS),
            signal(&offers[0], "bot_user_agent")
        ),
        (2, 1, 1),
        "plain and bot-1"
    );
    let partners = capture.rollups(&brand_id, RollupDimension::Partner).await;
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(partners[0].group, "ptr_00000000000000bb");
    assert_eq!(
        (
            partners[0].counter(CLICKS),
            partners[0].counter(FLAGGED_CLICKS),
            signal(&partners[0], "source_velocity")
        ),
        (6, 2, 1),
        "plain and fast-0..4"
    );
    let foreign = capture.rollups(&other_brand, RollupDimension::Total).await;
    assert_eq!(foreign.len(), 1);
    assert_eq!(foreign[0].counter(CLICKS), 1);
}
