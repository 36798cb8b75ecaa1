//! Demo data for the in-memory mode: a `demo` brand with a key, two partners, two offers, a
//! pricing rule, 200 clicks and two conversions (one raising a fraud signal), created through
//! the API's own code paths wherever the API has one.

use std::sync::Arc;

use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::rollups;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::program::Program;
use trcker_shared::program::conversions::{self, CreateConversion};
use trcker_shared::program::offers::{self, Caps, CreateOffer, Payout, PayoutType};
use trcker_shared::program::partners::{self, CreatePartner, PartnerStatus};
use trcker_shared::program::pricing::{self, CreateRule};
use trcker_shared::token::PlaintextKey;

pub const DEMO_BRAND: &str = "demo";

/// Seeds the demo brand and returns its key (shown once, by the caller).
pub async fn demo(
    keys: &Arc<KeyService>,
    data: &Arc<dyn BrandDataStore>,
) -> Result<PlaintextKey, String> {
    demo_with(keys, data, || {}).await
}

/// [`demo`], calling `before_conversions` between the clicks (written with their rollup
/// counters) and the conversions (whose counters, as every conversion's, the stream derives): where
/// the local gateway starts its change feed, so each is counted once.
pub async fn demo_with(
    keys: &Arc<KeyService>,
    data: &Arc<dyn BrandDataStore>,
    before_conversions: impl FnOnce(),
) -> Result<PlaintextKey, String> {
    let brand_id = BrandId::parse(DEMO_BRAND).map_err(|error| error.to_string())?;
    keys.create_brand(&brand_id, "Demo Brand")
        .await
        .map_err(|error| error.to_string())?;
    let generated = keys
        .generate(&brand_id, Some("local demo"))
        .await
        .map_err(|error| error.to_string())?;
    let program = Program {
        keys: keys.clone(),
        data: data.clone(),
        min_click_to_conversion_ms: trcker_shared::edge::config::EdgeLimits::default()
            .min_click_to_conversion_ms,
        activity_retention_days: trcker_shared::edge::config::EdgeLimits::default()
            .activity_retention_days,
    };
    let mut partner_ids = Vec::new();
    for (name, slug, email, status) in [
        (
            "Alice Media",
            "alice-media",
            "alice@media.example",
            PartnerStatus::Active,
        ),
        (
            "Bob Deals",
            "bob-deals",
            "bob@deals.example",
            PartnerStatus::Pending,
        ),
    ] {
        let partner = partners::create_partner(
            &program,
            &brand_id,
            CreatePartner {
                name: name.into(),
                email: email.into(),
                slug: slug.into(),
                status: Some(status),
                postback_url_template: None,
            },
        )
        .await
        .map_err(|error| error.message)?;
        partner_ids.push(partner.id);
    }
    let mut offer_ids = Vec::new();
    for (name, slug, kind, amount) in [
        ("Summer Sale", "summer-sale", PayoutType::Flat, 10.0),
        ("Premium Plan", "premium-plan", PayoutType::Percent, 20.0),
    ] {
        let offer = offers::create_offer(
            &program,
            &brand_id,
            CreateOffer {
                name: name.into(),
                slug: slug.into(),
                destination_url: format!("https://shop.example/{slug}"),
                default_payout: Payout {
                    kind,
                    amount,
                    currency: "USD".into(),
                },
                status: None,
                caps: Some(Caps::default()),
            },
        )
        .await
        .map_err(|error| error.message)?;
        offer_ids.push(offer.id);
    }
    // Alice earns more on the summer sale than the offer's default.
    let alice = partner_ids.first().cloned();
    pricing::create_rule(
        &program,
        &brand_id,
        CreateRule {
            offer_id: offer_ids[0].clone(),
            partner_id: alice,
            payout: Payout {
                kind: PayoutType::Flat,
                amount: 15.0,
                currency: "USD".into(),
            },
            priority: Some(10),
            valid_from: None,
            valid_until: None,
        },
    )
    .await
    .map_err(|error| error.message)?;
    seed_clicks(data, &brand_id, &partner_ids, &offer_ids, keys.now_ms()).await?;
    before_conversions();
    // Two conversions: one an hour after its click, one seconds after (which raises a fraud
    // signal), both through the API's own recording path.
    for (click_id, amount, txn_id) in [
        ("demo-click-000", 80.0, "demo-order-1"),
        ("demo-click-199", 45.0, "demo-order-2"),
    ] {
        conversions::record_conversion(
            &program,
            &brand_id,
            CreateConversion {
                click_id: click_id.into(),
                amount: Some(amount),
                currency: None,
                txn_id: Some(txn_id.into()),
                event: None,
            },
            None,
        )
        .await
        .map_err(|error| error.message)?;
    }
    Ok(generated.key)
}

/// 200 clicks over the last hour (the last one 5 s ago), spread over the partners and offers, with
/// their rollups, as capture records them (written directly: capture would stamp them all now).
async fn seed_clicks(
    data: &Arc<dyn BrandDataStore>,
    brand_id: &BrandId,
    partner_ids: &[String],
    offer_ids: &[String],
    now: i64,
) -> Result<(), String> {
    for index in 0..200_usize {
        let click = ClickRecord {
            brand_id: brand_id.clone(),
            click_id: format!("demo-click-{index:03}"),
            // The last click lands 5 s before now, so a conversion on it looks too fast.
            at: now - 3_587_000 + i64::try_from(index).unwrap_or(0) * 18_000,
            offer_id: offer_ids.get(index % offer_ids.len().max(1)).cloned(),
            partner_id: partner_ids.get(index % partner_ids.len().max(1)).cloned(),
            sub_ids: [
                Some(format!("campaign-{}", index % 3)),
                None,
                None,
                None,
                None,
            ],
            landing_url: Some("https://shop.example/summer-sale".into()),
            referrer: Some("https://blog.example/review".into()),
            source_ip: format!("198.51.100.{}", index % 250),
            user_agent: "Mozilla/5.0 (demo seed)".into(),
            fraud_score: if index % 50 == 0 { 95 } else { 5 },
            audit: None,
        };
        let mut counters = vec![(rollups::CLICKS.to_owned(), 1)];
        if click.flagged() {
            counters.push((rollups::FLAGGED_CLICKS.to_owned(), 1));
        }
        let increments = rollups::increments_for(
            click.at,
            &click.click_id,
            click.offer_id.as_deref(),
            click.partner_id.as_deref(),
            &counters,
        );
        data.insert_click_counted(&click, &increments)
            .await
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}
