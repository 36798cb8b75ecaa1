//! Start-up configuration, read once from the environment into a typed struct. A missing or
//! invalid variable is an error that names it.

use crate::keys::KeySettings;

pub const KEYS_TABLE_VAR: &str = "TRCKER_KEYS_TABLE";
pub const PEPPER_SECRET_VAR: &str = "TRCKER_PEPPER_SECRET_ID";
pub const INSECURE_DEV_PEPPER_VAR: &str = "TRCKER_INSECURE_DEV_PEPPER";
pub const CACHE_TTL_VAR: &str = "TRCKER_KEY_CACHE_TTL_MS";
pub const CACHE_CAPACITY_VAR: &str = "TRCKER_KEY_CACHE_CAPACITY";
pub const LAST_USED_INTERVAL_VAR: &str = "TRCKER_LAST_USED_INTERVAL_MS";
pub const STORE_TIMEOUT_VAR: &str = "TRCKER_STORE_TIMEOUT_MS";
pub const TLS_ROOTS_VAR: &str = "TRCKER_TLS_ROOTS";

/// Every variable the shared crate reads, for the infrastructure contract test.
pub const ALL_VARS: [&str; 8] = [
    KEYS_TABLE_VAR,
    PEPPER_SECRET_VAR,
    INSECURE_DEV_PEPPER_VAR,
    CACHE_TTL_VAR,
    CACHE_CAPACITY_VAR,
    LAST_USED_INTERVAL_VAR,
    STORE_TIMEOUT_VAR,
    TLS_ROOTS_VAR,
];

/// Revocation must stay quick: a cache TTL above this is refused.
pub const MAX_CACHE_TTL_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The integer variable `name` read through `lookup`: `default` if unset or empty, an error
/// naming it if it is not an integer in `min..=max`.
pub fn bounded_u32(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    match lookup(name).filter(|value| !value.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(ConfigError::Invalid {
                name,
                reason: format!("{raw:?} is not an integer in {min}..={max}"),
            }),
        },
    }
}

/// Where the HMAC pepper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PepperSource {
    SecretsManager {
        secret_id: String,
    },
    /// Local and test runs only; announced loudly at start.
    InsecureDev,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    pub keys_table: String,
    pub pepper: PepperSource,
    pub key_settings: KeySettings,
    /// Upper bound on one store operation, retries included.
    pub store_timeout_ms: u64,
    /// The certificate authorities the AWS SDK's HTTPS client trusts.
    pub tls_roots: TrustRoots,
}

/// The trust store of the AWS SDK's HTTPS client ([`TLS_ROOTS_VAR`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustRoots {
    /// `amazon`, the default: the five Amazon Trust Services roots built into the binary, which
    /// every AWS service endpoint chains to. Nothing is read from disk at start-up.
    #[default]
    Amazon,
    /// `system`: the operating system's roots (and `SSL_CERT_FILE` / `SSL_CERT_DIR`), read at
    /// start-up; for endpoints behind another authority, such as a local TLS proxy.
    System,
}

impl TrustRoots {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match lookup(TLS_ROOTS_VAR).as_deref().map(str::trim) {
            None | Some("amazon") => Ok(Self::Amazon),
            Some("system") => Ok(Self::System),
            Some(other) => Err(ConfigError::Invalid {
                name: TLS_ROOTS_VAR,
                reason: format!("{other:?} is neither \"amazon\" nor \"system\""),
            }),
        }
    }
}

impl EdgeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let keys_table = non_empty(KEYS_TABLE_VAR).ok_or(ConfigError::Missing(KEYS_TABLE_VAR))?;
        let pepper = match (
            non_empty(PEPPER_SECRET_VAR),
            non_empty(INSECURE_DEV_PEPPER_VAR),
        ) {
            (Some(secret_id), _) => PepperSource::SecretsManager { secret_id },
            (None, Some(flag)) if flag == "1" || flag == "true" => {
                // Lambda sets this for every function: the public dev pepper never runs there.
                if non_empty("AWS_LAMBDA_FUNCTION_NAME").is_some() {
                    return Err(ConfigError::Invalid {
                        name: INSECURE_DEV_PEPPER_VAR,
                        reason: "the insecure dev pepper is refused inside AWS Lambda; set \
                                 TRCKER_PEPPER_SECRET_ID"
                            .into(),
                    });
                }
                PepperSource::InsecureDev
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: INSECURE_DEV_PEPPER_VAR,
                    reason: "set it to 1 (local runs only) or unset it".into(),
                });
            }
            (None, None) => return Err(ConfigError::Missing(PEPPER_SECRET_VAR)),
        };
        let defaults = KeySettings::default();
        let cache_ttl_ms = parse_in_range(
            &non_empty,
            CACHE_TTL_VAR,
            defaults.cache_ttl_ms,
            0..=MAX_CACHE_TTL_MS,
        )?;
        let cache_capacity = parse_in_range(
            &non_empty,
            CACHE_CAPACITY_VAR,
            defaults.cache_capacity as i64,
            0..=1_000_000,
        )? as usize;
        let last_used_interval_ms = parse_in_range(
            &non_empty,
            LAST_USED_INTERVAL_VAR,
            defaults.last_used_interval_ms,
            1_000..=86_400_000,
        )?;
        let store_timeout_ms = store_timeout_from_lookup(&non_empty)?;
        let tls_roots = TrustRoots::from_lookup(&non_empty)?;
        Ok(Self {
            keys_table,
            pepper,
            key_settings: KeySettings {
                cache_ttl_ms,
                cache_capacity,
                last_used_interval_ms,
            },
            store_timeout_ms,
            tls_roots,
        })
    }
}

