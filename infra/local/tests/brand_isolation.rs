//! The brand-isolation matrix: for every public-API operation (enumerated from the served OpenAPI
//! document), every MCP tool (enumerated from `tools/list`) and every capture route (the capture
//! crate's `ROUTES`), brand A's key reads, lists, filters, updates, deletes and pages into brand
//! B's data with B's real ids and B's real cursors. A must see nothing of B, change nothing of B
//! (every item of B is snapshotted before and after; on DynamoDB the raw table items too), and get
//! for B's id exactly the answer (status, headers, body bytes) that an id of the same shape that
//! exists nowhere gets, so no answer tells whether B's id exists. A new route or tool without a
//! case here fails the test. Runs through the local gateway (`trcker_local::gateway`: API
//! Gateway's route table and request context, the loopback guard) on the in-memory store and on
//! DynamoDB (moto).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use trcker_shared::brand_data::DocumentStoreExt;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_capture::config::{AllowedOrigins, CaptureConfig};
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::clicks::ClickFilter;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::RollupDimension;
use trcker_shared::brand_data::{ActivityFilter, BrandDataStore, DocumentKind};
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{
    all_items, fresh_dynamo_brand_data, fresh_dynamo_store, moto_aws_config,
};

const BRAND_A: &str = "brand-a";
const BRAND_B: &str = "brand-b";
const MCP_VERSION: &str = "2025-11-25";

/// Who sends a request: its key and the address and user agent it comes from.
struct Sender<'a> {
    key: &'a str,
    ip: &'a str,
    user_agent: &'a str,
}

/// One HTTP request to the edge.
#[derive(Clone, Debug)]
struct Call {
    method: Method,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl Call {
    fn rest(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body: body.map(|body| body.to_string()),
            headers: vec![("content-type", "application/json".into())],
        }
    }

    fn get(path: impl Into<String>) -> Self {
        Self::rest(Method::GET, path, None)
    }

    fn rpc(method: &str, params: Value) -> Self {
        Self {
            method: Method::POST,
            path: trcker_mcp::MCP_PATH.into(),
            body: Some(
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string(),
            ),
            headers: vec![
                ("host", "localhost".into()),
                ("content-type", "application/json".into()),
                ("accept", "application/json, text/event-stream".into()),
                ("mcp-protocol-version", MCP_VERSION.into()),
            ],
        }
    }

    fn tool(name: &str, arguments: Value) -> Self {
        Self::rpc("tools/call", json!({"name": name, "arguments": arguments}))
    }

    fn capture(body: Value) -> Self {
        Self::rest(Method::POST, trcker_capture::CAPTURE_PATH, Some(body))
    }
}

/// An answer as bytes, with the headers that do not depend on the request's position in time
/// (rate-limit counters and request ids do).
struct Reply {
    status: StatusCode,
    headers: BTreeMap<String, String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// A successful tool call's structured content; panics on anything else.
    fn tool_content(&self, label: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status, StatusCode::OK, "{label}: {}", self.text);
        assert_eq!(body["result"]["isError"], false, "{label}: {}", self.text);
        body["result"]["structuredContent"].clone()
    }
}

fn varies_per_request(header: &str) -> bool {
    header.starts_with("ratelimit")
        || header.starts_with("x-ratelimit")
        || header.contains("request-id")
        || header.contains("requestid")
        || header == "date"
}

struct Edge {
    router: Router,
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    /// On moto: the client and the keys and data tables, for a raw snapshot of every item.
    tables: Option<(aws_sdk_dynamodb::Client, String, String)>,
}

