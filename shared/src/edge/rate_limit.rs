//! Fixed-window rate budgets on DynamoDB atomic counters, so each budget is shared by every
//! container: a key's, a capture source's, and a revoked key's attempts. If a counter itself
//! fails, the request goes through (fail open) and the failure is logged: the limiter must never
//! be the outage.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::brand_data::CounterStore;
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::keys::Principal;

const WINDOW_MS: i64 = 60_000;

/// Where a request stands against its key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests counted in this window, this one included.
    pub count: u64,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets (at least 1).
    pub reset_seconds: u64,
    /// Unix seconds at which the window resets.
    pub reset_at: i64,
    /// Unix milliseconds at which the counted window started.
    pub window_start: UnixMillis,
}

impl RateDecision {
    /// `RateLimit-*` (IETF draft) and `X-RateLimit-*` (common practice) headers.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        // Names as constants: parsing a header name from a string on every response showed up
        // in the profile.
        const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
        const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        let limit = HeaderValue::from(self.limit);
        let remaining = HeaderValue::from(self.remaining);
        headers.insert(LIMIT, limit.clone());
        headers.insert(REMAINING, remaining.clone());
        headers.insert(RESET, HeaderValue::from(self.reset_seconds));
        headers.insert(X_LIMIT, limit);
        headers.insert(X_REMAINING, remaining);
        headers.insert(X_RESET, HeaderValue::from(self.reset_at));
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    store: Arc<dyn CounterStore>,
    /// Counter name prefix: separate budgets (API+MCP vs capture) use separate names.
    budget: &'static str,
    limit_per_minute: u32,
}

/// The counter and its limit for one budget of one brand: a key's, a source's, or a revoked
/// key's attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget<'a> {
    pub brand_id: &'a BrandId,
    pub counter: String,
    pub limit_per_minute: u32,
}

impl RateLimiter {
    pub fn new(store: Arc<dyn CounterStore>, budget: &'static str, limit_per_minute: u32) -> Self {
        Self {
            store,
            budget,
            limit_per_minute,
        }
    }

    /// The key's own budget on this limiter's surface.
    pub fn key_budget<'a>(&self, principal: &'a Principal) -> Budget<'a> {
        Budget {
            brand_id: &principal.brand_id,
            counter: format!("{}#{}", self.budget, principal.key_id),
            limit_per_minute: self.limit_per_minute,
        }
    }

    /// The budget of one source of traffic (see [`source_of`]) on this limiter's surface.
    pub fn source_budget<'a>(
        &self,
        brand_id: &'a BrandId,
        client_ip: &str,
        limit_per_minute: u32,
    ) -> Budget<'a> {
        Budget {
            brand_id,
            counter: format!("{}#source#{}", self.budget, source_of(client_ip)),
            limit_per_minute,
        }
    }

    /// The budget of a revoked key's attempts that are recorded one by one.
    pub fn revoked_budget<'a>(
        &self,
        principal: &'a Principal,
        limit_per_minute: u32,
    ) -> Budget<'a> {
        Budget {
            brand_id: &principal.brand_id,
            counter: format!("revoked#{}", principal.key_id),
            limit_per_minute,
        }
    }

    /// Counts one request against `budget` in the current window. `None` if the counter could
    /// not be reached: limits fail open, the limiter must never be the outage.
    pub async fn count(&self, budget: &Budget<'_>, now: UnixMillis) -> Option<RateDecision> {
        let window_start = window_start(now);
        let window_end = window_start + WINDOW_MS;
        match self
            .store
            .increment_counter(
                budget.brand_id,
                &budget.counter,
                window_start,
                1,
                counter_expiry(window_start),
            )
            .await
        {
            Ok(count) => {
                let count = u64::try_from(count).unwrap_or(0);
                let limit = u64::from(budget.limit_per_minute);
                let reset_ms = u64::try_from(window_end - now).unwrap_or(0);
                Some(RateDecision {
                    allowed: count <= limit,
                    count,
                    limit: budget.limit_per_minute,
                    remaining: u32::try_from(limit.saturating_sub(count)).unwrap_or(0),
                    reset_seconds: reset_ms.div_ceil(1000).max(1),
                    reset_at: window_end / 1000,
                    window_start,
                })
            }
            Err(error) => {
                tracing::warn!(
                    brand_id = %budget.brand_id,
                    counter = %budget.counter,
                    error = %error,
                    "rate limiter unavailable; failing open"
                );
                None
            }
        }
    }

    /// Hands back the unit a request took from `budget` in the window `decision` counted it in,
    /// when another budget refused the request after all.
    pub async fn refund(&self, budget: &Budget<'_>, decision: &RateDecision) {
        if let Err(error) = self
            .store
            .increment_counter(
                budget.brand_id,
                &budget.counter,
                decision.window_start,
                -1,
                counter_expiry(decision.window_start),
            )
            .await
        {
            tracing::warn!(
                brand_id = %budget.brand_id,
                counter = %budget.counter,
                error = %error,
                "rate budget not refunded; the key keeps one request fewer this minute"
            );
        }
    }
}

fn window_start(now: UnixMillis) -> UnixMillis {
    now - now.rem_euclid(WINDOW_MS)
}

/// A minute after its window ends, a counter is no longer read.
fn counter_expiry(window_start: UnixMillis) -> i64 {
    (window_start + WINDOW_MS) / 1000 + 60
}

/// What one source of capture traffic is counted as: its IPv4 address, or its IPv6 /64 (one
/// subscriber's usual allocation, so a visitor cannot step around the budget within it).
pub fn source_of(client_ip: &str) -> String {
    match client_ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(address)) if address.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(address) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        Ok(std::net::IpAddr::V6(address)) => address
            .to_ipv4_mapped()
            .map_or_else(|| address.to_string(), |v4| v4.to_string()),
        Ok(std::net::IpAddr::V4(address)) => address.to_string(),
        Err(_) => client_ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_addresses_and_ipv6_prefixes() {
        assert_eq!(source_of("203.0.113.7"), "203.0.113.7");
        assert_eq!(source_of("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(source_of("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
        assert_ne!(source_of("2001:db8:1:3::1"), source_of("2001:db8:1:2::1"));
        assert_eq!(source_of("::ffff:198.51.100.4"), "198.51.100.4");
        assert_eq!(source_of("unknown"), "unknown");
    }
}
