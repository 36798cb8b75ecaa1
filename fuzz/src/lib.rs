//! What the fuzz targets share: one current-thread tokio runtime per process, and a "world" of
//! in-memory stores seeded like `trcker-local` (the `demo` brand, its key, partners, offers, a
//! pricing rule, clicks, conversions and a fraud signal) with the three HTTP routers and the keys
//! service over it, plus the invariants every HTTP answer must keep.

use std::cell::RefCell;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use trcker_capture::config::{AllowedOrigins, CaptureConfig};
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::ManualClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::memory::MemoryStore;

/// The seed code of the local gateway, compiled here as is, so the fuzzed world holds the same
/// demo data a developer sees with `cargo run -p trcker-local`.
#[path = "../../infra/local/src/seed.rs"]
#[allow(dead_code)]
mod seed;

/// The world is rebuilt after this many inputs, so data the inputs create (partners, offers,
/// conversions, brands) cannot grow the process past libFuzzer's memory limit.
const INPUTS_PER_WORLD: u32 = 2_000;
/// A fixed "now" (2026-11-28T02:00:00Z, the sample events' time): the same input meets the same
/// clock, which keeps crashes reproducible.
const WORLD_START_MS: i64 = 1_795_831_200_000;
/// The host the sample MCP events name; the MCP router accepts it besides loopback.
pub const API_HOST: &str = "api.trcker.example";
/// Sample events carry this placeholder where the demo brand's key goes.
pub const KEY_PLACEHOLDER: &str = "{{KEY}}";
/// Sample events carry this placeholder where a revoked key of the demo brand goes.
pub const REVOKED_KEY_PLACEHOLDER: &str = "{{REVOKED_KEY}}";
/// Largest response body the harness reads (bigger than any page the API can return).
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A request id no other request of this process had, as API Gateway gives every request one. The
/// activity log keys records by time and request id: with the fixed clock, a repeated id would make
/// every audit write collide (and retry), which is not what production sees.
pub fn unique_request_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let number = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("fuzz-request-{number}")
}

/// Ids of seeded resources, for routes that take an `{id}`.
#[derive(Debug, Clone, Default)]
pub struct SeededIds {
    pub partner: String,
    pub offer: String,
    pub pricing_rule: String,
    pub conversion: String,
    pub fraud_signal: String,
}

/// In-memory stores with the demo brand, and every router over them as the Lambda binaries build
/// them (fallbacks included).
pub struct World {
    pub key: String,
    pub revoked_key: String,
    pub keys: Arc<KeyService>,
    pub public_api: Router,
    pub capture: Router,
    pub mcp: Router,
    pub ids: SeededIds,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    world: Option<World>,
    inputs_in_world: u32,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// Runs `body` on the process's runtime with the current world (built on first use and rebuilt
/// every [`INPUTS_PER_WORLD`] inputs).
pub fn with_world<T>(body: impl AsyncFnOnce(&World) -> T) -> T {
    HARNESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let harness = slot.get_or_insert_with(Harness::new);
        if harness.inputs_in_world >= INPUTS_PER_WORLD {
            harness.world = None;
        }
        if harness.world.is_none() {
            harness.world = Some(harness.runtime.block_on(World::build()));
            harness.inputs_in_world = 0;
        }
        harness.inputs_in_world += 1;
        let Harness { runtime, world, .. } = harness;
        let world = world.as_ref().expect("the world was just built");
        runtime.block_on(body(world))
    })
}

/// Runs a future to completion on the process's runtime, without a world.
pub fn block_on<F: Future>(future: F) -> F::Output {
    HARNESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        slot.get_or_insert_with(Harness::new)
            .runtime
            .block_on(future)
    })
}

impl Harness {
    fn new() -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread tokio runtime"),
            world: None,
            inputs_in_world: 0,
        }
    }
}

/// Edge limits for fuzzing: the documented defaults, except a rate limit no input run can reach
/// (otherwise, after the first hundred inputs, every request would just be a 429).
pub fn fuzzing_limits() -> EdgeLimits {
    EdgeLimits {
        rate_limit_per_minute: u32::MAX,
        ..EdgeLimits::default()
    }
}

