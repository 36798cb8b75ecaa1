//! `trcker-local`: the whole edge on one machine. It serves the same function libraries the
//! Lambda binaries use, under the same routes as the infrastructure template, fills in the request
//! context the way API Gateway does, and answers the Lambda Invoke API for the keys function.
//! Only loopback `Host`s are answered, and the Invoke API only for SigV4-signed, non-browser
//! callers, so web pages cannot drive it (`local_guard`).
//!
//! Default store: in memory, seeded with a demo brand whose key is printed once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::bootstrap::{aws_config_loader, load_pepper};
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::dynamo::DynamoBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::config::{
    INSECURE_DEV_PEPPER_VAR, PEPPER_SECRET_VAR, PepperSource, store_timeout_ms_from_env,
    tls_roots_from_env,
};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::hashing::KeyHasher;
use trcker_shared::keys::{KeyService, KeySettings};
use trcker_shared::store::dynamo::DynamoStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::store::schema::{DATA_TABLE, KEYS_TABLE, create_table, index_names};

/// glibc's allocator spent about a third of a request's CPU in malloc/free and chunk consolidation
/// (BENCHMARKS.md); mimalloc's thread-local free lists halve the cost of a page of clicks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api_gateway_routes;
#[cfg(test)]
mod bad_input_matrix;
mod local_guard;
mod seed;
mod stats;
#[cfg(test)]
mod template_contract;

const USAGE: &str = "\
usage: trcker-local [--port PORT] [--store memory|dynamodb] [--create-tables]

  --port PORT        listen on 127.0.0.1:PORT (default 3000)
  --store memory     embedded in-memory store with a seeded demo brand (default)
  --store dynamodb   DynamoDB from the standard AWS environment (AWS_ENDPOINT_URL, AWS_REGION,
                     credentials); tables TRCKER_KEYS_TABLE (default trcker-keys) and
                     TRCKER_DATA_TABLE (default trcker-data)
  --create-tables    with --store dynamodb: create the tables first if they are missing

environment: TRCKER_RATE_LIMIT_PER_MINUTE (default 100), TRCKER_ACTIVITY_RETENTION_DAYS (90),
             TRCKER_MCP_ALLOWED_HOSTS (default localhost, 127.0.0.1, ::1),
             TRCKER_STORE_TIMEOUT_MS (DynamoDB operation timeout, default 2000), and the capture
             variables in the README";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    port: u16,
    dynamodb: bool,
    create_tables: bool,
}

fn parse_options(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        port: 3000,
        dynamodb: false,
        create_tables: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                options.port = value
                    .parse()
                    .map_err(|_| format!("--port {value:?} is not a port number"))?;
            }
            "--store" => match args.next().as_deref() {
                Some("memory") => options.dynamodb = false,
                Some("dynamodb") => options.dynamodb = true,
                other => return Err(format!("--store must be memory or dynamodb, not {other:?}")),
            },
            "--create-tables" => options.create_tables = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.create_tables && !options.dynamodb {
        return Err("--create-tables only applies to --store dynamodb".into());
    }
    Ok(options)
}

