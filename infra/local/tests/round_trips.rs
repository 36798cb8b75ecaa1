//! Store round trips a request waits on in sequence, and the write units it spends, per route, on
//! the local gateway's routers over the DynamoDB model (issue 22's measures): every brand-data
//! call and every key-store call takes `L` under tokio's paused clock, so a request's wall time
//! over `L` is its critical-path depth, a whole number; each route is sent 1,000 times and its
//! mean depth and write units per request are asserted against the targets. Warm: the key
//! verified before; cold: every request with a key this container has never verified. The table
//! is printed (and written to `TRCKER_ROUND_TRIPS_OUT` when set) for BENCHMARKS.md, "Round trips
//! and write units per request" (`scripts/bench-round-trips` draws it).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::model::{DynamoModel, ModelSettings};
use trcker_shared::clock::TokioClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::counting::{CountingStore, StoreOperation};
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_shared::store::faulty::FaultyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{TestClient, TestResponse};

/// Every store call's latency.
const L: Duration = Duration::from_millis(10);
const START_MS: i64 = 1_795_867_200_000;
const MCP_VERSION: &str = "2025-11-25";
/// Requests per route: the table's figures are means over this many.
const REQUESTS: usize = 1_000;

type KeyStore = FaultyStore<CountingStore<MemoryStore>>;

struct Edge {
    client: TestClient,
    keys: Arc<KeyService>,
    key_store: Arc<KeyStore>,
    data: Arc<DynamoModel<MemoryBrandData>>,
    brand: BrandId,
    key: String,
}

/// One route's request number `i` of its run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Whoami,
    ListPartners,
    GetPartner,
    ListClicks,
    ListActivity,
    CreatePartner,
    UpdatePartner,
    DeletePartner,
    NewConversion,
    RepeatedConversion,
    McpListPartners,
    McpStatistics,
    NewCapture,
    DuplicateCapture,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::Whoami => "GET /whoami",
            Self::ListPartners => "GET /partners (list)",
            Self::GetPartner => "GET /partners/{id}",
            Self::ListClicks => "GET /clicks (list)",
            Self::ListActivity => "GET /activity (list)",
            Self::CreatePartner => "POST /partners (create)",
            Self::UpdatePartner => "PATCH /partners/{id} (update)",
            Self::DeletePartner => "DELETE /partners/{id}",
            Self::NewConversion => "POST /conversions (new txn_id)",
            Self::RepeatedConversion => "POST /conversions (repeated txn_id)",
            Self::McpListPartners => "MCP list_partners",
            Self::McpStatistics => "MCP get_program_stats",
            Self::NewCapture => "capture (new click)",
            Self::DuplicateCapture => "capture (duplicate click)",
        }
    }

    /// Issue 22's target for the route's mean depth, warm (a duplicate capture's is issue
    /// 11's: its failed insert, then its record).
    fn target(self) -> f64 {
        match self {
            Self::Whoami => 1.0,
            Self::NewConversion | Self::RepeatedConversion => 3.0,
            Self::NewCapture => 1.2,
            _ => 2.0,
        }
    }

    fn reads_only(self) -> bool {
        matches!(
            self,
            Self::Whoami
                | Self::ListPartners
                | Self::GetPartner
                | Self::ListClicks
                | Self::ListActivity
                | Self::McpListPartners
                | Self::McpStatistics
        )
    }
}

/// What one route's run measured.
struct Measured {
    route: &'static str,
    cold: bool,
    depths: Vec<u32>,
    /// Write units over the run, brand data (the model's count) and key store (one per
    /// `last_used_at` write: a key item is well under 1 KB).
    write_units: u64,
    read_half_units: u64,
    target: f64,
    reads_only: bool,
}

impl Measured {
    fn mean_depth(&self) -> f64 {
        f64::from(self.depths.iter().sum::<u32>()) / self.depths.len() as f64
    }

