//! Configuration of the MCP function: which `Host` names it answers to. Read once at start; errors
//! name the variable.

use trcker_shared::config::ConfigError;

pub const ALLOWED_HOSTS_VAR: &str = "TRCKER_MCP_ALLOWED_HOSTS";

/// Every variable this module reads, for the infrastructure contract test.
pub const ALL_VARS: [&str; 1] = [ALLOWED_HOSTS_VAR];

/// Loopback names: the default, which suits `trcker-local` and nothing else.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    /// `Host` values (`name` or `name:port`) the server accepts; any other is refused with 403
    /// (DNS-rebinding protection). Behind API Gateway this must name the API's domain(s).
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: LOOPBACK_HOSTS.iter().map(|&host| host.to_owned()).collect(),
        }
    }
}

impl McpConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `TRCKER_MCP_ALLOWED_HOSTS`: a comma-separated list of host names (optionally with a port);
    /// unset or empty means loopback only.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let Some(raw) = lookup(ALLOWED_HOSTS_VAR).filter(|raw| !raw.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let mut allowed_hosts = Vec::new();
        for host in raw
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
        {
            let well_formed = host.len() <= 253
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                });
            if !well_formed {
                return Err(ConfigError::Invalid {
                    name: ALLOWED_HOSTS_VAR,
                    reason: format!(
                        "{host:?} is not a host name like abc123.execute-api.eu-west-1.amazonaws.com \
                         (no scheme, no path, no wildcard)"
                    ),
                });
            }
            allowed_hosts.push(host.to_ascii_lowercase());
        }
        if allowed_hosts.is_empty() {
            // rmcp treats an empty list as "any host": never let a typo turn the check off.
            return Err(ConfigError::Invalid {
                name: ALLOWED_HOSTS_VAR,
                reason: "names no host".into(),
            });
        }
        Ok(Self { allowed_hosts })
    }

    /// For the Lambda function: the variable is required, since behind API Gateway the loopback
    /// default would refuse every request with 403.
    pub fn required_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if lookup(ALLOWED_HOSTS_VAR).is_none_or(|raw| raw.trim().is_empty()) {
            return Err(ConfigError::Missing(ALLOWED_HOSTS_VAR));
        }
        Self::from_lookup(lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Option<&str>) -> Result<McpConfig, ConfigError> {
        McpConfig::from_lookup(|name| {
            assert_eq!(name, ALLOWED_HOSTS_VAR);
            value.map(str::to_owned)
        })
    }

    #[test]
    fn allowed_hosts() {
        assert_eq!(parse(None).unwrap(), McpConfig::default());
        assert_eq!(parse(Some("  ")).unwrap(), McpConfig::default());
        assert_eq!(
            parse(Some(
                "API.example.com, abc.execute-api.eu-west-1.amazonaws.com,localhost:3000"
            ))
            .unwrap()
            .allowed_hosts,
            vec![
                "api.example.com",
                "abc.execute-api.eu-west-1.amazonaws.com",
                "localhost:3000"
            ]
        );
        for bad in [
            "https://api.example.com",
            "api.example.com/mcp",
            "*",
            "a b",
            ",",
            " , ",
        ] {
            assert!(parse(Some(bad)).is_err(), "{bad}");
        }
        let required =
            |value: Option<&str>| McpConfig::required_from_lookup(|_| value.map(str::to_owned));
        assert!(required(None).is_err());
        assert!(required(Some(" ")).is_err());
        assert_eq!(
            required(Some("api.example.com")).unwrap().allowed_hosts,
            ["api.example.com"]
        );
    }
}
