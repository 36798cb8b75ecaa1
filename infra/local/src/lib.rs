//! `trcker-local` as a library: the whole edge on one machine. [`gateway`] serves the same
//! function libraries the Lambda binaries use, under the same routes as the infrastructure
//! template, fills in the request context the way API Gateway does, and answers the Lambda Invoke
//! API for the keys function. Only loopback `Host`s are answered, and the Invoke API only for
//! SigV4-signed, non-browser callers, so web pages cannot drive it (`local_guard`).
//!
//! The binary (`src/main.rs`) parses its options, builds [`Backends`] with [`memory_backends`] or
//! [`dynamodb_backends`], runs the stream function's derivation beside them (the memory store's
//! change feed, or the data table's stream through [`stream_poller`]), and serves
//! [`app_from_env`]; the tests run the same [`gateway`].

use std::net::SocketAddr;
use std::sync::Arc;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::bootstrap::{edge_from_config, load_aws_config};
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::dynamo::DynamoBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::model::{DynamoModel, ModelSettings};
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::config::{
    ConfigError, EdgeConfig, INSECURE_DEV_PEPPER_VAR, KEYS_TABLE_VAR, PEPPER_SECRET_VAR,
    PepperSource,
};
use trcker_shared::edge::config::{DATA_TABLE_VAR, EdgeLimits};
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::keys::KeyService;
use trcker_shared::program::derived::MemoryFeed;
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::store::schema::{
    DATA_TABLE, KEYS_TABLE, create_table, index_names, stream_specification,
};
use trcker_shared::token::PlaintextKey;

use crate::stream_poller::StreamPoller;

pub mod api_gateway_routes;
pub mod local_guard;
pub mod seed;
pub mod stats;
pub mod stream_poller;

/// The keys table `--store dynamodb` uses when `TRCKER_KEYS_TABLE` is unset.
pub const DEFAULT_KEYS_TABLE: &str = "trcker-keys";
/// The data table `--store dynamodb` uses when `TRCKER_DATA_TABLE` is unset.
pub const DEFAULT_DATA_TABLE: &str = "trcker-data";

/// The stores and key service the gateway serves with.
pub struct Backends {
    pub keys: Arc<KeyService>,
    pub data: Arc<dyn BrandDataStore>,
    /// The same store as `data` in memory mode, for the soak's counters.
    pub memory_data: Option<Arc<MemoryBrandData>>,
    /// In memory mode, the stream function's derivation over the store's change feed: run it
    /// with [`MemoryFeed::spawn`], or drain it in a test.
    pub derivation: Option<Arc<MemoryFeed>>,
    /// On DynamoDB, the same derivation over the data table's stream, read through the DynamoDB
    /// Streams API as Lambda's event source mapping reads it: run it with
    /// [`StreamPoller::spawn`], or drain it in a test.
    pub stream: Option<Arc<StreamPoller>>,
}

/// The in-memory store, with the insecure development pepper, seeded with the demo brand
/// (`seed::demo_with`); also returns the demo brand's key, for the caller to show once.
pub async fn memory_backends() -> Result<(Backends, PlaintextKey), String> {
    let memory_data = Arc::new(MemoryBrandData::new());
    let derive = |thresholds| MemoryFeed::new(memory_data.clone(), |memory| memory, thresholds);
    seeded(memory_data.clone(), Some(memory_data.clone()), derive).await
}

/// [`memory_backends`] behind the DynamoDB capacity model (`--store model`): every brand-data
/// call waits DynamoDB's latency and pays its units, a hot partition is throttled, and a write to
/// an item an ongoing transaction holds conflicts (`trcker_shared::brand_data::model`), on the
/// real clock. The key store is not modelled.
pub async fn model_backends() -> Result<(Backends, PlaintextKey), String> {
    let model = Arc::new(DynamoModel::new(
        MemoryBrandData::new(),
        ModelSettings::default(),
    ));
    let derive = |thresholds| MemoryFeed::new(model.clone(), DynamoModel::inner, thresholds);
    seeded(model.clone(), None, derive).await
}

