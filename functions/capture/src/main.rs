//! Lambda entry point for click capture: configuration, clients and the pepper at init, then the
//! router under `lambda_http`.

use trcker_capture::config::CaptureConfig;
use trcker_shared::bootstrap::{StartupError, brand_data_from_env, edge_from_env};

/// Captures allocate a record and a few strings each; mimalloc keeps that cheap (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    trcker_shared::telemetry::init_json_logging();
    let started = async {
        let edge = edge_from_env().await?;
        let (api, data) = brand_data_from_env(&edge)?;
        let capture = CaptureConfig::from_env()?;
        Ok::<_, StartupError>(trcker_capture::router(edge.keys, data, api.limits, capture))
    };
    let router = match started.await {
        Ok(router) => router,
        Err(error) => {
            tracing::error!(error = %error, "capture failed to start");
            return Err(error.into());
        }
    };
    lambda_http::run(router).await
}
