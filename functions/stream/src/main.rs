//! Lambda entry point for the stream function: configuration and the DynamoDB client at init (no
//! keys table, no pepper: it verifies no key), then each batch of the data table's stream through
//! [`trcker_stream::handle`].

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use trcker_shared::bootstrap::{InitClock, load_aws_config};
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::dynamo::DynamoBrandData;
use trcker_stream::DynamoDbEvent;
use trcker_stream::config::StreamConfig;

/// A batch decodes up to a thousand records into owned clicks and documents; mimalloc keeps that
/// cheap, as in the other functions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Init is timed from here, before the async runtime is built (the `init finished` log line).
fn main() -> Result<(), Error> {
    let init = InitClock::start();
    serve(init)
}

#[tokio::main]
async fn serve(init: InitClock) -> Result<(), Error> {
    trcker_shared::telemetry::init_json_logging();
    let config = match StreamConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(error = %error, "stream failed to start");
            return Err(error.into());
        }
    };
    let aws = load_aws_config(config.store_timeout_ms, config.tls_roots).await;
    let data: Arc<dyn BrandDataStore> = Arc::new(DynamoBrandData::new(
        aws_sdk_dynamodb::Client::new(&aws),
        &config.data_table,
    ));
    let thresholds = config.thresholds;
    // No network call at init: the stream function reads no pepper and warms no store.
    init.finished(Duration::ZERO);
    run(service_fn(move |event: LambdaEvent<DynamoDbEvent>| {
        let data = data.clone();
        async move { trcker_stream::handle(data.as_ref(), &thresholds, event).await }
    }))
    .await
}