impl Edge {
    fn new(
        key_store: Arc<dyn KeyStore>,
        data: Arc<dyn BrandDataStore>,
        tables: Option<(aws_sdk_dynamodb::Client, String, String)>,
    ) -> Self {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store,
            Arc::new(SystemClock),
        ));
        // The matrix sends a few hundred requests with one key inside a minute.
        let limits = EdgeLimits {
            rate_limit_per_minute: 1_000_000,
            ..EdgeLimits::default()
        };
        // A's page may call capture cross-origin, so its preflight is answered in full.
        let capture_config = CaptureConfig {
            allowed_origins: AllowedOrigins::List(vec!["https://brand-a.example".into()]),
            ..CaptureConfig::default()
        };
        let mcp = McpConfig {
            allowed_hosts: vec!["localhost".into()],
        };
        Self {
            router: trcker_local::gateway(keys.clone(), data.clone(), limits, capture_config, mcp),
            keys,
            data,
            tables,
        }
    }

    fn memory() -> Self {
        Self::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBrandData::new()),
            None,
        )
    }

    async fn dynamodb() -> Self {
        let (client, keys) = fresh_dynamo_store().await;
        let data = fresh_dynamo_brand_data().await;
        let tables = Some((client, keys.table().to_owned(), data.table().to_owned()));
        Self::new(Arc::new(keys), Arc::new(data), tables)
    }

    async fn send(&self, sender: &Sender<'_>, call: &Call) -> Reply {
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .header("user-agent", sender.user_agent)
            .header("authorization", format!("Bearer {}", sender.key));
        // The gateway answers loopback `Host`s only, and fills the request context (request id,
        // user agent, source IP) itself: the sender's address comes from the "socket".
        if !call.headers.iter().any(|(name, _)| *name == "host") {
            builder = builder.header("host", "localhost");
        }
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        let ip: IpAddr = sender.ip.parse().unwrap();
        let request = builder
            .extension(ConnectInfo(SocketAddr::new(ip, 40_000)))
            .body(call.body.clone().map_or_else(Body::empty, Body::from))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| !varies_per_request(name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A request that must succeed; its JSON body.
    async fn ok(&self, sender: &Sender<'_>, call: Call) -> Value {
        let reply = self.send(sender, &call).await;
        assert!(
            reply.status.is_success(),
            "{} {}: {} {}",
            call.method,
            call.path,
            reply.status,
            reply.text
        );
        reply.json()
    }
}

/// A brand with data of every kind, created through the edge with its own key.
struct Seeded {
    id: BrandId,
    key: String,
    ip: &'static str,
    user_agent: &'static str,
    key_id: String,
    fingerprint: String,
    offers: Vec<String>,
    partners: Vec<String>,
    rules: Vec<String>,
    clicks: Vec<String>,
    conversions: Vec<String>,
    signals: Vec<String>,
    /// A real `next_cursor` of each REST listing (by path) and each MCP list tool (by name).
    cursors: BTreeMap<String, String>,
}

impl Seeded {
    fn sender(&self) -> Sender<'_> {
        Sender {
            key: &self.key,
            ip: self.ip,
            user_agent: self.user_agent,
        }
    }

    fn offer_slug(&self, index: usize) -> String {
        format!("{}-offer-{index}", self.id)
    }

    fn partner_slug(&self, index: usize) -> String {
        format!("{}-partner-{index}", self.id)
    }

    fn cursor(&self, listing: &str) -> &str {
        self.cursors
            .get(listing)
            .unwrap_or_else(|| panic!("{} has no cursor for {listing}", self.id))
    }
}

const REST_LISTINGS: [&str; 7] = [
    "partners",
    "offers",
    "pricing-rules",
    "clicks",
    "conversions",
    "fraud-signals",
    "activity",
];
const MCP_LISTINGS: [&str; 6] = [
    "list_offers",
    "list_partners",
    "list_clicks",
    "list_conversions",
    "list_pricing_rules",
    "list_activity",
];

