//! Example request and response bodies for the OpenAPI document: the `example = …` of the
//! handlers' `#[utoipa::path]` attributes name these functions. The values are shaped like the
//! demo brand's answers (`trcker-local`'s seed), one set of ids across all of them, so a reader (or
//! a generated client's docs) sees a consistent program; Spectral checks each against its schema
//! (`oas3-valid-media-example`), and a test here checks them against the API's own types.

use serde_json::{Value, json};

const PARTNER_ID: &str = "ptr_43b9a700b9f2fb80";
const OFFER_ID: &str = "off_dd2c75ea24ac24b6";
const RULE_ID: &str = "rul_dd2c75ea24ac24b6_3ee43ced5ace709b";
const CLICK_ID: &str = "demo-click-042";
const CONVERSION_ID: &str = "cnv_1a23f4863a2cf7e2";
const SIGNAL_ID: &str = "frd_1a23f4863a260928";
const CREATED_AT: &str = "2026-12-04T04:20:38.429Z";
const UPDATED_AT: &str = "2026-12-04T09:12:05.118Z";
/// A `next_cursor` as the API writes one (opaque: signed, bound to the brand and the list).
const NEXT_CURSOR: &str = "AQRkZW1vUEFSVE5FUjpwdHJfNDNiOWE3MDBiOWYyZmI4MGE594qcPtz2vYCRd9z5dzo";

/// One page of a list: the item, and a cursor because there is more.
fn page(item: Value) -> Value {
    json!({ "data": [item], "next_cursor": NEXT_CURSOR })
}

pub fn health() -> Value {
    json!({ "status": "ok" })
}

pub fn whoami() -> Value {
    json!({
        "brand_id": "demo",
        "key_id": "key_01a23f48639df8168247",
        "fingerprint": "fp_943bae807837"
    })
}

pub fn create_partner() -> Value {
    json!({
        "name": "Alice Media",
        "email": "alice@media.example",
        "slug": "alice-media",
        "status": "active",
        "postback_url_template": "https://media.example/postback"
    })
}

pub fn update_partner() -> Value {
    json!({ "status": "paused", "postback_url_template": null })
}

fn partner_with(status: &str, postback_url_template: Option<&str>, updated_at: &str) -> Value {
    json!({
        "id": PARTNER_ID,
        "name": "Alice Media",
        "email": "alice@media.example",
        "slug": "alice-media",
        "status": status,
        "postback_url_template": postback_url_template,
        "created_at": CREATED_AT,
        "updated_at": updated_at
    })
}

pub fn partner() -> Value {
    partner_with("active", Some("https://media.example/postback"), CREATED_AT)
}

/// The partner after [`update_partner`].
pub fn updated_partner() -> Value {
    partner_with("paused", None, UPDATED_AT)
}

pub fn partner_page() -> Value {
    page(partner())
}

pub fn create_offer() -> Value {
    json!({
        "name": "Summer Sale",
        "slug": "summer-sale",
        "destination_url": "https://shop.example/summer-sale",
        "default_payout": { "type": "flat", "amount": 10.0, "currency": "USD" },
        "status": "active",
        "caps": { "daily_conversions": 500, "monthly_conversions": null }
    })
}

pub fn update_offer() -> Value {
    json!({ "status": "paused" })
}

fn offer_with(status: &str, updated_at: &str) -> Value {
    json!({
        "id": OFFER_ID,
        "name": "Summer Sale",
        "slug": "summer-sale",
        "destination_url": "https://shop.example/summer-sale",
        "default_payout": { "type": "flat", "amount": 10.0, "currency": "USD" },
        "status": status,
        "caps": { "daily_conversions": 500, "monthly_conversions": null },
        "created_at": CREATED_AT,
        "updated_at": updated_at
    })
}

pub fn offer() -> Value {
    offer_with("active", CREATED_AT)
}

/// The offer after [`update_offer`].
pub fn updated_offer() -> Value {
    offer_with("paused", UPDATED_AT)
}

pub fn archived_offer() -> Value {
    offer_with("archived", UPDATED_AT)
}

