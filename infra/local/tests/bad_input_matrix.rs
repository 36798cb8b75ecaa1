//! The bad-input matrix (issue 8, section 2): every route of the local gateway and every MCP tool,
//! walked through hostile and malformed input. Each case must get its documented 4xx status with
//! its stable error code (for MCP tools: an `isError` result whose text starts with the code),
//! never a 5xx or a panic, and must write nothing.
//!
//! Routes come from the code, so a new one cannot escape: the public API's operations from its
//! OpenAPI document (generated from the handlers), capture's and MCP's from their `ROUTES`, the
//! MCP tools from `tools/list`. A route or tool this file does not know how to feed fails the test.
//!
//! "Nothing written" is checked on the store call log: every brand-data call a request makes must
//! be a read, or one of the guard's own two writes: the activity record (the audit trail, written
//! for every authenticated request, refusals included) and the rate-limit counter. On the key
//! store, only the guard's `last_used_at` update may write. Unknown fields are refused everywhere
//! (REST bodies and query strings, capture bodies, MCP tool arguments).
//!
//! The local gateway's own checks (issue 19, `local_guard`) are walked too: a foreign `Host` on
//! every route, routed or not, and the Lambda Invoke path (which needs no brand key) driven the
//! way a web page could drive it: unsigned, from an `Origin`, with `Sec-Fetch-Site`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::counting::{CountingStore, StoreOperation};
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{fresh_dynamo_brand_data, fresh_dynamo_store};