/// The default of [`STORE_TIMEOUT_VAR`]: the SDK operation timeout of every store call.
pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 2_000;

/// [`STORE_TIMEOUT_VAR`] alone (100-25,000 ms, default [`DEFAULT_STORE_TIMEOUT_MS`]), for the
/// local gateway, which has no keys table variable to require.
pub fn store_timeout_ms_from_env() -> Result<u64, ConfigError> {
    store_timeout_from_lookup(&|name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    })
}

/// [`TLS_ROOTS_VAR`] alone, for the local gateway.
pub fn tls_roots_from_env() -> Result<TrustRoots, ConfigError> {
    TrustRoots::from_lookup(&|name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    })
}

fn store_timeout_from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    let default = DEFAULT_STORE_TIMEOUT_MS as i64;
    Ok(parse_in_range(lookup, STORE_TIMEOUT_VAR, default, 100..=25_000)? as u64)
}

fn parse_in_range(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let Some(raw) = lookup(name) else {
        return Ok(default);
    };
    let value: i64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        reason: format!("{raw:?} is not an integer"),
    })?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("{value} is outside {}..={}", range.start(), range.end()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EdgeConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_required_vars_are_set() {
        let parsed = config(&[
            (KEYS_TABLE_VAR, "trcker-keys"),
            (
                PEPPER_SECRET_VAR,
                "arn:aws:secretsmanager:eu-west-1:1:secret:pepper",
            ),
        ])
        .unwrap();
        assert_eq!(parsed.key_settings, KeySettings::default());
        assert_eq!(parsed.store_timeout_ms, 2_000);
        assert_eq!(parsed.tls_roots, TrustRoots::Amazon);
        assert!(matches!(parsed.pepper, PepperSource::SecretsManager { .. }));
    }

    #[test]
    fn trust_roots_are_amazon_or_system() {
        let base = [(KEYS_TABLE_VAR, "t"), (INSECURE_DEV_PEPPER_VAR, "1")];
        for (value, expected) in [
            ("amazon", TrustRoots::Amazon),
            ("system", TrustRoots::System),
            (" system ", TrustRoots::System),
        ] {
            let parsed = config(&[base[0], base[1], (TLS_ROOTS_VAR, value)]).unwrap();
            assert_eq!(parsed.tls_roots, expected, "{value:?}");
        }
        for bad in ["native", "Amazon", "none"] {
            let error = config(&[base[0], base[1], (TLS_ROOTS_VAR, bad)]).unwrap_err();
            assert!(error.to_string().contains(TLS_ROOTS_VAR), "{error}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(config(&[]), Err(ConfigError::Missing(KEYS_TABLE_VAR)));
        assert_eq!(
            config(&[(KEYS_TABLE_VAR, "t")]),
            Err(ConfigError::Missing(PEPPER_SECRET_VAR))
        );
        let invalid = config(&[
            (KEYS_TABLE_VAR, "t"),
            (INSECURE_DEV_PEPPER_VAR, "1"),
            (CACHE_TTL_VAR, "soon"),
        ])
        .unwrap_err();
        assert!(invalid.to_string().contains(CACHE_TTL_VAR));
        let too_long = config(&[
            (KEYS_TABLE_VAR, "t"),
            (INSECURE_DEV_PEPPER_VAR, "1"),
            (CACHE_TTL_VAR, "3600000"),
        ])
        .unwrap_err();
        assert!(too_long.to_string().contains("outside"));
    }

    #[test]
    fn dev_pepper_needs_an_explicit_flag() {
        let parsed = config(&[(KEYS_TABLE_VAR, "t"), (INSECURE_DEV_PEPPER_VAR, "1")]).unwrap();
        assert_eq!(parsed.pepper, PepperSource::InsecureDev);
        assert!(config(&[(KEYS_TABLE_VAR, "t"), (INSECURE_DEV_PEPPER_VAR, "yes")]).is_err());
        let in_lambda = config(&[
            (KEYS_TABLE_VAR, "t"),
            (INSECURE_DEV_PEPPER_VAR, "1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "keys"),
        ])
        .unwrap_err();
        assert!(in_lambda.to_string().contains(INSECURE_DEV_PEPPER_VAR));
    }
}
