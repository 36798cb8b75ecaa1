//! Configuration of the capture function: its per-key and per-source rate budgets, CORS origins,
//! and the trusted proxy hops in front of it. Read once at start; errors name the variable. (The
//! fraud thresholds are the stream function's: `trcker_shared::program::scoring`.)

use trcker_shared::config::ConfigError;
use trcker_shared::edge::rate_limit::LeaseSettings;

pub const RATE_LIMIT_VAR: &str = "TRCKER_CAPTURE_RATE_LIMIT_PER_MINUTE";
pub const ALLOWED_ORIGINS_VAR: &str = "TRCKER_CAPTURE_ALLOWED_ORIGINS";
pub const TRUSTED_PROXY_HOPS_VAR: &str = "TRCKER_TRUSTED_PROXY_HOPS";
pub const SOURCE_RATE_LIMIT_VAR: &str = "TRCKER_CAPTURE_SOURCE_RATE_LIMIT_PER_MINUTE";

/// Every variable this module reads, for the infrastructure contract test.
pub const ALL_VARS: [&str; 4] = [
    RATE_LIMIT_VAR,
    SOURCE_RATE_LIMIT_VAR,
    ALLOWED_ORIGINS_VAR,
    TRUSTED_PROXY_HOPS_VAR,
];

/// Which browser origins may call capture directly (CORS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// No cross-origin calls: the recommended set-up posts same-origin through the brand's CDN.
    #[default]
    None,
    /// Any origin (`*`), echoed back.
    Any,
    List(Vec<String>),
}

impl AllowedOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::None => false,
            Self::Any => true,
            Self::List(origins) => origins.iter().any(|allowed| allowed == origin),
        }
    }

    /// `*`, or a comma-separated list of `scheme://host[:port]` origins.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let well_formed = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin.split_once("://").is_some_and(|(_, host)| {
                    !host.is_empty() && !host.contains(['/', '?', '#', ' '])
                });
            if !well_formed {
                return Err(format!(
                    "{origin:?} is not an origin like https://shop.example (no path, no trailing /)"
                ));
            }
            origins.push(origin.to_owned());
        }
        Ok(Self::List(origins))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Captures per key per minute, a budget apart from the API's.
    pub rate_limit_per_minute: u32,
    /// How containers lease that budget: shards of the shared counter and units per lease.
    pub key_budget_leases: LeaseSettings,
    /// Captures per client address (IPv6: per /64) per minute, counted first: one visitor over
    /// it is refused without spending the key's budget, so it cannot switch capture off for the
    /// brand's other visitors. It holds only where the CDN is the only way in and the trusted hops
    /// match it (otherwise a caller picks its own address).
    pub source_rate_limit_per_minute: u32,
    pub allowed_origins: AllowedOrigins,
    /// Proxies in front of API Gateway that append to `X-Forwarded-For` (a CDN is one). Zero
    /// trusts nothing but the connection's own source address.
    pub trusted_proxy_hops: u8,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 6_000,
            key_budget_leases: LeaseSettings::default(),
            // Generous: carrier-grade NAT puts many visitors behind one address.
            source_rate_limit_per_minute: 120,
            allowed_origins: AllowedOrigins::None,
            trusted_proxy_hops: 0,
        }
    }
}

impl CaptureConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let number = |name: &'static str, default: u32, min: u32, max: u32| {
            trcker_shared::config::bounded_u32(&lookup, name, default, min, max)
        };
        let allowed_origins = match lookup(ALLOWED_ORIGINS_VAR) {
            None => AllowedOrigins::None,
            Some(raw) => AllowedOrigins::parse(&raw).map_err(|reason| ConfigError::Invalid {
                name: ALLOWED_ORIGINS_VAR,
                reason,
            })?,
        };
        Ok(Self {
            rate_limit_per_minute: number(
                RATE_LIMIT_VAR,
                defaults.rate_limit_per_minute,
                1,
                1_000_000_000,
            )?,
            source_rate_limit_per_minute: number(
                SOURCE_RATE_LIMIT_VAR,
                defaults.source_rate_limit_per_minute,
                1,
                1_000_000_000,
            )?,
            // Not configurable: the lease and shard counts are capacity decisions made once
            // (docs/ARCHITECTURE.md, "Rate budgets in leases"), not per deployment.
            key_budget_leases: defaults.key_budget_leases,
            allowed_origins,
            trusted_proxy_hops: u8::try_from(number(TRUSTED_PROXY_HOPS_VAR, 0, 0, 5)?).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parsing_and_errors() {
        assert_eq!(
            CaptureConfig::from_lookup(|_| None).unwrap(),
            CaptureConfig::default()
        );
        let config = CaptureConfig::from_lookup(|name| match name {
            ALLOWED_ORIGINS_VAR => Some("https://shop.example, http://127.0.0.1:8080".into()),
            TRUSTED_PROXY_HOPS_VAR => Some("1".into()),
            _ => None,
        })
        .unwrap();
        assert!(config.allowed_origins.allows("https://shop.example"));
        assert!(config.allowed_origins.allows("http://127.0.0.1:8080"));
        assert!(!config.allowed_origins.allows("https://evil.example"));
        assert_eq!(config.trusted_proxy_hops, 1);
        assert!(
            AllowedOrigins::parse("*")
                .unwrap()
                .allows("https://any.example")
        );
        for bad in [
            "shop.example",
            "https://shop.example/",
            "https://shop.example/path",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
        let error =
            CaptureConfig::from_lookup(|name| (name == TRUSTED_PROXY_HOPS_VAR).then(|| "9".into()))
                .unwrap_err();
        assert!(error.to_string().contains(TRUSTED_PROXY_HOPS_VAR));
    }
}
