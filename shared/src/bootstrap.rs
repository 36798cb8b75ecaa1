//! Container start-up for every Lambda function: configuration, AWS clients built once, the
//! pepper fetched once, and the key service they share across invocations.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

use crate::brand_data::BrandDataStore;
use crate::brand_data::dynamo::DynamoBrandData;
use crate::clock::SystemClock;
use crate::config::{ConfigError, EdgeConfig, PepperSource};
use crate::edge::config::ApiConfig;
use crate::hashing::{KeyHasher, Pepper, PepperError};
use crate::keys::KeyService;
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
pub async fn load_aws_config(store_timeout_ms: u64) -> aws_config::SdkConfig {
    aws_config_loader(store_timeout_ms).load().await
}

/// The loader behind [`load_aws_config`], for callers that override region or endpoint.
pub fn aws_config_loader(store_timeout_ms: u64) -> aws_config::ConfigLoader {
    let operation = Duration::from_millis(store_timeout_ms);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(store_timeout_ms.min(1_000)))
        .operation_attempt_timeout(operation / 2)
        .operation_timeout(operation)
        .build();
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts)
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
}

/// Configuration, AWS clients and the pepper, once, at container init.
pub async fn edge_from_env() -> Result<EdgeRuntime, StartupError> {
    let config = EdgeConfig::from_env()?;
    let aws = load_aws_config(config.store_timeout_ms).await;
    let pepper = load_pepper(&config.pepper, &aws).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let store = DynamoStore::new(dynamodb.clone(), &config.keys_table);
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
    })
}

/// The HTTP functions' extra configuration and their brand data store on DynamoDB.
pub fn brand_data_from_env(
    edge: &EdgeRuntime,
) -> Result<(ApiConfig, Arc<dyn BrandDataStore>), StartupError> {
    let api = ApiConfig::from_env()?;
    let data = DynamoBrandData::new(edge.dynamodb.clone(), &api.data_table);
    Ok((api, Arc::new(data)))
}
