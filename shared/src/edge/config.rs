//! Configuration of the HTTP functions beyond the key service: the data table, the rate limit and
//! how long activity is kept. Read once at start; errors name the variable.

use super::rate_limit::LeaseSettings;
use crate::config::ConfigError;

pub const DATA_TABLE_VAR: &str = "TRCKER_DATA_TABLE";
pub const RATE_LIMIT_VAR: &str = "TRCKER_RATE_LIMIT_PER_MINUTE";
pub const ACTIVITY_RETENTION_VAR: &str = "TRCKER_ACTIVITY_RETENTION_DAYS";
pub const MIN_CLICK_TO_CONVERSION_VAR: &str = "TRCKER_MIN_CLICK_TO_CONVERSION_SECONDS";
pub const REVOKED_KEY_RECORDS_VAR: &str = "TRCKER_REVOKED_KEY_RECORDS_PER_MINUTE";

/// Every variable this module reads, for the infrastructure contract test.
pub const ALL_VARS: [&str; 5] = [
    DATA_TABLE_VAR,
    RATE_LIMIT_VAR,
    ACTIVITY_RETENTION_VAR,
    MIN_CLICK_TO_CONVERSION_VAR,
    REVOKED_KEY_RECORDS_VAR,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub data_table: String,
    pub limits: EdgeLimits,
}

/// Tunables of the authenticated edge, with the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Requests per key per minute on the public API and MCP together.
    pub rate_limit_per_minute: u32,
    pub activity_retention_days: u32,
    /// A conversion sooner than this after its click raises a fraud signal.
    pub min_click_to_conversion_ms: i64,
    /// Attempts with one revoked key per minute that each get an activity record (and a 401);
    /// beyond, a 429 and one summary record per minute with their count.
    pub revoked_key_records_per_minute: u32,
    /// How containers lease the key's API and MCP budget ([`LeaseSettings::API_KEY`]).
    pub key_budget_leases: LeaseSettings,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 100,
            activity_retention_days: 90,
            min_click_to_conversion_ms: 15_000,
            revoked_key_records_per_minute: 20,
            key_budget_leases: LeaseSettings::API_KEY,
        }
    }
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let data_table = lookup(DATA_TABLE_VAR)
            .filter(|value| !value.trim().is_empty())
            .ok_or(ConfigError::Missing(DATA_TABLE_VAR))?;
        Ok(Self {
            data_table,
            limits: EdgeLimits::from_lookup(lookup)?,
        })
    }
}

impl EdgeLimits {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The limits from their variables, defaults where unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let number = |name: &'static str, default: u32, max: u32| {
            crate::config::bounded_u32(&lookup, name, default, 1, max)
        };
        Ok(Self {
            rate_limit_per_minute: number(
                RATE_LIMIT_VAR,
                defaults.rate_limit_per_minute,
                1_000_000_000,
            )?,
            activity_retention_days: number(
                ACTIVITY_RETENTION_VAR,
                defaults.activity_retention_days,
                3_650,
            )?,
            min_click_to_conversion_ms: i64::from(number(
                MIN_CLICK_TO_CONVERSION_VAR,
                u32::try_from(defaults.min_click_to_conversion_ms / 1000).unwrap_or(15),
                86_400,
            )?) * 1000,
            revoked_key_records_per_minute: number(
                REVOKED_KEY_RECORDS_VAR,
                defaults.revoked_key_records_per_minute,
                1_000_000,
            )?,
            // Not configurable: the lease size is a capacity decision (docs/ARCHITECTURE.md,
            // "Rate budgets in leases").
            key_budget_leases: defaults.key_budget_leases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let parsed =
            ApiConfig::from_lookup(|name| (name == DATA_TABLE_VAR).then(|| "d".into())).unwrap();
        assert_eq!(parsed.limits, EdgeLimits::default());
        assert_eq!(
            ApiConfig::from_lookup(|_| None),
            Err(ConfigError::Missing(DATA_TABLE_VAR))
        );
        let bad = ApiConfig::from_lookup(|name| match name {
            DATA_TABLE_VAR => Some("d".into()),
            RATE_LIMIT_VAR => Some("0".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(bad.to_string().contains(RATE_LIMIT_VAR));
    }
}
