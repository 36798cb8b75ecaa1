//! Lambda entry point for the public API: configuration, clients and the pepper at init, then
//! the router under `lambda_http`.

use trcker_shared::bootstrap::{InitClock, StartupError, brand_data_from_env, edge_from_env};

/// Listing pages allocate heavily; mimalloc halves their cost against glibc's (BENCHMARKS.md).
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
        Ok::<_, StartupError>((
            trcker_public_api::router(edge.keys, data, api.limits),
            network,
        ))
    };
    let (router, network) = match started.await {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(error = %error, "public API failed to start");
            return Err(error.into());
        }
    };
    init.finished(network);
    lambda_http::run(router).await
}
