//! Lambda entry point for the key-management function: build the service once, then serve
//! invocations. The payload arrives as raw JSON text so the size limit and every parse error go
//! through the same typed handling as in tests and the local gateway.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::value::RawValue;
use trcker_shared::bootstrap::InitClock;

/// Init is timed from here, before the async runtime is built (the `init finished` log line).
fn main() -> Result<(), Error> {
    let init = InitClock::start();
    serve(init)
}

#[tokio::main]
async fn serve(init: InitClock) -> Result<(), Error> {
    trcker_shared::telemetry::init_json_logging();
    let (service, network) = match trcker_shared::bootstrap::edge_from_env().await {
        Ok(edge) => (edge.keys, edge.init_network),
        Err(error) => {
            tracing::error!(error = %error, "keys function failed to start");
            return Err(error.into());
        }
    };
    init.finished(network);
    run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let service = service.clone();
        async move {
            let payload = event.payload.get().as_bytes();
            Ok::<_, Error>(trcker_keys::handle_payload_bytes(&service, payload).await)
        }
    }))
    .await
}
