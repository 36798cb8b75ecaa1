//! Lambda entry point for the MCP server: configuration, clients and the pepper at init, then the
//! router (guard + rmcp's Streamable HTTP service) under `lambda_http`.

use trcker_mcp::config::McpConfig;
use trcker_shared::bootstrap::{StartupError, brand_data_from_env, edge_from_env};

/// Same allocator as the other functions (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    trcker_shared::telemetry::init_json_logging();
    let started = async {
        let edge = edge_from_env().await?;
        let (api, data) = brand_data_from_env(&edge)?;
        let config = McpConfig::required_from_lookup(|name| std::env::var(name).ok())?;
        Ok::<_, StartupError>(trcker_mcp::router(edge.keys, data, api.limits, config))
    };
    let router = match started.await {
        Ok(router) => router,
        Err(error) => {
            tracing::error!(error = %error, "mcp failed to start");
            return Err(error.into());
        }
    };
    lambda_http::run(router).await
}
