//! Container start-up for every Lambda function: configuration, AWS clients built once, the
//! pepper fetched once (while the DynamoDB connection is opened), and the key service they share
//! across invocations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

use crate::brand_data::BrandDataStore;
use crate::brand_data::dynamo::DynamoBrandData;
use crate::clock::SystemClock;
use crate::config::{ConfigError, EdgeConfig, PepperSource, TrustRoots};
use crate::edge::config::ApiConfig;
use crate::hashing::{KeyHash, KeyHasher, Pepper, PepperError};
use crate::keys::KeyService;
use crate::store::KeyStore;
use crate::store::dynamo::DynamoStore;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pepper(#[from] PepperError),
}

/// Loads the AWS configuration from the standard environment (region, credentials,
/// `AWS_ENDPOINT_URL`), with timeouts so a dead store fails fast instead of hanging.
pub async fn load_aws_config(store_timeout_ms: u64, roots: TrustRoots) -> aws_config::SdkConfig {
    aws_config_loader(store_timeout_ms, roots).load().await
}

/// The Amazon Trust Services roots (Amazon Root CA 1-4 and the Starfield Services G2 root that
/// cross-signs them), which every AWS service endpoint chains to: the default trust store.
const AMAZON_TRUST_SERVICES_ROOTS: [&str; 5] = [
    include_str!("../certs/amazon-root-ca-1.pem"),
    include_str!("../certs/amazon-root-ca-2.pem"),
    include_str!("../certs/amazon-root-ca-3.pem"),
    include_str!("../certs/amazon-root-ca-4.pem"),
    include_str!("../certs/starfield-services-root-ca-g2.pem"),
];

/// The SDK's HTTPS client (rustls with aws-lc, as the SDK's default) with the trust store
/// `roots` names. With [`TrustRoots::Amazon`] nothing is read from disk: the default client
/// reads every certificate of the system's store at start-up, 4-8 ms of a function's init here
/// (BENCHMARKS.md, "Cold start").
pub fn sdk_http_client(roots: TrustRoots) -> SharedHttpClient {
    let trust_store = match roots {
        TrustRoots::Amazon => AMAZON_TRUST_SERVICES_ROOTS
            .iter()
            .fold(TrustStore::empty(), |store, pem| {
                store.with_pem_certificate(pem.as_bytes())
            }),
        TrustRoots::System => TrustStore::empty().with_native_roots(true),
    };
    // Building a context cannot fail today (the result type is for the future); should it ever,
    // the SDK's default context (the system's roots) still gives a working client.
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .unwrap_or_default();
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

pub use crate::store::dynamo::{STORE_INITIAL_BACKOFF, STORE_MAX_ATTEMPTS};

/// The SDK timeouts for a store timeout of `store_timeout_ms` (`TRCKER_STORE_TIMEOUT_MS`): the
/// whole operation, retries and backoff included, is bounded by it; each attempt by half of it;
/// a TCP/TLS connect by at most 1 s. A store that does not answer fails the call after
/// `store_timeout_ms` (`SdkError::TimeoutError`, mapped to `store_unavailable`).
pub fn store_timeouts(store_timeout_ms: u64) -> TimeoutConfig {
    let operation = Duration::from_millis(store_timeout_ms);
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(store_timeout_ms.min(1_000)))
        .operation_attempt_timeout(operation / 2)
        .operation_timeout(operation)
        .build()
}

/// The SDK retry policy, spelled out rather than inherited: standard mode (throttling, 5xx,
/// timeouts and connection errors are retried; the client-side retry quota stops retry storms),
/// [`STORE_MAX_ATTEMPTS`] attempts, backoff from [`STORE_INITIAL_BACKOFF`] doubling up to a
/// quarter of the operation timeout, so the retries fit inside it.
pub fn store_retries(store_timeout_ms: u64) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(STORE_MAX_ATTEMPTS)
        .with_initial_backoff(STORE_INITIAL_BACKOFF)
        .with_max_backoff(Duration::from_millis(store_timeout_ms / 4).max(STORE_INITIAL_BACKOFF))
}

/// The loader behind [`load_aws_config`], for callers that override region or endpoint.
pub fn aws_config_loader(store_timeout_ms: u64, roots: TrustRoots) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk_http_client(roots))
        .timeout_config(store_timeouts(store_timeout_ms))
        .retry_config(store_retries(store_timeout_ms))
}