    fn per_request(&self, units: u64) -> f64 {
        units as f64 / self.depths.len() as f64
    }
}

impl Edge {
    async fn new() -> Self {
        let key_store = Arc::new(FaultyStore::new(CountingStore::new(MemoryStore::new())));
        let data = Arc::new(DynamoModel::new(
            MemoryBrandData::new(),
            ModelSettings::uniform(L),
        ));
        // The clock follows the paused runtime, so rate windows turn as the runs go on.
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store.clone(),
            Arc::new(TokioClock::starting_at(START_MS)),
        ));
        let limits = EdgeLimits {
            rate_limit_per_minute: 1_000_000,
            ..EdgeLimits::default()
        };
        let capture = CaptureConfig {
            rate_limit_per_minute: 1_000_000,
            source_rate_limit_per_minute: 1_000_000,
            ..CaptureConfig::default()
        };
        let mcp = McpConfig {
            allowed_hosts: vec!["localhost".into()],
        };
        let router = trcker_public_api::router(keys.clone(), data.clone(), limits)
            .merge(trcker_capture::routes(
                keys.clone(),
                data.clone(),
                limits,
                capture,
            ))
            .merge(trcker_mcp::routes(keys.clone(), data.clone(), limits, mcp));
        let brand = BrandId::parse("acme").unwrap();
        keys.create_brand(&brand, "Acme").await.unwrap();
        let key = keys.generate(&brand, None).await.unwrap();
        let key = key.key.expose_secret().to_owned();
        key_store.inject(None, Fault::Latency(L), Trigger::Always);
        Self {
            client: TestClient::router(router),
            keys,
            key_store,
            data,
            brand,
            key,
        }
    }

    async fn rest(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let request = self.client.request(method, path).bearer(key);
        match body {
            Some(body) => request.json(body).await,
            None => request.await,
        }
    }

    async fn created(&self, path: &str, body: Value) -> Value {
        let response = self.rest(&self.key, Method::POST, path, Some(body)).await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{path}: {}",
            response.text()
        );
        response.json().clone()
    }

    async fn mcp_tool(&self, key: &str, tool: &str) -> TestResponse {
        self.client
            .post("/api/mcp")
            .bearer(key)
            .header("host", "localhost")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MCP_VERSION)
            .json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": tool, "arguments": {}}}))
            .await
    }

    async fn capture(&self, key: &str, click_id: &str) -> TestResponse {
        self.client
            .post("/api/clicks/capture")
            .header("x-api-key", key)
            .json(json!({"click_id": click_id, "offer": "summer", "partner": "alice"}))
            .await
    }

    /// Request `i` of `route`'s run; `run` tells the runs' new slugs, txn_ids and clicks apart.
    async fn send(
        &self,
        route: Route,
        key: &str,
        (run, i): (&str, usize),
        fixture: &Fixture,
    ) -> TestResponse {
        let partner = format!("/api/public/partners/{}", fixture.partner_id);
        match route {
            Route::Whoami => {
                self.rest(key, Method::GET, "/api/public/whoami", None)
                    .await
            }
            Route::ListPartners => {
                self.rest(key, Method::GET, "/api/public/partners", None)
                    .await
            }
            Route::GetPartner => self.rest(key, Method::GET, &partner, None).await,
            Route::ListClicks => {
                self.rest(key, Method::GET, "/api/public/clicks", None)
                    .await
            }
            Route::ListActivity => {
                self.rest(key, Method::GET, "/api/public/activity", None)
                    .await
            }
            Route::CreatePartner => {
                let slug = format!("p-{run}-{i}");
                let body = json!({"name": "Bob", "email": "b@example.com", "slug": slug});
                self.rest(key, Method::POST, "/api/public/partners", Some(body))
                    .await
            }
            Route::UpdatePartner => {
                let body = json!({"name": format!("Alice {i}")});
                self.rest(key, Method::PATCH, &partner, Some(body)).await
            }
            Route::DeletePartner => {
                let path = format!("/api/public/partners/{}", fixture.doomed[i]);
                self.rest(key, Method::DELETE, &path, None).await
            }
            Route::NewConversion | Route::RepeatedConversion => {
                let txn = if route == Route::NewConversion {
                    format!("order-{run}-{i}")
                } else {
                    "order-repeated".to_owned()
                };
                let body = json!({"click_id": "warm", "amount": 50.0, "txn_id": txn});
                self.rest(key, Method::POST, "/api/public/conversions", Some(body))
                    .await
            }
            Route::McpListPartners => self.mcp_tool(key, "list_partners").await,
            Route::McpStatistics => self.mcp_tool(key, "get_program_stats").await,
            Route::NewCapture => self.capture(key, &format!("c-{run}-{i}")).await,
            Route::DuplicateCapture => self.capture(key, "warm").await,
        }
    }

    /// Sends `route` [`REQUESTS`] times and measures each request's depth and the run's units:
    /// warm with the one key, cold with a new key each time (revoked after it, as a brand may
    /// hold only so many live keys; neither the key's creation nor its revocation is measured
    /// or counted).
    async fn run(&self, route: Route, cold: bool, fixture: &Fixture) -> Measured {
        let run = if cold { "cold" } else { "warm" };
        let mut depths = Vec::with_capacity(REQUESTS);
        let (mut write_units, mut read_half_units, mut key_writes) = (0, 0, 0);
        for i in 0..REQUESTS {
            let fresh = if cold {
                Some(self.keys.generate(&self.brand, None).await.unwrap())
            } else {
                None
            };
            let key = fresh
                .as_ref()
                .map_or(self.key.as_str(), |fresh| fresh.key.expose_secret());
            self.data.reset_report();
            let key_writes_before = self.key_writes();
            let started = Instant::now();
            let response = self.send(route, key, (run, i), fixture).await;
            let elapsed = started.elapsed().as_nanos();
            let report = self.data.report().total();
            write_units += report.write_units;
            read_half_units += report.read_half_units;
            key_writes += self.key_writes() - key_writes_before;
            if let Some(fresh) = &fresh {
                self.keys.revoke(&self.brand, &fresh.key_id).await.unwrap();
            }
            assert!(
                response.status.is_success(),
                "{} #{i}: {} {}",
                route.name(),
                response.status,
                response.text()
            );
            assert_eq!(
                elapsed % L.as_nanos(),
                0,
                "{}: whole latencies",
                route.name()
            );
            depths.push(u32::try_from(elapsed / L.as_nanos()).unwrap());
        }
        Measured {
            route: route.name(),
            cold,
            depths,
            write_units: write_units + key_writes,
            read_half_units,
            target: route.target() + if cold { 1.0 } else { 0.0 },
            reads_only: route.reads_only(),
        }
    }

    fn key_writes(&self) -> u64 {
        self.key_store.inner().calls(StoreOperation::RecordKeyUse)
    }
}