pub fn offer_page() -> Value {
    page(offer())
}

pub fn resolved_payout() -> Value {
    json!({
        "payout": { "type": "flat", "amount": 15.0, "currency": "USD" },
        "source": "partner_rule",
        "rule_id": RULE_ID
    })
}

pub fn create_pricing_rule() -> Value {
    json!({
        "offer_id": OFFER_ID,
        "partner_id": PARTNER_ID,
        "payout": { "type": "flat", "amount": 15.0, "currency": "USD" },
        "priority": 10,
        "valid_from": "2026-12-01T00:00:00Z",
        "valid_until": null
    })
}

pub fn update_pricing_rule() -> Value {
    json!({ "priority": 20, "valid_until": "2027-01-01T00:00:00Z" })
}

fn pricing_rule_with(priority: i32, valid_until: Option<&str>, updated_at: &str) -> Value {
    json!({
        "id": RULE_ID,
        "offer_id": OFFER_ID,
        "partner_id": PARTNER_ID,
        "payout": { "type": "flat", "amount": 15.0, "currency": "USD" },
        "priority": priority,
        "valid_from": "2026-12-01T00:00:00.000Z",
        "valid_until": valid_until,
        "created_at": CREATED_AT,
        "updated_at": updated_at
    })
}

pub fn pricing_rule() -> Value {
    pricing_rule_with(10, None, CREATED_AT)
}

/// The rule after [`update_pricing_rule`].
pub fn updated_pricing_rule() -> Value {
    pricing_rule_with(20, Some("2027-01-01T00:00:00.000Z"), UPDATED_AT)
}

pub fn pricing_rule_page() -> Value {
    page(pricing_rule())
}

pub fn click() -> Value {
    json!({
        "click_id": CLICK_ID,
        "at": "2026-12-04T03:20:51.430Z",
        "offer_id": OFFER_ID,
        "partner_id": PARTNER_ID,
        "sub1": "campaign-1",
        "sub2": null,
        "sub3": null,
        "sub4": null,
        "sub5": null,
        "landing_url": "https://shop.example/summer-sale",
        "referrer": "https://blog.example/review",
        "source_ip": "198.51.100.42",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "fraud_score": 5,
        "flagged": false
    })
}

pub fn click_page() -> Value {
    page(click())
}

pub fn create_conversion() -> Value {
    json!({
        "click_id": CLICK_ID,
        "amount": 80.0,
        "currency": "USD",
        "txn_id": "order-1001",
        "event": "sale"
    })
}

pub fn update_conversion() -> Value {
    json!({ "status": "approved" })
}

fn conversion_with(status: &str, updated_at: &str) -> Value {
    json!({
        "id": CONVERSION_ID,
        "click_id": CLICK_ID,
        "offer_id": OFFER_ID,
        "partner_id": PARTNER_ID,
        "txn_id": "order-1001",
        "event": "sale",
        "amount": 80.0,
        "currency": "USD",
        "payout": {
            "amount": 15.0,
            "currency": "USD",
            "source": "partner_rule",
            "rule_id": RULE_ID
        },
        "status": status,
        "click_at": "2026-12-04T03:20:51.430Z",
        "seconds_from_click": 3587.004,
        "created_at": "2026-12-04T04:20:38.434Z",
        "updated_at": updated_at
    })
}

pub fn conversion() -> Value {
    conversion_with("pending", "2026-12-04T04:20:38.434Z")
}

pub fn approved_conversion() -> Value {
    conversion_with("approved", UPDATED_AT)
}

fn recorded(duplicate: bool) -> Value {
    let mut recorded = conversion();
    recorded["duplicate"] = json!(duplicate);
    recorded
}

pub fn recorded_conversion() -> Value {
    recorded(false)
}

pub fn duplicate_conversion() -> Value {
    recorded(true)
}

pub fn conversion_page() -> Value {
    page(conversion())
}