/// Obtains the pepper as configured; the insecure dev pepper is announced on stderr and in logs.
pub async fn load_pepper(
    source: &PepperSource,
    aws: &aws_config::SdkConfig,
) -> Result<Pepper, PepperError> {
    match source {
        PepperSource::SecretsManager { secret_id } => {
            let client = aws_sdk_secretsmanager::Client::new(aws);
            Pepper::fetch(&client, secret_id).await
        }
        PepperSource::InsecureDev => {
            eprintln!(
                "WARNING: using the built-in INSECURE development pepper. Key hashes made now are \
                 worthless outside local runs. Set TRCKER_PEPPER_SECRET_ID in any real deployment."
            );
            tracing::warn!("using the insecure development pepper: never do this in AWS");
            Ok(Pepper::insecure_dev())
        }
    }
}

/// Everything a function needs at init, built once per container.
pub struct EdgeRuntime {
    pub config: EdgeConfig,
    pub aws: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub keys: Arc<KeyService>,
    /// How long init waited on the network: the pepper fetch and the store warm-up, joined
    /// (for [`InitClock::finished`]).
    pub init_network: Duration,
}

/// A function's init, timed for its one `init finished` log line (scripts/bench-cold-start
/// reads it from every run's log): started first thing in `main`, before the async runtime is
/// built, and finished just before the runtime loop (`lambda_http::run`, `lambda_runtime::run`).
#[derive(Debug, Clone, Copy)]
pub struct InitClock {
    started: Instant,
}

impl InitClock {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    /// Logs `init finished` (info, one JSON line) with `init_us`, the microseconds since
    /// [`InitClock::start`], and `network_us`, the microseconds of them spent waiting on the
    /// network (`network`: [`EdgeRuntime::init_network`], zero for a function that makes no call
    /// at init). `init_us - network_us` is the function's own init work.
    pub fn finished(self, network: Duration) {
        let init_us = micros(self.started.elapsed());
        let network_us = micros(network);
        tracing::info!(init_us, network_us, "init finished");
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Configuration, AWS clients and the pepper, once, at container init. The store's connection is
/// opened while the pepper is fetched, so the first request does not wait for it and init does
/// not wait twice (BENCHMARKS.md, "Cold start").
pub async fn edge_from_env() -> Result<EdgeRuntime, StartupError> {
    let config = EdgeConfig::from_env()?;
    let aws = load_aws_config(config.store_timeout_ms, config.tls_roots).await;
    edge_from_config(config, aws).await
}

/// [`edge_from_env`] for a configuration read another way and AWS settings the caller loaded: the
/// local gateway (`trcker-local --store dynamodb`, which defaults the table names and the pepper
/// where a function requires them) and its tests on moto. Same store, pepper, warm-up and key
/// settings as a function gets.
pub async fn edge_from_config(
    config: EdgeConfig,
    aws: aws_config::SdkConfig,
) -> Result<EdgeRuntime, StartupError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let store = DynamoStore::new(dynamodb.clone(), &config.keys_table);
    let waiting = Instant::now();
    let (pepper, ()) = tokio::join!(load_pepper(&config.pepper, &aws), warm_up_store(&store));
    let init_network = waiting.elapsed();
    let pepper = pepper?;
    let keys = Arc::new(KeyService::new(
        Arc::new(store),
        KeyHasher::new(&pepper),
        Arc::new(SystemClock),
        config.key_settings,
    ));
    Ok(EdgeRuntime {
        config,
        aws,
        dynamodb,
        keys,
        init_network,
    })
}

/// The key hash the warm-up looks up: all zero bits, which no key hashes to (hashes are
/// HMAC-SHA256 outputs), so the read finds nothing.
const WARM_UP_KEY_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Opens the store's connection at init (TCP and TLS handshakes, endpoint and credentials
/// resolved) with one read of a key hash that does not exist: the same `GetItem` on the keys
/// table that a verify makes, which every function's IAM policy allows. A failure is only logged:
/// a store that is really down fails the requests that need it, with their typed errors.
pub async fn warm_up_store(store: &dyn KeyStore) {
    let Some(probe) = KeyHash::from_hex(WARM_UP_KEY_HASH) else {
        return;
    };
    let started = Instant::now();
    match store.find_key_by_hash(&probe).await {
        Ok(_) => tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store connection warmed"
        ),
        Err(error) => tracing::warn!(
            error = %error,
            "store warm-up failed: the first request opens the connection"
        ),
    }
}

/// The HTTP functions' extra configuration and their brand data store on DynamoDB.
pub fn brand_data_from_env(
    edge: &EdgeRuntime,
) -> Result<(ApiConfig, Arc<dyn BrandDataStore>), StartupError> {
    let api = ApiConfig::from_env()?;
    let data = DynamoBrandData::new(edge.dynamodb.clone(), &api.data_table);
    Ok((api, Arc::new(data)))
}
