//! API keys under pressure, through the real functions (the keys function's payload handler, the
//! public API, MCP and capture routers behind the local gateway, `trcker_local::gateway`) on the
//! in-memory store and on DynamoDB (moto):
//! - the revocation bound on a warm container, with a fake clock: a key revoked by the keys
//!   function keeps working from a container's cache for less than the TTL and is refused on the
//!   first request at the TTL;
//! - 50 parallel `generate` calls per brand, for several brands at once, never leave more than 2
//!   live keys, and revokes racing generates leave the live-key counter equal to the keys;
//! - the leak audit: requests still made with a revoked key, on every surface, are in the brand's
//!   activity with IP and user agent, and `outcome=revoked_key` lists exactly them (REST and MCP).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::ManualClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::{KeyService, KeySettings};
use trcker_shared::store::KeyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{fresh_dynamo_brand_data, fresh_dynamo_store};

/// 2026-11-28T12:00:00Z
const START_MS: i64 = 1_795_867_200_000;
const MCP_VERSION: &str = "2025-11-25";

/// The two stores every container shares, and the fake clock they all read.
#[derive(Clone)]
struct Backends {
    keys: Arc<dyn KeyStore>,
    data: Arc<dyn BrandDataStore>,
    clock: Arc<ManualClock>,
}

impl Backends {
    fn memory() -> Self {
        Self {
            keys: Arc::new(MemoryStore::new()),
            data: Arc::new(MemoryBrandData::new()),
            clock: Arc::new(ManualClock::starting_at(START_MS)),
        }
    }

    async fn dynamodb() -> Self {
        let (_, keys) = fresh_dynamo_store().await;
        Self {
            keys: Arc::new(keys),
            data: Arc::new(fresh_dynamo_brand_data().await),
            clock: Arc::new(ManualClock::starting_at(START_MS)),
        }
    }

    /// One Lambda container: its own key service (so its own verification cache) over the
    /// shared stores, its HTTP functions behind the local gateway.
    fn container(&self) -> Container {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            self.keys.clone(),
            self.clock.clone(),
        ));
        let mcp = McpConfig {
            allowed_hosts: vec!["localhost".into()],
        };
        Container {
            router: trcker_local::gateway(
                keys.clone(),
                self.data.clone(),
                EdgeLimits::default(),
                CaptureConfig::default(),
                mcp,
            ),
            keys,
        }
    }
}

struct Container {
    router: Router,
    keys: Arc<KeyService>,
}

struct Reply {
    status: StatusCode,
    body: Value,
}

/// How a request presents its key.
#[derive(Clone, Copy)]
enum Presented<'a> {
    Bearer(&'a str),
    ApiKeyHeader(&'a str),
}

impl Container {
    /// The keys function, invoked with `payload` as operators invoke it.
    async fn invoke(&self, payload: Value) -> Value {
        trcker_keys::handle_payload(&self.keys, payload).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Presented<'_>,
        origin: (&str, &str),
        body: Option<Value>,
    ) -> Reply {
        let (ip, user_agent) = origin;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", user_agent)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MCP_VERSION);
        builder = match key {
            Presented::Bearer(key) => builder.header("authorization", format!("Bearer {key}")),
            Presented::ApiKeyHeader(key) => builder.header("x-api-key", key),
        };
        // The gateway fills the request context (request id, user agent, source IP) itself: the
        // address comes from the "socket".
        let ip: IpAddr = ip.parse().unwrap();
        let request = builder
            .extension(ConnectInfo(SocketAddr::new(ip, 40_000)))
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn whoami(&self, key: &str) -> StatusCode {
        self.send(
            Method::GET,
            "/api/public/whoami",
            Presented::Bearer(key),
            ("192.0.2.1", "whoami/1.0"),
            None,
        )
        .await
        .status
    }

    /// The structured content of a successful MCP tool call.
    async fn tool(&self, key: &str, tool: &str, arguments: Value) -> Value {
        let reply = self.mcp(key, tool, arguments).await;
        assert_eq!(reply["isError"], false, "{tool}: {reply}");
        reply["structuredContent"].clone()
    }

    /// The result of an MCP tool call (`isError` included).
    async fn mcp(&self, key: &str, tool: &str, arguments: Value) -> Value {
        let reply = self
            .send(
                Method::POST,
                trcker_mcp::MCP_PATH,
                Presented::Bearer(key),
                ("192.0.2.1", "assistant/1.0"),
                Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments}})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{tool}: {}", reply.body);
        reply.body["result"].clone()
    }
}

