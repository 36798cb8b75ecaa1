//! The MCP function through its HTTP layer, on the in-memory store and on DynamoDB (moto): the
//! fixture and the MCP request helpers here, the tests in modules by theme, one test per scenario
//! and backend where a scenario runs on both (`tools::brand_a_never_sees_brand_b::on_dynamodb`).
//! They cover auth refusals, both protocol eras on one endpoint, every tool against the REST
//! API's answers, tool failures as `isError` results, brand isolation, audit records naming the
//! tool, the rate limit shared with REST, paging under the result budget, statistics whose store
//! calls do not grow with events, visitor-written text declared untrusted, and the API Gateway
//! sample events through the Lambda request adapter. Requests go through
//! `trcker_shared::testing::TestClient`; the MCP requests (`rpc`, `call`, `tool`) are built here.

mod audit_and_limits;
mod auth_and_hosts;
mod paging;
mod protocol;
mod statistics;
mod tools;
mod untrusted_text;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::rollups::{self, increments_for};
use trcker_shared::clock::ManualClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{
    TestClient, TestRequest, TestResponse, derive_recorded_conversions, fresh_dynamo_brand_data,
    fresh_dynamo_store,
};

/// 2026-11-28T12:00:00Z
const START_MS: i64 = 1_795_867_200_000;
const TODAY: &str = "2026-11-28";
const LEGACY: &str = "2025-11-25";
/// The host every MCP request names (one of [`mcp_config`]'s allowed hosts).
const HOST: &str = "localhost";
/// The caller's address and user agent, in every request's API Gateway context.
const SOURCE_IP: &str = "192.0.2.44";
const USER_AGENT: &str = "mcp-test/1.0";
/// Each request its own id, as API Gateway gives: the activity log is keyed by time and id, and
/// the clock stands still, so ids that sort in the order they were sent keep "newest first" true.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// The public API and the MCP routes on one router, over one key service (on a clock standing at
/// [`START_MS`]) and one brand data store, and a client to them.
struct Edge {
    client: TestClient,
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
}

/// A brand with its key and the ids of what was seeded for it.
struct Brand {
    id: BrandId,
    key: String,
    offer_id: String,
    partner_id: String,
    conversion_id: String,
}

fn mcp_config() -> McpConfig {
    McpConfig {
        allowed_hosts: vec!["localhost".into(), "api.trcker.example".into()],
    }
}

/// A client with the caller identity every test request carries.
fn client_to(router: axum::Router) -> TestClient {
    TestClient::router(router)
        .with_source_ip(SOURCE_IP)
        .with_user_agent(USER_AGENT)
}

/// `request` with the next request id in its context.
fn numbered(request: TestRequest<'_>) -> TestRequest<'_> {
    let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
    request.request_id(&format!("req-mcp-{id:08}"))
}

/// `request` as an MCP client sends it: to `host`, accepting JSON or an event stream, with `key`
/// as its bearer, if any.
fn as_mcp_client<'a>(request: TestRequest<'a>, host: &str, key: Option<&str>) -> TestRequest<'a> {
    let request = request
        .header("host", host)
        .header("accept", "application/json, text/event-stream");
    match key {
        Some(key) => request.bearer(key),
        None => request,
    }
}