async fn seeded(
    data: Arc<dyn BrandDataStore>,
    memory_data: Option<Arc<MemoryBrandData>>,
    derive: impl FnOnce(Thresholds) -> MemoryFeed,
) -> Result<(Backends, PlaintextKey), String> {
    eprintln!(
        "WARNING: in-memory mode uses the built-in INSECURE development pepper; data lives only \
         as long as this process."
    );
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
    ));
    let thresholds = Thresholds::from_env().map_err(|error| error.to_string())?;
    // The feed starts after the seed's clicks, which it writes with their rollups, and before its
    // conversions, whose rollups the feed derives.
    let mut derivation = None;
    let start_feed = || derivation = Some(Arc::new(derive(thresholds)));
    let demo_key = seed::demo_with(&keys, &data, start_feed)
        .await
        .map_err(|error| format!("seeding the demo brand failed: {error}"))?;
    let derivation = derivation.ok_or("the demo seed did not start the change feed")?;
    let backends = Backends {
        keys,
        data,
        memory_data,
        derivation: Some(derivation),
        stream: None,
    };
    Ok((backends, demo_key))
}

/// What `--store dynamodb` runs with: the Lambda functions' own key-service configuration
/// ([`EdgeConfig`]: `TRCKER_KEY_CACHE_TTL_MS`, `TRCKER_KEY_CACHE_CAPACITY`,
/// `TRCKER_LAST_USED_INTERVAL_MS`, `TRCKER_STORE_TIMEOUT_MS`, `TRCKER_TLS_ROOTS`, the pepper), read
/// and checked the same way, and the data table. Where a function requires a variable, the local
/// gateway has a default: the tables [`DEFAULT_KEYS_TABLE`] and [`DEFAULT_DATA_TABLE`], and without
/// `TRCKER_PEPPER_SECRET_ID` the insecure development pepper (whatever
/// `TRCKER_INSECURE_DEV_PEPPER` says: the local gateway never runs inside Lambda).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoSettings {
    pub edge: EdgeConfig,
    pub data_table: String,
}

impl DynamoSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let dev_pepper = set(PEPPER_SECRET_VAR).is_none();
        let local = |name: &str| match name {
            KEYS_TABLE_VAR => Some(set(name).unwrap_or_else(|| DEFAULT_KEYS_TABLE.to_owned())),
            DATA_TABLE_VAR => Some(set(name).unwrap_or_else(|| DEFAULT_DATA_TABLE.to_owned())),
            INSECURE_DEV_PEPPER_VAR if dev_pepper => Some("1".to_owned()),
            // Only consulted for the dev pepper, which EdgeConfig refuses inside Lambda.
            "AWS_LAMBDA_FUNCTION_NAME" => None,
            _ => lookup(name),
        };
        let edge = EdgeConfig::from_lookup(local)?;
        let data_table = local(DATA_TABLE_VAR).unwrap_or_else(|| DEFAULT_DATA_TABLE.to_owned());
        Ok(Self { edge, data_table })
    }
}

/// DynamoDB from the standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials),
/// with [`DynamoSettings::from_env`] and the functions' SDK client, timeouts and retries; the
/// tables created first if `create_tables` and they are missing (the data table with its stream).
/// The stream's poller is built with the stream function's fraud thresholds
/// (`Thresholds::from_env`), not started.
pub async fn dynamodb_backends(create_tables: bool) -> Result<Backends, String> {
    let settings = DynamoSettings::from_env().map_err(|error| error.to_string())?;
    let aws = load_aws_config(settings.edge.store_timeout_ms, settings.edge.tls_roots).await;
    dynamodb_backends_with(settings, aws, create_tables).await
}

