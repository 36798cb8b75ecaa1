//! Configuration of the stream function: the data table and the fraud thresholds its rescoring
//! applies (the store's bounds come from the shared crate). Read once at start; errors name the
//! variable. It needs neither the keys table nor the pepper: it verifies no key.

use trcker_shared::config::{ConfigError, STORE_TIMEOUT_VAR, TLS_ROOTS_VAR, TrustRoots};
use trcker_shared::edge::config::DATA_TABLE_VAR;
use trcker_shared::program::scoring::{REPEAT_WINDOW_VAR, SOURCE_CLICKS_PER_HOUR_VAR, Thresholds};

/// Every variable the function reads but `RUST_LOG` (`shared/src/telemetry.rs`), for the
/// infrastructure contract test: the store timeout and trust roots through the shared crate, the
/// fraud thresholds through `trcker_shared::program::scoring` (the names capture used when it
/// scored clicks in the request), the data table here.
pub const ALL_VARS: [&str; 5] = [
    DATA_TABLE_VAR,
    STORE_TIMEOUT_VAR,
    TLS_ROOTS_VAR,
    SOURCE_CLICKS_PER_HOUR_VAR,
    REPEAT_WINDOW_VAR,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    pub data_table: String,
    pub thresholds: Thresholds,
    /// Upper bound on one store call, retries included (`TRCKER_STORE_TIMEOUT_MS`).
    pub store_timeout_ms: u64,
    pub tls_roots: TrustRoots,
}

impl StreamConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let data_table = std::env::var(DATA_TABLE_VAR)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .ok_or(ConfigError::Missing(DATA_TABLE_VAR))?;
        Ok(Self {
            data_table,
            thresholds: Thresholds::from_env()?,
            store_timeout_ms: trcker_shared::config::store_timeout_ms_from_env()?,
            tls_roots: trcker_shared::config::tls_roots_from_env()?,
        })
    }
}
