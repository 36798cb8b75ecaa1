//! Capture at platform scale on the DynamoDB model (`trcker_shared::brand_data::model`), with the
//! table's stream derived the way Lambda's event source mapping derives it, all under tokio's
//! paused clock. One brand sends new clicks at a steady rate for a simulated span through the
//! capture router as the Lambda binary builds it; the memory store's change feed stands in for
//! the table's stream and is split into stream shards, each read by its own emulated poller that
//! calls `derive_batch` through the model (so derived writes cost units, face latency and can be
//! throttled). The run reports what came back (201s, 200s, anything else), whether every 201 is
//! readable, counted once and has its activity record after the stream is drained, the write
//! units per capture split into the request path and the derivation, the stream's lag from a
//! click's write to the end of the batch that derived it, the hottest partition of each kind, and
//! the cost per million captures. Repeatable up to the contention retries' jitter and the random
//! lease shard; nothing here waits on a wall clock.
//!
//! The stream consumer, as the template configures the mapping (`infra/template.yaml`,
//! `StreamEventSourceMapping`: `BatchSize: 1000`, `MaximumBatchingWindowInSeconds: 1`,
//! `ParallelizationFactor: 1`, `ReportBatchItemFailures`, `MaximumRetryAttempts: 10`) and as
//! Lambda documents its pollers (each shard polled about 4 times a second):
//!
//! - the stream has [`stream_shards`] shards (or `--shards N`); an event goes to shard
//!   `hash(event.partition) % S`, so every change of one partition key reaches one shard, in order;
//! - a dispatcher moves the memory feed's pending changes into the shard queues every
//!   [`DISPATCH_EVERY`] and acknowledges them (the derivation's own writes, rescorings and
//!   signals, come back into the feed as further events, as on DynamoDB);
//! - one poller per shard looks every [`POLL_EVERY`], each starting at its own phase within one
//!   batching window ([`poller_phase`]; `--aligned-pollers`: all in phase, so that every shard's
//!   batch comes at once);
//!   once it has seen records it waits until [`BATCH_SIZE`] are there or [`BATCHING_WINDOW`] has
//!   passed, then derives one batch at a time; on `Err(BatchFailure)` the events before
//!   `first_failed_sequence` are checkpointed and the rest stays at the head of the shard's queue
//!   for the next attempt (after one poll interval); after [`MAX_RETRY_ATTEMPTS`] retries the
//!   batch's rest would go to the failure queue: it is dropped and counted as given up.
//!
//! `cargo bench -p trcker-local --bench capture_on_model -- [--rates 100,1000,10000]
//! [--seconds 60] [--shards N] [--aligned-pollers] [--no-large-clicks] [--out FILE]`
//! (`scripts/bench-capture-model` runs it and keeps the table). The runs are each rate with short
//! landing URLs, then the lowest rate with 1,500-byte landing URLs (the click item over 2 KB),
//! unless `--no-large-clicks`. Under `cargo test --all-targets` it makes a two-second smoke run at
//! 100/s (both kinds of click) and asserts that nothing was lost or counted twice, that every
//! capture has one activity record, that a new capture's own write is 2 units per KB of click
//! item started, that the lag's p99 is within 5 s and that the critical path stays within 1.2
//! store latencies.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tokio::time::Instant;
use tower::ServiceExt;
use trcker_capture::CAPTURE_PATH;
use trcker_capture::config::CaptureConfig;
use trcker_shared::brand_data::changes::{Change, ChangeEvent};
use trcker_shared::brand_data::clicks::click_shard;
use trcker_shared::brand_data::layout;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::model::{DynamoModel, ModelReport, ModelSettings, OperationCost};
use trcker_shared::brand_data::rollups::{CLICKS, RollupDimension, utc_day};
use trcker_shared::brand_data::{
    ActivityFilter, ActivityStore, BrandDataStore, ClickStore, RollupStore, Surface,
};
use trcker_shared::clock::{Clock, TokioClock};
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::program::derived::derive_batch;
use trcker_shared::program::scoring::Thresholds;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::create_capture_references;

/// 2026-11-28T02:00:00Z: far enough from midnight that a minute's run stays within one UTC day.
const START_MS: i64 = 1_795_831_200_000;

