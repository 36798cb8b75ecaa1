//! Partners and offers: their lifecycles, pages and cursors, brand isolation, and the hidden
//! formatting characters refused in brand-written text.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use trcker_shared::testing::{Backend, TestApp, TestResponse};

use crate::{activity_of, api, create_partner, offer_body, partner_body};

trcker_shared::backend_tests! {
    in_memory: api(Backend::in_memory()),
    on_dynamodb: api(Backend::on_dynamodb().await);
    partner_lifecycle,
    offer_lifecycle,
    pagination_and_cursor_tampering,
    brands_never_cross,
    hidden_formatting_is_refused_in_brand_text,
}

async fn partner_lifecycle(api: &TestApp) {
    let key = api.brand("acme").await;
    let created = api
        .post("/api/public/partners")
        .bearer(&key)
        .json(partner_body("alice"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    assert_eq!(created.json()["status"], "active");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/public/partners/{id}");
    assert_eq!(api.get(&path).bearer(&key).await.json(), created.json());

    let duplicate = api
        .post("/api/public/partners")
        .bearer(&key)
        .json(partner_body("alice"))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.error_code(), "already_exists");

    let updated = api
        .patch(&path)
        .bearer(&key)
        .json(json!({
            "slug": "alice-2",
            "status": "paused",
            "postback_url_template": "https://alice.example/pb?c={click_id}"
        }))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.json());
    assert_eq!(updated.json()["slug"], "alice-2");
    assert_eq!(updated.json()["status"], "paused");
    let cleared = api
        .patch(&path)
        .bearer(&key)
        .json(json!({"postback_url_template": null}))
        .await;
    assert_eq!(cleared.json()["postback_url_template"], Value::Null);
    // The old slug was released.
    let reuse = api
        .post("/api/public/partners")
        .bearer(&key)
        .json(partner_body("alice"))
        .await;
    assert_eq!(reuse.status, StatusCode::CREATED);
    let clash = api
        .patch(&path)
        .bearer(&key)
        .json(json!({"slug": "alice"}))
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);

    for (body, what) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"slug": "Bad Slug"}), "slug"),
        (json!({"status": "deleted"}), "status"),
        (json!({"name": 5}), "name type"),
        (json!({"nickname": "x"}), "unknown field"),
        (json!({"postback_url_template": "ftp://x"}), "postback url"),
    ] {
        let refused = api.patch(&path).bearer(&key).json(body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            refused.json()
        );
        assert_eq!(refused.error_code(), "invalid_request", "{what}");
    }

    let listed = api.get("/api/public/partners").bearer(&key).await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed.json()["next_cursor"], Value::Null);

    let deleted = api.delete(&path).bearer(&key).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&path).bearer(&key).await.status,
        StatusCode::NOT_FOUND
    );
    let again = api.delete(&path).bearer(&key).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let freed = api
        .post("/api/public/partners")
        .bearer(&key)
        .json(partner_body("alice-2"))
        .await;
    assert_eq!(
        freed.status,
        StatusCode::CREATED,
        "a deleted partner's slug is free"
    );
}

