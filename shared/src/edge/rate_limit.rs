//! Fixed-window rate budgets: a key's and a revoked key's attempts on DynamoDB atomic counters,
//! shared by every container, and a capture source's counted in the container. Key budgets are
//! leased ([`LeaseSettings`]): a container takes units in batches from one of the budget's counter
//! shards and renews them beside a request, so most requests make no counter call at all and no
//! counter item is hot. If a counter itself fails, the request goes through (fail open) and the
//! failure is logged: the limiter must never be the outage.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::brand_data::CounterStore;
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::keys::Principal;
pub use crate::program::scoring::source_of;

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
        // Room for all six at once: growing the map one insert at a time showed up too.
        headers.reserve(6);
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
    /// Set when key budgets are taken in leases ([`LeaseSettings`]), not one count a request.
    leases: Option<Arc<Leases>>,
    /// Budgets counted in this container alone ([`Self::count_local`]).
    local: Arc<std::sync::Mutex<LocalWindows>>,
}

/// Most budgets one container counts locally in a window; past it, the window starts afresh for
/// every source (a flood of distinct addresses must not grow the map without bound).
const LOCAL_BUDGETS_CAP: usize = 100_000;

/// This container's counts of the current window.
#[derive(Debug, Default)]
struct LocalWindows {
    window_start: UnixMillis,
    counts: std::collections::HashMap<String, u64>,
}

/// How a key budget is leased: the window's budget is split evenly over `shards` counter items,
/// and a container takes `lease` units at a time from one of them, then admits that many
/// requests without a store call: one counter write per lease while the budget lasts. When the
/// shard drawn is spent, the next ones are asked in turn (sequential round trips, only as the
/// window's budget runs out, at most `shards` once per container and window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    pub shards: u32,
    pub lease: u32,
}

impl LeaseSettings {
    /// The public API's and MCP's key budget: one counter item (so one container's rate-limit
    /// headers count exactly) taken five units at a time, a fifth of a write per request.
    pub const API_KEY: Self = Self {
        shards: 1,
        lease: 5,
    };
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            shards: 16,
            lease: 10,
        }
    }
}

/// How close to a window's end a container takes its lease of the next window, beside a request's
/// own store calls, so the first request of a window finds its lease already held.
const NEXT_WINDOW_LOOKAHEAD_MS: i64 = 5_000;

/// A container's unspent leases, per key budget counter: the current window's, and the next
/// window's once it is taken ahead.
#[derive(Debug, Default)]
struct Leases {
    settings: Option<LeaseSettings>,
    held: std::sync::Mutex<std::collections::HashMap<String, Vec<Lease>>>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    window_start: UnixMillis,
    remaining: u32,
    /// The estimate of what the key has left in the window, for the rate-limit headers.
    shared_remaining: u32,
    /// Every shard was found spent: the window's budget is gone, refuse without asking again.
    exhausted: bool,
    /// Units this container has admitted in the window: a container that spent a whole lease
    /// is busy enough for its next window's lease to be taken ahead ([`Leases::due`]).
    taken: u32,
}

