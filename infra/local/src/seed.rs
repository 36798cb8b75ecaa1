//! Demo data for the in-memory mode: a `demo` brand with a key, two partners and two offers,
//! created through the same code paths the API uses.

use std::sync::Arc;

use trcker_public_api::AppState;
use trcker_public_api::offers::{self, Caps, CreateOffer, Payout, PayoutType};
use trcker_public_api::partners::{self, CreatePartner, PartnerStatus};
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::token::PlaintextKey;

pub const DEMO_BRAND: &str = "demo";

/// Seeds the demo brand and returns its key (shown once, by the caller).
pub async fn demo(
    keys: &Arc<KeyService>,
    data: &Arc<dyn BrandDataStore>,
) -> Result<PlaintextKey, String> {
    let brand_id = BrandId::parse(DEMO_BRAND).map_err(|error| error.to_string())?;
    keys.create_brand(&brand_id, "Demo Brand")
        .await
        .map_err(|error| error.to_string())?;
    let generated = keys
        .generate(&brand_id, Some("local demo"))
        .await
        .map_err(|error| error.to_string())?;
    let app = AppState {
        keys: keys.clone(),
        data: data.clone(),
    };
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
        partners::create_partner(
            &app,
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
    }
    for (name, slug, kind, amount) in [
        ("Summer Sale", "summer-sale", PayoutType::Flat, 10.0),
        ("Premium Plan", "premium-plan", PayoutType::Percent, 20.0),
    ] {
        offers::create_offer(
            &app,
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
    }
    Ok(generated.key)
}
