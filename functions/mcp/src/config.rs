//! Configuration of the MCP function: which `Host` names it answers to besides the one API Gateway
//! vouches for (`lib.rs`, "The `Host` check"). Read once at start; errors name the variable.

use trcker_shared::config::ConfigError;

pub const ALLOWED_HOSTS_VAR: &str = "TRCKER_MCP_ALLOWED_HOSTS";

/// Every variable this module reads, for the infrastructure contract test.
pub const ALL_VARS: [&str; 1] = [ALLOWED_HOSTS_VAR];

/// Loopback names: the default, which suits `trcker-local` and nothing else.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    /// `Host` values (`name` or `name:port`) the server accepts on top of the domain name in API
    /// Gateway's request context (`requestContext.domainName`), which is accepted whatever this
    /// says; any other is refused with 403 (DNS-rebinding protection). Empty means that domain
    /// name alone: unlike rmcp's own list, an empty list never lets every host through.
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

    /// For the Lambda function: unset or blank is no extra host, not loopback. Behind API Gateway
    /// the host a request arrived on is in its request context, which the `Host` check accepts
    /// without configuration (so one deploy serves MCP: the stack's execute-api host cannot be
    /// named in its own template); nothing reaches a Lambda function as `localhost`. The variable
    /// then only adds names, such as a proxy's in front of the API.
    pub fn lambda_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if lookup(ALLOWED_HOSTS_VAR).is_none_or(|raw| raw.trim().is_empty()) {
            return Ok(Self {
                allowed_hosts: Vec::new(),
            });
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
        // In Lambda, unset is no extra host (API Gateway's domain name alone), never loopback;
        // a value is read and checked as above.
        let lambda =
            |value: Option<&str>| McpConfig::lambda_from_lookup(|_| value.map(str::to_owned));
        assert_eq!(lambda(None).unwrap().allowed_hosts, Vec::<String>::new());
        assert_eq!(
            lambda(Some(" ")).unwrap().allowed_hosts,
            Vec::<String>::new()
        );
        assert_eq!(
            lambda(Some("api.example.com")).unwrap().allowed_hosts,
            ["api.example.com"]
        );
        assert!(lambda(Some("https://api.example.com")).is_err());
        assert!(lambda(Some(",")).is_err());
    }
}
