//! The public API through its HTTP layer, on both store backends (in memory and DynamoDB on moto):
//! every route, every error status it can produce, brand isolation, cursors, rate limiting, the
//! audit trail, the daily rollups a conversion adds to, and the API Gateway sample events through
//! the Lambda request adapter.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{
    CONVERSIONS, PAYOUT_MICROS_PREFIX, REVENUE_MICROS_PREFIX, RollupDimension, SIGNALS_PREFIX,
    utc_day,
};
use trcker_shared::clock::Clock;
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::StoreError;
use trcker_shared::store::counting::StoreOperation;
use trcker_shared::store::faulty::FaultyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{fresh_dynamo_brand_data, fresh_dynamo_store};

struct Api {
    router: Router,
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    fn new(
        key_store: Arc<dyn KeyStore>,
        data: Arc<dyn BrandDataStore>,
        limits: EdgeLimits,
    ) -> Self {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store,
            Arc::new(SystemClock),
        ));
        Self {
            router: trcker_public_api::router(keys.clone(), data.clone(), limits),
            keys,
            data,
        }
    }

    fn memory() -> Self {
        Self::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBrandData::new()),
            EdgeLimits::default(),
        )
    }

    async fn dynamodb() -> Self {
        let (_, keys) = fresh_dynamo_store().await;
        Self::new(
            Arc::new(keys),
            Arc::new(fresh_dynamo_brand_data().await),
            EdgeLimits::default(),
        )
    }

    /// Registers a brand and returns its key.
    async fn brand(&self, id: &str) -> String {
        let brand_id = BrandId::parse(id).unwrap();
        self.keys.create_brand(&brand_id, id).await.unwrap();
        self.keys
            .generate(&brand_id, None)
            .await
            .unwrap()
            .key
            .expose_secret()
            .to_owned()
    }

    async fn send(&self, request: Request<Body>) -> Response {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("user-agent", "http-test/1.0");
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(body) => Body::from(body.to_string()),
            None => Body::empty(),
        };
        let mut request = builder.body(body).unwrap();
        request.extensions_mut().insert(api_gateway_context(
            &method,
            path,
            "192.0.2.10",
            Some("http-test/1.0"),
            &format!("req-{:x}", trcker_shared::token::random_u64().unwrap()),
            0,
        ));
        self.send(request).await
    }

    /// Creates a partner with `slug` and returns its id.
    async fn create_partner(&self, key: &str, slug: &str) -> String {
        let response = self
            .call(
                Method::POST,
                "/api/public/partners",
                Some(key),
                Some(partner_body(slug)),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str, key: &str) -> Response {
        self.call(Method::GET, path, Some(key), None).await
    }

    async fn activity(&self, key: &str) -> Vec<Value> {
        let response = self.get("/api/public/activity?limit=100", key).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["data"].as_array().unwrap().clone()
    }
}

fn code(response: &Response) -> &str {
    response.body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {}", response.body))
}

fn partner_body(slug: &str) -> Value {
    json!({"name": format!("Partner {slug}"), "email": format!("{slug}@partners.example"), "slug": slug})
}

fn offer_body(slug: &str) -> Value {
    json!({
        "name": format!("Offer {slug}"),
        "slug": slug,
        "destination_url": format!("https://shop.example/{slug}"),
        "default_payout": {"type": "flat", "amount": 12.5, "currency": "EUR"},
        "caps": {"daily_conversions": 100}
    })
}

async fn whoami_and_audit(api: &Api) {
    let key = api.brand("acme").await;
    let response = api.get("/api/public/whoami", &key).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["brand_id"], "acme");
    assert!(
        response.body["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("fp_")
    );
    assert_eq!(response.headers["ratelimit-limit"], "100");
    assert_eq!(response.headers["x-ratelimit-remaining"], "99");

    let activity = api.activity(&key).await;
    assert_eq!(activity.len(), 1, "one record per request: {activity:?}");
    let record = &activity[0];
    assert_eq!(record["target"], "/api/public/whoami");
    assert_eq!(record["status"], 200);
    assert_eq!(record["source"], "api");
    assert_eq!(record["source_ip"], "192.0.2.10");
    assert_eq!(record["user_agent"], "http-test/1.0");
    assert_eq!(record["fingerprint"], response.body["fingerprint"]);
    assert_eq!(record["key_id"], response.body["key_id"]);
    assert_eq!(record["outcome"], "ok");
    assert_eq!(
        api.activity(&key).await.len(),
        2,
        "the activity read is itself audited"
    );
}

async fn partner_lifecycle(api: &Api) {
    let key = api.brand("acme").await;
    let created = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&key),
            Some(partner_body("alice")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "active");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/public/partners/{id}");
    assert_eq!(api.get(&path, &key).await.body, created.body);

    let duplicate = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&key),
            Some(partner_body("alice")),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(code(&duplicate), "already_exists");

    let updated = api
        .call(Method::PATCH, &path, Some(&key), Some(json!({"slug": "alice-2", "status": "paused", "postback_url_template": "https://alice.example/pb?c={click_id}"})))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["slug"], "alice-2");
    assert_eq!(updated.body["status"], "paused");
    let cleared = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"postback_url_template": null})),
        )
        .await;
    assert_eq!(cleared.body["postback_url_template"], Value::Null);
    // The old slug was released.
    let reuse = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&key),
            Some(partner_body("alice")),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::CREATED);
    let clash = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"slug": "alice"})),
        )
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
        let refused = api.call(Method::PATCH, &path, Some(&key), Some(body)).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            refused.body
        );
        assert_eq!(code(&refused), "invalid_request", "{what}");
    }

    let listed = api.get("/api/public/partners", &key).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed.body["next_cursor"], Value::Null);

    let deleted = api.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&path, &key).await.status, StatusCode::NOT_FOUND);
    let again = api.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let freed = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&key),
            Some(partner_body("alice-2")),
        )
        .await;
    assert_eq!(
        freed.status,
        StatusCode::CREATED,
        "a deleted partner's slug is free"
    );
}