/// [`dynamodb_backends`] with the settings and AWS configuration given (tests: moto). The key
/// service is built by `bootstrap::edge_from_config`, as a Lambda function's is; the stream's
/// poller uses the same AWS configuration (endpoint, credentials, timeouts).
pub async fn dynamodb_backends_with(
    settings: DynamoSettings,
    aws: aws_config::SdkConfig,
    create_tables: bool,
) -> Result<Backends, String> {
    if create_tables {
        let client = aws_sdk_dynamodb::Client::new(&aws);
        for (definition, name) in [
            (&KEYS_TABLE, &settings.edge.keys_table),
            (&DATA_TABLE, &settings.data_table),
        ] {
            let exists = client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .is_ok();
            if exists {
                let present = index_names(&client, name)
                    .await
                    .map_err(|error| format!("describing table {name}: {error}"))?;
                if let Some(missing) = definition
                    .indexes
                    .iter()
                    .find(|index| !present.iter().any(|present| present == index.name))
                {
                    return Err(format!(
                        "table {name} exists without the {} index this version needs: create a new \
                         table (another TRCKER_DATA_TABLE) or add the index",
                        missing.name
                    ));
                }
                // A data table from before its stream: derived data needs one.
                if let Some(stream) = stream_specification(definition) {
                    let described = client
                        .describe_table()
                        .table_name(name)
                        .send()
                        .await
                        .map_err(|error| {
                            format!("describing table {name}: {}", DisplayErrorContext(&error))
                        })?;
                    let streaming = described
                        .table()
                        .and_then(|table| table.stream_specification())
                        .is_some_and(|stream| stream.stream_enabled());
                    if !streaming {
                        client
                            .update_table()
                            .table_name(name)
                            .stream_specification(stream)
                            .send()
                            .await
                            .map_err(|error| {
                                format!(
                                    "enabling the stream of table {name}: {}",
                                    DisplayErrorContext(&error)
                                )
                            })?;
                        println!("enabled the stream of table {name}");
                    }
                }
                println!("table {name} exists");
            } else {
                create_table(&client, definition, name)
                    .await
                    .map_err(|error| format!("creating table {name}: {error}"))?;
                println!("created table {name}");
            }
        }
    }
    if settings.edge.pepper == PepperSource::InsecureDev {
        eprintln!("{PEPPER_SECRET_VAR} is not set; {INSECURE_DEV_PEPPER_VAR} behaviour applies");
    }
    let thresholds = Thresholds::from_env().map_err(|error| error.to_string())?;
    let edge = edge_from_config(settings.edge, aws)
        .await
        .map_err(|error| error.to_string())?;
    let data: Arc<dyn BrandDataStore> =
        Arc::new(DynamoBrandData::new(edge.dynamodb, &settings.data_table));
    let stream = StreamPoller::new(&edge.aws, settings.data_table, data.clone(), thresholds);
    Ok(Backends {
        keys: edge.keys,
        data,
        memory_data: None,
        derivation: None,
        stream: Some(Arc::new(stream)),
    })
}

/// What the binary serves: [`gateway`] over `backends`, with the same variables, defaults and
/// checks as the Lambda functions (`EdgeLimits`, `CaptureConfig`, `McpConfig` from the
/// environment), and the soak counters at `GET /_local/stats` ([`with_stats`]).
pub fn app_from_env(backends: Backends) -> Result<Router, String> {
    let limits = EdgeLimits::from_env().map_err(|error| error.to_string())?;
    let capture = CaptureConfig::from_env().map_err(|error| error.to_string())?;
    let mcp = McpConfig::from_env().map_err(|error| error.to_string())?;
    // Request and activity counters for soak runs, at GET /_local/stats (loopback only).
    let stats = Arc::new(stats::GatewayStats::new(backends.memory_data));
    Ok(with_stats(
        gateway(backends.keys, backends.data, limits, capture, mcp),
        stats,
    ))
}

/// Every route of the deployed system, on one router.
pub fn gateway(
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    limits: EdgeLimits,
    capture: CaptureConfig,
    mcp: McpConfig,
) -> Router {
    // The Invoke API needs no brand key: only the AWS CLI and SDKs may call it, never a page.
    let invoke = Router::new()
        .route(api_gateway_routes::INVOKE_PATH, post(invoke_function))
        .route_layer(middleware::from_fn(local_guard::invoke_callers))
        .with_state(keys.clone());
    let capture = trcker_capture::routes(keys.clone(), data.clone(), limits, capture);
    let mcp = trcker_mcp::routes(keys.clone(), data.clone(), limits, mcp);
    trcker_public_api::router(keys, data, limits)
        .merge(capture)
        .merge(mcp)
        .merge(invoke)
        .layer(middleware::from_fn(api_gateway_routes::refuse_unrouted))
        .layer(middleware::from_fn(api_gateway_request_context))
        // Outermost: a request a DNS-rebinding page sends (foreign `Host`) reaches nothing.
        .layer(middleware::from_fn(local_guard::loopback_host))
}