impl World {
    pub async fn build() -> Self {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::starting_at(WORLD_START_MS)),
        ));
        let data: Arc<dyn BrandDataStore> = Arc::new(MemoryBrandData::new());
        let key = seed::demo(&keys, &data)
            .await
            .expect("seeding the demo brand")
            .expose_secret()
            .to_owned();
        let brand_id = BrandId::parse(seed::DEMO_BRAND).expect("the demo brand id");
        let revoked = keys
            .generate(&brand_id, Some("revoked"))
            .await
            .expect("a second demo key");
        keys.revoke(&brand_id, &revoked.key_id)
            .await
            .expect("revoking the second demo key");
        let limits = fuzzing_limits();
        let capture = CaptureConfig {
            rate_limit_per_minute: u32::MAX,
            allowed_origins: AllowedOrigins::parse("https://shop.example")
                .expect("a valid origin list"),
            // The sample CDN event comes through one proxy: parse its X-Forwarded-For.
            trusted_proxy_hops: 1,
            ..CaptureConfig::default()
        };
        let mcp = McpConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), API_HOST.into()],
        };
        let mut world = Self {
            key,
            revoked_key: revoked.key.expose_secret().to_owned(),
            public_api: trcker_public_api::router(keys.clone(), data.clone(), limits),
            capture: trcker_capture::router(keys.clone(), data.clone(), limits, capture),
            mcp: trcker_mcp::router(keys.clone(), data, limits, mcp),
            keys,
            ids: SeededIds::default(),
        };
        world.ids = SeededIds {
            partner: world.first_id("partners").await,
            offer: world.first_id("offers").await,
            pricing_rule: world.first_id("pricing-rules").await,
            conversion: world.first_id("conversions").await,
            fraud_signal: world.first_id("fraud-signals").await,
        };
        world
    }

    /// The id of the first item of a public API listing.
    async fn first_id(&self, collection: &str) -> String {
        let path = format!("/api/public/{collection}?limit=1");
        let request = self.request(Method::GET, &path, Vec::new());
        let answer = send(&self.public_api, request).await;
        assert_eq!(answer.status, StatusCode::OK, "seeded listing {path}");
        let page: Value = serde_json::from_slice(&answer.body).expect("a JSON page");
        page["data"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} lists nothing"))
            .to_owned()
    }

    /// A request as API Gateway hands it on: the demo key, a JSON body, the request context.
    pub fn request(&self, method: Method, path_and_query: &str, body: Vec<u8>) -> Request<Body> {
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("host", API_HOST)
            .header("user-agent", "trcker-fuzz/1.0")
            .body(Body::from(body))
            .expect("a well-formed request");
        request.extensions_mut().insert(api_gateway_context(
            &method,
            path,
            "198.51.100.7",
            Some("trcker-fuzz/1.0"),
            &unique_request_id(),
            WORLD_START_MS,
        ));
        request
    }

    /// Puts this world's keys where a sample event has its placeholders.
    pub fn fill_placeholders(&self, event: &str) -> String {
        event
            .replace(KEY_PLACEHOLDER, &self.key)
            .replace(REVOKED_KEY_PLACEHOLDER, &self.revoked_key)
    }
}

/// Sends one request through a router and reads the whole answer.
pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("axum routers are infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES)
        .await
        .expect("the response body is readable and bounded");
    Answer {
        status,
        body: body.to_vec(),
    }
}

/// What every answer to hostile input must be: never a 5xx, and an error never carries anything
/// shaped like a plaintext key (the presented token, or one quoted from the input).
pub fn assert_edge_invariants(answer: &Answer, what: &str) {
    assert!(
        !answer.status.is_server_error(),
        "{what}: answered {} with {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    if answer.status.is_client_error() {
        let text = String::from_utf8_lossy(&answer.body);
        let leaked = trcker_shared::testing::key_shaped_strings(&text);
        assert!(
            leaked.is_empty(),
            "{what}: a {} error echoes {} key-shaped string(s)",
            answer.status,
            leaked.len()
        );
    }
}

/// An error answer of the public API, capture or the keys function: `{"error":{"code":…}}` with a
/// code that is not a server-side one.
pub fn assert_typed_client_error(body: &Value, what: &str) {
    let code = body["error"]["code"].as_str();
    assert!(
        code.is_some_and(|code| code != "internal" && code != "store_unavailable"),
        "{what}: error without a client error code: {body}"
    );
}