async fn offer_lifecycle(api: &Api) {
    let key = api.brand("acme").await;
    let created = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&key),
            Some(offer_body("summer")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["default_payout"],
        json!({"type": "flat", "amount": 12.5, "currency": "EUR"})
    );
    assert_eq!(
        created.body["caps"],
        json!({"daily_conversions": 100, "monthly_conversions": null})
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/public/offers/{id}");

    let percent = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"default_payout": {"type": "percent", "amount": 15}})),
        )
        .await;
    assert_eq!(percent.status, StatusCode::OK, "{}", percent.body);
    assert_eq!(percent.body["default_payout"]["currency"], "USD");
    for body in [
        json!({"default_payout": {"type": "percent", "amount": 150}}),
        json!({"default_payout": {"type": "flat", "amount": -1}}),
        json!({"default_payout": {"type": "bonus", "amount": 1}}),
        json!({"default_payout": {"type": "flat", "amount": 1, "currency": "usd"}}),
        json!({"destination_url": "javascript:alert(1)"}),
        json!({"status": "archived"}),
        json!({"caps": {"hourly": 1}}),
    ] {
        let refused = api
            .call(Method::PATCH, &path, Some(&key), Some(body.clone()))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
    }

    let archived = api
        .call(Method::POST, &format!("{path}/archive"), Some(&key), None)
        .await;
    assert_eq!(archived.status, StatusCode::OK);
    assert_eq!(archived.body["status"], "archived");
    let twice = api
        .call(Method::POST, &format!("{path}/archive"), Some(&key), None)
        .await;
    assert_eq!(twice.body["status"], "archived", "archiving is idempotent");
    let frozen = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"name": "Changed"})),
        )
        .await;
    assert_eq!(frozen.status, StatusCode::CONFLICT);
    assert_eq!(code(&frozen), "conflict");
    let deleting = api.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(
        deleting.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "offers are archived, not deleted"
    );
    assert_eq!(code(&deleting), "method_not_allowed");
}

async fn pagination_and_cursor_tampering(api: &Api) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    for index in 0..5 {
        let created = api
            .call(
                Method::POST,
                "/api/public/partners",
                Some(&key),
                Some(partner_body(&format!("p{index}"))),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/api/public/partners?limit=2".to_owned();
    let mut first_cursor = None;
    loop {
        let page = api.get(&path, &key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["slug"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
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
        .get(&format!("/api/public/partners?cursor={cursor}"), &other)
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&foreign), "invalid_cursor");
    let other_listing = api
        .get(&format!("/api/public/offers?cursor={cursor}"), &key)
        .await;
    assert_eq!(
        code(&other_listing),
        "invalid_cursor",
        "a partners cursor cannot steer offers"
    );
    for bad in [&cursor[..cursor.len() - 3], "garbage", "%00%01"] {
        let response = api
            .get(&format!("/api/public/partners?cursor={bad}"), &key)
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(code(&response), "invalid_cursor");
    }
    for limit in ["0", "101", "-1", "ten"] {
        let response = api
            .get(&format!("/api/public/partners?limit={limit}"), &key)
            .await;
        assert_eq!(code(&response), "invalid_request", "{limit}");
    }
    let unknown = api.get("/api/public/partners?sort=name", &key).await;
    assert_eq!(code(&unknown), "invalid_request");
}

async fn brands_never_cross(api: &Api) {
    let acme = api.brand("acme").await;
    let globex = api.brand("globex").await;
    let partner = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&acme),
            Some(partner_body("shared")),
        )
        .await;
    let offer = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&acme),
            Some(offer_body("shared")),
        )
        .await;
    let partner_path = format!(
        "/api/public/partners/{}",
        partner.body["id"].as_str().unwrap()
    );
    let offer_path = format!("/api/public/offers/{}", offer.body["id"].as_str().unwrap());
    let missing_partner = "/api/public/partners/ptr_0000000000000000";

    // Globex sees acme's ids exactly as ids that do not exist.
    let foreign = api.get(&partner_path, &globex).await;
    let missing = api.get(missing_partner, &globex).await;
    assert_eq!(
        (foreign.status, &foreign.body),
        (missing.status, &missing.body)
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
        let response = api.call(method.clone(), path, Some(&globex), body).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // Nothing of acme's changed, and globex's own lists are empty.
    assert_eq!(api.get(&partner_path, &acme).await.body, partner.body);
    assert_eq!(api.get(&offer_path, &acme).await.body["status"], "active");
    assert!(
        api.get("/api/public/partners", &globex).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        api.get("/api/public/offers", &globex).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Same slug in another brand is fine.
    let own = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&globex),
            Some(partner_body("shared")),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED);
    // Globex's activity holds only globex's requests.
    let acme_key_id = api.get("/api/public/whoami", &acme).await.body["key_id"].clone();
    let activity = api.activity(&globex).await;
    assert!(!activity.is_empty());
    assert!(
        activity
            .iter()
            .all(|record| record["key_id"] != acme_key_id)
    );
}

