//! Hello-world `lambda_http` function with the functions' network work at init: the cold-start
//! baseline that scripts/bench-cold-start measures next to the real functions (same release
//! profile, same runtime and logging, the same SDK configuration, and the same two calls at init,
//! concurrently: the pepper secret's `GetSecretValue` and a keys-table `GetItem`).

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, Response, run, service_fn};
use trcker_shared::bootstrap::{InitClock, load_aws_config};
use trcker_shared::config::{EdgeConfig, PepperSource};
use trcker_shared::store::dynamo::{PARTITION_KEY, SORT_KEY};

/// The item the functions' store warm-up reads (`bootstrap::warm_up_store`): the hash item of an
/// all-zero key hash, which no key has.
const WARM_UP_PARTITION: &str =
    "KEYHASH#0000000000000000000000000000000000000000000000000000000000000000";
const WARM_UP_SORT: &str = "KEYHASH";

async fn hello(_request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Body::from("hello"))?)
}

/// Init is timed from here, before the async runtime is built (the `init finished` log line).
fn main() -> Result<(), Error> {
    let init = InitClock::start();
    serve(init)
}

#[tokio::main]
async fn serve(init: InitClock) -> Result<(), Error> {
    trcker_shared::telemetry::init_json_logging();
    // The functions' configuration (keys table, pepper secret, store timeout, trust store), read
    // and turned into SDK settings as `bootstrap::edge_from_env` does.
    let config = EdgeConfig::from_env()?;
    let PepperSource::SecretsManager { secret_id } = &config.pepper else {
        return Err("the baseline reads the pepper secret: set TRCKER_PEPPER_SECRET_ID".into());
    };
    let aws = load_aws_config(config.store_timeout_ms, config.tls_roots).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let waiting = Instant::now();
    let (secret, item) = tokio::join!(
        async {
            aws_sdk_secretsmanager::Client::new(&aws)
                .get_secret_value()
                .secret_id(secret_id)
                .send()
                .await
        },
        dynamodb
            .get_item()
            .table_name(&config.keys_table)
            .key(PARTITION_KEY, AttributeValue::S(WARM_UP_PARTITION.into()))
            .key(SORT_KEY, AttributeValue::S(WARM_UP_SORT.into()))
            .consistent_read(true)
            .send(),
    );
    let network = waiting.elapsed();
    // Either call failing means the baseline did not do the functions' work: refuse to start.
    secret.map_err(|error| {
        format!(
            "GetSecretValue {secret_id}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&error)
        )
    })?;
    item.map_err(|error| {
        format!(
            "GetItem on {}: {}",
            config.keys_table,
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        )
    })?;
    init.finished(network);
    run(service_fn(hello)).await
}
