//! Capture at platform scale on the DynamoDB model (`trcker_shared::brand_data::model`), under
//! tokio's paused clock: one brand sends new clicks at a steady rate for a simulated span through
//! the capture router as the Lambda binary builds it, and the run reports what came back (201s,
//! conflicts, throttles, other answers), whether every 201 is readable and counted once, and the
//! write units per capture and per partition kind. Repeatable up to the contention retries'
//! jitter and the random lease shard; nothing here waits on a wall clock.
//!
//! `cargo bench -p trcker-local --bench capture_on_model -- [--rates 100,1000,10000]
//! [--seconds 60] [--out FILE]` (`scripts/bench-capture-model` runs it and keeps the table).
//! Under `cargo test --all-targets` it makes a two-second smoke run at 100/s and asserts that
//! nothing was lost or counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;
use trcker_capture::CAPTURE_PATH;
use trcker_capture::config::CaptureConfig;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::model::{DynamoModel, ModelReport, ModelSettings};
use trcker_shared::brand_data::rollups::{CLICKS, RollupDimension, utc_day};
use trcker_shared::brand_data::{BrandDataStore, ClickStore, RollupStore};
use trcker_shared::clock::TokioClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::edge::context::api_gateway_context;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::create_capture_references;

/// 2026-11-28T02:00:00Z: far enough from midnight that a minute's run stays within one UTC day.
const START_MS: i64 = 1_795_831_200_000;
/// Distinct visitors: enough that no address reaches the per-source budget in a minute.
const VISITORS: u64 = 50_000;

struct Run {
    rate: u64,
    seconds: u64,
    statuses: BTreeMap<u16, u64>,
    created: Vec<String>,
    report: ModelReport,
    unreadable: u64,
    counted: i64,
    stored: u64,
}

fn request(key: &str, sequence: u64) -> Request<Body> {
    let click_id = format!("sim-{sequence:09}");
    let visitor = sequence % VISITORS;
    let source_ip = format!(
        "10.{}.{}.{}",
        visitor >> 16,
        (visitor >> 8) & 255,
        visitor & 255
    );
    let body = format!(
        r#"{{"click_id":"{click_id}","offer":"summer-sale","partner":"alice","landing_url":"https://shop.example/landing?click_id={click_id}"}}"#
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
        &format!("sim-request-{sequence:09}"),
        0,
    ));
    request
}

/// A capture router over the model with one brand and its key.
struct World {
    router: Router,
    model: Arc<DynamoModel<MemoryBrandData>>,
    brand: BrandId,
    key: String,
}

async fn world(capacity: usize, settings: ModelSettings) -> World {
    let clock = Arc::new(TokioClock::starting_at(START_MS));
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(MemoryStore::new()),
        clock,
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
        // The budget's counters are still written (every lease, or every capture before leases);
        // only its refusals are off, so the run shows what the store does, not what the budget
        // allows.
        rate_limit_per_minute: u32::MAX,
        ..CaptureConfig::default()
    };
    let router: Router =
        trcker_capture::router(keys.clone(), data.clone(), EdgeLimits::default(), config);
    model.reset_report();
    World {
        router,
        model,
        brand,
        key,
    }
}

/// The critical path of a new capture in a warm container: every store call takes `latency`,
/// and the mean wall time of `captures` sequential new captures is reported in those latencies.
async fn critical_path(captures: u64, latency: Duration) -> f64 {
    let World { router, key, .. } = world(1_000_000, ModelSettings::uniform(latency)).await;
    // Warm: the key cache, the offer and partner references, a lease of the key's budget.
    let warm = router.clone().oneshot(request(&key, u64::MAX / 2)).await;
    assert_eq!(warm.map(|r| r.status()).ok(), Some(StatusCode::CREATED));
    let started = tokio::time::Instant::now();
    for sequence in 0..captures {
        let response = router.clone().oneshot(request(&key, sequence)).await;
        assert_eq!(response.map(|r| r.status()).ok(), Some(StatusCode::CREATED));
    }
    started.elapsed().as_secs_f64() / latency.as_secs_f64() / captures as f64
}