async fn error_statuses(api: &Api) {
    let key = api.brand("acme").await;

    let missing = api
        .call(Method::GET, "/api/public/whoami", None, None)
        .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    assert_eq!(code(&missing), "unauthorized");
    for bad in [
        "tk_short",
        "",
        &format!("{key}x"),
        "tk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = api
            .call(Method::GET, "/api/public/whoami", Some(bad), None)
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(!response.body.to_string().contains(&key[3..]));
    }
    let unknown = trcker_shared::token::generate_key().unwrap();
    let response = api
        .call(
            Method::GET,
            "/api/public/whoami",
            Some(unknown.expose_secret()),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let in_url = api
        .call(
            Method::GET,
            &format!("/api/public/whoami?api_key={key}"),
            None,
            None,
        )
        .await;
    assert_eq!(in_url.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&in_url), "credentials_in_url");
    assert!(!in_url.body.to_string().contains(&key[3..]));

    let not_json = api
        .send({
            let mut request = Request::post("/api/public/partners")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from("{\"name\":"))
                .unwrap();
            request.extensions_mut().insert(api_gateway_context(
                &Method::POST,
                "/",
                "192.0.2.10",
                None,
                "r",
                0,
            ));
            request
        })
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let not_utf8 = api
        .send(
            Request::post("/api/public/partners")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from(vec![0x7b, 0xff, 0x7d]))
                .unwrap(),
        )
        .await;
    assert_eq!(not_utf8.status, StatusCode::BAD_REQUEST);
    let empty = api
        .call(Method::POST, "/api/public/partners", Some(&key), None)
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let huge = api
        .call(
            Method::POST,
            "/api/public/partners",
            Some(&key),
            Some(json!({"name": "x".repeat(1_100_000)})),
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&huge), "payload_too_large");

    let route = api.get("/api/public/nothing-here", &key).await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_eq!(code(&route), "not_found");
    let method = api
        .call(Method::PUT, "/api/public/whoami", Some(&key), None)
        .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    for id in [
        "ptr_%23x",
        "..%2F..%2Fkeys",
        "ptr_%C3%A9",
        &"a".repeat(1024),
    ] {
        let response = api.get(&format!("/api/public/partners/{id}"), &key).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{id}");
    }
    // Nothing above created anything.
    assert!(
        api.get("/api/public/partners", &key).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Unknown paths are authenticated and audited like any route.
    let anonymous = api
        .call(Method::GET, "/api/public/nothing-here", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let undecodable = api.get("/api/public/partners/%FF%FE", &key).await;
    assert_eq!(undecodable.status, StatusCode::NOT_FOUND);
    assert_eq!(code(&undecodable), "not_found");
    // A key pasted into a path is refused like one in the query string (before authentication,
    // so it is logged, not audited), and never echoed.
    let pasted = trcker_shared::token::generate_key().unwrap();
    let pasted_path = format!("/api/public/partners/{}", pasted.expose_secret());
    let refused = api.get(&pasted_path, &key).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&refused), "credentials_in_url");
    assert!(
        !refused
            .body
            .to_string()
            .contains(&pasted.expose_secret()[3..])
    );
    let activity = api.activity(&key).await;
    let targets: Vec<&str> = activity
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"/api/public/nothing-here"), "{targets:?}");
    assert!(
        !serde_json::to_string(&activity)
            .unwrap()
            .contains(&pasted.expose_secret()[3..])
    );
    let methods: Vec<(&str, u64)> = activity
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert!(
        methods.contains(&("PUT", 405)),
        "wrong methods are audited too: {methods:?}"
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
fn assert_refused_hidden(response: &Response, field: &str, code_point: &str, what: &str) {
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        response.body
    );
    assert_eq!(code(response), "invalid_request", "{what}");
    let message = response.body["error"]["message"].as_str().unwrap();
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
async fn hidden_formatting_is_refused_in_brand_text(api: &Api) {
    let key = api.brand("acme").await;
    let partner_id = api.create_partner(&key, "alice").await;
    let partner_path = format!("/api/public/partners/{partner_id}");
    let created = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&key),
            Some(offer_body("summer")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let offer_path = format!(
        "/api/public/offers/{}",
        created.body["id"].as_str().unwrap()
    );

    for (hidden, code_point) in HIDDEN_FORMATTING {
        let text = format!("Alice{hidden} Media");
        let mut body = partner_body("bob");
        body["name"] = json!(text);
        let response = api
            .call(Method::POST, "/api/public/partners", Some(&key), Some(body))
            .await;
        assert_refused_hidden(&response, "name", code_point, "partner create name");
        let response = api
            .call(
                Method::PATCH,
                &partner_path,
                Some(&key),
                Some(json!({"name": text})),
            )
            .await;
        assert_refused_hidden(&response, "name", code_point, "partner update name");
        let response = api
            .call(
                Method::PATCH,
                &partner_path,
                Some(&key),
                Some(json!({"email": format!("alice{hidden}@partners.example")})),
            )
            .await;
        assert_refused_hidden(&response, "email", code_point, "partner email");
        let response = api
            .call(
                Method::PATCH,
                &partner_path,
                Some(&key),
                Some(json!({"postback_url_template":
                    format!("https://alice.example/pb?c={{click_id}}{hidden}")})),
            )
            .await;
        assert_refused_hidden(
            &response,
            "postback_url_template",
            code_point,
            "partner postback",
        );

        let mut body = offer_body("winter");
        body["name"] = json!(format!("Winter{hidden} sale"));
        let response = api
            .call(Method::POST, "/api/public/offers", Some(&key), Some(body))
            .await;
        assert_refused_hidden(&response, "name", code_point, "offer create name");
        let response = api
            .call(
                Method::PATCH,
                &offer_path,
                Some(&key),
                Some(json!({"destination_url": format!("https://shop.example/{hidden}x")})),
            )
            .await;
        assert_refused_hidden(&response, "destination_url", code_point, "offer url");

        let response = api
            .call(
                Method::POST,
                "/api/public/conversions",
                Some(&key),
                Some(json!({"click_id": "click-1", "txn_id": format!("order{hidden}-1")})),
            )
            .await;
        assert_refused_hidden(&response, "txn_id", code_point, "conversion txn_id");
    }
    // Nothing refused was stored or changed.
    let partners = api.get("/api/public/partners", &key).await;
    assert_eq!(partners.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(partners.body["data"][0]["name"], "Partner alice");
    assert_eq!(partners.body["data"][0]["email"], "alice@partners.example");
    let offers = api.get("/api/public/offers", &key).await;
    assert_eq!(offers.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(offers.body["data"][0]["name"], "Offer summer");

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
            .call(Method::POST, "/api/public/partners", Some(&key), Some(body))
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{name}: {}",
            response.body
        );
        assert_eq!(response.body["name"], name);
        let mut body = offer_body(slug);
        body["name"] = json!(name);
        let response = api
            .call(Method::POST, "/api/public/offers", Some(&key), Some(body))
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{name}: {}",
            response.body
        );
        assert_eq!(response.body["name"], name);
    }
    let renamed = api
        .call(
            Method::PATCH,
            &partner_path,
            Some(&key),
            Some(json!({"name": "Alice\u{200D}\u{1F4BB} Media"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Alice\u{200D}\u{1F4BB} Media");
}

async fn revoked_keys_are_refused_and_audited(api: &Api) {
    let key = api.brand("acme").await;
    let brand_id = BrandId::parse("acme").unwrap();
    let replacement = api
        .keys
        .generate(&brand_id, Some("replacement"))
        .await
        .unwrap();
    let whoami = api.get("/api/public/whoami", &key).await;
    let old_key_id = whoami.body["key_id"].as_str().unwrap().to_owned();
    api.keys
        .revoke(
            &brand_id,
            &trcker_shared::ids::KeyId::parse(&old_key_id).unwrap(),
        )
        .await
        .unwrap();
    let refused = api.get("/api/public/whoami", &key).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers["www-authenticate"], "Bearer");
    let activity = api.activity(replacement.key.expose_secret()).await;
    let attempt = activity
        .iter()
        .find(|record| record["outcome"] == "revoked_key")
        .expect("the revoked attempt is in the brand's activity");
    assert_eq!(attempt["key_id"], old_key_id.as_str());
    assert_eq!(attempt["status"], 401);
    assert_eq!(attempt["source_ip"], "192.0.2.10");
    assert_eq!(attempt["user_agent"], "http-test/1.0");
}

async fn rate_limit_answers_429(api_limited: &Api) {
    let key = api_limited.brand("acme").await;
    for _ in 0..3 {
        assert_eq!(
            api_limited.get("/api/public/whoami", &key).await.status,
            StatusCode::OK
        );
    }
    let limited = api_limited.get("/api/public/whoami", &key).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&limited), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    assert_eq!(limited.headers["x-ratelimit-limit"], "3");
    let brand_id = BrandId::parse("acme").unwrap();
    let page = api_limited
        .data
        .list_activity(&brand_id, Default::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4, "the refused request is audited too");
    // Records within one millisecond order by request id, so find the refusal rather than
    // assume its position.
    let refused: Vec<_> = page
        .items
        .iter()
        .filter(|r| r.outcome == "rate_limited")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status, 429);
}

async fn activity_filters(api: &Api) {
    let key = api.brand("acme").await;
    api.get("/api/public/whoami", &key).await;
    let api_only = api.get("/api/public/activity?source=api", &key).await;
    assert_eq!(api_only.body["data"].as_array().unwrap().len(), 1);
    let mcp_only = api.get("/api/public/activity?source=mcp", &key).await;
    assert!(mcp_only.body["data"].as_array().unwrap().is_empty());
    let future = api
        .get("/api/public/activity?from=2999-01-01T00:00:00Z", &key)
        .await;
    assert!(future.body["data"].as_array().unwrap().is_empty());
    let past = api
        .get("/api/public/activity?to=2000-01-01T00:00:00Z", &key)
        .await;
    assert!(past.body["data"].as_array().unwrap().is_empty());
    for bad in ["source=email", "from=yesterday", "to=13"] {
        let response = api.get(&format!("/api/public/activity?{bad}"), &key).await;
        if bad == "to=13" {
            assert_eq!(
                response.status,
                StatusCode::OK,
                "Unix milliseconds are accepted"
            );
        } else {
            assert_eq!(code(&response), "invalid_request", "{bad}");
        }
    }
}

async fn pricing_rules_and_payout_resolution(api: &Api) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    let offer = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&key),
            Some(offer_body("rules")),
        )
        .await;
    let offer_id = offer.body["id"].as_str().unwrap().to_owned();
    let alice = api.create_partner(&key, "alice").await;
    let bob = api.create_partner(&key, "bob").await;
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
    let resolved = api.get(&payout_for(Some(&alice), None), &key).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["source"], "offer_default");
    assert_eq!(resolved.body["payout"]["amount"], 12.5);

    let rule = |partner: Option<&str>, amount: f64, priority: i32, from: Option<&str>| {
        json!({"offer_id": offer_id, "partner_id": partner, "payout": {"type": "flat", "amount": amount},
               "priority": priority, "valid_from": from})
    };
    let low = api
        .call(
            Method::POST,
            "/api/public/pricing-rules",
            Some(&key),
            Some(rule(None, 5.0, 1, None)),
        )
        .await;
    assert_eq!(low.status, StatusCode::CREATED, "{}", low.body);
    let high = api
        .call(
            Method::POST,
            "/api/public/pricing-rules",
            Some(&key),
            Some(rule(None, 7.0, 5, None)),
        )
        .await;
    let for_alice = api
        .call(
            Method::POST,
            "/api/public/pricing-rules",
            Some(&key),
            Some(rule(Some(&alice), 9.0, 0, None)),
        )
        .await;
    let future_bob = api
        .call(
            Method::POST,
            "/api/public/pricing-rules",
            Some(&key),
            Some(rule(Some(&bob), 11.0, 0, Some("2999-01-01T00:00:00Z"))),
        )
        .await;
    assert_eq!(future_bob.status, StatusCode::CREATED);

    let amount = |response: &Response| {
        (
            response.body["source"].clone(),
            response.body["payout"]["amount"].clone(),
        )
    };
    assert_eq!(
        amount(&api.get(&payout_for(Some(&alice), None), &key).await),
        (json!("partner_rule"), json!(9.0))
    );
    assert_eq!(
        amount(&api.get(&payout_for(Some(&bob), None), &key).await),
        (json!("offer_rule"), json!(7.0))
    );
    assert_eq!(
        amount(&api.get(&payout_for(None, None), &key).await),
        (json!("offer_rule"), json!(7.0))
    );
    assert_eq!(
        amount(
            &api.get(&payout_for(Some(&bob), Some("2999-06-01T00:00:00Z")), &key)
                .await
        ),
        (json!("partner_rule"), json!(11.0))
    );

    let high_path = format!(
        "/api/public/pricing-rules/{}",
        high.body["id"].as_str().unwrap()
    );
    let lowered = api
        .call(
            Method::PATCH,
            &high_path,
            Some(&key),
            Some(json!({"priority": 0})),
        )
        .await;
    assert_eq!(lowered.status, StatusCode::OK, "{}", lowered.body);
    assert_eq!(
        amount(&api.get(&payout_for(Some(&bob), None), &key).await),
        (json!("offer_rule"), json!(5.0))
    );
    let alice_path = format!(
        "/api/public/pricing-rules/{}",
        for_alice.body["id"].as_str().unwrap()
    );
    assert_eq!(
        api.call(Method::DELETE, &alice_path, Some(&key), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        amount(&api.get(&payout_for(Some(&alice), None), &key).await),
        (json!("offer_rule"), json!(5.0))
    );

    // References are resolved inside the brand only.
    let globex_offer = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&other),
            Some(offer_body("theirs")),
        )
        .await;
    for (body, what) in [
        (
            json!({"offer_id": globex_offer.body["id"], "payout": {"type": "flat", "amount": 1}}),
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
            .call(
                Method::POST,
                "/api/public/pricing-rules",
                Some(&key),
                Some(body),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            refused.body
        );
        assert_eq!(code(&refused), "unprocessable_entity");
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
            .call(
                Method::POST,
                "/api/public/pricing-rules",
                Some(&key),
                Some(body),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            refused.body
        );
    }
    let foreign = api.get(&high_path, &other).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(
        api.get("/api/public/pricing-rules", &other).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let foreign_payout = api.get(&payout_for(None, None), &other).await;
    assert_eq!(foreign_payout.status, StatusCode::NOT_FOUND);
    let listed = api.get("/api/public/pricing-rules?limit=2", &key).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    assert!(listed.body["next_cursor"].is_string());
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
    }
}