async fn seed(edge: &Edge, name: &str, ip: &'static str, user_agent: &'static str) -> Seeded {
    let id = BrandId::parse(name).unwrap();
    edge.keys.create_brand(&id, name).await.unwrap();
    let generated = edge.keys.generate(&id, Some("isolation")).await.unwrap();
    let mut brand = Seeded {
        id,
        key: generated.key.expose_secret().to_owned(),
        ip,
        user_agent,
        key_id: generated.key_id.to_string(),
        fingerprint: generated.fingerprint.to_string(),
        offers: Vec::new(),
        partners: Vec::new(),
        rules: Vec::new(),
        clicks: Vec::new(),
        conversions: Vec::new(),
        signals: Vec::new(),
        cursors: BTreeMap::new(),
    };
    let sender = Sender {
        key: &brand.key.clone(),
        ip,
        user_agent,
    };
    for index in 0..2 {
        let partner = edge
            .ok(
                &sender,
                Call::rest(
                    Method::POST,
                    "/api/public/partners",
                    Some(json!({"name": format!("{name} partner {index}"),
                        "email": format!("p{index}@{name}.example"),
                        "slug": brand.partner_slug(index)})),
                ),
            )
            .await;
        brand
            .partners
            .push(partner["id"].as_str().unwrap().to_owned());
        let offer = edge
            .ok(
                &sender,
                Call::rest(
                    Method::POST,
                    "/api/public/offers",
                    Some(json!({"name": format!("{name} offer {index}"),
                        "slug": brand.offer_slug(index),
                        "destination_url": format!("https://{name}.example/{index}"),
                        "default_payout": {"type": "flat", "amount": 10, "currency": "USD"}})),
                ),
            )
            .await;
        brand.offers.push(offer["id"].as_str().unwrap().to_owned());
    }
    for (offer, partner) in [
        (&brand.offers[0], Some(&brand.partners[0])),
        (&brand.offers[1], None),
    ] {
        let rule = edge
            .ok(
                &sender,
                Call::rest(
                    Method::POST,
                    "/api/public/pricing-rules",
                    Some(json!({"offer_id": offer, "partner_id": partner,
                        "payout": {"type": "percent", "amount": 10, "currency": "USD"}})),
                ),
            )
            .await;
        brand.rules.push(rule["id"].as_str().unwrap().to_owned());
    }
    for index in 0..3 {
        let click_id = format!("{name}-click-{index}");
        edge.ok(
            &sender,
            Call::capture(json!({"click_id": click_id, "offer": brand.offer_slug(0),
                "partner": brand.partners[0],
                "landing_url": format!("https://{name}.example/landing")})),
        )
        .await;
        brand.clicks.push(click_id);
    }
    // Seconds after their clicks: each conversion also raises a fast-conversion signal.
    for (index, txn) in [(0, Some(format!("{name}-order-1"))), (1, None)] {
        let conversion = edge
            .ok(
                &sender,
                Call::rest(
                    Method::POST,
                    "/api/public/conversions",
                    Some(json!({"click_id": brand.clicks[index], "amount": 120, "txn_id": txn})),
                ),
            )
            .await;
        brand
            .conversions
            .push(conversion["id"].as_str().unwrap().to_owned());
    }
    let signals = edge
        .ok(&sender, Call::get("/api/public/fraud-signals?limit=100"))
        .await;
    brand.signals = signals["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|signal| signal["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(brand.signals.len() >= 2, "{name}: {signals}");
    for listing in REST_LISTINGS {
        let page = edge
            .ok(&sender, Call::get(format!("/api/public/{listing}?limit=1")))
            .await;
        let cursor = page["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} {listing}: a second page: {page}"));
        brand.cursors.insert(listing.to_owned(), cursor.to_owned());
    }
    for tool in MCP_LISTINGS {
        let content = edge
            .send(&sender, &Call::tool(tool, json!({"limit": 1})))
            .await
            .tool_content(tool);
        let cursor = content["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} {tool}: a second page: {content}"));
        brand.cursors.insert(tool.to_owned(), cursor.to_owned());
    }
    brand
}

/// Everything stored for a brand, rendered deterministically: through the store traits (both
/// backends) and, on DynamoDB, every raw item of both tables that belongs to the brand.
async fn snapshot(edge: &Edge, brand: &Seeded) -> Vec<String> {
    let id = &brand.id;
    let mut lines = Vec::new();
    for kind in [
        DocumentKind::Partner,
        DocumentKind::Offer,
        DocumentKind::PricingRule,
        DocumentKind::Conversion,
        DocumentKind::FraudSignal,
    ] {
        let page = edge
            .data
            .list_documents(id, kind, 1000, None)
            .await
            .unwrap();
        assert!(page.next_position.is_none());
        lines.extend(page.items.iter().map(|document| format!("{document:?}")));
    }
    let clicks = edge
        .data
        .list_clicks(id, &ClickFilter::default(), 1000, None)
        .await
        .unwrap();
    lines.extend(clicks.items.iter().map(|click| format!("{click:?}")));
    let activity = edge
        .data
        .list_activity(id, ActivityFilter::default(), 1000, None)
        .await
        .unwrap();
    lines.extend(activity.items.iter().map(|record| format!("{record:?}")));
    for dimension in RollupDimension::ALL {
        let rows = edge
            .data
            .read_rollups(id, dimension, "2000-01-01", "2999-12-31")
            .await
            .unwrap();
        lines.extend(rows.iter().map(|row| format!("{row:?}")));
    }
    let keys = edge.keys.list(id, Some(100), None).await.unwrap();
    lines.push(format!("{keys:?}"));
    if let Some((client, keys_table, data_table)) = &edge.tables {
        for table in [keys_table, data_table] {
            lines.extend(raw_items_of(client, table, id.as_str()).await);
        }
    }
    lines
}

/// Every item of `table` whose partition key begins with the brand id, or that names the brand
/// (hash lookups), rendered with sorted attributes.
async fn raw_items_of(client: &aws_sdk_dynamodb::Client, table: &str, brand: &str) -> Vec<String> {
    let mut items: Vec<String> = all_items(client, table)
        .await
        .iter()
        .filter(|item| {
            let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
            text("pk").is_some_and(|pk| pk.starts_with(brand))
                || text("brand_id").is_some_and(|owner| owner == brand)
        })
        .map(|item| {
            let sorted: BTreeMap<&String, String> = item
                .iter()
                .map(|(name, value)| (name, render(value)))
                .collect();
            format!("{table} {sorted:?}")
        })
        .collect();
    items.sort();
    items
}

