//! `trcker-local`, the binary: parses its options, builds the backends and the gateway with the
//! `trcker_local` library, and serves it on 127.0.0.1 (the whole edge on one machine, as API
//! Gateway and Lambda would serve it; see the library for what it answers and refuses).
//!
//! Default store: in memory, seeded with a demo brand whose key is printed once.

use std::net::SocketAddr;

/// glibc's allocator spent about a third of a request's CPU in malloc/free and chunk consolidation
/// (BENCHMARKS.md); mimalloc's thread-local free lists halve the cost of a page of clicks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: trcker-local [--port PORT] [--store memory|model|dynamodb] [--create-tables]

  --port PORT        listen on 127.0.0.1:PORT (default 3000)
  --store memory     embedded in-memory store with a seeded demo brand (default); its change
                     feed is derived every 100 ms, as the stream function derives the table's
  --store model      the same store behind the DynamoDB capacity model: DynamoDB's latencies,
                     per-partition throughput (throttling) and transaction conflicts, on the
                     real clock (the key store is not modelled)
  --store dynamodb   DynamoDB from the standard AWS environment (AWS_ENDPOINT_URL, AWS_REGION,
                     credentials); tables TRCKER_KEYS_TABLE (default trcker-keys) and
                     TRCKER_DATA_TABLE (default trcker-data). The data table's stream is polled
                     in the background (DynamoDB Streams, every 250 ms) and derived as the stream
                     function derives it on AWS: activity records of captures, scores, fraud
                     signals and rollups follow a capture within about a second
  --create-tables    with --store dynamodb: create the tables first if they are missing (the
                     data table with its stream, NEW_AND_OLD_IMAGES; enabled if it has none)

environment: TRCKER_RATE_LIMIT_PER_MINUTE (default 100), TRCKER_ACTIVITY_RETENTION_DAYS (90),
             TRCKER_MCP_ALLOWED_HOSTS (default localhost, 127.0.0.1, ::1),
             TRCKER_STORE_TIMEOUT_MS (DynamoDB operation timeout, default 2000), and the capture
             variables in the README; with --store dynamodb also the key service's, as for the
             functions (TRCKER_KEY_CACHE_TTL_MS, TRCKER_KEY_CACHE_CAPACITY,
             TRCKER_LAST_USED_INTERVAL_MS, TRCKER_TLS_ROOTS, TRCKER_PEPPER_SECRET_ID); the
             stream's fraud thresholds TRCKER_CAPTURE_IP_CLICKS_PER_HOUR (50) and
             TRCKER_CAPTURE_REPEAT_WINDOW_SECONDS (60), in either mode";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Model,
    Dynamodb,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    port: u16,
    store: Store,
    create_tables: bool,
}

fn parse_options(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        port: 3000,
        store: Store::Memory,
        create_tables: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                options.port = value
                    .parse()
                    .map_err(|_| format!("--port {value:?} is not a port number"))?;
            }
            "--store" => match args.next().as_deref() {
                Some("memory") => options.store = Store::Memory,
                Some("model") => options.store = Store::Model,
                Some("dynamodb") => options.store = Store::Dynamodb,
                other => {
                    return Err(format!(
                        "--store must be memory, model or dynamodb, not {other:?}"
                    ));
                }
            },
            "--create-tables" => options.create_tables = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.create_tables && options.store != Store::Dynamodb {
        return Err("--create-tables only applies to --store dynamodb".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    trcker_shared::telemetry::init_json_logging();
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("trcker-local: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            };
        }
    };
    match run(options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("trcker-local: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let backends = match options.store {
        Store::Dynamodb => trcker_local::dynamodb_backends(options.create_tables).await?,
        Store::Memory | Store::Model => {
            let (backends, demo_key) = if options.store == Store::Model {
                trcker_local::model_backends().await?
            } else {
                trcker_local::memory_backends().await?
            };
            println!("demo key: {}", demo_key.expose_secret());
            backends
        }
    };
    // What the stream function does on AWS: derived data, from the memory store's change feed
    // (drained every 100 ms, so what a capture implies shows within a second).
    if let Some(derivation) = &backends.derivation {
        derivation
            .clone()
            .spawn(std::time::Duration::from_millis(100));
    }
    // The same on DynamoDB, from the data table's stream (what Lambda's event source mapping
    // feeds the stream function): polled every 250 ms.
    if let Some(stream) = &backends.stream {
        stream
            .clone()
            .spawn(trcker_local::stream_poller::POLL_INTERVAL);
    }
    let app = trcker_local::app_from_env(backends)?;
    let address = SocketAddr::from(([127, 0, 0, 1], options.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    // With --port 0 the system picks a free port: print the one it picked.
    let address = listener.local_addr().unwrap_or(address);
    println!("trcker-local listening on http://{address}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|error| format!("server error: {error}"))
}

#[cfg(test)]
mod tests {
    //! The command line.

    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn options() {
        assert_eq!(
            parse_options(args(&[])).unwrap(),
            Options {
                port: 3000,
                store: Store::Memory,
                create_tables: false
            }
        );
        let dynamo = parse_options(args(&[
            "--store",
            "dynamodb",
            "--create-tables",
            "--port",
            "4000",
        ]))
        .unwrap();
        assert!(dynamo.store == Store::Dynamodb && dynamo.create_tables && dynamo.port == 4000);
        assert_eq!(
            parse_options(args(&["--store", "model"])).unwrap().store,
            Store::Model
        );
        for bad in [
            &["--store", "model", "--create-tables"][..],
            &["--port"],
            &["--port", "x"],
            &["--store", "redis"],
            &["--create-tables"],
            &["--bogus"],
        ] {
            assert!(parse_options(args(bad)).is_err(), "{bad:?}");
        }
    }
}
