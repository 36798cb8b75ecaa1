//! Hello-world `lambda_http` function with the functions' network work at init: the cold-start
//! baseline that scripts/bench-cold-start measures next to the real functions (same release
//! profile, same runtime and logging, and the same init as theirs up to their router:
//! `bootstrap::edge_from_env`, which loads the SDK configuration and then reads the pepper secret
//! and makes the store's warm-up `GetItem`, concurrently).

use lambda_http::{Body, Error, Request, Response, run, service_fn};
use trcker_shared::bootstrap::{InitClock, edge_from_env};

async fn hello(_request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Body::from("hello"))?)
}

/// Init is timed from here, before the async runtime is built (the `init finished` log line).
fn main() -> Result<(), Error> {
    let init = InitClock::start();
    serve(init)
}

#[tokio::main]
async fn serve(init: InitClock) -> Result<(), Error> {
    trcker_shared::telemetry::init_json_logging();
    // The functions' own init, called rather than copied so the two cannot drift: a failed
    // pepper read stops it as it stops them; a failed warm-up read is logged, as theirs is.
    let edge = edge_from_env().await?;
    init.finished(edge.init_network);
    run(service_fn(hello)).await
}