fn render(value: &AttributeValue) -> String {
    match value {
        AttributeValue::M(map) => {
            let sorted: BTreeMap<&String, String> = map
                .iter()
                .map(|(name, value)| (name, render(value)))
                .collect();
            format!("M{sorted:?}")
        }
        AttributeValue::L(list) => format!("L{:?}", list.iter().map(render).collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

/// Strings that name something of B: A's answers must contain none of them.
fn secrets_of(brand: &Seeded) -> Vec<String> {
    let mut secrets = vec![
        brand.id.to_string(),
        brand.key_id.clone(),
        brand.fingerprint.clone(),
        brand.ip.to_owned(),
        brand.user_agent.to_owned(),
    ];
    for ids in [
        &brand.offers,
        &brand.partners,
        &brand.rules,
        &brand.clicks,
        &brand.conversions,
        &brand.signals,
    ] {
        secrets.extend(ids.iter().cloned());
    }
    secrets
}

fn assert_shows_nothing_of(label: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{label} shows {secret} of another brand: {text}"
        );
    }
}

/// An id of the same shape as `id` that names nothing in either brand: its last character
/// changed.
fn same_shape_missing(id: &str, taken: &BTreeSet<String>) -> String {
    let (stem, last) = id.split_at(id.len() - 1);
    let alphabet: Vec<char> = if last.chars().all(|c| c.is_ascii_hexdigit()) {
        "0123456789abcdef".chars().collect()
    } else {
        "0123456789abcdefghijklmnopqrstuvwxyz".chars().collect()
    };
    alphabet
        .iter()
        .map(|c| format!("{stem}{c}"))
        .find(|candidate| candidate != id && !taken.contains(candidate))
        .expect("a free id of the same shape")
}

/// A cursor of the same length and alphabet as `cursor` that this service never minted: one
/// character in its middle changed.
fn tampered(cursor: &str) -> String {
    let middle = cursor.len() / 2;
    let replacement = if &cursor[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    format!(
        "{}{replacement}{}",
        &cursor[..middle],
        &cursor[middle + 1..]
    )
}

/// What one case checks.
enum Probe {
    /// A's request that may succeed but must show nothing of B; lists are paged to the end.
    Blind(Call),
    /// A's request naming B's thing (`foreign` inside `foreign_call`) and the same request naming
    /// a thing of the same shape that exists nowhere: the answers must be identical, byte for
    /// byte, once each named value is replaced by a placeholder.
    SameAsMissing {
        foreign_call: Call,
        foreign: String,
        missing_call: Call,
        missing: String,
    },
    /// A creates something of its own with an identifier B already uses (a slug, a click id, a
    /// transaction id): the answer must be what a fresh identifier gets (a new resource, not a
    /// conflict or a duplicate).
    CreateLikeFresh {
        foreign_call: Call,
        fresh_call: Call,
    },
}

/// `SameAsMissing` for calls built from one template: `build(value)` names the value.
fn same_as_missing(foreign: &str, missing: &str, build: impl Fn(&str) -> Call) -> Probe {
    Probe::SameAsMissing {
        foreign_call: build(foreign),
        foreign: foreign.to_owned(),
        missing_call: build(missing),
        missing: missing.to_owned(),
    }
}

/// The ids a probe may name: B's, and a non-existent id of the same shape for each.
struct Targets<'a> {
    a: &'a Seeded,
    b: &'a Seeded,
    taken: BTreeSet<String>,
}

impl Targets<'_> {
    /// B's `id` and its same-shape stand-in.
    fn pair(&self, id: &str) -> (String, String) {
        (id.to_owned(), same_shape_missing(id, &self.taken))
    }

    /// B's cursor of `listing` and a same-shape forgery.
    fn cursor(&self, listing: &str) -> (String, String) {
        let cursor = self.b.cursor(listing).to_owned();
        let forged = tampered(&cursor);
        (cursor, forged)
    }

    /// Paging into B: B's real cursor of the listing against a forged one.
    fn rest_cursor_probe(&self, listing: &str) -> Probe {
        let (real, forged) = self.cursor(listing);
        same_as_missing(&real, &forged, |cursor| {
            Call::get(format!("/api/public/{listing}?cursor={cursor}"))
        })
    }

    fn tool_cursor_probe(&self, tool: &str) -> Probe {
        let (real, forged) = self.cursor(tool);
        same_as_missing(&real, &forged, |cursor| {
            Call::tool(tool, json!({"cursor": cursor}))
        })
    }

    /// Reading, updating or deleting B's `id` at `/api/public/<collection>/{id}<suffix>`.
    fn by_id(&self, method: Method, collection: &str, id: &str, body: Option<Value>) -> Probe {
        let (real, missing) = self.pair(id);
        same_as_missing(&real, &missing, |id| {
            Call::rest(
                method.clone(),
                format!("/api/public/{collection}/{id}"),
                body.clone(),
            )
        })
    }

    /// A REST listing filtered by one of B's ids.
    fn rest_filter(&self, listing: &str, parameter: &str, id: &str) -> Probe {
        let (real, missing) = self.pair(id);
        same_as_missing(&real, &missing, |id| {
            Call::get(format!("/api/public/{listing}?{parameter}={id}&limit=100"))
        })
    }

    /// An MCP tool given one of B's ids as `argument`.
    fn tool_with(&self, tool: &str, argument: &str, id: &str) -> Probe {
        let (real, missing) = self.pair(id);
        same_as_missing(&real, &missing, |id| {
            Call::tool(tool, json!({argument: id}))
        })
    }
}