/// `generate` through the keys function: the key, or the error code.
async fn generate(container: &Container, brand: &str) -> Result<(String, String), String> {
    let answer = container
        .invoke(json!({"action": "generate", "brand_id": brand}))
        .await;
    match answer["key"].as_str() {
        Some(key) => Ok((
            key.to_owned(),
            answer["key_id"].as_str().unwrap().to_owned(),
        )),
        None => Err(answer["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("neither a key nor an error: {answer}"))
            .to_owned()),
    }
}

async fn create_brand(container: &Container, brand: &str) {
    let answer = container
        .invoke(json!({"action": "create_brand", "brand_id": brand, "name": brand}))
        .await;
    assert!(answer["error"].is_null(), "{answer}");
}

/// The ids of the brand's keys that are not revoked, from the keys function's `list`.
async fn live_key_ids(container: &Container, brand: &str) -> BTreeSet<String> {
    let listing = container
        .invoke(json!({"action": "list", "brand_id": brand, "limit": 100}))
        .await;
    assert!(listing["next_cursor"].is_null(), "{listing}");
    listing["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{listing}"))
        .iter()
        .filter(|key| key["status"] == "active")
        .map(|key| key["key_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The brand record's live-key counter, straight from the store.
async fn live_counter(backends: &Backends, brand: &str) -> u32 {
    backends
        .keys
        .get_brand(&BrandId::parse(brand).unwrap())
        .await
        .unwrap()
        .expect("the brand exists")
        .live_keys
}

// ---------------------------------------------------------------------------------------------
// Revocation bound

async fn revoked_key_stops_within_the_ttl(backends: Backends) {
    let ttl = KeySettings::default().cache_ttl_ms;
    assert!(ttl > 1, "the bound is tested with a cache");
    let operator = backends.container();
    let warm = backends.container();
    create_brand(&operator, "ttl").await;
    let (key, key_id) = generate(&operator, "ttl").await.unwrap();
    // The container has served the key, so its verdict is cached.
    assert_eq!(warm.whoami(&key).await, StatusCode::OK);

    let revoked = operator
        .invoke(json!({"action": "revoke", "brand_id": "ttl", "key_id": key_id}))
        .await;
    assert_eq!(revoked["key"]["status"], "revoked", "{revoked}");
    assert_eq!(
        operator.whoami(&key).await,
        StatusCode::UNAUTHORIZED,
        "the container that revoked refuses at once"
    );
    let cold = backends.container();
    assert_eq!(
        cold.whoami(&key).await,
        StatusCode::UNAUTHORIZED,
        "a container without the key cached refuses at once"
    );

    backends.clock.advance_ms(ttl - 1);
    assert_eq!(
        warm.whoami(&key).await,
        StatusCode::OK,
        "the warm container's cache answers for less than the TTL"
    );
    backends.clock.advance_ms(1);
    let first_after = warm
        .send(
            Method::GET,
            "/api/public/whoami",
            Presented::Bearer(&key),
            ("192.0.2.1", "whoami/1.0"),
            None,
        )
        .await;
    assert_eq!(
        first_after.status,
        StatusCode::UNAUTHORIZED,
        "the first request at the TTL is refused: {}",
        first_after.body
    );
    assert_eq!(first_after.body["error"]["code"], "unauthorized");
    // And it stays refused on every surface.
    assert_eq!(
        warm.send(
            Method::POST,
            trcker_capture::CAPTURE_PATH,
            Presented::ApiKeyHeader(&key),
            ("192.0.2.1", "snippet/1.0"),
            Some(json!({"click_id": "late-click"})),
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_revoked_key_stops_on_a_warm_container_within_the_ttl_in_memory() {
    revoked_key_stops_within_the_ttl(Backends::memory()).await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_first_request_after_the_ttl_on_dynamodb() {
    revoked_key_stops_within_the_ttl(Backends::dynamodb().await).await;
}

// ---------------------------------------------------------------------------------------------
// Concurrency

const BRANDS: [&str; 3] = ["race-a", "race-b", "race-c"];
const PARALLEL_GENERATES: usize = 50;

/// 50 parallel `generate` calls per brand, all brands at once, each through its own container.
async fn parallel_generates_leave_at_most_two_live_keys(backends: Backends) {
    let operator = backends.container();
    for brand in BRANDS {
        create_brand(&operator, brand).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for brand in BRANDS {
        for _ in 0..PARALLEL_GENERATES {
            let container = backends.container();
            tasks.spawn(async move { (brand, generate(&container, brand).await) });
        }
    }
    let mut issued: Vec<(&str, String, String)> = Vec::new();
    let mut refused = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (brand, Ok((key, key_id))) => issued.push((brand, key, key_id)),
            (_, Err(code)) => {
                assert_eq!(code, "key_limit_reached", "the only refusal");
                refused += 1;
            }
        }
    }
    assert_eq!(issued.len() + refused, BRANDS.len() * PARALLEL_GENERATES);
    for brand in BRANDS {
        let mine: BTreeSet<String> = issued
            .iter()
            .filter(|(owner, _, _)| *owner == brand)
            .map(|(_, _, key_id)| key_id.clone())
            .collect();
        assert_eq!(mine.len(), 2, "{brand}: exactly two generates win");
        assert_eq!(live_key_ids(&operator, brand).await, mine, "{brand}");
        assert_eq!(live_counter(&backends, brand).await, 2, "{brand}");
    }
    let checker = backends.container();
    for (brand, key, _) in &issued {
        let whoami = checker
            .send(
                Method::GET,
                "/api/public/whoami",
                Presented::Bearer(key),
                ("192.0.2.1", "whoami/1.0"),
                None,
            )
            .await;
        assert_eq!(whoami.status, StatusCode::OK);
        assert_eq!(
            whoami.body["brand_id"], *brand,
            "each key is its own brand's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_generates_per_brand_leave_two_live_keys_in_memory() {
    parallel_generates_leave_at_most_two_live_keys(Backends::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_generates_per_brand_leave_two_live_keys_on_dynamodb() {
    parallel_generates_leave_at_most_two_live_keys(Backends::dynamodb().await).await;
}

/// Rounds of: revoke both live keys (each twice) while 50 generates run, all at once. After each
/// round the counter equals the live keys, the live keys are exactly the generates that won, at
/// most two, revoked keys are refused and live ones work.
async fn revokes_racing_generates_stay_consistent(backends: Backends) {
    let operator = backends.container();
    let brand = "churn";
    create_brand(&operator, brand).await;
    let mut live: Vec<(String, String)> = Vec::new();
    for _ in 0..2 {
        live.push(generate(&operator, brand).await.unwrap());
    }
    for round in 0..4 {
        let mut tasks = tokio::task::JoinSet::new();
        for (_, key_id) in &live {
            for _ in 0..2 {
                let container = backends.container();
                let key_id = key_id.clone();
                tasks.spawn(async move {
                    let answer = container
                        .invoke(json!({"action": "revoke", "brand_id": brand, "key_id": key_id}))
                        .await;
                    assert_eq!(answer["key"]["status"], "revoked", "{answer}");
                    None
                });
            }
        }
        for _ in 0..PARALLEL_GENERATES {
            let container = backends.container();
            tasks.spawn(async move {
                match generate(&container, brand).await {
                    Ok(issued) => Some(issued),
                    Err(code) => {
                        assert_eq!(code, "key_limit_reached");
                        None
                    }
                }
            });
        }
        let mut won = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            won.extend(joined.unwrap());
        }
        assert!(won.len() <= 2, "round {round}: {} generates won", won.len());
        let won_ids: BTreeSet<String> = won.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(
            live_key_ids(&operator, brand).await,
            won_ids,
            "round {round}: the live keys are exactly the winners"
        );
        assert_eq!(
            live_counter(&backends, brand).await as usize,
            won.len(),
            "round {round}: the counter agrees with the keys"
        );
        let checker = backends.container();
        for (key, _) in &live {
            assert_eq!(checker.whoami(key).await, StatusCode::UNAUTHORIZED);
        }
        for (key, _) in &won {
            assert_eq!(checker.whoami(key).await, StatusCode::OK);
        }
        // The counter is not just equal but usable: exactly the free slots can be filled.
        while live_counter(&backends, brand).await < 2 {
            won.push(generate(&operator, brand).await.unwrap());
        }
        assert_eq!(
            generate(&operator, brand).await,
            Err("key_limit_reached".to_owned())
        );
        live = won;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revokes_racing_generates_stay_consistent_in_memory() {
    revokes_racing_generates_stay_consistent(Backends::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revokes_racing_generates_stay_consistent_on_dynamodb() {
    revokes_racing_generates_stay_consistent(Backends::dynamodb().await).await;
}

// ---------------------------------------------------------------------------------------------
// Leak audit

/// Where each leaked-key attempt comes from.
const LEAKS: [(&str, &str, &str); 3] = [
    ("api", "203.0.113.50", "leaky-ci/4.2"),
    ("mcp", "203.0.113.51", "old-assistant/0.9"),
    ("capture", "203.0.113.52", "forgotten-landing-page/1.0"),
];

async fn revoked_key_attempts_are_audited_and_filterable(backends: Backends) {
    let edge = backends.container();
    create_brand(&edge, "leaky").await;
    let (leaked, leaked_id) = generate(&edge, "leaky").await.unwrap();
    let (current, _) = generate(&edge, "leaky").await.unwrap();
    // Some ordinary traffic with the leaked key first: it must not show up as revoked.
    assert_eq!(edge.whoami(&leaked).await, StatusCode::OK);
    let revoked = edge
        .invoke(json!({"action": "revoke", "brand_id": "leaky", "key_id": leaked_id}))
        .await;
    let fingerprint = revoked["key"]["fingerprint"].as_str().unwrap().to_owned();

    for (surface, ip, user_agent) in LEAKS {
        let reply = match surface {
            "api" => {
                edge.send(
                    Method::GET,
                    "/api/public/partners",
                    Presented::Bearer(&leaked),
                    (ip, user_agent),
                    None,
                )
                .await
            }
            "mcp" => {
                edge.send(
                    Method::POST,
                    trcker_mcp::MCP_PATH,
                    Presented::Bearer(&leaked),
                    (ip, user_agent),
                    Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
                )
                .await
            }
            _ => {
                edge.send(
                    Method::POST,
                    trcker_capture::CAPTURE_PATH,
                    Presented::ApiKeyHeader(&leaked),
                    (ip, user_agent),
                    Some(json!({"click_id": "leaked-click"})),
                )
                .await
            }
        };
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{surface}");
        assert!(
            !reply.body.to_string().contains(&leaked[3..]),
            "{surface}: the refusal never echoes the key"
        );
    }
    // Ordinary traffic with the current key, so the filter has something to leave out.
    assert_eq!(edge.whoami(&current).await, StatusCode::OK);

    let expect_leaks = |records: &[Value], label: &str| {
        let mut seen: Vec<(String, String, String)> = records
            .iter()
            .map(|record| {
                assert_eq!(record["outcome"], "revoked_key", "{label}: {record}");
                assert_eq!(record["status"], 401, "{label}");
                assert_eq!(record["key_id"], leaked_id.as_str(), "{label}");
                assert_eq!(record["fingerprint"], fingerprint.as_str(), "{label}");
                (
                    record["source"].as_str().unwrap().to_owned(),
                    record["source_ip"].as_str().unwrap().to_owned(),
                    record["user_agent"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        let mut expected: Vec<(String, String, String)> = LEAKS
            .iter()
            .map(|(surface, ip, ua)| ((*surface).into(), (*ip).into(), (*ua).into()))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "{label}");
    };

    // REST: every page of the filtered log, a page of one at a time.
    let mut records = Vec::new();
    let mut path = "/api/public/activity?outcome=revoked_key&limit=1".to_owned();
    for _ in 0..20 {
        let page = edge
            .send(
                Method::GET,
                &path,
                Presented::Bearer(&current),
                ("192.0.2.9", "auditor/1.0"),
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        records.extend(page.body["data"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/public/activity?outcome=revoked_key&limit=1&cursor={cursor}");
            }
            None => break,
        }
    }
    expect_leaks(&records, "REST outcome=revoked_key");

    let unfiltered = edge
        .send(
            Method::GET,
            "/api/public/activity?limit=100",
            Presented::Bearer(&current),
            ("192.0.2.9", "auditor/1.0"),
            None,
        )
        .await;
    let all = unfiltered.body["data"].as_array().unwrap();
    assert!(all.len() > LEAKS.len(), "the log holds more than the leaks");
    let ok_only = edge
        .send(
            Method::GET,
            "/api/public/activity?outcome=ok&limit=100",
            Presented::Bearer(&current),
            ("192.0.2.9", "auditor/1.0"),
            None,
        )
        .await;
    let ok_records = ok_only.body["data"].as_array().unwrap();
    assert!(ok_records.iter().all(|record| record["outcome"] == "ok"));
    assert_eq!(
        ok_records.len() + LEAKS.len(),
        all.len() + 1,
        "ok and revoked_key partition the log (plus the unfiltered listing itself)"
    );

    let capture_only = edge
        .send(
            Method::GET,
            "/api/public/activity?outcome=revoked_key&source=capture",
            Presented::Bearer(&current),
            ("192.0.2.9", "auditor/1.0"),
            None,
        )
        .await;
    let capture_records = capture_only.body["data"].as_array().unwrap();
    assert_eq!(capture_records.len(), 1, "{}", capture_only.body);
    assert_eq!(capture_records[0]["user_agent"], LEAKS[2].2);

    let bad = edge
        .send(
            Method::GET,
            "/api/public/activity?outcome=leaked",
            Presented::Bearer(&current),
            ("192.0.2.9", "auditor/1.0"),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["code"], "invalid_request");

    // MCP: the same filter on list_activity.
    let mut records = Vec::new();
    let mut arguments = json!({"outcome": "revoked_key", "limit": 1});
    for _ in 0..20 {
        let page = edge
            .tool(&current, "list_activity", arguments.clone())
            .await;
        records.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => arguments["cursor"] = json!(cursor),
            None => break,
        }
    }
    expect_leaks(&records, "MCP list_activity outcome=revoked_key");
    let refused = edge
        .mcp(&current, "list_activity", json!({"outcome": "leaked"}))
        .await;
    assert_eq!(refused["isError"], true);
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("invalid_request"),
        "{refused}"
    );

    // The OpenAPI document names the parameter.
    let document = edge
        .send(
            Method::GET,
            "/api/public/openapi.json",
            Presented::Bearer(&current),
            ("192.0.2.9", "auditor/1.0"),
            None,
        )
        .await;
    let parameters = document.body["paths"]["/api/public/activity"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        parameters
            .iter()
            .any(|parameter| parameter["name"] == "outcome")
    );
}

#[tokio::test]
async fn revoked_key_attempts_are_audited_and_filterable_in_memory() {
    revoked_key_attempts_are_audited_and_filterable(Backends::memory()).await;
}

#[tokio::test]
async fn revoked_key_attempts_are_audited_and_filterable_on_dynamodb() {
    revoked_key_attempts_are_audited_and_filterable(Backends::dynamodb().await).await;
}