/// What the runs share: the partner read and updated, the partners deleted one per request.
struct Fixture {
    partner_id: String,
    doomed: Vec<String>,
}

async fn measured() -> Vec<Measured> {
    let edge = Edge::new().await;
    edge.created(
        "/api/public/offers",
        json!({"name": "Summer", "slug": "summer", "destination_url": "https://shop.example/",
            "default_payout": {"type": "flat", "amount": 10, "currency": "USD"}}),
    )
    .await;
    let partner = edge
        .created(
            "/api/public/partners",
            json!({"name": "Alice", "email": "a@example.com", "slug": "alice"}),
        )
        .await;
    let mut doomed = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let created = edge
            .created(
                "/api/public/partners",
                json!({"name": "Doomed", "email": "d@example.com", "slug": format!("doomed-{i}")}),
            )
            .await;
        doomed.push(created["id"].as_str().unwrap().to_owned());
    }
    let fixture = Fixture {
        partner_id: partner["id"].as_str().unwrap().to_owned(),
        doomed,
    };
    // Warm: the key verified and its use noted, capture's references cached, both budgets
    // leased, the repeated conversion's txn_id taken.
    assert_eq!(
        edge.capture(&edge.key, "warm").await.status,
        StatusCode::CREATED
    );
    edge.send(
        Route::RepeatedConversion,
        &edge.key,
        ("warm-up", 0),
        &fixture,
    )
    .await;
    edge.send(Route::Whoami, &edge.key, ("warm-up", 0), &fixture)
        .await;

    let routes = [
        Route::Whoami,
        Route::ListPartners,
        Route::GetPartner,
        Route::ListClicks,
        Route::ListActivity,
        Route::CreatePartner,
        Route::UpdatePartner,
        Route::NewConversion,
        Route::RepeatedConversion,
        Route::McpListPartners,
        Route::McpStatistics,
        Route::NewCapture,
        Route::DuplicateCapture,
        Route::DeletePartner,
    ];
    let mut rows = Vec::new();
    for route in routes {
        rows.push(edge.run(route, false, &fixture).await);
    }
    // Cold: each request with a key this container has never verified.
    for route in [
        Route::Whoami,
        Route::ListPartners,
        Route::McpListPartners,
        Route::CreatePartner,
        Route::UpdatePartner,
        Route::NewConversion,
        Route::NewCapture,
    ] {
        rows.push(edge.run(route, true, &fixture).await);
    }
    rows
}