/// The cases of one public-API operation (method and path as the OpenAPI document spells them).
fn rest_cases(method: &str, path: &str, t: &Targets<'_>) -> Vec<Probe> {
    let (a, b) = (t.a, t.b);
    let listing = path.trim_start_matches("/api/public/");
    let payout = json!({"type": "flat", "amount": 1, "currency": "USD"});
    match (method, path) {
        ("get", "/api/public/health" | "/api/public/whoami") => vec![Probe::Blind(Call::get(path))],
        (
            "get",
            "/api/public/partners"
            | "/api/public/offers"
            | "/api/public/fraud-signals"
            | "/api/public/activity",
        ) => vec![
            Probe::Blind(Call::get(format!("{path}?limit=100"))),
            t.rest_cursor_probe(listing),
        ],
        ("get", "/api/public/pricing-rules") => vec![
            Probe::Blind(Call::get(format!("{path}?limit=100"))),
            t.rest_cursor_probe(listing),
            t.rest_filter(listing, "offer_id", &b.offers[0]),
        ],
        ("get", "/api/public/clicks" | "/api/public/conversions") => vec![
            Probe::Blind(Call::get(format!("{path}?limit=100"))),
            t.rest_cursor_probe(listing),
            t.rest_filter(listing, "offer_id", &b.offers[0]),
            t.rest_filter(listing, "partner_id", &b.partners[0]),
        ],
        ("get", "/api/public/partners/{id}") => {
            vec![t.by_id(Method::GET, "partners", &b.partners[0], None)]
        }
        ("patch", "/api/public/partners/{id}") => vec![t.by_id(
            Method::PATCH,
            "partners",
            &b.partners[0],
            Some(json!({"name": "Hijacked"})),
        )],
        ("delete", "/api/public/partners/{id}") => {
            vec![t.by_id(Method::DELETE, "partners", &b.partners[1], None)]
        }
        ("get", "/api/public/offers/{id}") => {
            vec![t.by_id(Method::GET, "offers", &b.offers[0], None)]
        }
        ("patch", "/api/public/offers/{id}") => vec![t.by_id(
            Method::PATCH,
            "offers",
            &b.offers[0],
            Some(json!({"name": "Hijacked"})),
        )],
        ("post", "/api/public/offers/{id}/archive") => {
            let (real, missing) = t.pair(&b.offers[1]);
            vec![same_as_missing(&real, &missing, |id| {
                Call::rest(
                    Method::POST,
                    format!("/api/public/offers/{id}/archive"),
                    None,
                )
            })]
        }
        ("get", "/api/public/offers/{id}/payout") => {
            let (real, missing) = t.pair(&b.offers[0]);
            let (partner, missing_partner) = t.pair(&b.partners[0]);
            vec![
                same_as_missing(&real, &missing, |id| {
                    Call::get(format!("/api/public/offers/{id}/payout"))
                }),
                same_as_missing(&partner, &missing_partner, |id| {
                    Call::get(format!(
                        "/api/public/offers/{}/payout?partner_id={id}",
                        a.offers[0]
                    ))
                }),
            ]
        }
        ("get", "/api/public/pricing-rules/{id}") => {
            vec![t.by_id(Method::GET, "pricing-rules", &b.rules[0], None)]
        }
        ("patch", "/api/public/pricing-rules/{id}") => vec![t.by_id(
            Method::PATCH,
            "pricing-rules",
            &b.rules[0],
            Some(json!({"priority": 7})),
        )],
        ("delete", "/api/public/pricing-rules/{id}") => {
            vec![t.by_id(Method::DELETE, "pricing-rules", &b.rules[1], None)]
        }
        ("get", "/api/public/clicks/{id}") => {
            vec![t.by_id(Method::GET, "clicks", &b.clicks[0], None)]
        }
        ("get", "/api/public/conversions/{id}") => {
            vec![t.by_id(Method::GET, "conversions", &b.conversions[0], None)]
        }
        ("patch", "/api/public/conversions/{id}") => vec![t.by_id(
            Method::PATCH,
            "conversions",
            &b.conversions[0],
            Some(json!({"status": "approved"})),
        )],
        ("get", "/api/public/fraud-signals/{id}") => {
            vec![t.by_id(Method::GET, "fraud-signals", &b.signals[0], None)]
        }
        ("patch", "/api/public/fraud-signals/{id}") => vec![t.by_id(
            Method::PATCH,
            "fraud-signals",
            &b.signals[0],
            Some(json!({"review_state": "dismissed"})),
        )],
        ("post", "/api/public/partners") => {
            let body = |slug: &str| {
                Call::rest(
                    Method::POST,
                    path,
                    Some(json!({"name": "Mine", "email": "me@brand-a.example", "slug": slug})),
                )
            };
            vec![Probe::CreateLikeFresh {
                foreign_call: body(&b.partner_slug(0)),
                fresh_call: body(&format!("{}-fresh", a.partner_slug(7))),
            }]
        }
        ("post", "/api/public/offers") => {
            let body = |slug: &str| {
                Call::rest(
                    Method::POST,
                    path,
                    Some(json!({"name": "Mine", "slug": slug,
                        "destination_url": "https://brand-a.example/mine",
                        "default_payout": payout})),
                )
            };
            vec![Probe::CreateLikeFresh {
                foreign_call: body(&b.offer_slug(0)),
                fresh_call: body(&format!("{}-fresh", a.offer_slug(7))),
            }]
        }
        ("post", "/api/public/pricing-rules") => {
            let (offer, missing_offer) = t.pair(&b.offers[0]);
            let (partner, missing_partner) = t.pair(&b.partners[0]);
            vec![
                same_as_missing(&offer, &missing_offer, |id| {
                    Call::rest(
                        Method::POST,
                        path,
                        Some(json!({"offer_id": id, "payout": payout})),
                    )
                }),
                same_as_missing(&partner, &missing_partner, |id| {
                    Call::rest(
                        Method::POST,
                        path,
                        Some(json!({"offer_id": a.offers[0], "partner_id": id, "payout": payout})),
                    )
                }),
            ]
        }
        ("post", "/api/public/conversions") => {
            let (click, missing_click) = t.pair(&b.clicks[0]);
            let conversion = |click: &str, txn: &str| {
                Call::rest(
                    Method::POST,
                    path,
                    Some(json!({"click_id": click, "amount": 50, "txn_id": txn})),
                )
            };
            vec![
                same_as_missing(&click, &missing_click, |id| {
                    conversion(id, "brand-a-probe-order")
                }),
                // B's transaction id is B's own: for A it is new, not a duplicate of B's.
                Probe::CreateLikeFresh {
                    foreign_call: conversion(&a.clicks[2], &format!("{}-order-1", b.id)),
                    fresh_call: conversion(&a.clicks[2], "brand-a-fresh-order"),
                },
            ]
        }
        _ => panic!(
            "{method} {path} has no brand-isolation case: add one to rest_cases in \
             infra/local/tests/brand_isolation.rs"
        ),
    }
}