impl Leases {
    fn settings(&self) -> LeaseSettings {
        self.settings.unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<Lease>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the container's lease for `counter` in `window_start` says: a unit of it (`true`),
    /// a refusal because the window's budget is spent (`false`), or nothing (`None`: go and
    /// lease).
    fn take(&self, counter: &str, window_start: UnixMillis) -> Option<(bool, Lease)> {
        let mut held = self.lock();
        let lease = held
            .get_mut(counter)?
            .iter_mut()
            .find(|lease| lease.window_start == window_start)?;
        if lease.remaining > 0 {
            lease.remaining -= 1;
            lease.taken = lease.taken.saturating_add(1);
            return Some((true, *lease));
        }
        lease.exhausted.then_some((false, *lease))
    }

    /// The windows whose lease is worth taking now: the current one if its lease is spent (and
    /// the budget not), and the next one near the current one's end if none is held for it yet
    /// and this container admitted a whole lease's worth in this window (a container that serves
    /// a key now and then would only strand the units it leased ahead).
    fn due(&self, counter: &str, now: UnixMillis) -> Vec<UnixMillis> {
        let lease_size = self.settings().lease;
        let current = window_start(now);
        let next = current + WINDOW_MS;
        let held = self.lock();
        let leases = held.get(counter).map(Vec::as_slice).unwrap_or_default();
        let held_for = |window: UnixMillis| leases.iter().find(|l| l.window_start == window);
        let mut due = Vec::new();
        // No lease at all for the current window is the request path's business (it leases
        // inline); only a spent one is renewed ahead of need.
        if held_for(current).is_some_and(|lease| lease.remaining == 0 && !lease.exhausted) {
            due.push(current);
        }
        let busy = held_for(current).is_some_and(|lease| lease.taken >= lease_size);
        if busy && next - now <= NEXT_WINDOW_LOOKAHEAD_MS && held_for(next).is_none() {
            due.push(next);
        }
        due
    }

    /// Keeps a new lease. Requests of one container lease concurrently (a local gateway, or
    /// several requests finding the lease spent at once): units leased for the same window add
    /// up, so none is lost. Leases of windows before `current_window` are dropped.
    fn keep(&self, counter: &str, lease: Lease, current_window: UnixMillis) {
        let mut held = self.lock();
        // Leases of past windows are worth nothing: drop them as the map is written.
        held.retain(|_, leases| {
            leases.retain(|kept| kept.window_start >= current_window);
            !leases.is_empty()
        });
        if lease.window_start < current_window {
            return;
        }
        let leases = held.entry(counter.to_owned()).or_default();
        match leases
            .iter_mut()
            .find(|kept| kept.window_start == lease.window_start)
        {
            Some(kept) => {
                kept.remaining = kept.remaining.saturating_add(lease.remaining);
                kept.shared_remaining = kept.shared_remaining.min(lease.shared_remaining);
                kept.exhausted |= lease.exhausted;
                kept.taken = kept.taken.saturating_add(lease.taken);
            }
            None => leases.push(lease),
        }
    }
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
            leases: None,
            local: Arc::default(),
        }
    }

    /// The same limiter with its key budgets taken in leases ([`LeaseSettings`]).
    pub fn with_leases(mut self, settings: LeaseSettings) -> Self {
        let settings = LeaseSettings {
            shards: settings.shards.max(1),
            lease: settings.lease.max(1),
        };
        self.leases = Some(Arc::new(Leases {
            settings: Some(settings),
            held: std::sync::Mutex::default(),
        }));
        self
    }

    /// Counts one request against the key's budget: one counter write, or, for a leased budget,
    /// one unit of this container's lease (a counter write only when the lease is spent). `None`
    /// if the counter could not be reached (limits fail open).
    pub async fn count_key(&self, budget: &Budget<'_>, now: UnixMillis) -> Option<RateDecision> {
        match &self.leases {
            None => self.count(budget, now).await,
            Some(leases) => match self.count_key_locally(budget, now) {
                Some(decision) => Some(decision),
                None => self.lease_and_count(leases, budget, now).await,
            },
        }
    }

    /// The key's budget as this container's lease answers it, with no store call: `None` when
    /// the answer needs one (no lease held for the window, or an unleased budget).
    pub fn count_key_locally(&self, budget: &Budget<'_>, now: UnixMillis) -> Option<RateDecision> {
        let leases = self.leases.as_ref()?;
        let (allowed, lease) = leases.take(&budget.counter, window_start(now))?;
        Some(leased_decision(
            budget,
            allowed,
            lease.shared_remaining,
            lease.remaining,
            now,
        ))
    }

    /// Takes the leases [`Leases::due`] names (a spent lease's successor, the next window's
    /// near a window's end) without counting a request, so that requests to come find units
    /// held. Run beside a request's own store calls; nothing to wait for when none is due.
    pub async fn renew_leases(&self, budget: &Budget<'_>, now: UnixMillis) {
        let Some(leases) = &self.leases else {
            return;
        };
        let due = leases.due(&budget.counter, now);
        // Most requests have nothing due: nothing to join.
        if due.is_empty() {
            return;
        }
        let current = window_start(now);
        futures_util::future::join_all(
            due.into_iter()
                .map(|window| self.lease(leases, budget, window, current, false)),
        )
        .await;
    }

    /// A leased count that found no lease: one is drawn from the budget's shards (see
    /// [`Self::lease`]) and this request takes its first unit.
    async fn lease_and_count(
        &self,
        leases: &Leases,
        budget: &Budget<'_>,
        now: UnixMillis,
    ) -> Option<RateDecision> {
        let window_start = window_start(now);
        let lease = self
            .lease(leases, budget, window_start, window_start, true)
            .await?;
        // A lease this request spent at once (a small budget's share) is renewed before the
        // answer, so the next request finds a unit or a refusal, not another missing lease. The
        // next window's lease is left to a later request's renewal, beside its own calls.
        if lease.remaining == 0 && !lease.exhausted {
            self.lease(leases, budget, window_start, window_start, false)
                .await;
        }
        Some(leased_decision(
            budget,
            !lease.exhausted,
            lease.shared_remaining,
            lease.remaining,
            now,
        ))
    }

    /// Leases units of `window_start` from one of the budget's shards, each holding its part of
    /// the window's limit ([`shard_share`], the parts adding up to the limit exactly): the
    /// shard's counter goes up by the lease, and what fits under its part is granted (less the
    /// unit a request takes, when `take_one`) and kept. A spent shard sends the container on to
    /// the next; when every shard is spent, the container refuses the key for the rest of the
    /// window without asking again. Everything admitted was granted by a shard first, so the
    /// containers together never admit more than the limit, and what they leave unused is at
    /// most a lease each per window (`docs/ARCHITECTURE.md`, "Rate budgets in leases"). `None`
    /// if a counter could not be reached.
    async fn lease(
        &self,
        leases: &Leases,
        budget: &Budget<'_>,
        window_start: UnixMillis,
        current_window: UnixMillis,
        take_one: bool,
    ) -> Option<Lease> {
        let settings = leases.settings();
        let first = crate::token::random_u64().unwrap_or(0) % u64::from(settings.shards);
        let first = u32::try_from(first).unwrap_or(0);
        for probe in 0..settings.shards {
            let shard = (first + probe) % settings.shards;
            let share = u64::from(shard_share(budget.limit_per_minute, settings.shards, shard));
            if share == 0 {
                continue;
            }
            let wanted = u64::from(settings.lease).min(share);
            let counter = format!("{}#{shard:02}", budget.counter);
            let count = match self
                .store
                .increment_counter(
                    budget.brand_id,
                    &counter,
                    window_start,
                    i64::try_from(wanted).unwrap_or(1),
                    counter_expiry(window_start),
                )
                .await
            {
                Ok(count) => u64::try_from(count).unwrap_or(0),
                Err(error) => {
                    tracing::warn!(
                        brand_id = %budget.brand_id,
                        counter = %counter,
                        error = %error,
                        "rate limiter unavailable; failing open"
                    );
                    return None;
                }
            };
            let before = count.saturating_sub(wanted);
            let granted = share.saturating_sub(before).min(wanted);
            if granted == 0 {
                continue;
            }
            // The other shards are taken to be as far along as this one: the headers' estimate.
            let shard_left = share.saturating_sub(count);
            let shared_remaining =
                u32::try_from(shard_left * u64::from(settings.shards)).unwrap_or(u32::MAX);
            let granted = u32::try_from(granted).unwrap_or(1);
            let lease = Lease {
                window_start,
                remaining: granted - u32::from(take_one),
                shared_remaining,
                exhausted: false,
                taken: u32::from(take_one),
            };
            leases.keep(&budget.counter, lease, current_window);
            return Some(lease);
        }
        let spent = Lease {
            window_start,
            remaining: 0,
            shared_remaining: 0,
            exhausted: true,
            taken: 0,
        };
        leases.keep(&budget.counter, spent, current_window);
        Some(spent)
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

    /// Counts one request against `budget` in the current window in this container only: no
    /// store call, so a budget counted this way admits up to its limit from each container.
    pub fn count_local(&self, budget: &Budget<'_>, now: UnixMillis) -> RateDecision {
        let window_start = window_start(now);
        let count = {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if local.window_start != window_start || local.counts.len() >= LOCAL_BUDGETS_CAP {
                local.window_start = window_start;
                local.counts.clear();
            }
            // Per brand, as the shared counters are: a visitor of one brand spends nothing of
            // another's.
            let key = format!("{}#{}", budget.brand_id, budget.counter);
            let count = local.counts.entry(key).or_insert(0);
            *count += 1;
            *count
        };
        RateDecision::of_count(count, budget.limit_per_minute, now)
    }

    /// Counts one request against `budget` in the current window. `None` if the counter could
    /// not be reached: limits fail open, the limiter must never be the outage.
    pub async fn count(&self, budget: &Budget<'_>, now: UnixMillis) -> Option<RateDecision> {
        let window_start = window_start(now);
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
            Ok(count) => Some(RateDecision::of_count(
                u64::try_from(count).unwrap_or(0),
                budget.limit_per_minute,
                now,
            )),
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
}

/// The decision a lease gives: what the key has left is the shared estimate plus this
/// container's unspent units, and a refused request is one over the limit, as a plain counter
/// would count it.
fn leased_decision(
    budget: &Budget<'_>,
    allowed: bool,
    shared_remaining: u32,
    local: u32,
    now: UnixMillis,
) -> RateDecision {
    let remaining = shared_remaining
        .saturating_add(local)
        .min(budget.limit_per_minute);
    let count = u64::from(budget.limit_per_minute - remaining) + u64::from(!allowed);
    RateDecision::of_count(count, budget.limit_per_minute, now)
}

/// Shard `shard`'s part of a leased budget of `limit` over `shards` shards: the limit split as
/// evenly as whole units allow, the first `limit % shards` shards one unit more.
pub fn shard_share(limit: u32, shards: u32, shard: u32) -> u32 {
    limit / shards + u32::from(shard < limit % shards)
}

impl RateDecision {
    /// The decision for the `count`-th request of the window `now` falls in, against `limit`.
    fn of_count(count: u64, limit: u32, now: UnixMillis) -> Self {
        let window_start = window_start(now);
        let window_end = window_start + WINDOW_MS;
        let reset_ms = u64::try_from(window_end - now).unwrap_or(0);
        Self {
            allowed: count <= u64::from(limit),
            count,
            limit,
            remaining: u32::try_from(u64::from(limit).saturating_sub(count)).unwrap_or(0),
            reset_seconds: reset_ms.div_ceil(1000).max(1),
            reset_at: window_end / 1000,
            window_start,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brand_data::faulty::FaultyBrandData;
    use crate::brand_data::memory::MemoryBrandData;

    const NOW: UnixMillis = 1_795_000_000_000;

    fn principal() -> Principal {
        Principal {
            brand_id: BrandId::parse("acme").unwrap(),
            key_id: crate::ids::KeyId::parse("key_0123456789abcdef0123").unwrap(),
            fingerprint: crate::hashing::Fingerprint::from_stored("fp_0123456789ab").unwrap(),
        }
    }

    fn leased(store: Arc<FaultyBrandData<MemoryBrandData>>, limit: u32) -> RateLimiter {
        RateLimiter::new(store, "capture", limit).with_leases(LeaseSettings::default())
    }

    #[test]
    fn shard_shares_add_up_to_the_limit() {
        for limit in [0, 1, 15, 16, 17, 600, 6_000, 600_001] {
            let total: u32 = (0..16).map(|shard| shard_share(limit, 16, shard)).sum();
            assert_eq!(total, limit);
        }
    }

    #[tokio::test]
    async fn containers_sharing_a_leased_budget_never_admit_more_than_the_limit() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let containers: Vec<RateLimiter> = (0..4).map(|_| leased(store.clone(), 600)).collect();
        let principal = principal();
        let budget = containers[0].key_budget(&principal);
        let mut admitted = 0;
        for request in 0..2_000 {
            let container = &containers[request % containers.len()];
            let decision = container.count_key(&budget, NOW).await.unwrap();
            admitted += u32::from(decision.allowed);
        }
        let lease = LeaseSettings::default().lease;
        assert!(admitted <= 600, "{admitted} admitted");
        // What the containers may leave unused: one lease each at most.
        assert!(admitted >= 600 - 4 * lease, "{admitted} admitted");
        // Past the limit, each container asked every shard once, then refused on its own.
        store.take_calls();
        for container in &containers {
            assert!(!container.count_key(&budget, NOW).await.unwrap().allowed);
        }
        assert!(store.take_calls().is_empty());
        // The next window is a new budget.
        let next = containers[0]
            .count_key(&budget, NOW + WINDOW_MS)
            .await
            .unwrap();
        assert!(next.allowed);
    }

    #[tokio::test]
    async fn a_container_writes_the_shared_counter_once_per_lease() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let limiter = leased(store.clone(), 6_000);
        let principal = principal();
        let budget = limiter.key_budget(&principal);
        for _ in 0..100 {
            assert!(limiter.count_key(&budget, NOW).await.unwrap().allowed);
        }
        let calls = store.take_calls();
        assert_eq!(calls, vec!["increment_counter"; 10]);
    }

    #[tokio::test]
    async fn concurrent_leases_add_up_and_a_spent_budget_stays_spent() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let limiter = leased(store.clone(), 16 * 10);
        let principal = principal();
        let budget = limiter.key_budget(&principal);
        // Eight requests of one container find no lease at once: each leases, none is lost.
        let decisions =
            futures_util::future::join_all((0..8).map(|_| limiter.count_key(&budget, NOW))).await;
        assert!(decisions.iter().all(|d| d.is_some_and(|d| d.allowed)));
        store.take_calls();
        let mut admitted = 8;
        while limiter.count_key(&budget, NOW).await.unwrap().allowed {
            admitted += 1;
        }
        assert_eq!(admitted, 160, "every unit of every lease admitted once");
        // Spent: refused from here on, without another lease.
        let refused = limiter.count_key(&budget, NOW).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.count, 161);
        assert!(!limiter.count_key(&budget, NOW).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn a_spent_lease_is_renewed_ahead_so_no_request_waits_on_the_counter() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let limiter =
            RateLimiter::new(store.clone(), "rate", 100).with_leases(LeaseSettings::API_KEY);
        let principal = principal();
        let budget = limiter.key_budget(&principal);
        assert_eq!(limiter.count_key_locally(&budget, NOW), None);
        let mut remaining = vec![limiter.count_key(&budget, NOW).await.unwrap().remaining];
        assert_eq!(store.take_calls(), vec!["increment_counter"]);
        for _ in 0..14 {
            let decision = limiter.count_key_locally(&budget, NOW).unwrap();
            assert!(decision.allowed);
            remaining.push(decision.remaining);
            // Beside each request: a renewal only once the lease is spent.
            limiter.renew_leases(&budget, NOW).await;
        }
        // One container counts exactly, as one counter would: 99 down to 85.
        assert_eq!(remaining, (85..=99).rev().collect::<Vec<u32>>());
        assert_eq!(store.take_calls(), vec!["increment_counter"; 3]);
    }

    #[tokio::test]
    async fn the_next_windows_lease_is_taken_before_it_starts() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let limiter =
            RateLimiter::new(store.clone(), "rate", 100).with_leases(LeaseSettings::API_KEY);
        let principal = principal();
        let budget = limiter.key_budget(&principal);
        let window_end = window_start(NOW) + WINDOW_MS;
        let early = window_end - 10_000;
        assert!(limiter.count_key(&budget, early).await.is_some());
        // A container that has not admitted a whole lease this window takes none ahead.
        limiter.renew_leases(&budget, window_end - 4_000).await;
        assert_eq!(store.take_calls(), vec!["increment_counter"]);
        for _ in 0..4 {
            assert!(limiter.count_key_locally(&budget, early).unwrap().allowed);
        }
        // A busy one, within the lookahead: its spent lease renewed and the next window's taken,
        // once.
        limiter.renew_leases(&budget, window_end - 4_000).await;
        limiter.renew_leases(&budget, window_end - 3_000).await;
        assert_eq!(store.take_calls(), vec!["increment_counter"; 2]);
        assert!(
            limiter
                .count_key_locally(&budget, window_end - 2_000)
                .unwrap()
                .allowed
        );
        let first_of_next = limiter.count_key_locally(&budget, window_end).unwrap();
        assert!(first_of_next.allowed);
        assert_eq!(first_of_next.remaining, 99);
        assert!(store.take_calls().is_empty());
    }

    #[tokio::test]
    async fn a_renewal_that_finds_the_budget_spent_refuses_locally() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let limiter =
            RateLimiter::new(store.clone(), "rate", 5).with_leases(LeaseSettings::API_KEY);
        let principal = principal();
        let budget = limiter.key_budget(&principal);
        assert!(limiter.count_key(&budget, NOW).await.unwrap().allowed);
        for _ in 0..4 {
            assert!(limiter.count_key_locally(&budget, NOW).unwrap().allowed);
        }
        limiter.renew_leases(&budget, NOW).await;
        store.take_calls();
        let refused = limiter.count_key_locally(&budget, NOW).unwrap();
        assert!(!refused.allowed);
        assert_eq!((refused.count, refused.remaining), (6, 0));
        // Spent is spent: no renewal is due, and none is attempted.
        limiter.renew_leases(&budget, NOW).await;
        assert!(store.take_calls().is_empty());
    }

    #[tokio::test]
    async fn a_leased_budget_fails_open_when_its_counter_is_down() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        store.set_counters_down(true);
        let limiter = leased(store.clone(), 10);
        let principal = principal();
        assert_eq!(
            limiter
                .count_key(&limiter.key_budget(&principal), NOW)
                .await,
            None
        );
    }

    #[tokio::test]
    async fn a_local_count_makes_no_store_call_and_restarts_each_window() {
        let store = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
        let limiter = RateLimiter::new(store.clone(), "capture", 6_000);
        let brand = principal().brand_id;
        let budget = limiter.source_budget(&brand, "203.0.113.7", 3);
        let allowed: Vec<bool> = (0..5)
            .map(|_| limiter.count_local(&budget, NOW).allowed)
            .collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        // Another source has its own count, and so has the same source for another brand; the
        // next window starts afresh.
        let other = limiter.source_budget(&brand, "203.0.113.8", 3);
        assert!(limiter.count_local(&other, NOW).allowed);
        let other_brand = BrandId::parse("globex").unwrap();
        let elsewhere = limiter.source_budget(&other_brand, "203.0.113.7", 3);
        assert!(limiter.count_local(&elsewhere, NOW).allowed);
        assert!(limiter.count_local(&budget, NOW + WINDOW_MS).allowed);
        assert!(store.take_calls().is_empty());
    }

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