impl Edge {
    fn new(
        key_store: Arc<dyn KeyStore>,
        data: Arc<dyn BrandDataStore>,
        limits: EdgeLimits,
    ) -> Self {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store,
            Arc::new(ManualClock::starting_at(START_MS)),
        ));
        let mcp = trcker_mcp::routes(keys.clone(), data.clone(), limits, mcp_config());
        let router = trcker_public_api::router(keys.clone(), data.clone(), limits).merge(mcp);
        Self {
            client: client_to(router),
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

    /// A client to the MCP function's own router (the Lambda's), over the same stores: no public
    /// API beside it.
    fn mcp_only(&self) -> TestClient {
        client_to(trcker_mcp::router(
            self.keys.clone(),
            self.data.clone(),
            EdgeLimits::default(),
            mcp_config(),
        ))
    }

    /// A request with the next request id, to build on and `.await`.
    fn request(&self, method: Method, path: &str) -> TestRequest<'_> {
        numbered(self.client.request(method, path))
    }

    /// A request as an MCP client sends it, to the allowed host (see [`as_mcp_client`]).
    fn mcp(&self, method: Method, path: &str, key: Option<&str>) -> TestRequest<'_> {
        as_mcp_client(self.request(method, path), HOST, key)
    }

    /// One JSON-RPC message to `/api/mcp`, legacy era unless `version` says otherwise.
    async fn rpc(&self, key: Option<&str>, version: &str, message: Value) -> TestResponse {
        self.mcp(Method::POST, "/api/mcp", key)
            .header("mcp-protocol-version", version)
            .json(message)
            .await
    }

    /// `tools/call` and its result (`isError` included); panics on a protocol error.
    async fn call(&self, key: &str, tool: &str, arguments: Value) -> Value {
        let response = self
            .rpc(
                Some(key),
                LEGACY,
                json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}}),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{tool}: {}",
            response.text()
        );
        assert!(
            response.json()["error"].is_null(),
            "{tool}: {}",
            response.text()
        );
        response.json()["result"].clone()
    }

    /// The structured content of a successful call.
    async fn tool(&self, key: &str, tool: &str, arguments: Value) -> Value {
        let result = self.call(key, tool, arguments).await;
        assert_eq!(result["isError"], false, "{tool}: {result}");
        // The text content carries the same JSON for clients without structured content.
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text, result["structuredContent"], "{tool}");
        result["structuredContent"].clone()
    }

    /// A REST request that must succeed, and its JSON answer.
    async fn rest(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self.request(method, path).bearer(key).json_opt(body).await;
        assert!(
            response.status.is_success(),
            "{path}: {} {}",
            response.status,
            response.text()
        );
        response.json().clone()
    }

    /// A brand with an offer, a partner, a pricing rule, `clicks` clicks (written with their
    /// rollups) and, if there are clicks, one conversion of 120.00 USD on the first, its rollups
    /// derived as the stream function derives them.
    async fn brand(&self, id: &str, clicks: usize) -> Brand {
        let brand_id = BrandId::parse(id).unwrap();
        self.keys.create_brand(&brand_id, id).await.unwrap();
        let key = self.keys.generate(&brand_id, None).await.unwrap();
        let key = key.key.expose_secret().to_owned();
        let offer = self
            .rest(
                &key,
                Method::POST,
                "/api/public/offers",
                Some(
                    json!({"name": format!("{id} offer"), "slug": format!("{id}-offer"),
                    "destination_url": "https://shop.example/",
                    "default_payout": {"type": "flat", "amount": 10, "currency": "USD"}}),
                ),
            )
            .await;
        let partner = self
            .rest(
                &key,
                Method::POST,
                "/api/public/partners",
                Some(
                    json!({"name": format!("{id} partner"), "email": "p@example.com",
                    "slug": format!("{id}-partner")}),
                ),
            )
            .await;
        let (offer_id, partner_id) = (
            offer["id"].as_str().unwrap().to_owned(),
            partner["id"].as_str().unwrap().to_owned(),
        );
        self.rest(
            &key,
            Method::POST,
            "/api/public/pricing-rules",
            Some(json!({"offer_id": offer_id, "partner_id": partner_id,
                "payout": {"type": "percent", "amount": 10, "currency": "USD"}})),
        )
        .await;
        write_clicks(&*self.data, &brand_id, &offer_id, &partner_id, 0..clicks).await;
        if clicks == 0 {
            return Brand {
                id: brand_id,
                key,
                offer_id,
                partner_id,
                conversion_id: String::new(),
            };
        }
        let conversion = self
            .rest(
                &key,
                Method::POST,
                "/api/public/conversions",
                Some(json!({"click_id": format!("{id}-click-0"), "amount": 120.0,
                    "txn_id": format!("{id}-order-1")})),
            )
            .await;
        assert_eq!(derive_recorded_conversions(&*self.data, &brand_id).await, 1);
        Brand {
            id: brand_id,
            key,
            offer_id,
            partner_id,
            conversion_id: conversion["id"].as_str().unwrap().to_owned(),
        }
    }
}

/// A click of `brand_id` for the offer and partner, from a browser, not flagged.
fn test_click(
    brand_id: &BrandId,
    click_id: String,
    at: i64,
    offer_id: &str,
    partner_id: &str,
) -> ClickRecord {
    ClickRecord {
        brand_id: brand_id.clone(),
        click_id,
        at,
        offer_id: Some(offer_id.to_owned()),
        partner_id: Some(partner_id.to_owned()),
        sub_ids: Default::default(),
        landing_url: None,
        referrer: None,
        source_ip: "192.0.2.1".into(),
        user_agent: "Mozilla/5.0".into(),
        fraud_score: 0,
        audit: None,
    }
}

/// Clicks as capture writes them: the click and its rollups in one store call. Every fifth is
/// flagged. They lie 10 minutes apart, the newest 20 minutes before the start, so a conversion
/// at the start is not "too fast".
async fn write_clicks(
    data: &dyn BrandDataStore,
    brand_id: &BrandId,
    offer_id: &str,
    partner_id: &str,
    ids: std::ops::Range<usize>,
) {
    for index in ids {
        let click = ClickRecord {
            fraud_score: if index % 5 == 0 { 95 } else { 0 },
            ..test_click(
                brand_id,
                format!("{brand_id}-click-{index}"),
                START_MS - 1_200_000 - (index as i64 % 60) * 600_000,
                offer_id,
                partner_id,
            )
        };
        let mut counters = vec![(rollups::CLICKS.to_owned(), 1)];
        if click.flagged() {
            counters.push((rollups::FLAGGED_CLICKS.to_owned(), 1));
        }
        let increments = increments_for(
            click.at,
            &click.click_id,
            click.offer_id.as_deref(),
            click.partner_id.as_deref(),
            &counters,
        );
        data.insert_click_counted(&click, &increments)
            .await
            .unwrap();
    }
}