/// The cases of one MCP tool.
fn tool_cases(tool: &str, t: &Targets<'_>) -> Vec<Probe> {
    let b = t.b;
    match tool {
        "whoami" | "get_top_partners" | "get_fraud_summary" => {
            vec![Probe::Blind(Call::tool(tool, json!({})))]
        }
        "list_offers" | "list_partners" | "list_activity" => vec![
            Probe::Blind(Call::tool(tool, json!({"limit": 100}))),
            t.tool_cursor_probe(tool),
        ],
        "list_pricing_rules" => vec![
            Probe::Blind(Call::tool(tool, json!({"limit": 100}))),
            t.tool_cursor_probe(tool),
            t.tool_with(tool, "offer_id", &b.offers[0]),
        ],
        "list_clicks" | "list_conversions" => vec![
            Probe::Blind(Call::tool(tool, json!({"limit": 100}))),
            t.tool_cursor_probe(tool),
            t.tool_with(tool, "offer_id", &b.offers[0]),
            t.tool_with(tool, "partner_id", &b.partners[0]),
        ],
        "get_offer" => vec![t.tool_with(tool, "id", &b.offers[0])],
        "get_partner" => vec![t.tool_with(tool, "id", &b.partners[0])],
        "get_conversion" => vec![t.tool_with(tool, "id", &b.conversions[0])],
        "get_program_stats" => vec![
            Probe::Blind(Call::tool(tool, json!({}))),
            Probe::Blind(Call::tool(tool, json!({"group_by": "offer"}))),
            Probe::Blind(Call::tool(tool, json!({"group_by": "partner"}))),
            t.tool_with(tool, "offer_id", &b.offers[0]),
            t.tool_with(tool, "partner_id", &b.partners[0]),
        ],
        _ => panic!(
            "MCP tool {tool} has no brand-isolation case: add one to tool_cases in \
             infra/local/tests/brand_isolation.rs"
        ),
    }
}