/// Lambda polls each shard of a DynamoDB stream about 4 times a second.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// The template's `MaximumBatchingWindowInSeconds` and `BatchSize`.
const BATCHING_WINDOW: Duration = Duration::from_secs(1);
const BATCH_SIZE: usize = 1_000;
/// The template's `MaximumRetryAttempts`.
const MAX_RETRY_ATTEMPTS: u32 = 10;
/// How often the in-process feed is split into the shards: the stream's own propagation delay,
/// which the model does not have.
const DISPATCH_EVERY: Duration = Duration::from_millis(10);

/// Prices (us-east-1, list): DynamoDB on-demand per million write and read request units, API
/// Gateway HTTP API per million requests, Lambda per million requests and per GB-second (arm64).
const USD_PER_MILLION_WRU: f64 = 0.625;
const USD_PER_MILLION_RRU: f64 = 0.125;
const USD_PER_MILLION_HTTP_API: f64 = 1.00;
const USD_PER_MILLION_LAMBDA_REQUESTS: f64 = 0.20;
const USD_PER_LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// Capture's and the stream function's memory (`MemorySize: 256` in the template).
const LAMBDA_GB: f64 = 0.25;

/// The operations a capture makes itself: the click's conditional put and the lease of its key's
/// budget (and `append_activity` for a duplicate, which the run never sends).
const REQUEST_PATH: [&str; 2] = ["insert_click", "increment_counter"];

/// Stream shards for a rate: one per 625 captures/s, rounded up to a power of two (1 at 100/s,
/// 2 at 1,000/s, 16 at 10,000/s). A table pre-warmed for 10,000 captures/s has at least 10
/// partitions, and DynamoDB Streams has a shard per partition; 16 is a fair stand-in there. More
/// shards mean smaller batches (more rollup writes and invocations, less lag).
fn stream_shards(rate: u64) -> usize {
    usize::try_from(rate.div_ceil(625).max(1).next_power_of_two()).unwrap_or(16)
}

/// When a shard's poller starts: the pollers of a mapping's shards are not synchronised, and under
/// steady traffic each shard invokes once per batching window (and batch), at its own phase. A
/// phase drawn uniformly over one batching window, repeatably (a hash of the shard).
fn poller_phase(shard: usize) -> Duration {
    let mut hasher = std::hash::DefaultHasher::new();
    ("poller phase", shard).hash(&mut hasher);
    let window = u64::try_from(BATCHING_WINDOW.as_micros()).unwrap_or(1_000_000);
    Duration::from_micros(hasher.finish() % window)
}

/// The shard of a change: every change of one partition key reaches one shard.
fn shard_of(partition: &str, shards: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    partition.hash(&mut hasher);
    usize::try_from(hasher.finish() % shards as u64).unwrap_or(0)
}

/// What the traffic looks like.
#[derive(Debug, Clone, Copy)]
struct Traffic {
    rate: u64,
    seconds: u64,
    /// Bytes of padding in the landing URL (0: a short URL, a click item well under 1 KB).
    landing_padding: usize,
    shards: usize,
    /// Every shard's poller in the same phase (they all start at once, so their batches come
    /// together), instead of spread over the poll interval.
    aligned_pollers: bool,
}

#[derive(Debug, Default)]
struct Shard {
    queue: VecDeque<ChangeEvent>,
    /// A batch of this shard is being derived.
    busy: bool,
}

/// What the stream pollers saw and did.
#[derive(Debug, Default)]
struct StreamStats {
    /// Invocations of the stream function (one per batch, retries included).
    invocations: u64,
    /// Invocations answered with a batch item failure (redelivered from there).
    failed_invocations: u64,
    /// Events checkpointed, and events given up after the retries (the failure queue's).
    derived_events: u64,
    given_up_events: u64,
    /// Billed milliseconds of the stream function (each invocation rounded up to 1 ms).
    billed_ms: u64,
    longest_batch_ms: u64,
    largest_batch: usize,
    /// The most events one shard's queue held.
    largest_backlog: usize,
    /// Per new click: milliseconds from its write to the end of the batch that derived it.
    lags_ms: Vec<i64>,
}

#[derive(Debug, Default)]
struct Stream {
    shards: Vec<Shard>,
    stats: StreamStats,
}

type Model = DynamoModel<MemoryBrandData>;

fn locked(stream: &Mutex<Stream>) -> MutexGuard<'_, Stream> {
    stream.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves the feed's pending changes into the shard queues and acknowledges them, for ever.