#[tokio::test(start_paused = true)]
async fn every_route_meets_its_depth_and_write_unit_targets() {
    let rows = measured().await;
    let mut table = String::from(
        "| request | key | mean depth | max | target | write units / request | read units / request |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for row in &rows {
        table.push_str(&format!(
            "| {} | {} | {:.3} | {} | {} | {:.2} | {:.2} |\n",
            row.route,
            if row.cold { "cold" } else { "warm" },
            row.mean_depth(),
            row.depths.iter().max().unwrap(),
            row.target,
            row.per_request(row.write_units),
            row.per_request(row.read_half_units) / 2.0,
        ));
    }
    println!("{table}");
    if let Ok(path) = std::env::var("TRCKER_ROUND_TRIPS_OUT") {
        std::fs::write(path, &table).unwrap();
    }
    // Write units a warm request spends, in hundredths (deterministic: the same items every run).
    let warm_write_units: Vec<(&str, u64)> = rows
        .iter()
        .filter(|row| !row.cold)
        .map(|row| (row.route, row.write_units * 100 / REQUESTS as u64))
        .collect();
    assert_eq!(
        warm_write_units,
        [
            ("GET /whoami", 120),
            ("GET /partners (list)", 120),
            ("GET /partners/{id}", 120),
            ("GET /clicks (list)", 120),
            ("GET /activity (list)", 120),
            ("POST /partners (create)", 520),
            ("PATCH /partners/{id} (update)", 420),
            ("POST /conversions (new txn_id)", 620),
            ("POST /conversions (repeated txn_id)", 120),
            ("MCP list_partners", 120),
            ("MCP get_program_stats", 120),
            ("capture (new click)", 210),
            ("capture (duplicate click)", 310),
            ("DELETE /partners/{id}", 620),
        ],
        "\n{table}"
    );
    for row in &rows {
        assert!(
            row.mean_depth() <= row.target,
            "{} ({}): mean depth {} over its target {}\n{table}",
            row.route,
            if row.cold { "cold" } else { "warm" },
            row.mean_depth(),
            row.target
        );
        // Warm: a key new to the container also writes its `last_used_at` and takes a lease,
        // once per key and container; the cold rows report that.
        if row.reads_only && !row.cold {
            assert!(
                row.per_request(row.write_units) <= 1.5,
                "{}: {} write units a request\n{table}",
                row.route,
                row.per_request(row.write_units)
            );
        }
    }
}