/// The cases of one capture route.
fn capture_cases(method: &str, t: &Targets<'_>) -> Vec<Probe> {
    let (a, b) = (t.a, t.b);
    match method {
        "OPTIONS" => vec![Probe::Blind(Call {
            method: Method::OPTIONS,
            path: trcker_capture::CAPTURE_PATH.into(),
            body: None,
            headers: vec![("origin", "https://brand-a.example".into())],
        })],
        "POST" => {
            let mut probes = Vec::new();
            for (field, value) in [
                ("offer", b.offers[0].clone()),
                ("offer", b.offer_slug(0)),
                ("partner", b.partners[0].clone()),
                ("partner", b.partner_slug(0)),
            ] {
                let (real, missing) = t.pair(&value);
                probes.push(same_as_missing(&real, &missing, |reference| {
                    // The same click id on both: a first request that wrote would make the
                    // second a duplicate, and the answers would differ.
                    let mut body = json!({"click_id": "brand-a-probe-click"});
                    body[field] = json!(reference);
                    Call::capture(body)
                }));
            }
            // B's click id is B's own: for A it is a new click, not a duplicate of B's.
            let click = |id: &str| Call::capture(json!({"click_id": id, "offer": a.offers[0]}));
            probes.push(Probe::CreateLikeFresh {
                foreign_call: click(&b.clicks[1]),
                fresh_call: click("brand-a-fresh-click"),
            });
            probes
        }
        _ => panic!(
            "capture route {method} has no brand-isolation case: add one to capture_cases in \
             infra/local/tests/brand_isolation.rs"
        ),
    }
}

/// Every operation of the served OpenAPI document, as (method, path).
async fn documented_operations(edge: &Edge, sender: &Sender<'_>) -> Vec<(String, String)> {
    let document = edge.ok(sender, Call::get("/api/public/openapi.json")).await;
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push((method.clone(), path.clone()));
        }
    }
    operations
}