/// Brand-data calls a refused request may make: reads, and the guard's audit record and rate
/// counter. Anything else (including a call this list does not know yet) counts as a write.
const ALLOWED_DATA_CALLS: [&str; 13] = [
    "claim_holder",
    "query_documents",
    "get_document",
    "list_documents_by_prefix",
    "query_activity",
    "list_activity",
    "get_click",
    "query_clicks",
    "list_clicks",
    "query_rollups",
    "read_rollups",
    "append_activity",
    "increment_counter",
];
/// Key-store operations that change keys or brands. (`RecordKeyUse` is the guard's throttled
/// `last_used_at` bookkeeping, not a change a caller asked for.)
const KEY_WRITES: [StoreOperation; 3] = [
    StoreOperation::CreateBrand,
    StoreOperation::InsertKey,
    StoreOperation::RevokeKey,
];
const MCP_VERSION: &str = "2025-11-25";
const USER_AGENT: &str = "bad-input-matrix/1.0";
/// Methods tried against every path for "wrong method".
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What a case must answer.
#[derive(Debug, Clone, Copy)]
enum Expected {
    /// HTTP status and the `error.code` of the JSON body.
    Http(u16, &'static str),
    /// An MCP tool result with `isError: true` whose text starts with `code:`.
    ToolError(&'static str),
    /// Answered normally (2xx): the one documented exception, unknown members of the JSON-RPC
    /// envelope, which the MCP protocol leaves open (its own objects are extensible).
    Served,
    /// No route of the template takes the request: API Gateway's own 404, no function involved.
    Unrouted,
    /// Refused by the local gateway itself (`local_guard`) with this status and `error.code`:
    /// no function involved, so no store call at all.
    Gateway(u16, &'static str),
}

/// Which credentials a probe carries.
#[derive(Debug, Clone)]
enum Auth {
    /// The matrix brand's valid key.
    Valid,
    None,
    /// This exact `Authorization` value.
    Raw(HeaderValue),
}

#[derive(Debug, Clone)]
struct Probe {
    method: Method,
    uri: String,
    /// `localhost` unless a case is about the `Host` check.
    host: &'static str,
    content_type: &'static str,
    auth: Auth,
    extra_headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl Probe {
    fn new(method: &str, uri: impl Into<String>) -> Self {
        Self {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            uri: uri.into(),
            host: "localhost",
            content_type: "application/json",
            auth: Auth::Valid,
            extra_headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn host(mut self, host: &'static str) -> Self {
        self.host = host;
        self
    }

    fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    fn header(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.extra_headers
            .push((HeaderName::from_static(name), value));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn json(self, body: &Value) -> Self {
        self.body(body.to_string())
    }
}

/// Ids of what was seeded for one brand, and a cursor of each list (REST path or MCP tool).
#[derive(Default)]
struct Seeded {
    key: String,
    partner: String,
    offer: String,
    rule: String,
    click: String,
    conversion: String,
    signal: String,
    cursors: BTreeMap<String, String>,
}

type CallLog = Box<dyn Fn() -> Vec<&'static str> + Send + Sync>;

struct Matrix {
    router: Router,
    data_calls: CallLog,
    key_store: Arc<dyn Fn() -> u64 + Send + Sync>,
    a: Seeded,
    b: Seeded,
    revoked_key: String,
    unknown_key: String,
    failures: Vec<String>,
    /// route -> cases it was walked through.
    coverage: BTreeMap<String, BTreeSet<String>>,
    cases: usize,
}

struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

static NEXT_SLUG: AtomicU64 = AtomicU64::new(1);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_SLUG.fetch_add(1, Ordering::Relaxed))
}

fn bearer(key: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {key}")).unwrap()
}

impl Matrix {
    async fn new<K: KeyStore + 'static, D: BrandDataStore + 'static>(
        key_store: K,
        data: D,
    ) -> Self {
        let key_store = Arc::new(CountingStore::new(key_store));
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store.clone(),
            Arc::new(SystemClock),
        ));
        let data = Arc::new(FaultyBrandData::new(data));
        let data_calls: CallLog = {
            let data = data.clone();
            Box::new(move || data.take_calls())
        };
        let key_writes = {
            let key_store = key_store.clone();
            Arc::new(move || {
                KEY_WRITES
                    .iter()
                    .map(|op| key_store.calls(*op))
                    .sum::<u64>()
            })
        };
        // The budgets are not what is under test here: hundreds of refused requests per key.
        let limits = EdgeLimits {
            rate_limit_per_minute: 1_000_000,
            revoked_key_records_per_minute: 1_000_000,
            ..EdgeLimits::default()
        };
        let capture = CaptureConfig {
            rate_limit_per_minute: 1_000_000,
            source_rate_limit_per_minute: 1_000_000,
            ..CaptureConfig::default()
        };
        let router =
            trcker_local::gateway(keys.clone(), data, limits, capture, McpConfig::default());
        let mut matrix = Self {
            router,
            data_calls,
            key_store: key_writes,
            a: Seeded::default(),
            b: Seeded::default(),
            revoked_key: String::new(),
            unknown_key: trcker_shared::token::generate_key()
                .unwrap()
                .expose_secret()
                .to_owned(),
            failures: Vec::new(),
            coverage: BTreeMap::new(),
            cases: 0,
        };
        for name in ["matrix-a", "matrix-b"] {
            let brand = BrandId::parse(name).unwrap();
            keys.create_brand(&brand, name).await.unwrap();
            let key = keys.generate(&brand, None).await.unwrap();
            let seeded = matrix.seed(key.key.expose_secret()).await;
            if name == "matrix-a" {
                matrix.a = seeded;
            } else {
                matrix.b = seeded;
            }
        }
        let brand = BrandId::parse("matrix-a").unwrap();
        let revoked = keys.generate(&brand, Some("revoked")).await.unwrap();
        keys.revoke(&brand, &revoked.key_id).await.unwrap();
        matrix.revoked_key = revoked.key.expose_secret().to_owned();
        matrix
    }

    async fn send(&self, probe: &Probe, key: &str) -> Answer {
        let mut builder = Request::builder()
            .method(probe.method.clone())
            .uri(probe.uri.as_str())
            .header("host", probe.host)
            .header("user-agent", USER_AGENT)
            .header("content-type", probe.content_type)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MCP_VERSION);
        match &probe.auth {
            Auth::Valid => builder = builder.header("authorization", bearer(key)),
            Auth::None => {}
            Auth::Raw(value) => builder = builder.header("authorization", value.clone()),
        }
        for (name, value) in &probe.extra_headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(Body::from(probe.body.clone())).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 8 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    /// A request that must succeed (seeding, cursors), as `key`.
    async fn ok(&self, probe: Probe, key: &str) -> Value {
        let answer = self.send(&probe, key).await;
        assert!(
            answer.status.is_success(),
            "{} {}: {} {}",
            probe.method,
            probe.uri,
            answer.status,
            answer.text
        );
        answer.body
    }

    async fn tool_ok(&self, key: &str, tool: &str, arguments: Value) -> Value {
        let body = self
            .ok(
                Probe::new("POST", "/api/mcp").json(&tool_call(tool, &arguments)),
                key,
            )
            .await;
        assert_eq!(body["result"]["isError"], false, "{tool}: {body}");
        body["result"]["structuredContent"].clone()
    }

    /// Two of everything for one brand, through its own API (and capture), and a cursor of
    /// every list.
    async fn seed(&self, key: &str) -> Seeded {
        let mut seeded = Seeded {
            key: key.to_owned(),
            ..Seeded::default()
        };
        for round in 0..2 {
            let slug = unique("seed-partner");
            let partner = self
                .ok(
                    Probe::new("POST", "/api/public/partners").json(&json!({
                        "name": "Seed partner", "email": format!("{slug}@partners.example"),
                        "slug": slug})),
                    key,
                )
                .await;
            let offer = self
                .ok(
                    Probe::new("POST", "/api/public/offers").json(&json!({
                        "name": "Seed offer", "slug": unique("seed-offer"),
                        "destination_url": "https://shop.example/seed",
                        "default_payout": {"type": "flat", "amount": 5, "currency": "USD"}})),
                    key,
                )
                .await;
            let (partner_id, offer_id) = (
                partner["id"].as_str().unwrap().to_owned(),
                offer["id"].as_str().unwrap().to_owned(),
            );
            let rule = self
                .ok(
                    Probe::new("POST", "/api/public/pricing-rules").json(&json!({
                        "offer_id": offer_id, "partner_id": partner_id,
                        "payout": {"type": "flat", "amount": 7, "currency": "USD"}})),
                    key,
                )
                .await;
            let click_id = unique("seed-click");
            self.ok(
                Probe::new("POST", "/api/clicks/capture").json(&json!({
                    "click_id": click_id, "offer": offer_id, "partner": partner_id})),
                key,
            )
            .await;
            // Seconds after its click: also a fast_conversion fraud signal.
            let conversion = self
                .ok(
                    Probe::new("POST", "/api/public/conversions").json(&json!({
                        "click_id": click_id, "amount": 120, "txn_id": unique("seed-txn")})),
                    key,
                )
                .await;
            if round == 0 {
                seeded.partner = partner_id;
                seeded.offer = offer_id;
                seeded.rule = rule["id"].as_str().unwrap().to_owned();
                seeded.click = click_id;
                seeded.conversion = conversion["id"].as_str().unwrap().to_owned();
            }
        }
        let signals = self
            .ok(Probe::new("GET", "/api/public/fraud-signals?limit=1"), key)
            .await;
        seeded.signal = signals["data"][0]["id"].as_str().unwrap().to_owned();

        for (path, operation) in public_operations() {
            if operation.method == "GET" && operation.query.contains(&"cursor".to_owned()) {
                let uri = format!("{}?limit=1", seeded_path(&path, &seeded));
                let page = self.ok(Probe::new("GET", uri), key).await;
                let cursor = page["next_cursor"].as_str().unwrap_or_else(|| {
                    panic!("{path}: seed two items so a page of one has a cursor")
                });
                seeded.cursors.insert(path.clone(), cursor.to_owned());
            }
        }
        for tool in self.tools(key).await {
            if tool.properties.contains_key("cursor") {
                let page = self
                    .tool_ok(
                        key,
                        &tool.name,
                        with(&required_args(&tool, &seeded), "limit", json!(1)),
                    )
                    .await;
                let cursor = page["next_cursor"].as_str().unwrap_or_else(|| {
                    panic!(
                        "{}: seed two items so a page of one has a cursor",
                        tool.name
                    )
                });
                seeded.cursors.insert(tool.name.clone(), cursor.to_owned());
            }
        }
        seeded
    }

    /// The MCP tools as the server lists them.
    async fn tools(&self, key: &str) -> Vec<Tool> {
        let body = self
            .ok(
                Probe::new("POST", "/api/mcp")
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
                key,
            )
            .await;
        body["result"]["tools"]
            .as_array()
            .expect("tools/list answers tools")
            .iter()
            .map(|tool| Tool {
                name: tool["name"].as_str().unwrap().to_owned(),
                properties: tool["inputSchema"]["properties"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                required: tool["inputSchema"]["required"]
                    .as_array()
                    .map(|required| {
                        required
                            .iter()
                            .map(|name| name.as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Sends one case and checks status, code, and that nothing was written.
    async fn check(&mut self, route: &str, case: &str, probe: Probe, expected: Expected) {
        self.cases += 1;
        self.coverage
            .entry(route.to_owned())
            .or_default()
            .insert(case.to_owned());
        let what = format!("{route} [{case}] {} {}", probe.method, shorten(&probe.uri));
        let _ = (self.data_calls)();
        let key_writes_before = (self.key_store)();
        let answer = self.send(&probe, &self.a.key.clone()).await;
        let calls = (self.data_calls)();
        let key_writes = (self.key_store)() - key_writes_before;

        let mut problems = Vec::new();
        if answer.status.is_server_error() {
            problems.push(format!("5xx: {}", answer.status));
        }
        match expected {
            Expected::Http(status, code) => {
                if answer.status.as_u16() != status || answer.body["error"]["code"] != code {
                    problems.push(format!(
                        "expected {status} {code}, got {} {}",
                        answer.status,
                        shorten(&answer.text)
                    ));
                }
            }
            Expected::Unrouted => {
                if answer.status != StatusCode::NOT_FOUND
                    || answer.text != trcker_local::api_gateway_routes::NOT_FOUND_BODY
                {
                    problems.push(format!(
                        "expected API Gateway's 404, got {} {}",
                        answer.status,
                        shorten(&answer.text)
                    ));
                }
                // No function ran: not even the guard's activity record or rate-limit counter.
                if !calls.is_empty() {
                    problems.push(format!("an unrouted request reached a function: {calls:?}"));
                }
            }
            Expected::Gateway(status, code) => {
                if answer.status.as_u16() != status || answer.body["error"]["code"] != code {
                    problems.push(format!(
                        "expected {status} {code}, got {} {}",
                        answer.status,
                        shorten(&answer.text)
                    ));
                }
                if !calls.is_empty() {
                    problems.push(format!("a refused request reached a function: {calls:?}"));
                }
            }
            Expected::Served => {
                if !answer.status.is_success() {
                    problems.push(format!(
                        "expected an answer, got {} {}",
                        answer.status,
                        shorten(&answer.text)
                    ));
                }
            }
            Expected::ToolError(code) => {
                let result = &answer.body["result"];
                let text = result["content"][0]["text"].as_str().unwrap_or("");
                if answer.status != StatusCode::OK
                    || result["isError"] != true
                    || !text.starts_with(&format!("{code}: "))
                {
                    problems.push(format!(
                        "expected an isError result `{code}: …`, got {} {}",
                        answer.status,
                        shorten(&answer.text)
                    ));
                }
            }
        }
        let writes: Vec<&str> = calls
            .iter()
            .copied()
            .filter(|call| !ALLOWED_DATA_CALLS.contains(call))
            .collect();
        if !writes.is_empty() {
            problems.push(format!("wrote to the data store: {writes:?}"));
        }
        // Capture counts two budgets (the source's and the key's), every other route one.
        let budgets = if probe.uri.starts_with(trcker_capture::CAPTURE_PATH) {
            2
        } else {
            1
        };
        for (guard_write, most) in [("append_activity", 1), ("increment_counter", budgets)] {
            let count = calls.iter().filter(|call| **call == guard_write).count();
            if count > most {
                problems.push(format!("{guard_write} {count} times for one request"));
            }
        }
        if key_writes != 0 {
            problems.push(format!("{key_writes} key-store writes"));
        }
        for secret in [
            &self.a.key,
            &self.b.key,
            &self.revoked_key,
            &self.unknown_key,
        ] {
            if answer.text.contains(&secret[3..]) {
                problems.push("the response echoes a key".to_owned());
            }
        }
        if !problems.is_empty() {
            self.failures
                .push(format!("{what}: {}", problems.join("; ")));
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 300 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(300).collect::<String>())
    }
}

fn tool_call(tool: &str, arguments: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

fn with(base: &Value, name: &str, value: Value) -> Value {
    let mut object = base.as_object().cloned().unwrap_or_default();
    object.insert(name.to_owned(), value);
    Value::Object(object)
}

struct Tool {
    name: String,
    properties: BTreeMap<String, Value>,
    required: Vec<String>,
}

/// The smallest valid arguments of a tool: its required ones, from the seeded brand.
fn required_args(tool: &Tool, seeded: &Seeded) -> Value {
    let mut arguments = serde_json::Map::new();
    for name in &tool.required {
        let value = match (tool.name.as_str(), name.as_str()) {
            ("get_offer", "id") => &seeded.offer,
            ("get_partner", "id") => &seeded.partner,
            ("get_conversion", "id") => &seeded.conversion,
            other => panic!("no valid value for the required argument {other:?}: add one"),
        };
        arguments.insert(name.clone(), json!(value));
    }
    Value::Object(arguments)
}

/// One operation of the public API's OpenAPI document.
struct Operation {
    method: String,
    authenticated: bool,
    has_body: bool,
    query: Vec<String>,
}

/// Every operation of the served OpenAPI document, by path template.
fn public_operations() -> Vec<(String, Operation)> {
    let document = serde_json::to_value(trcker_public_api::openapi::document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let query = operation["parameters"]
                .as_array()
                .map(|parameters| {
                    parameters
                        .iter()
                        .filter(|parameter| parameter["in"] == "query")
                        .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            operations.push((
                path.clone(),
                Operation {
                    method: method.to_uppercase(),
                    authenticated: operation["security"].is_array(),
                    has_body: operation["requestBody"].is_object(),
                    query,
                },
            ));
        }
    }
    operations
}

/// A path template with the seeded brand's real ids in it.
fn seeded_path(template: &str, seeded: &Seeded) -> String {
    if !template.contains("{id}") {
        return template.to_owned();
    }
    let id = if template.starts_with("/api/public/partners/") {
        &seeded.partner
    } else if template.starts_with("/api/public/offers/") {
        &seeded.offer
    } else if template.starts_with("/api/public/pricing-rules/") {
        &seeded.rule
    } else if template.starts_with("/api/public/clicks/") {
        &seeded.click
    } else if template.starts_with("/api/public/conversions/") {
        &seeded.conversion
    } else if template.starts_with("/api/public/fraud-signals/") {
        &seeded.signal
    } else {
        panic!("no seeded id for {template}: add one");
    };
    template.replace("{id}", id)
}

/// A valid body for each operation that takes one (of the matrix brand), so that a case which
/// differs from it in one way is refused for that one reason, and a refusal that failed would
/// have written something.
fn valid_body(method: &str, template: &str, seeded: &Seeded) -> Value {
    match (method, template) {
        ("POST", "/api/public/partners") => {
            let slug = unique("matrix-partner");
            json!({"name": "Matrix", "email": format!("{slug}@partners.example"), "slug": slug})
        }
        ("PATCH", "/api/public/partners/{id}") => json!({"name": "Renamed"}),
        ("POST", "/api/public/offers") => json!({
            "name": "Matrix offer", "slug": unique("matrix-offer"),
            "destination_url": "https://shop.example/matrix",
            "default_payout": {"type": "percent", "amount": 10}}),
        ("PATCH", "/api/public/offers/{id}") => json!({"name": "Renamed"}),
        ("POST", "/api/public/pricing-rules") => json!({
            "offer_id": seeded.offer, "payout": {"type": "flat", "amount": 1, "currency": "USD"},
            "priority": 3}),
        ("PATCH", "/api/public/pricing-rules/{id}") => json!({"priority": 9}),
        ("POST", "/api/public/conversions") => {
            json!({"click_id": seeded.click, "amount": 10, "txn_id": unique("matrix-txn")})
        }
        ("PATCH", "/api/public/conversions/{id}") => json!({"status": "approved"}),
        ("PATCH", "/api/public/fraud-signals/{id}") => json!({"review_state": "dismissed"}),
        (method, path) => panic!("no valid body for {method} {path}: add one"),
    }
}

/// The same JSON with one field's value of another type: JSON-RPC's `method` (its `id` may be a
/// number or a string), else the first field.
fn first_field_mistyped(body: &Value) -> Value {
    let mut object = body.as_object().cloned().unwrap();
    let (name, value) = object
        .get_key_value("method")
        .or_else(|| object.iter().next())
        .map(|(n, v)| (n.clone(), v.clone()))
        .unwrap();
    let wrong = match value {
        Value::String(_) => json!(12345),
        Value::Number(_) => json!("twelve"),
        _ => json!("text"),
    };
    object.insert(name, wrong);
    Value::Object(object)
}

/// A body of exactly `size` bytes that is otherwise valid JSON.
fn oversized(size: usize) -> Vec<u8> {
    let padding = size - r#"{"name":""}"#.len();
    format!(r#"{{"name":"{}"}}"#, "x".repeat(padding)).into_bytes()
}

/// One credential case: its name, the `Authorization` it sends, other headers, the answer.
type CredentialCase = (
    &'static str,
    Auth,
    Vec<(&'static str, HeaderValue)>,
    Expected,
);

/// Credential cases: each must be refused before anything runs.
fn credential_cases(m: &Matrix) -> Vec<CredentialCase> {
    let unauthorized = Expected::Http(401, "unauthorized");
    let raw = |text: &str| Auth::Raw(HeaderValue::from_str(text).unwrap());
    vec![
        ("no credentials", Auth::None, vec![], unauthorized),
        ("empty bearer", raw("Bearer "), vec![], unauthorized),
        (
            "bearer without a space",
            raw("Bearer"),
            vec![],
            unauthorized,
        ),
        (
            "basic scheme",
            raw("Basic dXNlcjpwYXNz"),
            vec![],
            unauthorized,
        ),
        (
            "malformed key",
            raw("Bearer tk_short"),
            vec![],
            unauthorized,
        ),
        (
            "bad checksum",
            Auth::Raw(bearer(&format!("{}A", &m.a.key[..m.a.key.len() - 1]))),
            vec![],
            unauthorized,
        ),
        (
            "unknown key",
            Auth::Raw(bearer(&m.unknown_key)),
            vec![],
            unauthorized,
        ),
        (
            "revoked key",
            Auth::Raw(bearer(&m.revoked_key)),
            vec![],
            unauthorized,
        ),
        (
            "non-text authorization",
            Auth::Raw(HeaderValue::from_bytes(b"Bearer tk_\xff\xfe").unwrap()),
            vec![],
            unauthorized,
        ),
        (
            "64 KB authorization header",
            Auth::Raw(bearer(&"A".repeat(64 * 1024))),
            vec![],
            unauthorized,
        ),
        (
            "conflicting authorization and x-api-key",
            Auth::Valid,
            vec![("x-api-key", HeaderValue::from_str(&m.b.key).unwrap())],
            Expected::Http(401, "conflicting_credentials"),
        ),
        (
            "two authorization headers, two brands",
            Auth::Valid,
            vec![("authorization", bearer(&m.b.key))],
            Expected::Http(401, "conflicting_credentials"),
        ),
        (
            "the same authorization header twice",
            Auth::Valid,
            vec![("authorization", bearer(&m.a.key))],
            Expected::Http(401, "conflicting_credentials"),
        ),
        (
            "x-api-key twice",
            Auth::Valid,
            vec![
                ("x-api-key", HeaderValue::from_str(&m.a.key).unwrap()),
                ("x-api-key", HeaderValue::from_str(&m.b.key).unwrap()),
            ],
            Expected::Http(401, "conflicting_credentials"),
        ),
    ]
}

/// A key where a path segment belongs, in the spellings a router decodes: refused before anything
/// is stored or logged unredacted.
fn key_path_segments(key: &str) -> [(&'static str, String); 4] {
    let encoded: String = key.bytes().map(|byte| format!("%{byte:02X}")).collect();
    [
        ("key in the path", key.to_owned()),
        ("percent-encoded key in the path", encoded),
        (
            "key with an encoded prefix in the path",
            format!("%74k_{}", &key[3..]),
        ),
        ("30 characters of a key in the path", key[..30].to_owned()),
    ]
}

/// Every case for one authenticated HTTP route.
async fn walk_http_route(
    m: &mut Matrix,
    route: &str,
    method: &str,
    uri: &str,
    body: Option<Vec<u8>>,
    body_limit: Option<usize>,
    unknown_field_expected: Expected,
) {
    let base = |auth: Auth| {
        let probe = Probe::new(method, uri).auth(auth);
        match &body {
            Some(bytes) => probe.body(bytes.clone()),
            None => probe,
        }
    };
    for (case, auth, headers, expected) in credential_cases(m) {
        let mut probe = base(auth);
        for (name, value) in headers {
            probe = probe.header(name, value);
        }
        m.check(route, case, probe, expected).await;
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    for (case, query) in [
        ("key in the query string", format!("api_key={}", m.a.key)),
        ("key-shaped query value", format!("q={}", m.a.key)),
        ("credential-named parameter", "access_token=abc".to_owned()),
    ] {
        let probe = Probe {
            uri: format!("{uri}{separator}{query}"),
            ..base(Auth::Valid)
        };
        m.check(
            route,
            case,
            probe,
            Expected::Http(400, "credentials_in_url"),
        )
        .await;
    }
    let (Some(valid), Some(limit)) = (body.as_ref(), body_limit) else {
        return;
    };
    let valid: Value = serde_json::from_slice(valid).unwrap();
    let invalid = Expected::Http(400, "invalid_request");
    let mut unknown_field = valid.as_object().cloned().unwrap();
    unknown_field.insert("unexpected_field".into(), json!(1));
    for (case, bytes) in [
        ("invalid JSON", b"{\"name\":".to_vec()),
        ("empty body", Vec::new()),
        ("wrong type: array", b"[1,2]".to_vec()),
        // serde reads structs from arrays by position: these would fill optional fields.
        ("array of nulls", b"[null,null]".to_vec()),
        ("array of strings", b"[\"matrix-array\"]".to_vec()),
        ("wrong type: string", b"\"text\"".to_vec()),
        (
            "wrong type: field",
            first_field_mistyped(&valid).to_string().into_bytes(),
        ),
        ("invalid UTF-8", b"{\"name\":\"\xff\xfe\"}".to_vec()),
    ] {
        let probe = Probe::new(method, uri).body(bytes);
        m.check(route, case, probe, invalid).await;
    }
    let probe = Probe::new(method, uri).json(&Value::Object(unknown_field));
    m.check(route, "unknown field", probe, unknown_field_expected)
        .await;
    let probe = Probe::new(method, uri).body(oversized(limit + 1));
    m.check(
        route,
        "body over the limit",
        probe,
        Expected::Http(413, "payload_too_large"),
    )
    .await;
}

async fn walk(m: &mut Matrix) {
    // The public API, operation by operation.
    let operations = public_operations();
    assert!(
        operations.len() > 20,
        "the OpenAPI document lists the routes"
    );
    let mut methods_by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (template, operation) in &operations {
        methods_by_path
            .entry(template.clone())
            .or_default()
            .insert(operation.method.clone());
        let route = format!("{} {template}", operation.method);
        let uri = seeded_path(template, &m.a);
        if template.contains("{id}") {
            for (case, segment) in key_path_segments(&m.a.key) {
                let probe = Probe::new(&operation.method, template.replace("{id}", &segment))
                    .auth(Auth::Valid);
                m.check(
                    &route,
                    case,
                    probe,
                    Expected::Http(400, "credentials_in_url"),
                )
                .await;
            }
        }
        if !operation.authenticated {
            m.check(
                &route,
                "key in the query string",
                Probe::new(&operation.method, format!("{uri}?api_key={}", m.a.key)),
                Expected::Http(400, "credentials_in_url"),
            )
            .await;
            continue;
        }
        let body = operation.has_body.then(|| {
            valid_body(&operation.method, template, &m.a)
                .to_string()
                .into_bytes()
        });
        let limit = operation
            .has_body
            .then_some(trcker_public_api::extract::MAX_BODY_BYTES);
        walk_http_route(
            m,
            &route,
            &operation.method,
            &uri,
            body.clone(),
            limit,
            Expected::Http(400, "invalid_request"),
        )
        .await;

        let query_names = &operation.query;
        m.check(
            &route,
            "unknown query parameter",
            Probe {
                uri: format!("{uri}?unexpected_parameter=1"),
                ..Probe::new(&operation.method, &uri).body(body.clone().unwrap_or_default())
            },
            Expected::Http(400, "invalid_request"),
        )
        .await;
        if query_names.contains(&"limit".to_owned()) {
            for (case, limit) in [
                ("negative limit", "-1"),
                ("zero limit", "0"),
                ("limit over the maximum", "101"),
                ("huge limit", "99999999999999999999999"),
                ("non-numeric limit", "ten"),
                ("fractional limit", "1.5"),
                ("empty limit", ""),
            ] {
                m.check(
                    &route,
                    case,
                    Probe::new("GET", format!("{uri}?limit={limit}")),
                    Expected::Http(400, "invalid_request"),
                )
                .await;
            }
        }
        if query_names.contains(&"cursor".to_owned()) {
            let own = m.a.cursors[template].clone();
            let foreign = m.b.cursors[template].clone();
            for (case, cursor) in [
                ("garbage cursor", "garbage!!".to_owned()),
                ("foreign-brand cursor", foreign),
                ("truncated cursor", own[..own.len() - 4].to_owned()),
                (
                    "cursor of another list",
                    another_list_cursor(&m.a, template),
                ),
            ] {
                let cursor: String = url_encode(&cursor);
                m.check(
                    &route,
                    case,
                    Probe::new("GET", format!("{uri}?cursor={cursor}")),
                    Expected::Http(400, "invalid_cursor"),
                )
                .await;
            }
        }
        if template.contains("{id}") {
            for (case, id) in [
                ("id with #", "ptr_%23x".to_owned()),
                ("id with an encoded /", "a%2Fb".to_owned()),
                ("id with a raw /", "a/b".to_owned()),
                ("id with ..", "..".to_owned()),
                ("unicode id", "%C3%A9t%C3%A9".to_owned()),
                ("undecodable id", "%FF%FE".to_owned()),
                ("1 KB id", "a".repeat(1024)),
            ] {
                let probe = Probe::new(&operation.method, template.replace("{id}", &id))
                    .body(body.clone().unwrap_or_default());
                m.check(&route, case, probe, Expected::Http(404, "not_found"))
                    .await;
            }
        }
    }
    // Wrong methods, per path.
    for (template, documented) in &methods_by_path {
        let uri = seeded_path(template, &m.a);
        for method in METHODS {
            if !documented.contains(method) {
                m.check(
                    &format!("* {template}"),
                    &format!("wrong method {method}"),
                    Probe::new(method, &uri),
                    Expected::Http(405, "method_not_allowed"),
                )
                .await;
            }
        }
    }

    // Capture.
    let capture_body = json!({"click_id": "matrix-never-recorded"})
        .to_string()
        .into_bytes();
    for (method, path) in trcker_capture::ROUTES {
        let route = format!("{method} {path}");
        match *method {
            "POST" => {
                walk_http_route(
                    m,
                    &route,
                    method,
                    path,
                    Some(capture_body.clone()),
                    Some(trcker_capture::capture::MAX_BODY_BYTES),
                    Expected::Http(400, "invalid_request"),
                )
                .await;
                m.check(
                    &route,
                    "64 KB x-api-key header",
                    Probe::new(method, *path)
                        .auth(Auth::None)
                        .header(
                            "x-api-key",
                            HeaderValue::from_str(&"A".repeat(64 * 1024)).unwrap(),
                        )
                        .body(capture_body.clone()),
                    Expected::Http(401, "unauthorized"),
                )
                .await;
                m.check(
                    &route,
                    "empty x-api-key",
                    Probe::new(method, *path)
                        .auth(Auth::None)
                        .header("x-api-key", HeaderValue::from_static(""))
                        .body(capture_body.clone()),
                    Expected::Http(401, "unauthorized"),
                )
                .await;
                for (case, body) in [
                    ("invalid click id", json!({"click_id": "a/b#é"})),
                    ("1 KB click id", json!({"click_id": "a".repeat(1024)})),
                    (
                        "control characters",
                        json!({"click_id": "ok", "sub1": "a\u{0}b"}),
                    ),
                ] {
                    m.check(
                        &route,
                        case,
                        Probe::new(method, *path).json(&body),
                        Expected::Http(400, "invalid_request"),
                    )
                    .await;
                }
            }
            "OPTIONS" => {
                m.check(
                    &route,
                    "key in the query string",
                    Probe::new(method, format!("{path}?api_key={}", m.a.key)).auth(Auth::None),
                    Expected::Http(400, "credentials_in_url"),
                )
                .await;
                m.check(
                    &route,
                    "origin not allowed",
                    Probe::new(method, *path)
                        .auth(Auth::None)
                        .header("origin", HeaderValue::from_static("https://evil.example")),
                    Expected::Http(403, "origin_not_allowed"),
                )
                .await;
            }
            other => panic!("no cases for capture's {other} route: add them"),
        }
    }
    for method in METHODS {
        if !trcker_capture::ROUTES.iter().any(|(m, _)| *m == method) {
            m.check(
                &format!("* {}", trcker_capture::CAPTURE_PATH),
                &format!("wrong method {method}"),
                Probe::new(method, trcker_capture::CAPTURE_PATH),
                Expected::Unrouted,
            )
            .await;
        }
    }

    // MCP: the HTTP endpoint, then every tool.
    let whoami = tool_call("whoami", &json!({})).to_string().into_bytes();
    for (method, path) in trcker_mcp::ROUTES {
        let route = format!("{method} {path}");
        match *method {
            "POST" => {
                walk_http_route(
                    m,
                    &route,
                    method,
                    path,
                    Some(whoami.clone()),
                    Some(trcker_mcp::MAX_BODY_BYTES),
                    // JSON-RPC envelope members the protocol does not define are ignored, as
                    // rmcp does; tool arguments are where unknown fields are refused.
                    Expected::Served,
                )
                .await;
            }
            "GET" | "DELETE" => {
                walk_http_route(m, &route, method, path, None, None, Expected::Served).await;
            }
            other => panic!("no cases for MCP's {other} route: add them"),
        }
    }
    for method in METHODS {
        if !trcker_mcp::ROUTES.iter().any(|(m, _)| *m == method) {
            m.check(
                &format!("* {}", trcker_mcp::MCP_PATH),
                &format!("wrong method {method}"),
                Probe::new(method, trcker_mcp::MCP_PATH).body(whoami.clone()),
                Expected::Unrouted,
            )
            .await;
        }
    }
    let key = m.a.key.clone();
    let tools = m.tools(&key).await;
    assert!(!tools.is_empty(), "tools/list lists the tools");
    for tool in &tools {
        let route = format!("tool {}", tool.name);
        let base = required_args(tool, &m.a);
        let call = |arguments: Value| {
            Probe::new("POST", "/api/mcp").json(&tool_call(&tool.name, &arguments))
        };
        let invalid = Expected::ToolError("invalid_request");
        m.check(
            &route,
            "unknown argument",
            call(with(&base, "unexpected_field", json!(1))),
            invalid,
        )
        .await;
        for (name, schema) in &tool.properties {
            let wrong = if schema.to_string().contains("\"string\"") {
                json!(12345)
            } else {
                json!([])
            };
            m.check(
                &route,
                &format!("wrong type: {name}"),
                call(with(&base, name, wrong)),
                invalid,
            )
            .await;
        }
        if tool.properties.contains_key("limit") {
            for (case, limit) in [
                ("negative limit", json!(-1)),
                ("zero limit", json!(0)),
                ("limit over the maximum", json!(101)),
                ("huge limit", json!(1e20)),
                ("non-numeric limit", json!("ten")),
                ("fractional limit", json!(1.5)),
            ] {
                m.check(&route, case, call(with(&base, "limit", limit)), invalid)
                    .await;
            }
        }
        if tool.properties.contains_key("cursor") {
            let own = m.a.cursors[&tool.name].clone();
            for (case, cursor) in [
                ("garbage cursor", "garbage!!".to_owned()),
                ("foreign-brand cursor", m.b.cursors[&tool.name].clone()),
                ("truncated cursor", own[..own.len() - 4].to_owned()),
            ] {
                m.check(
                    &route,
                    case,
                    call(with(&base, "cursor", json!(cursor))),
                    Expected::ToolError("invalid_cursor"),
                )
                .await;
            }
        }
        if tool.properties.contains_key("id") {
            for (case, id) in [
                ("id with #", "x#y".to_owned()),
                ("id with /", "a/b".to_owned()),
                ("unicode id", "été".to_owned()),
                ("1 KB id", "a".repeat(1024)),
            ] {
                m.check(
                    &route,
                    case,
                    call(with(&base, "id", json!(id))),
                    Expected::ToolError("not_found"),
                )
                .await;
            }
        }
    }

    // Unknown paths under the public API's proxy route reach the function: refused without a key
    // (its fallback is behind the guard), 404 with one. Paths no route takes never reach a
    // function: API Gateway's own 404, key or not.
    for path in ["/api/public/no-such-route", "/api/public/partners/a/b/c"] {
        m.check(
            "unknown path",
            &format!("{path} with a key"),
            Probe::new("GET", path),
            Expected::Http(404, "not_found"),
        )
        .await;
        m.check(
            "unknown path",
            &format!("{path} without a key"),
            Probe::new("GET", path).auth(Auth::None),
            Expected::Http(401, "unauthorized"),
        )
        .await;
    }
    for path in [
        "/api/public",
        "/api/mcp/extra",
        "/api/clicks/capture/extra",
        "/api/nothing",
        "/",
    ] {
        m.check(
            "unrouted path",
            &format!("{path} with a key"),
            Probe::new("GET", path),
            Expected::Unrouted,
        )
        .await;
        m.check(
            "unrouted path",
            &format!("{path} without a key"),
            Probe::new("GET", path).auth(Auth::None),
            Expected::Unrouted,
        )
        .await;
    }
}

/// The local gateway's own checks: a foreign `Host` refused on every route before anything runs,
/// and the Invoke API refused to every caller a web page could be. Each probe is otherwise one
/// that would be served (and, on the Invoke path, write a brand), so a check that let it through
/// shows as a wrong answer and a write.
async fn walk_local_checks(m: &mut Matrix) {
    use trcker_local::api_gateway_routes::{INVOKE_PATH, LOCAL_ROUTES};
    use trcker_local::local_guard::EXAMPLE_SIGV4;

    let host_refused = Expected::Gateway(403, "host_not_allowed");
    let signed = || Auth::Raw(HeaderValue::from_static(EXAMPLE_SIGV4));
    let invoke_uri = INVOKE_PATH.replace("{function}", "keys");
    let create_brand = json!({"action": "create_brand", "brand_id": "matrix-invoked", "name": "X"});
    let invoke = |payload: &Value| Probe::new("POST", &invoke_uri).auth(signed()).json(payload);

    // Every route, with what it needs to be served but for the Host.
    let mut routes: Vec<(String, Probe)> = Vec::new();
    for (template, operation) in public_operations() {
        let mut probe = Probe::new(&operation.method, seeded_path(&template, &m.a));
        if operation.has_body {
            probe = probe.json(&valid_body(&operation.method, &template, &m.a));
        }
        routes.push((format!("{} {template}", operation.method), probe));
    }
    let capture_body = json!({"click_id": "matrix-host-check"});
    for (method, path) in trcker_capture::ROUTES {
        routes.push((
            format!("{method} {path}"),
            Probe::new(method, *path).json(&capture_body),
        ));
    }
    for (method, path) in trcker_mcp::ROUTES {
        routes.push((
            format!("{method} {path}"),
            Probe::new(method, *path).json(&tool_call("whoami", &json!({}))),
        ));
    }
    for (method, path) in LOCAL_ROUTES {
        match *path {
            INVOKE_PATH => routes.push((format!("{method} {path}"), invoke(&create_brand))),
            other => panic!("no cases for the local route {other}: add them"),
        }
    }
    routes.push(("unrouted path".to_owned(), Probe::new("GET", "/nowhere")));
    for (route, probe) in &routes {
        for host in ["evil.example", "evil.example:3000"] {
            m.check(
                route,
                &format!("Host {host}"),
                probe.clone().host(host),
                host_refused,
            )
            .await;
        }
    }

    // Every hostile form of Host, on the route that writes most: the Invoke API.
    let invoke_route = format!("POST {INVOKE_PATH}");
    for host in [
        "",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "evil.localhost",
        "localhost.",
        "localhost:",
        "localhost:99999",
        "127.1",
        "0.0.0.0:3000",
        "10.0.0.1",
        "[::ffff:127.0.0.1]:3000",
        "[::]:3000",
    ] {
        m.check(
            &invoke_route,
            &format!("Host {host:?}"),
            invoke(&create_brand).host(host),
            host_refused,
        )
        .await;
    }
    let absolute = Probe {
        uri: format!("http://evil.example{invoke_uri}"),
        ..invoke(&create_brand)
    };
    m.check(
        &invoke_route,
        "absolute-form target with a foreign host",
        absolute,
        host_refused,
    )
    .await;

    // Unsigned, or signed in a shape SigV4 does not have.
    let unsigned = Expected::Gateway(403, "signature_required");
    let raw = |text: &str| Auth::Raw(HeaderValue::from_str(text).unwrap());
    let generate = json!({"action": "generate", "brand_id": "matrix-a", "label": "page"});
    for (case, auth, payload) in [
        ("no authorization", Auth::None, &create_brand),
        ("no authorization, generate", Auth::None, &generate),
        ("the brand's bearer key", Auth::Valid, &create_brand),
        ("basic scheme", raw("Basic dXNlcjpwYXNz"), &create_brand),
        ("algorithm alone", raw("AWS4-HMAC-SHA256"), &create_brand),
        (
            "lowercase algorithm",
            raw(&EXAMPLE_SIGV4.to_lowercase()),
            &create_brand,
        ),
        (
            "signed for another service",
            raw(&EXAMPLE_SIGV4.replace("/lambda/", "/s3/")),
            &create_brand,
        ),
        (
            "host not signed",
            raw(&EXAMPLE_SIGV4.replace("SignedHeaders=host;", "SignedHeaders=")),
            &create_brand,
        ),
        (
            "no signature",
            raw(EXAMPLE_SIGV4.split(", Signature=").next().unwrap()),
            &create_brand,
        ),
        (
            "64 KB authorization header",
            raw(&format!("AWS4-HMAC-SHA256 {}", "A".repeat(64 * 1024))),
            &create_brand,
        ),
        (
            "non-text authorization",
            Auth::Raw(HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 \xff\xfe").unwrap()),
            &create_brand,
        ),
    ] {
        m.check(&invoke_route, case, invoke(payload).auth(auth), unsigned)
            .await;
    }
    m.check(
        &invoke_route,
        "two authorization headers",
        invoke(&create_brand).header("authorization", HeaderValue::from_static(EXAMPLE_SIGV4)),
        unsigned,
    )
    .await;

    // What a page can send: a simple request (text/plain, no preflight) from its origin, or
    // anything marked by the browser's Fetch Metadata; refused signed or not.
    let cross_site = Expected::Gateway(403, "cross_site_request");
    let page = |auth: Auth| {
        invoke(&create_brand)
            .auth(auth)
            .content_type("text/plain;charset=UTF-8")
    };
    for (case, name, value) in [
        (
            "text/plain from a cross-site Origin",
            "origin",
            "https://evil.example",
        ),
        (
            "text/plain from Origin null (sandboxed page)",
            "origin",
            "null",
        ),
        (
            "text/plain from another loopback page",
            "origin",
            "http://localhost:8080",
        ),
        ("Sec-Fetch-Site cross-site", "sec-fetch-site", "cross-site"),
        ("Sec-Fetch-Site same-site", "sec-fetch-site", "same-site"),
        (
            "Sec-Fetch-Site same-origin (rebinding)",
            "sec-fetch-site",
            "same-origin",
        ),
    ] {
        for (signature, auth) in [("unsigned", Auth::None), ("signed", signed())] {
            m.check(
                &invoke_route,
                &format!("{case}, {signature}"),
                page(auth).header(name, HeaderValue::from_static(value)),
                cross_site,
            )
            .await;
        }
    }
    for method in METHODS {
        if !LOCAL_ROUTES.iter().any(|(m, _)| *m == method) {
            m.check(
                &format!("* {INVOKE_PATH}"),
                &format!("wrong method {method}"),
                Probe::new(method, &invoke_uri)
                    .auth(signed())
                    .json(&create_brand),
                Expected::Unrouted,
            )
            .await;
        }
    }
}

/// A cursor the brand's own REST listing of another kind produced.
fn another_list_cursor(seeded: &Seeded, template: &str) -> String {
    seeded
        .cursors
        .iter()
        .find(|(list, _)| list.starts_with('/') && *list != template)
        .map(|(_, cursor)| cursor.clone())
        .expect("two lists with cursors")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The checker itself can fail: a request that does write is reported as writing, and a wrong
/// expectation as a mismatch.
async fn the_checker_sees_writes(m: &mut Matrix) {
    let body = valid_body("POST", "/api/public/partners", &m.a);
    let probe = Probe::new("POST", "/api/public/partners").json(&body);
    m.check(
        "self-test",
        "a valid create",
        probe,
        Expected::Http(400, "invalid_request"),
    )
    .await;
    let failure = m
        .failures
        .pop()
        .expect("a valid create fails the expectation");
    assert!(
        failure.contains("expected 400 invalid_request, got 201"),
        "{failure}"
    );
    assert!(
        failure.contains("wrote to the data store: [\"create_documents\"]"),
        "{failure}"
    );
    m.cases -= 1;
    m.coverage.remove("self-test");
}

async fn run(mut m: Matrix) {
    the_checker_sees_writes(&mut m).await;
    walk(&mut m).await;
    walk_local_checks(&mut m).await;
    let routes = m.coverage.len();
    eprintln!(
        "bad-input matrix: {} cases over {routes} routes and tools, {} failures",
        m.cases,
        m.failures.len()
    );
    assert!(
        m.failures.is_empty(),
        "{} of {} cases failed:\n{}",
        m.failures.len(),
        m.cases,
        m.failures.join("\n")
    );
}

#[tokio::test]
async fn every_route_and_tool_refuses_bad_input_in_memory() {
    run(Matrix::new(MemoryStore::new(), MemoryBrandData::new()).await).await;
}

#[tokio::test]
async fn every_route_and_tool_refuses_bad_input_on_dynamodb() {
    let (_, keys) = fresh_dynamo_store().await;
    run(Matrix::new(keys, fresh_dynamo_brand_data().await).await).await;
}
