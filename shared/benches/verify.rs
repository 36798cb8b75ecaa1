//! Hot-path micro-benchmarks: token parsing, HMAC, verify on a cache hit and on a miss (in-memory
//! store), and cursor encode/decode. Results are recorded in BENCHMARKS.md.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use trcker_shared::clock::SystemClock;
use trcker_shared::hashing::{KeyHasher, Pepper};
use trcker_shared::ids::BrandId;
use trcker_shared::keys::{KeyService, KeySettings};
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::token::{generate_key, parse_key};

/// Drives a future that never waits (the in-memory store answers at once) without an executor,
/// so the executor's own overhead is not measured.
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory path should never wait"),
    }
}

fn service(settings: KeySettings) -> (KeyService, String) {
    let service = KeyService::new(
        Arc::new(MemoryStore::new()),
        KeyHasher::new(&Pepper::insecure_dev()),
        Arc::new(SystemClock),
        settings,
    );
    let brand = BrandId::parse("bench").unwrap();
    run_ready(service.create_brand(&brand, "Bench")).unwrap();
    let generated = run_ready(service.generate(&brand, None)).unwrap();
    let token = generated.key.expose_secret().to_owned();
    (service, token)
}

fn token_benches(c: &mut Criterion) {
    let key = generate_key().unwrap();
    let token = key.expose_secret().to_owned();
    let wrong_length = "tk_short".to_owned();
    let mut bad_checksum = token.clone();
    bad_checksum.replace_range(42..43, if token.ends_with('a') { "b" } else { "a" });

    c.bench_function("token/parse_valid", |b| {
        b.iter(|| parse_key(black_box(&token)).is_ok())
    });
    c.bench_function("token/reject_wrong_length", |b| {
        b.iter(|| parse_key(black_box(&wrong_length)).is_err())
    });
    c.bench_function("token/reject_bad_checksum", |b| {
        b.iter(|| parse_key(black_box(&bad_checksum)).is_err())
    });
    let hasher = KeyHasher::new(&Pepper::insecure_dev());
    c.bench_function("hash/hmac_sha256", |b| {
        b.iter(|| hasher.hash(black_box(&token)))
    });
}

fn verify_benches(c: &mut Criterion) {
    // The last-used write is bounded by a tokio timer, which needs a runtime to exist; futures are
    // still polled directly below.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _runtime_context = runtime.enter();
    let (cached, token) = service(KeySettings {
        // Long enough that no entry expires during the measurement.
        cache_ttl_ms: 60_000,
        ..KeySettings::default()
    });
    run_ready(cached.verify(&token)).unwrap();
    c.bench_function("verify/cache_hit", |b| {
        b.iter(|| run_ready(cached.verify(black_box(&token))).is_ok())
    });
    c.bench_function("verify/reject_malformed", |b| {
        b.iter(|| run_ready(cached.verify(black_box("tk_short"))).is_err())
    });

    let (uncached, token) = service(KeySettings {
        cache_ttl_ms: 0,
        ..KeySettings::default()
    });
    c.bench_function("verify/cache_miss_memory_store", |b| {
        b.iter(|| run_ready(uncached.verify(black_box(&token))).is_ok())
    });

    let brand = BrandId::parse("bench").unwrap();
    let cursor = cached.cursors().encode(&brand, "key_019ac8a1b2c30000beef");
    c.bench_function("cursor/encode", |b| {
        b.iter(|| {
            cached
                .cursors()
                .encode(black_box(&brand), "key_019ac8a1b2c30000beef")
        })
    });
    c.bench_function("cursor/decode", |b| {
        b.iter(|| {
            cached
                .cursors()
                .decode(black_box(&brand), black_box(&cursor))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = token_benches, verify_benches
}
criterion_main!(benches);