async fn simulate(rate: u64, seconds: u64, settings: ModelSettings) -> Run {
    // Keep every click and record: the memory store's default caps are for a developer's laptop.
    let capacity = usize::try_from(rate * seconds * 3).unwrap_or(usize::MAX);
    let World {
        router,
        model,
        brand,
        key,
    } = world(capacity, settings).await;

    let total = rate * seconds;
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for sequence in 0..total {
        tokio::time::sleep_until(started + period * u32::try_from(sequence).unwrap_or(u32::MAX))
            .await;
        let router = router.clone();
        let request = request(&key, sequence);
        tasks.spawn(async move {
            let response = router.oneshot(request).await.expect("infallible");
            (sequence, response.status())
        });
    }
    let mut statuses = BTreeMap::new();
    let mut created = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (sequence, status) = joined.expect("a capture task");
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
        if status == StatusCode::CREATED {
            created.push(format!("sim-{sequence:09}"));
        }
    }
    let report = model.report();
    let inner = model.inner();
    let mut unreadable = 0;
    for click_id in &created {
        if inner
            .get_click(&brand, click_id)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            unreadable += 1;
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
    Run {
        rate,
        seconds,
        statuses,
        created,
        report,
        unreadable,
        counted,
        stored,
    }
}

fn table(runs: &[Run]) -> String {
    let mut out = String::new();
    out.push_str(
        "| captures/s | simulated s | sent | 201 | 409 | 503 | 429 | other | 201 unreadable | \
         stored clicks | clicks counted | conflicted calls | throttled calls (after SDK retries) | \
         write units per capture |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let sent = run.rate * run.seconds;
        let status = |code: u16| run.statuses.get(&code).copied().unwrap_or(0);
        let other = sent - status(201) - status(409) - status(503) - status(429);
        let total = run.report.total();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
            run.rate,
            run.seconds,
            sent,
            status(201),
            status(409),
            status(503),
            status(429),
            other,
            run.unreadable,
            run.stored,
            run.counted,
            total.conflicted_calls,
            total.throttled_calls,
            total.write_units as f64 / sent as f64,
        ));
    }
    out.push_str("\nPer operation (all rates, in the order above):\n\n");
    out.push_str(
        "| captures/s | operation | calls | requests | write units | throttled attempts | \
         throttled calls | conflicted attempts | conflicted calls |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        for (name, cost) in &run.report.operations {
            out.push_str(&format!(
                "| {} | `{name}` | {} | {} | {} | {} | {} | {} | {} |\n",
                run.rate,
                cost.calls,
                cost.requests,
                cost.write_units,
                cost.throttled_attempts,
                cost.throttled_calls,
                cost.conflicted_attempts,
                cost.conflicted_calls,
            ));
        }
    }
    out.push_str("\nHottest partition key per kind (peak write units in one second):\n\n");
    out.push_str("| captures/s | kind | partition key | peak WCU/s |\n|---:|---|---|---:|\n");
    for run in runs {
        for (kind, (partition, peak)) in run.report.hottest_by_kind() {
            out.push_str(&format!(
                "| {} | {kind} | `{partition}` | {peak} |\n",
                run.rate
            ));
        }
    }
    out
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
    let mut runs = Vec::new();
    for rate in rates {
        let wall = std::time::Instant::now();
        let run = runtime.block_on(simulate(rate, seconds, ModelSettings::default()));
        eprintln!(
            "{rate}/s for {seconds} simulated s: {} created, {:?}, {:.1} s of wall time",
            run.created.len(),
            run.statuses,
            wall.elapsed().as_secs_f64()
        );
        if !benching {
            // The smoke run is a test too: at 100/s nothing may be lost or counted twice.
            let sent = run.rate * run.seconds;
            assert_eq!(run.created.len() as u64, sent, "{:?}", run.statuses);
            assert_eq!((run.unreadable, run.stored), (0, sent));
            assert_eq!(run.counted, i64::try_from(sent).unwrap_or(i64::MAX));
        }
        runs.push(run);
    }
    let latency = Duration::from_millis(10);
    let depth = runtime.block_on(critical_path(depth_captures, latency));
    let mut table = table(&runs);
    table.push_str(&format!(
        "\nCritical path of a new capture in a warm container, every store call {} ms: {depth:.2} \
         store latencies (mean wall time of {depth_captures} sequential captures under the paused \
         clock).\n",
        latency.as_millis()
    ));
    println!("{table}");
    if let Some(path) = out_file {
        std::fs::write(&path, &table).expect("writing the table");
    }
}
