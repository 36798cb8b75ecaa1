//! Lambda entry point for click capture: configuration, clients and the pepper at init, then the
//! router under `lambda_http`.

use trcker_capture::config::CaptureConfig;
use trcker_shared::bootstrap::{InitClock, StartupError, brand_data_from_env, edge_from_env};

/// Captures allocate a record and a few strings each; mimalloc keeps that cheap (BENCHMARKS.md).
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
        let capture = CaptureConfig::from_env()?;
        Ok::<_, StartupError>((
            trcker_capture::router(edge.keys, data, api.limits, capture),
            network,
        ))
    };
    let (router, network) = match started.await {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(error = %error, "capture failed to start");
            return Err(error.into());
        }
    };
    init.finished(network);
    lambda_http::run(router).await
}
