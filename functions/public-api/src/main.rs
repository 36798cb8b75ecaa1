//! Lambda entry point for the public API: configuration, clients and the pepper at init, then
//! the router under `lambda_http`.

use trcker_shared::bootstrap::{StartupError, brand_data_from_env, edge_from_env};

/// Listing pages allocate heavily; mimalloc halves their cost against glibc's (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    trcker_shared::telemetry::init_json_logging();
    let started = async {
        let edge = edge_from_env().await?;
        let (api, data) = brand_data_from_env(&edge)?;
        Ok::<_, StartupError>(trcker_public_api::router(edge.keys, data, api.limits))
    };
    let router = match started.await {
        Ok(router) => router,
        Err(error) => {
            tracing::error!(error = %error, "public API failed to start");
            return Err(error.into());
        }
    };
    lambda_http::run(router).await
}
