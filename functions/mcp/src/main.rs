//! Lambda entry point for the MCP server: configuration, clients and the pepper at init, then the
//! router (guard + rmcp's Streamable HTTP service) under `lambda_http`.

use trcker_mcp::config::McpConfig;
use trcker_shared::bootstrap::{InitClock, StartupError, brand_data_from_env, edge_from_env};

/// Same allocator as the other functions (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Init is timed from here, before the async runtime is built (the `init finished` log line).
fn main() -> Result<(), lambda_http::Error> {
    let init = InitClock::start();
    serve(init)
}

#[tokio::main]
async fn serve(init: InitClock) -> Result<(), lambda_http::Error> {
    trcker_shared::telemetry::init_json_logging();
    let started = async {
        let edge = edge_from_env().await?;
        let network = edge.init_network;
        let (api, data) = brand_data_from_env(&edge)?;
        let config = McpConfig::lambda_from_lookup(|name| std::env::var(name).ok())?;
        Ok::<_, StartupError>((
            trcker_mcp::router(edge.keys, data, api.limits, config),
            network,
        ))
    };
    let (router, network) = match started.await {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(error = %error, "mcp failed to start");
            return Err(error.into());
        }
    };
    init.finished(network);
    lambda_http::run(router).await
}