async fn dispatch(stream: Arc<Mutex<Stream>>, model: Arc<Model>) {
    loop {
        {
            let mut stream = locked(&stream);
            let feed = model.inner();
            let events = feed.pending_changes(usize::MAX);
            if let Some(last) = events.last() {
                feed.acknowledge_changes(&last.sequence);
            }
            let shards = stream.shards.len();
            for event in events {
                let shard = shard_of(&event.partition, shards);
                stream.shards[shard].queue.push_back(event);
            }
            let backlog = stream.shards.iter().map(|s| s.queue.len()).max();
            stream.stats.largest_backlog = stream.stats.largest_backlog.max(backlog.unwrap_or(0));
        }
        tokio::time::sleep(DISPATCH_EVERY).await;
    }
}

/// One shard's poller: batches as the event source mapping makes them, derived through the
/// model, a failed batch redelivered from its first failed record.
async fn poll_shard(
    shard: usize,
    stream: Arc<Mutex<Stream>>,
    model: Arc<Model>,
    clock: Arc<TokioClock>,
    phase: Duration,
) {
    // Lambda's pollers of different shards are not synchronised.
    tokio::time::sleep(phase).await;
    let thresholds = Thresholds::default();
    let mut window_opened: Option<Instant> = None;
    let mut retries = 0;
    loop {
        let batch: Option<Vec<ChangeEvent>> = {
            let mut stream = locked(&stream);
            let state = &mut stream.shards[shard];
            if state.queue.is_empty() {
                window_opened = None;
                None
            } else {
                let opened = *window_opened.get_or_insert_with(Instant::now);
                let due = retries > 0
                    || state.queue.len() >= BATCH_SIZE
                    || opened.elapsed() >= BATCHING_WINDOW;
                due.then(|| {
                    state.busy = true;
                    state.queue.iter().take(BATCH_SIZE).cloned().collect()
                })
            }
        };
        let Some(batch) = batch else {
            tokio::time::sleep(POLL_EVERY).await;
            continue;
        };
        let started = Instant::now();
        let result = derive_batch(model.as_ref(), &thresholds, &batch).await;
        let billed = u64::try_from(started.elapsed().as_micros().div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1);
        let finished_ms = clock.now_ms();
        let done = match &result {
            Ok(_) => batch.len(),
            Err(failure) => batch
                .iter()
                .position(|event| event.sequence == failure.first_failed_sequence)
                .unwrap_or(0),
        };
        {
            let mut stream = locked(&stream);
            let Stream { shards, stats } = &mut *stream;
            let state = &mut shards[shard];
            stats.invocations += 1;
            stats.billed_ms += billed;
            stats.longest_batch_ms = stats.longest_batch_ms.max(billed);
            stats.largest_batch = stats.largest_batch.max(batch.len());
            stats.derived_events += done as u64;
            for event in &batch[..done] {
                if let Change::NewClick(click) = &event.change {
                    stats.lags_ms.push(finished_ms - click.at);
                }
            }
            state.queue.drain(..done);
            if result.is_err() {
                stats.failed_invocations += 1;
                retries += 1;
                if retries > MAX_RETRY_ATTEMPTS {
                    // To the failure queue: the shard moves on.
                    let rest = batch.len() - done;
                    stats.given_up_events += rest as u64;
                    state.queue.drain(..rest);
                    retries = 0;
                }
            } else {
                retries = 0;
            }
            state.busy = false;
        }
        window_opened = None;
        if retries > 0 {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Whether every change has been derived: the feed, every queue and every poller idle.
fn drained(stream: &Mutex<Stream>, model: &Model) -> bool {
    let stream = locked(stream);
    model.inner().pending_change_count() == 0
        && stream
            .shards
            .iter()
            .all(|shard| shard.queue.is_empty() && !shard.busy)
}

struct Run {
    traffic: Traffic,
    statuses: BTreeMap<u16, u64>,
    created: u64,
    report: ModelReport,
    unreadable: u64,
    counted: i64,
    stored: u64,
    /// Capture activity records after the drain, and request ids found more than once.
    activity_records: u64,
    activity_repeated: u64,
    /// Simulated seconds from the last capture's answer to the drained stream.
    drain_seconds: f64,
    stream: StreamStats,
    /// Billed milliseconds of the capture function (each request rounded up to 1 ms).
    capture_billed_ms: u64,
    /// The stored size of a click item of the run.
    click_item_bytes: usize,
}

impl Run {
    fn sent(&self) -> u64 {
        self.traffic.rate * self.traffic.seconds
    }

    fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }

    fn other_statuses(&self) -> u64 {
        self.sent() - self.status(201) - self.status(200)
    }

    fn cost(&self, name: &str) -> OperationCost {
        self.report
            .operations
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn per_capture(&self, units: u64) -> f64 {
        units as f64 / self.created.max(1) as f64
    }

    fn request_path_units(&self) -> u64 {
        REQUEST_PATH
            .iter()
            .map(|name| self.cost(name).write_units)
            .sum()
    }

    fn derived_units(&self) -> u64 {
        self.report.total().write_units - self.request_path_units()
    }

    fn lag(&self, quantile: f64) -> f64 {
        let mut lags = self.stream.lags_ms.clone();
        lags.sort_unstable();
        if lags.is_empty() {
            return 0.0;
        }
        let rank = ((lags.len() as f64 * quantile).ceil() as usize).clamp(1, lags.len());
        lags[rank - 1] as f64 / 1000.0
    }

    /// USD per million new captures, by component.
    fn costs(&self) -> Vec<(&'static str, f64)> {
        let per_million = 1_000_000.0 / self.created.max(1) as f64;
        let total = self.report.total();
        let gb_seconds = |billed_ms: u64| billed_ms as f64 / 1000.0 * LAMBDA_GB * per_million;
        vec![
            ("API Gateway", USD_PER_MILLION_HTTP_API),
            ("capture Lambda, requests", USD_PER_MILLION_LAMBDA_REQUESTS),
            (
                "capture Lambda, duration",
                gb_seconds(self.capture_billed_ms) * USD_PER_LAMBDA_GB_SECOND,
            ),
            (
                "DynamoDB writes, request path",
                self.per_capture(self.request_path_units()) * USD_PER_MILLION_WRU,
            ),
            (
                "DynamoDB writes, derived",
                self.per_capture(self.derived_units()) * USD_PER_MILLION_WRU,
            ),
            (
                "DynamoDB reads",
                total.read_half_units as f64 / 2.0 / self.created.max(1) as f64
                    * USD_PER_MILLION_RRU,
            ),
            (
                "stream Lambda, requests",
                self.stream.invocations as f64 * per_million / 1_000_000.0
                    * USD_PER_MILLION_LAMBDA_REQUESTS,
            ),
            (
                "stream Lambda, duration",
                gb_seconds(self.stream.billed_ms) * USD_PER_LAMBDA_GB_SECOND,
            ),
        ]
    }

    fn total_cost(&self) -> f64 {
        self.costs().iter().map(|(_, usd)| usd).sum()
    }
}

/// API Gateway's request id of capture `sequence`: unrelated to the click id, as in production.
/// (Ids that share the click id's digits would put every click of a click shard into one
/// activity shard: crc32 of two strings that end alike differs by a constant, so
/// `crc32(request id) % 16` would follow `crc32(click id) % 32`, and a stream shard's batch, the
/// clicks of one or two click shards, would write all its activity records to one partition.)
fn request_id(sequence: u64) -> String {
    // splitmix64's finaliser: a bijection, so the ids stay distinct.
    let mut z = sequence.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("sim-request-{:016x}", z ^ (z >> 31))
}

fn request(key: &str, sequence: u64, landing_padding: usize) -> Request<Body> {
    let click_id = format!("sim-{sequence:09}");
    // Every click from its own visitor address: a steady stream of new visitors, none a repeat
    // within the scoring's repeat window or near the hourly limit (those are fraud signals, not
    // the base cost of a capture).
    let source_ip = format!(
        "10.{}.{}.{}",
        (sequence >> 16) & 255,
        (sequence >> 8) & 255,
        sequence & 255
    );
    let padding = if landing_padding == 0 {
        String::new()
    } else {
        let base = format!("https://shop.example/landing?click_id={click_id}&pad=").len();
        "a".repeat(landing_padding.saturating_sub(base))
    };
    let landing_url = if landing_padding == 0 {
        format!("https://shop.example/landing?click_id={click_id}")
    } else {
        format!("https://shop.example/landing?click_id={click_id}&pad={padding}")
    };
    let body = format!(
        r#"{{"click_id":"{click_id}","offer":"summer-sale","partner":"alice","landing_url":"{landing_url}"}}"#
    );
    let user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0";
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(CAPTURE_PATH)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("user-agent", user_agent)
        .body(Body::from(body))
        .expect("a valid request");
    request.extensions_mut().insert(api_gateway_context(
        &Method::POST,
        CAPTURE_PATH,
        &source_ip,
        Some(user_agent),
        &request_id(sequence),
        0,
    ));
    request
}

/// A capture router over the model with one brand and its key.
struct World {
    router: Router,
    model: Arc<Model>,
    clock: Arc<TokioClock>,
    brand: BrandId,
    key: String,
}

async fn world(capacity: usize, settings: ModelSettings) -> World {
    let clock = Arc::new(TokioClock::starting_at(START_MS));
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(MemoryStore::new()),
        clock.clone(),
    ));
    let model = Arc::new(DynamoModel::new(
        MemoryBrandData::with_caps(capacity, capacity),
        settings,
    ));
    let data: Arc<dyn BrandDataStore> = model.clone();
    let brand = BrandId::parse("sim").expect("a brand id");
    keys.create_brand(&brand, "sim").await.expect("the brand");
    let key = keys
        .generate(&brand, None)
        .await
        .expect("a key")
        .key
        .expose_secret()
        .to_owned();
    create_capture_references(data.as_ref(), &brand).await;
    let config = CaptureConfig {
        // The budget's counters are still written (one lease of 10 units per 10 captures); only
        // its refusals are off, so the run shows what the store does, not what the budget allows.
        rate_limit_per_minute: u32::MAX,
        ..CaptureConfig::default()
    };
    let router: Router =
        trcker_capture::router(keys.clone(), data.clone(), EdgeLimits::default(), config);
    model.reset_report();
    World {
        router,
        model,
        clock,
        brand,
        key,
    }
}

/// The critical path of a new capture in a warm container: every store call takes `latency`,
/// and the mean wall time of `captures` sequential new captures is reported in those latencies.
/// No stream is derived meanwhile: the derivation is off the request path.
async fn critical_path(captures: u64, latency: Duration) -> f64 {
    let World { router, key, .. } = world(1_000_000, ModelSettings::uniform(latency)).await;
    // Warm: the key cache, the offer and partner references, a lease of the key's budget.
    let warm = router.clone().oneshot(request(&key, u64::MAX / 2, 0)).await;
    assert_eq!(warm.map(|r| r.status()).ok(), Some(StatusCode::CREATED));
    let started = Instant::now();
    for sequence in 0..captures {
        let response = router.clone().oneshot(request(&key, sequence, 0)).await;
        assert_eq!(response.map(|r| r.status()).ok(), Some(StatusCode::CREATED));
    }
    started.elapsed().as_secs_f64() / latency.as_secs_f64() / captures as f64
}

async fn simulate(traffic: Traffic, settings: ModelSettings) -> Run {
    let Traffic {
        rate,
        seconds,
        landing_padding,
        shards,
        aligned_pollers,
    } = traffic;
    // Keep every click and record: the memory store's default caps are for a developer's laptop.
    let capacity = usize::try_from(rate * seconds * 3).unwrap_or(usize::MAX);
    let World {
        router,
        model,
        clock,
        brand,
        key,
    } = world(capacity, settings).await;

    // The stream: on before the first capture, so it holds every click of the run.
    model.inner().enable_change_feed();
    let stream = Arc::new(Mutex::new(Stream {
        shards: (0..shards).map(|_| Shard::default()).collect(),
        stats: StreamStats::default(),
    }));
    let mut consumers = vec![tokio::spawn(dispatch(stream.clone(), model.clone()))];
    for shard in 0..shards {
        let phase = if aligned_pollers {
            Duration::ZERO
        } else {
            poller_phase(shard)
        };
        consumers.push(tokio::spawn(poll_shard(
            shard,
            stream.clone(),
            model.clone(),
            clock.clone(),
            phase,
        )));
    }

    let total = rate * seconds;
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for sequence in 0..total {
        tokio::time::sleep_until(started + period * u32::try_from(sequence).unwrap_or(u32::MAX))
            .await;
        let router = router.clone();
        let request = request(&key, sequence, landing_padding);
        tasks.spawn(async move {
            let sent = Instant::now();
            let response = router.oneshot(request).await.expect("infallible");
            let billed = u64::try_from(sent.elapsed().as_micros().div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1);
            (sequence, response.status(), billed)
        });
    }
    let mut statuses = BTreeMap::new();
    let mut created = Vec::new();
    let mut capture_billed_ms = 0;
    while let Some(joined) = tasks.join_next().await {
        let (sequence, status, billed) = joined.expect("a capture task");
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
        capture_billed_ms += billed;
        if status == StatusCode::CREATED {
            created.push(format!("sim-{sequence:09}"));
        }
    }

    // Drain: until the feed, every shard's queue and every poller are idle.
    let answered = Instant::now();
    while !drained(&stream, &model) {
        tokio::time::sleep(POLL_EVERY).await;
    }
    let drain_seconds = answered.elapsed().as_secs_f64();
    for consumer in &consumers {
        consumer.abort();
    }
    let stats = std::mem::take(&mut locked(&stream).stats);

    // The checks read the memory store under the model: they cost no units.
    let report = model.report();
    let inner = model.inner();
    let mut unreadable = 0;
    let mut click_item_bytes = 0;
    for click_id in &created {
        match inner.get_click(&brand, click_id).await.ok().flatten() {
            Some(click) => {
                if click_item_bytes == 0 {
                    let key = layout::click(&brand, click_shard(click_id), click_id);
                    click_item_bytes = layout::click_item_size(&key, &click);
                }
            }
            None => unreadable += 1,
        }
    }
    let day = utc_day(START_MS);
    let counted = inner
        .read_rollups(&brand, RollupDimension::Total, &day, &day)
        .await
        .expect("rollups")
        .iter()
        .map(|row| row.counters.get(CLICKS).copied().unwrap_or(0))
        .sum();
    let stored = u64::try_from(
        inner
            .list_clicks(
                &brand,
                &Default::default(),
                u32::try_from(total + 10).unwrap_or(u32::MAX),
                None,
            )
            .await
            .map(|page| page.items.len())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    let (activity_records, activity_repeated) = capture_activity(inner, &brand).await;
    Run {
        traffic,
        statuses,
        created: created.len() as u64,
        report,
        unreadable,
        counted,
        stored,
        activity_records,
        activity_repeated,
        drain_seconds,
        stream: stats,
        capture_billed_ms,
        click_item_bytes,
    }
}

/// The brand's capture activity records, paged through to the end, and how many request ids came
/// more than once.
async fn capture_activity(store: &MemoryBrandData, brand: &BrandId) -> (u64, u64) {
    let mut seen = HashSet::new();
    let mut repeated = 0;
    let mut position: Option<String> = None;
    loop {
        let filter = ActivityFilter {
            surface: Some(Surface::Capture),
            ..ActivityFilter::default()
        };
        let page = store
            .list_activity(brand, filter, 1_000, position.as_deref())
            .await
            .expect("a page of activity");
        for record in page.items {
            if !seen.insert(record.request_id) {
                repeated += 1;
            }
        }
        match page.next_position {
            Some(next) => position = Some(next),
            None => break,
        }
    }
    (seen.len() as u64, repeated)
}

fn table(runs: &[Run], depth: f64, depth_captures: u64, latency: Duration) -> String {
    let mut out = String::new();
    out.push_str(
        "| captures/s | variant | stream shards | simulated s | sent | 201 | 200 | other | \
         201 unreadable | stored clicks | clicks counted | capture activity records | \
         conflicted calls | throttled attempts | throttled calls (after SDK retries) | \
         stream batches | batches redelivered | events given up | lag p50 s | lag p99 s | \
         lag max s | drain after last answer s |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let total = run.report.total();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} \
             | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            run.traffic.rate,
            landing(run),
            run.traffic.shards,
            run.traffic.seconds,
            run.sent(),
            run.status(201),
            run.status(200),
            run.other_statuses(),
            run.unreadable,
            run.stored,
            run.counted,
            run.activity_records,
            total.conflicted_calls,
            total.throttled_attempts,
            total.throttled_calls,
            run.stream.invocations,
            run.stream.failed_invocations,
            run.stream.given_up_events,
            run.lag(0.5),
            run.lag(0.99),
            run.lag(1.0),
            run.drain_seconds,
        ));
    }

    out.push_str(
        "\nWrite units per new capture, by component (units / 201s; request path: what capture \
         writes itself; derived: the stream function's writes):\n\n\
         | captures/s | variant | click item bytes | `insert_click` | `increment_counter` (lease) \
         | request path | `count_source_hits` | `add_rollup_once` | `update_click` | \
         `create_documents` | derived | all-in | request path per KB of click item | read units \
         per capture |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let units = |name: &str| run.per_capture(run.cost(name).write_units);
        let request_path = run.per_capture(run.request_path_units());
        let derived = run.per_capture(run.derived_units());
        out.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | \
             {:.3} | {:.3} | {:.4} |\n",
            run.traffic.rate,
            landing(run),
            run.click_item_bytes,
            units("insert_click"),
            units("increment_counter"),
            request_path,
            units("count_source_hits"),
            units("add_rollup_once"),
            units("update_click"),
            units("create_documents"),
            derived,
            request_path + derived,
            units("insert_click") / (run.click_item_bytes as f64 / 1024.0),
            run.report.total().read_half_units as f64 / 2.0 / run.created.max(1) as f64,
        ));
    }

    out.push_str(
        "\nStream function (one invocation per batch; billed duration is the batch's simulated \
         time, rounded up to 1 ms):\n\n\
         | captures/s | variant | invocations | invocations per 1,000 captures | events \
         derived | largest batch | longest batch ms | billed ms per capture | largest shard \
         backlog |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {} | {} | {:.3} | {} |\n",
            run.traffic.rate,
            landing(run),
            run.stream.invocations,
            run.stream.invocations as f64 * 1000.0 / run.created.max(1) as f64,
            run.stream.derived_events,
            run.stream.largest_batch,
            run.stream.longest_batch_ms,
            run.stream.billed_ms as f64 / run.created.max(1) as f64,
            run.stream.largest_backlog,
        ));
    }

    out.push_str("\nCost per million new captures (USD, on the capacity model):\n\n");
    if let Some(first) = runs.first() {
        out.push_str("| captures/s | variant |");
        for (name, _) in first.costs() {
            out.push_str(&format!(" {name} |"));
        }
        out.push_str(" total |\n|---:|---|");
        for _ in first.costs() {
            out.push_str("---:|");
        }
        out.push_str("---:|\n");
    }
    for run in runs {
        out.push_str(&format!("| {} | {} |", run.traffic.rate, landing(run)));
        for (_, usd) in run.costs() {
            out.push_str(&format!(" {usd:.4} |"));
        }
        out.push_str(&format!(" {:.3} |\n", run.total_cost()));
    }

    out.push_str("\nPer operation (all runs, in the order above):\n\n");
    out.push_str(
        "| captures/s | variant | operation | calls | requests | write units | read units | \
         throttled attempts | throttled calls | conflicted attempts | conflicted calls |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        for (name, cost) in &run.report.operations {
            out.push_str(&format!(
                "| {} | {} | `{name}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                run.traffic.rate,
                landing(run),
                cost.calls,
                cost.requests,
                cost.write_units,
                cost.read_half_units as f64 / 2.0,
                cost.throttled_attempts,
                cost.throttled_calls,
                cost.conflicted_attempts,
                cost.conflicted_calls,
            ));
        }
    }
    out.push_str("\nHottest partition key per kind (peak write units in one second):\n\n");
    out.push_str(
        "| captures/s | variant | kind | partition key | peak WCU/s |\n|---:|---|---|---|---:|\n",
    );
    for run in runs {
        for (kind, (partition, peak)) in run.report.hottest_by_kind() {
            out.push_str(&format!(
                "| {} | {} | {kind} | `{partition}` | {peak} |\n",
                run.traffic.rate,
                landing(run)
            ));
        }
    }
    out.push_str(&format!(
        "\nCritical path of a new capture in a warm container, every store call {} ms: {depth:.2} \
         store latencies (mean wall time of {depth_captures} sequential captures under the paused \
         clock, no derivation running).\n",
        latency.as_millis()
    ));
    out
}