fn fraud_signal_with(review_state: &str, updated_at: &str) -> Value {
    json!({
        "id": SIGNAL_ID,
        "kind": "fast_conversion",
        "click_id": CLICK_ID,
        "conversion_id": CONVERSION_ID,
        "partner_id": PARTNER_ID,
        "offer_id": OFFER_ID,
        "score": 80,
        "detail": "converted 5.0 s after the click; the minimum is 15.0 s",
        "review_state": review_state,
        "created_at": "2026-12-04T04:20:38.434Z",
        "updated_at": updated_at
    })
}

pub fn fraud_signal() -> Value {
    fraud_signal_with("open", "2026-12-04T04:20:38.434Z")
}

pub fn review_fraud_signal() -> Value {
    json!({ "review_state": "confirmed" })
}

pub fn reviewed_fraud_signal() -> Value {
    fraud_signal_with("confirmed", UPDATED_AT)
}

pub fn fraud_signal_page() -> Value {
    page(fraud_signal())
}

pub fn activity_page() -> Value {
    page(json!({
        "at": "2026-12-04T04:20:40.012Z",
        "request_id": "req-3f78d84f4e1ad679",
        "source": "api",
        "method": "GET",
        "target": "/api/public/conversions",
        "status": 200,
        "latency_ms": 12,
        "key_id": "key_01a23f48639df8168247",
        "fingerprint": "fp_943bae807837",
        "source_ip": "203.0.113.7",
        "user_agent": "acme-reporting/2.1",
        "outcome": "ok"
    }))
}

/// The error envelope's example (the schema's own, in `responses.rs`).
pub fn error() -> Value {
    json!({ "error": { "code": "not_found", "message": "no such partner" } })
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use trcker_shared::program::conversions::{CreateConversion, UpdateConversion};
    use trcker_shared::program::fraud::ReviewUpdate;
    use trcker_shared::program::offers::{CreateOffer, UpdateOffer};
    use trcker_shared::program::partners::{CreatePartner, UpdatePartner};
    use trcker_shared::program::pricing::{CreateRule, UpdateRule};

    use super::*;

    fn parses_as<T: DeserializeOwned>(example: Value) {
        if let Err(error) = serde_json::from_value::<T>(example.clone()) {
            panic!("{example} is not a {}: {error}", std::any::type_name::<T>());
        }
    }

    /// The request examples decode as the handlers decode bodies (unknown fields refused), so
    /// none names a field the API would reject.
    #[test]
    fn the_request_examples_are_bodies_the_handlers_decode() {
        parses_as::<CreatePartner>(create_partner());
        parses_as::<UpdatePartner>(update_partner());
        parses_as::<CreateOffer>(create_offer());
        parses_as::<UpdateOffer>(update_offer());
        parses_as::<CreateRule>(create_pricing_rule());
        parses_as::<UpdateRule>(update_pricing_rule());
        parses_as::<CreateConversion>(create_conversion());
        parses_as::<UpdateConversion>(update_conversion());
        parses_as::<ReviewUpdate>(review_fraud_signal());
    }

    /// The examples tell one story: the click the conversion names, the offer and partner the
    /// rule names, are the ones the other examples show.
    #[test]
    fn the_examples_refer_to_each_other() {
        assert_eq!(create_conversion()["click_id"], click()["click_id"]);
        assert_eq!(conversion()["click_id"], click()["click_id"]);
        assert_eq!(create_pricing_rule()["offer_id"], offer()["id"]);
        assert_eq!(create_pricing_rule()["partner_id"], partner()["id"]);
        assert_eq!(conversion()["payout"]["rule_id"], pricing_rule()["id"]);
        assert_eq!(fraud_signal()["conversion_id"], conversion()["id"]);
        assert_eq!(updated_partner()["status"], update_partner()["status"]);
        assert_eq!(updated_offer()["status"], update_offer()["status"]);
        assert_eq!(
            updated_pricing_rule()["priority"],
            update_pricing_rule()["priority"]
        );
        assert_eq!(
            approved_conversion()["status"],
            update_conversion()["status"]
        );
        assert_eq!(
            reviewed_fraud_signal()["review_state"],
            review_fraud_signal()["review_state"]
        );
    }
}
