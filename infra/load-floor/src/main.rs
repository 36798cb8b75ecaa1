//! The floor of the load benchmark (scripts/bench-floor): the local gateway's HTTP stack (axum,
//! hyper, tokio, mimalloc) with no Trcker code behind it.
//!
//! It answers the benchmarked routes with fixed bytes of the same size and headers as the real
//! gateway's answers under scripts/bench-floor's settings (health; a page of 25 clicks; a recorded
//! capture), so that what the stack and wrk cost per request, which no handler can remove, is
//! measured on the same machine.
//! Usage: `load-floor PORT CLICKS_PAGE_FILE` (the page body as the real gateway served it).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The answer's headers; `rate_limited` adds the six rate-limit headers with values of the size
/// the gateway sends when the budget is 1,000,000,000 a minute (scripts/bench-floor's setting).
fn headers(rate_limited: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if rate_limited {
        for (name, value) in [
            ("ratelimit-limit", "1000000000"),
            ("ratelimit-remaining", "999987654"),
            ("ratelimit-reset", "59"),
            ("x-ratelimit-limit", "1000000000"),
            ("x-ratelimit-remaining", "999987654"),
            ("x-ratelimit-reset", "1795916400"),
        ] {
            let value = HeaderValue::from_static(value);
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers.insert(
        HeaderName::from_static("apigw-requestid"),
        HeaderValue::from_static("local-c29706ff8db85ce5"),
    );
    headers
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut arguments = std::env::args().skip(1);
    let port = arguments.next().and_then(|port| port.parse::<u16>().ok());
    let page = arguments.next().map(std::fs::read);
    let (Some(port), Some(Ok(page))) = (port, page) else {
        eprintln!("usage: load-floor PORT CLICKS_PAGE_FILE (a readable file)");
        return std::process::ExitCode::from(2);
    };
    let page = Bytes::from(page);
    let app = Router::new()
        .route(
            "/api/public/health",
            get(|| async { (headers(false), "{\"status\":\"ok\"}") }),
        )
        .route(
            "/api/public/clicks",
            get(move || {
                let page = page.clone();
                async move { (headers(true), page) }
            }),
        )
        .route(
            "/api/clicks/capture",
            // The body is read, not parsed; the answer has the length of a recorded capture's.
            post(|_body: Bytes| async {
                (
                    StatusCode::CREATED,
                    headers(true),
                    "{\"status\":\"recorded\",\"click_id\":\"load-1795916400-0-12345\"}",
                )
            }),
        );
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("load-floor: cannot listen on {address}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("floor listening on {port}");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await;
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load-floor: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
