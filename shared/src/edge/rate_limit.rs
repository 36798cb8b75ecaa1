//! Per-key fixed-window rate limiting on a DynamoDB atomic counter, so the budget is shared by
//! every container. If the counter itself fails, the request goes through (fail open) and the
//! failure is logged: the limiter must never be the outage.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::brand_data::BrandDataStore;
use crate::clock::UnixMillis;
use crate::keys::Principal;

const WINDOW_MS: i64 = 60_000;

/// Where a request stands against its key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets (at least 1).
    pub reset_seconds: u64,
    /// Unix seconds at which the window resets.
    pub reset_at: i64,
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
    store: Arc<dyn BrandDataStore>,
    /// Counter name prefix: separate budgets (API+MCP vs capture) use separate names.
    budget: &'static str,
    limit_per_minute: u32,
}

impl RateLimiter {
    pub fn new(
        store: Arc<dyn BrandDataStore>,
        budget: &'static str,
        limit_per_minute: u32,
    ) -> Self {
        Self {
            store,
            budget,
            limit_per_minute,
        }
    }

    /// Counts this request. `None` if the counter could not be reached (the caller lets the
    /// request through).
    pub async fn check(&self, principal: &Principal, now: UnixMillis) -> Option<RateDecision> {
        let window_start = now - now.rem_euclid(WINDOW_MS);
        let window_end = window_start + WINDOW_MS;
        let expires_at = window_end / 1000 + 60;
        let name = format!("{}#{}", self.budget, principal.key_id);
        match self
            .store
            .increment_counter(&principal.brand_id, &name, window_start, expires_at)
            .await
        {
            Ok(count) => {
                let limit = u64::from(self.limit_per_minute);
                let reset_ms = u64::try_from(window_end - now).unwrap_or(0);
                Some(RateDecision {
                    allowed: count <= limit,
                    limit: self.limit_per_minute,
                    remaining: u32::try_from(limit.saturating_sub(count)).unwrap_or(0),
                    reset_seconds: reset_ms.div_ceil(1000).max(1),
                    reset_at: window_end / 1000,
                })
            }
            Err(error) => {
                tracing::warn!(
                    brand_id = %principal.brand_id,
                    key_id = %principal.key_id,
                    error = %error,
                    "rate limiter unavailable; failing open"
                );
                None
            }
        }
    }
}