async fn clicks_conversions_and_fraud_signals(api: &Api) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    let offer = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&key),
            Some(offer_body("sale")),
        )
        .await;
    let offer_id = offer.body["id"].as_str().unwrap().to_owned();
    let mut percent_body = offer_body("percent");
    percent_body["default_payout"] = json!({"type": "percent", "amount": 10});
    let percent = api
        .call(
            Method::POST,
            "/api/public/offers",
            Some(&key),
            Some(percent_body),
        )
        .await;
    let percent_id = percent.body["id"].as_str().unwrap().to_owned();
    let alice = api.create_partner(&key, "alice").await;
    let bob = api.create_partner(&key, "bob").await;
    let rule = json!({"offer_id": offer_id, "partner_id": alice, "payout": {"type": "flat", "amount": 15, "currency": "EUR"}});
    assert_eq!(
        api.call(
            Method::POST,
            "/api/public/pricing-rules",
            Some(&key),
            Some(rule)
        )
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
    let clicks = api.get("/api/public/clicks", &key).await;
    assert_eq!(clicks.status, StatusCode::OK, "{}", clicks.body);
    assert_eq!(
        clicks.headers[axum::http::header::CONTENT_TYPE],
        "application/json",
        "the page is written by hand, not by Json"
    );
    let ids: Vec<&str> = clicks.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["click_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c2", "c1", "c3", "c4"], "newest first");
    let by_partner = api
        .get(
            &format!("/api/public/clicks?partner_id={alice}&offer_id={offer_id}"),
            &key,
        )
        .await;
    assert_eq!(by_partner.body["data"].as_array().unwrap().len(), 1);
    let flagged = api.get("/api/public/clicks/c2", &key).await;
    assert_eq!(
        (
            flagged.body["fraud_score"].clone(),
            flagged.body["flagged"].clone()
        ),
        (json!(95), json!(true))
    );
    assert_eq!(flagged.body["sub1"], "s1");
    assert_eq!(
        api.get("/api/public/clicks/g1", &key).await.status,
        StatusCode::NOT_FOUND,
        "another brand's click"
    );
    assert_eq!(
        api.get("/api/public/clicks/a%20b", &key).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        api.get("/api/public/clicks", &other).await.body["data"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );

    // A conversion is attributed through its click and priced by the rules.
    let order = json!({"click_id": "c1", "amount": 100, "txn_id": "order-1"});
    let created = api
        .call(
            Method::POST,
            "/api/public/conversions",
            Some(&key),
            Some(order.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["duplicate"], false);
    assert_eq!(created.body["partner_id"], alice.as_str());
    assert_eq!(created.body["offer_id"], offer_id.as_str());
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["event"], "sale");
    assert_eq!(created.body["currency"], "USD");
    assert_eq!(created.body["payout"]["amount"], 15.0);
    assert_eq!(created.body["payout"]["currency"], "EUR");
    assert_eq!(created.body["payout"]["source"], "partner_rule");
    let conversion_id = created.body["id"].as_str().unwrap().to_owned();

    let repeat = api
        .call(
            Method::POST,
            "/api/public/conversions",
            Some(&key),
            Some(json!({"click_id": "c2", "txn_id": "order-1"})),
        )
        .await;
    assert_eq!(repeat.status, StatusCode::OK, "{}", repeat.body);
    assert_eq!(repeat.body["duplicate"], true);
    assert_eq!(repeat.body["id"], conversion_id.as_str());
    assert_eq!(repeat.body["click_id"], "c1", "the original, unchanged");

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
            .call(
                Method::POST,
                "/api/public/conversions",
                Some(&key),
                Some(body),
            )
            .await;
        assert_eq!(refused.status, status, "{what}: {}", refused.body);
    }
    let listed = api.get("/api/public/conversions", &key).await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "refusals and duplicates wrote nothing"
    );
    assert!(
        api.get("/api/public/fraud-signals", &key).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Percent payout, in the conversion's currency.
    let percent_sale = api
        .call(
            Method::POST,
            "/api/public/conversions",
            Some(&key),
            Some(json!({"click_id": "c4", "amount": 80, "currency": "GBP"})),
        )
        .await;
    assert_eq!(
        percent_sale.status,
        StatusCode::CREATED,
        "{}",
        percent_sale.body
    );
    assert_eq!(
        percent_sale.body["payout"],
        json!({"amount": 8.0, "currency": "GBP", "source": "offer_default", "rule_id": null})
    );

    // Too soon after its click: a fraud signal, written with the conversion.
    let fast = api
        .call(
            Method::POST,
            "/api/public/conversions",
            Some(&key),
            Some(json!({"click_id": "c2", "amount": 10})),
        )
        .await;
    assert_eq!(fast.status, StatusCode::CREATED, "{}", fast.body);
    assert_eq!(fast.body["payout"]["amount"], 12.5);
    assert_eq!(fast.body["payout"]["source"], "offer_default");
    let signals = api.get("/api/public/fraud-signals", &key).await;
    let signals = signals.body["data"].as_array().unwrap().clone();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0]["kind"], "fast_conversion");
    assert_eq!(signals[0]["conversion_id"], fast.body["id"]);
    assert_eq!(signals[0]["review_state"], "open");
    let signal_path = format!(
        "/api/public/fraud-signals/{}",
        signals[0]["id"].as_str().unwrap()
    );
    let reviewed = api
        .call(
            Method::PATCH,
            &signal_path,
            Some(&key),
            Some(json!({"review_state": "confirmed"})),
        )
        .await;
    assert_eq!(reviewed.status, StatusCode::OK, "{}", reviewed.body);
    assert_eq!(reviewed.body["review_state"], "confirmed");
    assert!(
        api.get("/api/public/fraud-signals?review_state=open", &key)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let bad_state = api
        .call(
            Method::PATCH,
            &signal_path,
            Some(&key),
            Some(json!({"review_state": "maybe"})),
        )
        .await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);

    // Status transitions.
    let path = format!("/api/public/conversions/{conversion_id}");
    let fast_path = format!(
        "/api/public/conversions/{}",
        fast.body["id"].as_str().unwrap()
    );
    let set = |status: &str| json!({"status": status});
    assert_eq!(
        api.call(Method::PATCH, &fast_path, Some(&key), Some(set("paid")))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.call(Method::PATCH, &path, Some(&key), Some(set("approved")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.call(Method::PATCH, &path, Some(&key), Some(set("paid")))
            .await
            .status,
        StatusCode::OK
    );
    let back = api
        .call(Method::PATCH, &path, Some(&key), Some(set("approved")))
        .await;
    assert_eq!(back.status, StatusCode::CONFLICT);
    assert_eq!(code(&back), "conflict");
    assert_eq!(
        api.call(Method::PATCH, &fast_path, Some(&key), Some(set("rejected")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.call(Method::PATCH, &fast_path, Some(&key), Some(set("approved")))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.call(Method::PATCH, &path, Some(&key), Some(set("lost")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Lists with filters, pages.
    let paid = api.get("/api/public/conversions?status=paid", &key).await;
    assert_eq!(paid.body["data"].as_array().unwrap().len(), 1);
    let future = api
        .get("/api/public/conversions?from=2999-01-01T00:00:00Z", &key)
        .await;
    assert!(future.body["data"].as_array().unwrap().is_empty());
    let mut seen = 0;
    let mut next = "/api/public/conversions?limit=1".to_owned();
    loop {
        let page = api.get(&next, &key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen += page.body["data"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(cursor) => next = format!("/api/public/conversions?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, 3);

    // Another brand sees none of it.
    assert_eq!(api.get(&path, &other).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.call(Method::PATCH, &path, Some(&other), Some(set("rejected")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&signal_path, &other).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        api.get("/api/public/conversions", &other).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        api.get("/api/public/fraud-signals", &other).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let foreign_click = api
        .call(
            Method::POST,
            "/api/public/conversions",
            Some(&other),
            Some(json!({"click_id": "c1"})),
        )
        .await;
    assert_eq!(foreign_click.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A brand's rollups of `dimension` from yesterday to tomorrow (the API runs on the system clock,
/// so a test may straddle midnight), summed over the days: group -> counter -> total.
async fn rollup_totals(
    api: &Api,
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
/// its partner; a duplicate `txn_id`, a refused request and a status change add nothing.
async fn conversions_count_in_rollups(api: &Api) {
    let key = api.brand("acme").await;
    let other = api.brand("globex").await;
    let create_offer = |body: Value| {
        let key = key.clone();
        async move {
            let created = api
                .call(Method::POST, "/api/public/offers", Some(&key), Some(body))
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
            created.body["id"].as_str().unwrap().to_owned()
        }
    };
    let offer_id = create_offer(offer_body("sale")).await;
    let mut percent_body = offer_body("percent");
    percent_body["default_payout"] = json!({"type": "percent", "amount": 10});
    let percent_id = create_offer(percent_body).await;
    let alice = api.create_partner(&key, "alice").await;
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
            api.call(
                Method::POST,
                "/api/public/conversions",
                Some(&who),
                Some(body),
            )
            .await
        }
    };

    let first = convert(
        &key,
        json!({"click_id": "k1", "amount": 100.1, "txn_id": "o-1"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let repeat = convert(
        &key,
        json!({"click_id": "k2", "amount": 7, "txn_id": "o-1"}),
    )
    .await;
    assert_eq!(repeat.body["duplicate"], true, "{}", repeat.body);
    // Five seconds after its click: a fast-conversion signal, counted with the conversion.
    let fast = convert(&key, json!({"click_id": "k2", "amount": 0.1})).await;
    assert_eq!(fast.status, StatusCode::CREATED, "{}", fast.body);
    let percent = convert(
        &key,
        json!({"click_id": "k3", "amount": 80, "currency": "GBP"}),
    )
    .await;
    assert_eq!(percent.status, StatusCode::CREATED, "{}", percent.body);
    // Without an amount: no revenue, still the payout.
    let no_amount = convert(&key, json!({"click_id": "k1", "txn_id": "o-2"})).await;
    assert_eq!(no_amount.status, StatusCode::CREATED, "{}", no_amount.body);
    let refused = convert(&key, json!({"click_id": "k3"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let foreign = convert(&other, json!({"click_id": "k2", "amount": 1})).await;
    assert_eq!(
        foreign.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "acme's click"
    );
    // A status change after creation does not change the rollups.
    let path = format!(
        "/api/public/conversions/{}",
        first.body["id"].as_str().unwrap()
    );
    let approved = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"status": "approved"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);

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

async fn run_scenarios(make: impl AsyncFn() -> Api) {
    whoami_and_audit(&make().await).await;
    partner_lifecycle(&make().await).await;
    offer_lifecycle(&make().await).await;
    pagination_and_cursor_tampering(&make().await).await;
    brands_never_cross(&make().await).await;
    error_statuses(&make().await).await;
    hidden_formatting_is_refused_in_brand_text(&make().await).await;
    revoked_keys_are_refused_and_audited(&make().await).await;
    activity_filters(&make().await).await;
    pricing_rules_and_payout_resolution(&make().await).await;
    clicks_conversions_and_fraud_signals(&make().await).await;
    conversions_count_in_rollups(&make().await).await;
}

#[tokio::test]
async fn every_route_in_memory() {
    run_scenarios(async || Api::memory()).await;
    let limits = EdgeLimits {
        rate_limit_per_minute: 3,
        ..EdgeLimits::default()
    };
    rate_limit_answers_429(&Api::new(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryBrandData::new()),
        limits,
    ))
    .await;
}

#[tokio::test]
async fn every_route_on_dynamodb() {
    run_scenarios(Api::dynamodb).await;
    let (_, keys) = fresh_dynamo_store().await;
    let limits = EdgeLimits {
        rate_limit_per_minute: 3,
        ..EdgeLimits::default()
    };
    rate_limit_answers_429(&Api::new(
        Arc::new(keys),
        Arc::new(fresh_dynamo_brand_data().await),
        limits,
    ))
    .await;
}

#[tokio::test]
async fn a_key_store_outage_is_503_with_retry_after() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let api = Api::new(
        faulty.clone(),
        Arc::new(MemoryBrandData::new()),
        EdgeLimits::default(),
    );
    let key = api.brand("acme").await;
    faulty.fail_always(StoreOperation::FindKeyByHash, StoreError::Throttled);
    let response = api.get("/api/public/whoami", &key).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&response), "store_unavailable");
    assert_eq!(response.headers["retry-after"], "1");
    faulty.clear();
    assert_eq!(
        api.get("/api/public/whoami", &key).await.status,
        StatusCode::OK
    );
}

fn event(name: &str, substitutions: &[(&str, &str)]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/public-api")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (placeholder, value) in substitutions {
        text = text.replace(placeholder, value);
    }
    text
}

#[tokio::test]
async fn api_gateway_events_pass_through_the_lambda_adapter() {
    let api = Api::memory();
    let key = api.brand("acme").await;
    let brand_id = BrandId::parse("acme").unwrap();
    let revoked = api.keys.generate(&brand_id, None).await.unwrap();
    api.keys.revoke(&brand_id, &revoked.key_id).await.unwrap();

    let whoami =
        lambda_http::request::from_str(&event("whoami.json", &[("{{KEY}}", &key)])).unwrap();
    let response = api.send(whoami.map(|body| Body::from(body.to_vec()))).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["brand_id"], "acme");

    let create =
        lambda_http::request::from_str(&event("create-partner.json", &[("{{KEY}}", &key)]))
            .unwrap();
    let response = api.send(create.map(|body| Body::from(body.to_vec()))).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    assert_eq!(response.body["slug"], "fixture-partner");

    let leaked = lambda_http::request::from_str(&event(
        "list-partners-revoked-key.json",
        &[("{{REVOKED_KEY}}", revoked.key.expose_secret())],
    ))
    .unwrap();
    let response = api.send(leaked.map(|body| Body::from(body.to_vec()))).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let page = api
        .data
        .list_activity(&brand_id, Default::default(), 10, None)
        .await
        .unwrap();
    let by_request: Vec<(&str, &str, &str, &str)> = page
        .items
        .iter()
        .map(|r| {
            (
                r.request_id.as_str(),
                r.source_ip.as_str(),
                r.user_agent.as_str(),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        by_request,
        [
            (
                "fixture-request-3",
                "203.0.113.99",
                "leaky-ci/2.3",
                "revoked_key"
            ),
            (
                "fixture-request-2",
                "198.51.100.23",
                "fixture-agent/1.0",
                "ok"
            ),
            (
                "fixture-request-1",
                "198.51.100.23",
                "fixture-agent/1.0",
                "ok"
            ),
        ],
        "the API Gateway context (request id, source IP, user agent) reaches the audit trail"
    );
}

/// The served OpenAPI document and the router agree: every documented operation is routed (not
/// "no such route", not 405) and answers with a status the document lists for it.
#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let api = Api::memory();
    let key = api.brand("acme").await;
    let document = api
        .call(Method::GET, "/api/public/openapi.json", None, None)
        .await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.body["openapi"], "3.1.0");
    assert!(document.body["components"]["securitySchemes"]["bearer"].is_object());
    let mut operations = 0;
    for (path, item) in document.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let concrete = path.replace("{id}", "x");
            let response = api.call(method.clone(), &concrete, Some(&key), body).await;
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_ne!(
                response.body["error"]["message"], "no such route",
                "{method} {path}"
            );
            let documented: Vec<&String> =
                operation["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.contains(&&response.status.as_u16().to_string()),
                "{method} {path} answered {} which is not documented ({documented:?})",
                response.status
            );
        }
    }
    assert_eq!(operations, 28, "every route of the router is documented");
}

/// The guard's own writes failing: the rate limiter fails open (and says so), and an activity
/// record is retried once, then preserved whole in an error log line; the caller is not failed.
#[tokio::test]
async fn limiter_fails_open_and_audit_records_survive_store_failures() {
    let logs = trcker_shared::testing::LogCapture::install_global();
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let api = Api::new(
        Arc::new(MemoryStore::new()),
        data.clone(),
        EdgeLimits::default(),
    );
    let key = api.brand("acme").await;
    let stored = |data: Arc<FaultyBrandData<MemoryBrandData>>| async move {
        data.list_activity(
            &BrandId::parse("acme").unwrap(),
            Default::default(),
            100,
            None,
        )
        .await
        .unwrap()
        .items
    };

    data.set_counters_down(true);
    let open = api.get("/api/public/whoami", &key).await;
    assert_eq!(
        open.status,
        StatusCode::OK,
        "the limiter's failure does not block"
    );
    assert!(
        open.headers.get("ratelimit-limit").is_none(),
        "no budget to report"
    );
    assert!(
        logs.text()
            .contains("rate limiter unavailable; failing open")
    );
    data.set_counters_down(false);

    data.fail_next_appends(1);
    assert_eq!(
        api.get("/api/public/whoami", &key).await.status,
        StatusCode::OK
    );
    assert_eq!(
        stored(data.clone()).await.len(),
        2,
        "a failed append is retried"
    );

    data.fail_next_appends(2);
    let lost = api.get("/api/public/whoami", &key).await;
    assert_eq!(
        lost.status,
        StatusCode::OK,
        "the caller is not failed for the audit"
    );
    assert_eq!(stored(data.clone()).await.len(), 2);
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("activity record could not be stored"))
        .expect("the record is preserved in one error log line");
    assert!(line.contains("\"level\":\"ERROR\""), "{line}");
    for field in [
        "\\\"brand_id\\\":\\\"acme\\\"",
        "/api/public/whoami",
        "192.0.2.10",
        "http-test/1.0",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    assert!(
        !text.contains(&key[3..]),
        "and the key itself is in no log line"
    );
}