async fn offer_lifecycle(api: &TestApp) {
    let key = api.brand("acme").await;
    let created = api
        .post("/api/public/offers")
        .bearer(&key)
        .json(offer_body("summer"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    assert_eq!(
        created.json()["default_payout"],
        json!({"type": "flat", "amount": 12.5, "currency": "EUR"})
    );
    assert_eq!(
        created.json()["caps"],
        json!({"daily_conversions": 100, "monthly_conversions": null})
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/public/offers/{id}");

    let percent = api
        .patch(&path)
        .bearer(&key)
        .json(json!({"default_payout": {"type": "percent", "amount": 15}}))
        .await;
    assert_eq!(percent.status, StatusCode::OK, "{}", percent.json());
    assert_eq!(percent.json()["default_payout"]["currency"], "USD");
    for body in [
        json!({"default_payout": {"type": "percent", "amount": 150}}),
        json!({"default_payout": {"type": "flat", "amount": -1}}),
        json!({"default_payout": {"type": "bonus", "amount": 1}}),
        json!({"default_payout": {"type": "flat", "amount": 1, "currency": "usd"}}),
        json!({"destination_url": "javascript:alert(1)"}),
        json!({"status": "archived"}),
        json!({"caps": {"hourly": 1}}),
    ] {
        let refused = api.patch(&path).bearer(&key).json(body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.json()
        );
    }

    let archived = api.post(&format!("{path}/archive")).bearer(&key).await;
    assert_eq!(archived.status, StatusCode::OK);
    assert_eq!(archived.json()["status"], "archived");
    let twice = api.post(&format!("{path}/archive")).bearer(&key).await;
    assert_eq!(
        twice.json()["status"],
        "archived",
        "archiving is idempotent"
    );
    let frozen = api
        .patch(&path)
        .bearer(&key)
        .json(json!({"name": "Changed"}))
        .await;
    assert_eq!(frozen.status, StatusCode::CONFLICT);
    assert_eq!(frozen.error_code(), "conflict");
    let deleting = api.delete(&path).bearer(&key).await;
    assert_eq!(
        deleting.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "offers are archived, not deleted"
    );
    assert_eq!(deleting.error_code(), "method_not_allowed");
}

async fn pagination_and_cursor_tampering(api: &TestApp) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    for index in 0..5 {
        let created = api
            .post("/api/public/partners")
            .bearer(&key)
            .json(partner_body(&format!("p{index}")))
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/api/public/partners?limit=2".to_owned();
    let mut first_cursor = None;
    loop {
        let page = api.get(&path).bearer(&key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json());
        seen.extend(
            page.json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["slug"].as_str().unwrap().to_owned()),
        );
        match page.json()["next_cursor"].as_str() {
            Some(cursor) => {
                first_cursor.get_or_insert_with(|| cursor.to_owned());
                path = format!("/api/public/partners?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4"]);

    let cursor = first_cursor.unwrap();
    let foreign = api
        .get(&format!("/api/public/partners?cursor={cursor}"))
        .bearer(&other)
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert_eq!(foreign.error_code(), "invalid_cursor");
    let other_listing = api
        .get(&format!("/api/public/offers?cursor={cursor}"))
        .bearer(&key)
        .await;
    assert_eq!(
        other_listing.error_code(),
        "invalid_cursor",
        "a partners cursor cannot steer offers"
    );
    for bad in [&cursor[..cursor.len() - 3], "garbage", "%00%01"] {
        let response = api
            .get(&format!("/api/public/partners?cursor={bad}"))
            .bearer(&key)
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(response.error_code(), "invalid_cursor");
    }
    for limit in ["0", "101", "-1", "ten"] {
        let response = api
            .get(&format!("/api/public/partners?limit={limit}"))
            .bearer(&key)
            .await;
        assert_eq!(response.error_code(), "invalid_request", "{limit}");
    }
    let unknown = api.get("/api/public/partners?sort=name").bearer(&key).await;
    assert_eq!(unknown.error_code(), "invalid_request");
}

async fn brands_never_cross(api: &TestApp) {
    let acme = api.brand("acme").await;
    let globex = api.brand("globex").await;
    let partner = api
        .post("/api/public/partners")
        .bearer(&acme)
        .json(partner_body("shared"))
        .await;
    let offer = api
        .post("/api/public/offers")
        .bearer(&acme)
        .json(offer_body("shared"))
        .await;
    let partner_path = format!(
        "/api/public/partners/{}",
        partner.json()["id"].as_str().unwrap()
    );
    let offer_path = format!(
        "/api/public/offers/{}",
        offer.json()["id"].as_str().unwrap()
    );
    let missing_partner = "/api/public/partners/ptr_0000000000000000";

    // Globex sees acme's ids exactly as ids that do not exist.
    let foreign = api.get(&partner_path).bearer(&globex).await;
    let missing = api.get(missing_partner).bearer(&globex).await;
    assert_eq!(
        (foreign.status, &foreign.json()),
        (missing.status, &missing.json())
    );
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    for (method, path, body) in [
        (
            Method::PATCH,
            partner_path.as_str(),
            Some(json!({"name": "Hijacked"})),
        ),
        (Method::DELETE, partner_path.as_str(), None),
        (Method::GET, offer_path.as_str(), None),
        (
            Method::PATCH,
            offer_path.as_str(),
            Some(json!({"name": "Hijacked"})),
        ),
        (Method::POST, &format!("{offer_path}/archive"), None),
    ] {
        let response = api
            .request(method.clone(), path)
            .bearer(&globex)
            .json_opt(body)
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // Nothing of acme's changed, and globex's own lists are empty.
    assert_eq!(
        api.get(&partner_path).bearer(&acme).await.json(),
        partner.json()
    );
    assert_eq!(
        api.get(&offer_path).bearer(&acme).await.json()["status"],
        "active"
    );
    assert!(
        api.get("/api/public/partners").bearer(&globex).await.json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        api.get("/api/public/offers").bearer(&globex).await.json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Same slug in another brand is fine.
    let own = api
        .post("/api/public/partners")
        .bearer(&globex)
        .json(partner_body("shared"))
        .await;
    assert_eq!(own.status, StatusCode::CREATED);
    // Globex's activity holds only globex's requests.
    let acme_key_id = api.get("/api/public/whoami").bearer(&acme).await.json()["key_id"].clone();
    let activity = activity_of(api, &globex).await;
    assert!(!activity.is_empty());
    assert!(
        activity
            .iter()
            .all(|record| record["key_id"] != acme_key_id)
    );
}

/// Characters that hide or reorder text: a Unicode tag run ("ASCII smuggling": invisible letters
/// an AI assistant still reads), a right-to-left override, a zero-width space, a word joiner.
const HIDDEN_FORMATTING: [(&str, &str); 4] = [
    (
        "\u{E0049}\u{E0067}\u{E006E}\u{E006F}\u{E0072}\u{E0065}",
        "U+E0049",
    ),
    ("\u{202E}gnp.exe", "U+202E"),
    ("\u{200B}", "U+200B"),
    ("\u{2060}", "U+2060"),
];

/// A 400 `invalid_request` whose message names `field` and the code point.
fn assert_refused_hidden(response: &TestResponse, field: &str, code_point: &str, what: &str) {
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        response.json()
    );
    assert_eq!(response.error_code(), "invalid_request", "{what}");
    let message = response.json()["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "{field} contains an invisible formatting character ({code_point})"
        )),
        "{what}: {message}"
    );
}

/// Brand-written free text with hidden format characters is refused, on create and on update,
/// for every kind of document that has some (partners, offers, conversions); nothing is stored.
/// ZWJ (emoji sequences) and ZWNJ (Persian, Indic scripts) are ordinary text and accepted as sent.
async fn hidden_formatting_is_refused_in_brand_text(api: &TestApp) {
    let key = api.brand("acme").await;
    let partner_id = create_partner(api, &key, "alice").await;
    let partner_path = format!("/api/public/partners/{partner_id}");
    let created = api
        .post("/api/public/offers")
        .bearer(&key)
        .json(offer_body("summer"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    let offer_path = format!(
        "/api/public/offers/{}",
        created.json()["id"].as_str().unwrap()
    );

    for (hidden, code_point) in HIDDEN_FORMATTING {
        let text = format!("Alice{hidden} Media");
        let mut body = partner_body("bob");
        body["name"] = json!(text);
        let response = api
            .post("/api/public/partners")
            .bearer(&key)
            .json(body)
            .await;
        assert_refused_hidden(&response, "name", code_point, "partner create name");
        let response = api
            .patch(&partner_path)
            .bearer(&key)
            .json(json!({"name": text}))
            .await;
        assert_refused_hidden(&response, "name", code_point, "partner update name");
        let response = api
            .patch(&partner_path)
            .bearer(&key)
            .json(json!({"email": format!("alice{hidden}@partners.example")}))
            .await;
        assert_refused_hidden(&response, "email", code_point, "partner email");
        let response = api
            .patch(&partner_path)
            .bearer(&key)
            .json(json!({"postback_url_template":
                    format!("https://alice.example/pb?c={{click_id}}{hidden}")}))
            .await;
        assert_refused_hidden(
            &response,
            "postback_url_template",
            code_point,
            "partner postback",
        );

        let mut body = offer_body("winter");
        body["name"] = json!(format!("Winter{hidden} sale"));
        let response = api.post("/api/public/offers").bearer(&key).json(body).await;
        assert_refused_hidden(&response, "name", code_point, "offer create name");
        let response = api
            .patch(&offer_path)
            .bearer(&key)
            .json(json!({"destination_url": format!("https://shop.example/{hidden}x")}))
            .await;
        assert_refused_hidden(&response, "destination_url", code_point, "offer url");

        let response = api
            .post("/api/public/conversions")
            .bearer(&key)
            .json(json!({"click_id": "click-1", "txn_id": format!("order{hidden}-1")}))
            .await;
        assert_refused_hidden(&response, "txn_id", code_point, "conversion txn_id");
    }
    // Nothing refused was stored or changed.
    let partners = api.get("/api/public/partners").bearer(&key).await;
    assert_eq!(partners.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(partners.json()["data"][0]["name"], "Partner alice");
    assert_eq!(
        partners.json()["data"][0]["email"],
        "alice@partners.example"
    );
    let offers = api.get("/api/public/offers").bearer(&key).await;
    assert_eq!(offers.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(offers.json()["data"][0]["name"], "Offer summer");

    // Joiners are text: a family emoji (ZWJ) and a Persian word (ZWNJ) are kept exactly.
    for (slug, name) in [
        (
            "family",
            "Family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} Deals",
        ),
        (
            "persian",
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
        ),
    ] {
        let mut body = partner_body(slug);
        body["name"] = json!(name);
        let response = api
            .post("/api/public/partners")
            .bearer(&key)
            .json(body)
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{name}: {}",
            response.json()
        );
        assert_eq!(response.json()["name"], name);
        let mut body = offer_body(slug);
        body["name"] = json!(name);
        let response = api.post("/api/public/offers").bearer(&key).json(body).await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{name}: {}",
            response.json()
        );
        assert_eq!(response.json()["name"], name);
    }
    let renamed = api
        .patch(&partner_path)
        .bearer(&key)
        .json(json!({"name": "Alice\u{200D}\u{1F4BB} Media"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.json());
    assert_eq!(renamed.json()["name"], "Alice\u{200D}\u{1F4BB} Media");
}