/// The run's variant: its landing URLs, and its pollers if they are in phase.
fn landing(run: &Run) -> String {
    let mut variant = if run.traffic.landing_padding == 0 {
        "short URL".to_owned()
    } else {
        format!("{} B URL", run.traffic.landing_padding)
    };
    if run.traffic.aligned_pollers {
        variant.push_str(", pollers in phase");
    }
    variant
}

/// The smoke run's assertions: nothing lost or counted twice, one activity record per capture,
/// the request path's units as counts, no throttling or conflicts, the lag within its target.
fn check(run: &Run) {
    let sent = run.sent();
    let total = run.report.total();
    assert_eq!(run.created, sent, "{:?}", run.statuses);
    assert_eq!(run.other_statuses(), 0, "{:?}", run.statuses);
    assert_eq!((run.unreadable, run.stored), (0, sent));
    assert_eq!(run.counted, i64::try_from(run.stored).unwrap_or(i64::MAX));
    assert_eq!((run.activity_records, run.activity_repeated), (sent, 0));
    assert_eq!(
        run.stream.lags_ms.len() as u64,
        sent,
        "every click derived once"
    );
    assert_eq!(run.stream.given_up_events, 0);
    assert_eq!((total.throttled_calls, total.conflicted_calls), (0, 0));
    // The click's put: 1 unit for the item, 1 for its index entry per KB started.
    let item_units = run.click_item_bytes.div_ceil(1024) as u64;
    assert_eq!(run.cost("insert_click").calls, sent);
    assert_eq!(run.cost("insert_click").write_units, 2 * item_units * sent);
    // One lease write per 10 captures (the first capture's included), and at most two taken
    // ahead and left unused at the run's end: the spent lease's successor, the next window's.
    assert!(
        run.cost("increment_counter").write_units <= sent.div_ceil(10) + 2,
        "{:?}",
        run.cost("increment_counter")
    );
    // No activity item is written for a new capture: its click item is its record.
    assert_eq!(run.cost("append_activity").calls, 0);
    assert!(run.lag(0.99) <= 5.0, "lag p99 {} s", run.lag(0.99));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and
    // then it makes a short smoke run (a debug build would take half an hour over the full one).
    let benching = std::env::args().any(|arg| arg == "--bench");
    let mut rates = if benching {
        vec![100, 1_000, 10_000]
    } else {
        vec![100]
    };
    let mut seconds = if benching { 60 } else { 2 };
    let mut shards = None;
    let mut aligned_pollers = false;
    let mut large_clicks = true;
    let depth_captures = if benching { 1_000 } else { 20 };
    let mut out_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rates" => {
                rates = args
                    .next()
                    .expect("--rates needs a list")
                    .split(',')
                    .map(|rate| rate.parse().expect("a rate"))
                    .collect();
            }
            "--seconds" => seconds = args.next().expect("--seconds N").parse().expect("N"),
            "--shards" => shards = Some(args.next().expect("--shards N").parse().expect("N")),
            "--aligned-pollers" => aligned_pollers = true,
            "--no-large-clicks" => large_clicks = false,
            // cargo runs a bench in its package's folder: a relative path is the caller's.
            "--out" => out_file = args.next(),
            // cargo bench passes --bench; nothing else is expected.
            _ => {}
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    let mut traffics: Vec<Traffic> = rates
        .iter()
        .map(|&rate| Traffic {
            rate,
            seconds,
            landing_padding: 0,
            shards: shards.unwrap_or_else(|| stream_shards(rate)),
            aligned_pollers,
        })
        .collect();
    // Larger clicks, reported per KB: 1.5 KB landing URLs at the lowest rate.
    if let Some(&rate) = rates.iter().min().filter(|_| large_clicks) {
        traffics.push(Traffic {
            rate,
            seconds,
            landing_padding: 1_500,
            shards: shards.unwrap_or_else(|| stream_shards(rate)),
            aligned_pollers,
        });
    }
    let mut runs = Vec::new();
    for traffic in traffics {
        let wall = std::time::Instant::now();
        let run = runtime.block_on(simulate(traffic, ModelSettings::default()));
        eprintln!(
            "{}/s for {} simulated s ({} stream shards, {}): {} created, {:?}, lag p99 \
             {:.2} s, {:.1} s of wall time",
            traffic.rate,
            traffic.seconds,
            traffic.shards,
            landing(&run),
            run.created,
            run.statuses,
            run.lag(0.99),
            wall.elapsed().as_secs_f64()
        );
        if !benching {
            check(&run);
        }
        runs.push(run);
    }
    let latency = Duration::from_millis(10);
    let depth = runtime.block_on(critical_path(depth_captures, latency));
    if !benching {
        assert!(depth <= 1.2, "critical path {depth:.2} store latencies");
    }
    let table = table(&runs, depth, depth_captures, latency);
    println!("{table}");
    if let Some(path) = out_file {
        std::fs::write(&path, &table).expect("writing the table");
    }
}