/// The gateway and `GET /_local/stats` (behind the same `Host` check), every response counted.
pub fn with_stats(app: Router, stats: Arc<stats::GatewayStats>) -> Router {
    app.merge(stats::routes(stats.clone()).layer(middleware::from_fn(local_guard::loopback_host)))
        .layer(middleware::from_fn_with_state(stats, stats::count_requests))
}

/// Fills the request context as API Gateway (HTTP API) would: source IP from the socket, the
/// User-Agent header, a fresh request id. A context already on the request is replaced, as API
/// Gateway replaces anything a caller sends: tests set the source IP with a `ConnectInfo`.
///
/// Unlike API Gateway's, the context names no `domainName`. The MCP function answers any `Host`
/// equal to it (in AWS it is the endpoint that took the request, which a rebinding page's name
/// never is), but here the name a request arrives on is whatever the browser resolved to
/// loopback: copying `Host` into it would vouch for a rebinding page's own name. Without one, the
/// MCP function checks `Host` against `TRCKER_MCP_ALLOWED_HOSTS` alone (loopback by default).
async fn api_gateway_request_context(mut request: Request, next: Next) -> Response {
    let source_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_owned(), |info| info.0.ip().to_string());
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let request_id = trcker_shared::edge::context::request_id_with_prefix("local");
    let context = api_gateway_context(
        request.method(),
        request.uri().path(),
        &source_ip,
        user_agent.as_deref(),
        &request_id,
        SystemClock.now_ms(),
    );
    request.extensions_mut().insert(context);
    let mut response = next.run(request).await;
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

/// The Lambda Invoke API for the keys function, as `aws lambda invoke --endpoint-url` calls it.
async fn invoke_function(
    State(keys): State<Arc<KeyService>>,
    Path(function): Path<String>,
    _headers: HeaderMap,
    payload: Bytes,
) -> Response {
    if function != "keys" {
        let body = serde_json::json!({
            "Type": "User",
            "message": format!("Function not found: {}", function.chars().take(64).collect::<String>()),
        });
        let mut response = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        response.headers_mut().insert(
            "x-amzn-errortype",
            axum::http::HeaderValue::from_static("ResourceNotFoundException"),
        );
        return response;
    }
    let result = trcker_keys::handle_payload_bytes(&keys, &payload).await;
    (StatusCode::OK, axum::Json(result)).into_response()
}

#[cfg(test)]
mod tests {
    //! The `--store dynamodb` settings: the local defaults, and the key-service variables read as
    //! the functions read them. (On moto, behind the gateway: `tests/backends.rs`.)

