//! The AWS SDK configuration every function starts with states its timeouts and retries
//! explicitly (bootstrap.rs): operation, attempt and connect timeouts from
//! `TRCKER_STORE_TIMEOUT_MS`, standard retries with a bounded backoff, and a store that does not
//! answer turns into `store_unavailable` (a transient error), not a hang.

use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials;
use trcker_shared::bootstrap::{STORE_INITIAL_BACKOFF, STORE_MAX_ATTEMPTS, aws_config_loader};
use trcker_shared::config::{DEFAULT_STORE_TIMEOUT_MS, EdgeConfig};
use trcker_shared::store::KeyStore;
use trcker_shared::store::dynamo::DynamoStore;

async fn config(store_timeout_ms: u64, endpoint: &str) -> aws_config::SdkConfig {
    aws_config_loader(store_timeout_ms)
        .region("us-east-1")
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

#[tokio::test]
async fn timeouts_and_retries_are_explicit() {
    let loaded = config(2_000, "http://127.0.0.1:9").await;
    let timeouts = loaded.timeout_config().expect("timeouts are set");
    assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(2)));
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(Duration::from_secs(1))
    );
    assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(1)));

    let retries = loaded.retry_config().expect("retries are set");
    assert_eq!(retries.max_attempts(), STORE_MAX_ATTEMPTS);
    assert_eq!(retries.initial_backoff(), STORE_INITIAL_BACKOFF);
    assert_eq!(retries.max_backoff(), Duration::from_millis(500));

    let defaults = EdgeConfig::from_lookup(|name| match name {
        "TRCKER_KEYS_TABLE" => Some("keys".into()),
        "TRCKER_INSECURE_DEV_PEPPER" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(defaults.store_timeout_ms, DEFAULT_STORE_TIMEOUT_MS);
}

/// A listener that accepts connections and never answers: every attempt times out, and the
/// call ends as a transient error once the operation timeout is spent.
#[tokio::test]
async fn a_store_that_never_answers_is_unavailable_not_a_hang() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let loaded = config(300, &endpoint).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&loaded), "keys");
    let brand = trcker_shared::ids::BrandId::parse("acme").unwrap();
    // A generous outer limit only so that a regression fails instead of hanging the suite.
    let result = tokio::time::timeout(Duration::from_secs(30), store.get_brand(&brand))
        .await
        .expect("the SDK timeouts end the call");
    let error = result.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.to_string().to_lowercase().contains("timeout")
            || error.to_string().to_lowercase().contains("timed out"),
        "{error}"
    );
    drop(silent);
}