/// The stores and key service the gateway serves with.
struct Backends {
    keys: Arc<KeyService>,
    data: Arc<dyn BrandDataStore>,
    /// The same store as `data` in memory mode, for the soak's counters.
    memory_data: Option<Arc<MemoryBrandData>>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    trcker_shared::telemetry::init_json_logging();
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("trcker-local: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            };
        }
    };
    match run(options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("trcker-local: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let backends = if options.dynamodb {
        dynamodb_backends(options.create_tables).await?
    } else {
        memory_backends().await?
    };
    // The same variables, defaults and checks as the Lambda functions.
    let limits = EdgeLimits::from_env().map_err(|error| error.to_string())?;
    let capture = CaptureConfig::from_env().map_err(|error| error.to_string())?;
    let mcp = McpConfig::from_env().map_err(|error| error.to_string())?;
    // Request and activity counters for soak runs, at GET /_local/stats (loopback only).
    let stats = Arc::new(stats::GatewayStats::new(backends.memory_data));
    let app = with_stats(
        gateway(backends.keys, backends.data, limits, capture, mcp),
        stats,
    );
    let address = SocketAddr::from(([127, 0, 0, 1], options.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    // With --port 0 the system picks a free port: print the one it picked.
    let address = listener.local_addr().unwrap_or(address);
    println!("trcker-local listening on http://{address}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|error| format!("server error: {error}"))
}

async fn memory_backends() -> Result<Backends, String> {
    eprintln!(
        "WARNING: in-memory mode uses the built-in INSECURE development pepper; data lives only \
         as long as this process."
    );
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
    ));
    let memory_data = Arc::new(MemoryBrandData::new());
    let data: Arc<dyn BrandDataStore> = memory_data.clone();
    let demo_key = seed::demo(&keys, &data)
        .await
        .map_err(|error| format!("seeding the demo brand failed: {error}"))?;
    println!("demo key: {}", demo_key.expose_secret());
    Ok(Backends {
        keys,
        data,
        memory_data: Some(memory_data),
    })
}

async fn dynamodb_backends(create_tables: bool) -> Result<Backends, String> {
    let keys_table = table_name("TRCKER_KEYS_TABLE", "trcker-keys");
    let data_table = table_name("TRCKER_DATA_TABLE", "trcker-data");
    // The same SDK timeouts and retries as the functions (TRCKER_STORE_TIMEOUT_MS).
    let store_timeout_ms = store_timeout_ms_from_env().map_err(|error| error.to_string())?;
    let tls_roots = tls_roots_from_env().map_err(|error| error.to_string())?;
    let aws = aws_config_loader(store_timeout_ms, tls_roots).load().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    if create_tables {
        for (definition, name) in [(&KEYS_TABLE, &keys_table), (&DATA_TABLE, &data_table)] {
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
                println!("table {name} exists");
            } else {
                create_table(&client, definition, name)
                    .await
                    .map_err(|error| format!("creating table {name}: {error}"))?;
                println!("created table {name}");
            }
        }
    }
    let pepper_source = match std::env::var(PEPPER_SECRET_VAR) {
        Ok(secret_id) if !secret_id.trim().is_empty() => PepperSource::SecretsManager { secret_id },
        _ => {
            eprintln!(
                "{PEPPER_SECRET_VAR} is not set; {INSECURE_DEV_PEPPER_VAR} behaviour applies"
            );
            PepperSource::InsecureDev
        }
    };
    let pepper = load_pepper(&pepper_source, &aws)
        .await
        .map_err(|error| error.to_string())?;
    let keys = Arc::new(KeyService::new(
        Arc::new(DynamoStore::new(client.clone(), keys_table)),
        KeyHasher::new(&pepper),
        Arc::new(SystemClock),
        KeySettings::default(),
    ));
    Ok(Backends {
        keys,
        data: Arc::new(DynamoBrandData::new(client, data_table)),
        memory_data: None,
    })
}

fn table_name(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Every route of the deployed system, on one router.
fn gateway(
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
fn with_stats(app: Router, stats: Arc<stats::GatewayStats>) -> Router {
    app.merge(stats::routes(stats.clone()).layer(middleware::from_fn(local_guard::loopback_host)))
        .layer(middleware::from_fn_with_state(stats, stats::count_requests))
}

/// Fills the request context as API Gateway (HTTP API) would: source IP from the socket, the
/// User-Agent header, a fresh request id.
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
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn options() {
        assert_eq!(
            parse_options(args(&[])).unwrap(),
            Options {
                port: 3000,
                dynamodb: false,
                create_tables: false
            }
        );
        let dynamo = parse_options(args(&[
            "--store",
            "dynamodb",
            "--create-tables",
            "--port",
            "4000",
        ]))
        .unwrap();
        assert!(dynamo.dynamodb && dynamo.create_tables && dynamo.port == 4000);
        for bad in [
            &["--port"][..],
            &["--port", "x"],
            &["--store", "redis"],
            &["--create-tables"],
            &["--bogus"],
        ] {
            assert!(parse_options(args(bad)).is_err(), "{bad:?}");
        }
    }
}