    use trcker_shared::config::MAX_CACHE_TTL_MS;
    use trcker_shared::keys::KeySettings;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<DynamoSettings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        DynamoSettings::from_lookup(move |name| {
            vars.iter()
                .find(|(set, _)| set == name)
                .map(|(_, value)| value.clone())
        })
    }

    /// The MCP function answers the `Host` API Gateway's context names; the local gateway's
    /// context names none, and replaces one the request brings, so the MCP list alone decides.
    /// `127.0.0.7` passes the loopback guard but is not on the MCP list: refused by the MCP
    /// function, even with a context that would vouch for it. A foreign name is refused by the
    /// loopback guard before any context is made.
    #[tokio::test]
    async fn the_local_context_vouches_for_no_host() {
        use axum::body::Body;
        use tower::ServiceExt;

        let (backends, key) = memory_backends().await.unwrap();
        let app = gateway(
            backends.keys,
            backends.data,
            EdgeLimits::default(),
            CaptureConfig::default(),
            McpConfig {
                allowed_hosts: vec!["localhost".into()],
            },
        );
        for (host, status, refused_by) in [
            ("localhost:3000", StatusCode::OK, None),
            ("127.0.0.7:3000", StatusCode::FORBIDDEN, Some("MCP server")),
            ("evil.example", StatusCode::FORBIDDEN, Some("trcker-local")),
        ] {
            let mut request = axum::http::Request::post(trcker_mcp::MCP_PATH)
                .header("host", host)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .header("authorization", format!("Bearer {}", key.expose_secret()))
                .body(Body::from(
                    r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
                ))
                .unwrap();
            // What a forged context would claim: that API Gateway took the request on `host`.
            let mut forged = api_gateway_context(
                &axum::http::Method::POST,
                trcker_mcp::MCP_PATH,
                "127.0.0.1",
                None,
                "forged",
                0,
            );
            if let lambda_http::request::RequestContext::ApiGatewayV2(context) = &mut forged {
                context.domain_name = Some(host.to_owned());
            }
            request.extensions_mut().insert(forged);
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{host}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            match refused_by {
                None => assert!(body["result"]["tools"].is_array(), "{host}: {body}"),
                Some(by) => {
                    assert_eq!(body["error"]["code"], "host_not_allowed", "{host}");
                    let message = body["error"]["message"].as_str().unwrap();
                    assert!(message.contains(by), "{host}: {message}");
                }
            }
        }
    }

    #[test]
    fn dynamodb_settings_default_what_a_function_requires() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.edge.keys_table, DEFAULT_KEYS_TABLE);
        assert_eq!(defaults.data_table, DEFAULT_DATA_TABLE);
        assert_eq!(defaults.edge.pepper, PepperSource::InsecureDev);
        assert_eq!(defaults.edge.key_settings, KeySettings::default());
        // Blank is unset; the dev-pepper flag is not needed and not judged; Lambda's variable is
        // not consulted.
        for vars in [
            &[(KEYS_TABLE_VAR, " "), (DATA_TABLE_VAR, "")][..],
            &[(INSECURE_DEV_PEPPER_VAR, "no")],
            &[
                (INSECURE_DEV_PEPPER_VAR, "1"),
                ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ],
        ] {
            assert_eq!(settings(vars).unwrap(), defaults, "{vars:?}");
        }
        let named = settings(&[
            (KEYS_TABLE_VAR, "k"),
            (DATA_TABLE_VAR, "d"),
            (PEPPER_SECRET_VAR, "arn:pepper"),
        ])
        .unwrap();
        assert_eq!(
            (named.edge.keys_table.as_str(), named.data_table.as_str()),
            ("k", "d")
        );
        assert_eq!(
            named.edge.pepper,
            PepperSource::SecretsManager {
                secret_id: "arn:pepper".into()
            }
        );
    }

    #[test]
    fn dynamodb_settings_read_the_key_service_variables_as_a_function_does() {
        let tuned = settings(&[
            ("TRCKER_KEY_CACHE_TTL_MS", "0"),
            ("TRCKER_KEY_CACHE_CAPACITY", "7"),
            ("TRCKER_LAST_USED_INTERVAL_MS", "5000"),
            ("TRCKER_STORE_TIMEOUT_MS", "300"),
            ("TRCKER_TLS_ROOTS", "system"),
        ])
        .unwrap();
        assert_eq!(
            tuned.edge.key_settings,
            KeySettings {
                cache_ttl_ms: 0,
                cache_capacity: 7,
                last_used_interval_ms: 5000,
            }
        );
        assert_eq!(tuned.edge.store_timeout_ms, 300);
        assert_eq!(
            tuned.edge.tls_roots,
            trcker_shared::config::TrustRoots::System
        );
        let too_long = (MAX_CACHE_TTL_MS + 1).to_string();
        for (name, value) in [
            ("TRCKER_KEY_CACHE_TTL_MS", too_long.as_str()),
            ("TRCKER_KEY_CACHE_CAPACITY", "many"),
            ("TRCKER_STORE_TIMEOUT_MS", "5"),
            ("TRCKER_TLS_ROOTS", "mine"),
        ] {
            let error = settings(&[(name, value)]).unwrap_err();
            assert!(error.to_string().contains(name), "{name}: {error}");
        }
    }
}
