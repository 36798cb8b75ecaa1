//! Lambda entry point for the key-management function: build the service once, then serve
//! invocations.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    trcker_shared::telemetry::init_json_logging();
    let (_, service) = match trcker_shared::bootstrap::key_service_from_env().await {
        Ok(ready) => ready,
        Err(error) => {
            tracing::error!(error = %error, "keys function failed to start");
            return Err(error.into());
        }
    };
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let service = service.clone();
        async move { Ok::<_, Error>(trcker_keys::handle_payload(&service, event.payload).await) }
    }))
    .await
}