async fn tool_names(edge: &Edge, sender: &Sender<'_>) -> Vec<String> {
    let reply = edge.send(sender, &Call::rpc("tools/list", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A's answer and, for a list, every further page A can reach from it.
async fn every_page(edge: &Edge, sender: &Sender<'_>, call: &Call) -> Vec<Reply> {
    let mut replies = Vec::new();
    let mut call = call.clone();
    for _ in 0..50 {
        let reply = edge.send(sender, &call).await;
        let body = reply.json();
        let mcp = call.path == trcker_mcp::MCP_PATH;
        let next = if mcp {
            body["result"]["structuredContent"]["next_cursor"].as_str()
        } else {
            body["next_cursor"].as_str()
        }
        .map(str::to_owned);
        replies.push(reply);
        let Some(cursor) = next else {
            return replies;
        };
        if mcp {
            let mut message: Value = serde_json::from_str(call.body.as_deref().unwrap()).unwrap();
            message["params"]["arguments"]["cursor"] = json!(cursor);
            call.body = Some(message.to_string());
        } else {
            let base = call.path.split("&cursor=").next().unwrap().to_owned();
            call.path = format!("{base}&cursor={cursor}");
        }
    }
    panic!("{} {} pages without end", call.method, call.path)
}

/// Counts of what was checked, so a run that checks nothing fails.
#[derive(Default, Debug)]
struct Checked {
    blind: usize,
    same_as_missing: usize,
    create_like_fresh: usize,
}

async fn run_matrix(edge: Edge) {
    let a = seed(&edge, BRAND_A, "203.0.113.7", "client-a/1.0").await;
    let b = seed(&edge, BRAND_B, "198.51.100.66", "client-of-brand-b/2.0").await;
    let mut taken: BTreeSet<String> = secrets_of(&a).into_iter().collect();
    taken.extend(secrets_of(&b));
    taken.extend([
        a.offer_slug(0),
        a.offer_slug(1),
        b.offer_slug(0),
        b.offer_slug(1),
    ]);
    taken.extend([
        a.partner_slug(0),
        a.partner_slug(1),
        b.partner_slug(0),
        b.partner_slug(1),
    ]);
    let targets = Targets {
        a: &a,
        b: &b,
        taken,
    };
    let sender = a.sender();
    let b_secrets = secrets_of(&b);
    let before = snapshot(&edge, &b).await;
    assert!(
        before.len() > 30,
        "B holds data of every kind: {}",
        before.len()
    );

    let mut probes: Vec<(String, Probe)> = Vec::new();
    for (method, path) in documented_operations(&edge, &sender).await {
        for probe in rest_cases(&method, &path, &targets) {
            probes.push((format!("{method} {path}"), probe));
        }
    }
    for tool in tool_names(&edge, &sender).await {
        for probe in tool_cases(&tool, &targets) {
            probes.push((format!("tool {tool}"), probe));
        }
    }
    for (method, path) in trcker_capture::ROUTES {
        assert_eq!(*path, trcker_capture::CAPTURE_PATH);
        for probe in capture_cases(method, &targets) {
            probes.push((format!("{method} {path}"), probe));
        }
    }

    let mut checked = Checked::default();
    // Blind reads first: once A has named B's ids in a request, A's own audit trail holds them.
    for (label, probe) in &probes {
        let Probe::Blind(call) = probe else { continue };
        for reply in every_page(&edge, &sender, call).await {
            assert!(
                reply.status.is_success(),
                "{label}: {} {}",
                reply.status,
                reply.text
            );
            assert_shows_nothing_of(label, &reply.text, &b_secrets);
            checked.blind += 1;
        }
    }
    for (label, probe) in &probes {
        let Probe::SameAsMissing {
            foreign_call,
            foreign,
            missing_call,
            missing,
        } = probe
        else {
            continue;
        };
        let for_b = edge.send(&sender, foreign_call).await;
        let for_nothing = edge.send(&sender, missing_call).await;
        let label = format!("{label} ({} {})", foreign_call.method, foreign_call.path);
        assert!(
            !matches!(for_b.status.as_u16(), 401 | 403 | 429) && !for_b.status.is_server_error(),
            "{label}: the probe must reach the handler, got {} {}",
            for_b.status,
            for_b.text
        );
        assert_eq!(
            for_b.status, for_nothing.status,
            "{label}: status: {} vs {}",
            for_b.text, for_nothing.text
        );
        assert_eq!(for_b.headers, for_nothing.headers, "{label}: headers");
        let placeholder = "{probed}";
        let for_b_text = for_b.text.replace(foreign.as_str(), placeholder);
        assert_eq!(
            for_b_text,
            for_nothing.text.replace(missing.as_str(), placeholder),
            "{label}: body"
        );
        assert_shows_nothing_of(&label, &for_b_text, &b_secrets);
        checked.same_as_missing += 1;
    }
    // Creations last: they give A things with B's slugs, click ids and transaction ids.
    for (label, probe) in &probes {
        let Probe::CreateLikeFresh {
            foreign_call,
            fresh_call,
        } = probe
        else {
            continue;
        };
        let foreign = edge.send(&sender, foreign_call).await;
        let fresh = edge.send(&sender, fresh_call).await;
        assert_eq!(
            foreign.status,
            StatusCode::CREATED,
            "{label}: {}",
            foreign.text
        );
        assert_eq!(foreign.status, fresh.status, "{label}");
        let outcome = |reply: &Reply| {
            let body = reply.json();
            (body["status"].clone(), body["duplicate"].clone())
        };
        assert_eq!(outcome(&foreign), outcome(&fresh), "{label}");
        checked.create_like_fresh += 1;
    }

    let after = snapshot(&edge, &b).await;
    assert_eq!(before.len(), after.len(), "B's items, before and after");
    for (was, is) in before.iter().zip(&after) {
        assert_eq!(was, is, "B's data changed under A's requests");
    }
    // And A's requests are in A's trail only: B's log still ends with B's own requests.
    let b_log = edge
        .data
        .list_activity(&b.id, ActivityFilter::default(), 1000, None)
        .await
        .unwrap();
    assert!(b_log.items.iter().all(|record| record.key_id == b.key_id));
    eprintln!("brand isolation: {checked:?}");
    assert!(
        checked.blind >= 20 && checked.same_as_missing >= 40 && checked.create_like_fresh >= 4,
        "{checked:?}"
    );
}

#[tokio::test]
async fn brand_a_cannot_reach_brand_b_in_memory() {
    run_matrix(Edge::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brand_a_cannot_reach_brand_b_on_dynamodb() {
    // The moto client is created here so a missing endpoint fails with `scripts/test` named.
    moto_aws_config().await;
    run_matrix(Edge::dynamodb().await).await;
}
