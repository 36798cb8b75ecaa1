//! Hello-world `lambda_http` function: the cold-start baseline that scripts/bench-cold-start
//! measures next to the real functions (same release profile, same runtime, no AWS clients).

use lambda_http::{Body, Error, Request, Response, run, service_fn};

async fn hello(_request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Body::from("hello"))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
