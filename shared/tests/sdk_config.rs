//! The AWS SDK configuration every function starts with states its timeouts and retries
//! explicitly (bootstrap.rs): operation, attempt and connect timeouts from
//! `TRCKER_STORE_TIMEOUT_MS`, standard retries with a bounded backoff, and a store that does not
//! answer turns into `store_unavailable` (a transient error), not a hang.

use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials;
use trcker_shared::bootstrap::{STORE_INITIAL_BACKOFF, STORE_MAX_ATTEMPTS, aws_config_loader};
use trcker_shared::config::{DEFAULT_STORE_TIMEOUT_MS, EdgeConfig, TrustRoots};
use trcker_shared::store::KeyStore;
use trcker_shared::store::dynamo::DynamoStore;

async fn config(store_timeout_ms: u64, endpoint: &str) -> aws_config::SdkConfig {
    config_with_roots(store_timeout_ms, endpoint, TrustRoots::Amazon).await
}

async fn config_with_roots(
    store_timeout_ms: u64,
    endpoint: &str,
    roots: TrustRoots,
) -> aws_config::SdkConfig {
    aws_config_loader(store_timeout_ms, roots)
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

/// One key-store read through `loaded`, which must fail: its error.
async fn failing_read(loaded: &aws_config::SdkConfig) -> trcker_shared::store::StoreError {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(loaded), "keys");
    let brand = trcker_shared::ids::BrandId::parse("acme").unwrap();
    // A generous outer limit only so that a regression fails instead of hanging the suite.
    tokio::time::timeout(Duration::from_secs(30), store.get_brand(&brand))
        .await
        .expect("the SDK timeouts end the call")
        .expect_err("the read cannot succeed")
}

/// A listener that accepts connections and never answers: every attempt times out, and the
/// call ends as a transient error once the operation timeout is spent.
#[tokio::test]
async fn a_store_that_never_answers_is_unavailable_not_a_hang() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let error = failing_read(&config(300, &endpoint).await).await;
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.to_string().to_lowercase().contains("timeout")
            || error.to_string().to_lowercase().contains("timed out"),
        "{error}"
    );
    drop(silent);
}

/// The built-in Amazon trust store (and the system one) builds a working HTTPS client: its
/// certificates parse (a bad one would panic inside the SDK's connector when the first TLS
/// connection is set up) and a peer that does not speak TLS ends the call with a typed error.
#[tokio::test]
async fn both_trust_stores_build_an_https_client_that_fails_cleanly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Not TLS\r\n\r\n").await;
        }
    });
    for roots in [TrustRoots::Amazon, TrustRoots::System] {
        let loaded = config_with_roots(300, &format!("https://{address}"), roots).await;
        let error = failing_read(&loaded).await;
        assert!(error.is_transient(), "{roots:?}: {error:?}");
    }
    server.abort();
}
