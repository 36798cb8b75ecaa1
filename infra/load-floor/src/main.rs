//! The floor of the load benchmark (scripts/bench-floor): the local gateway's HTTP stack (axum,
//! hyper, tokio, mimalloc) with no Trcker code behind it.
//!
//! It answers the benchmarked routes with fixed bytes of the same size and headers as the real
//! gateway's answers (health; a page of 25 clicks; a recorded capture), so that what the stack and
//! wrk cost per request, which no handler can remove, is measured on the same machine.
//! Usage: `load-floor PORT CLICKS_PAGE_FILE` (the page body as the real gateway served it).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn headers(rate_limit: Option<u32>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(limit) = rate_limit {
        let limit = HeaderValue::from(limit);
        for (name, value) in [
            ("ratelimit-limit", limit.clone()),
            ("ratelimit-remaining", HeaderValue::from_static("99")),
            ("ratelimit-reset", HeaderValue::from_static("59")),
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", HeaderValue::from_static("99")),
            ("x-ratelimit-reset", HeaderValue::from_static("1795916400")),
        ] {
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
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let port: u16 = arguments
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or(39130);
    let page = std::fs::read(arguments.next().expect("a clicks page file")).expect("page");
    let page = Bytes::from(page);
    let app = Router::new()
        .route(
            "/api/public/health",
            get(|| async { (headers(None), "{\"status\":\"ok\"}") }),
        )
        .route(
            "/api/public/clicks",
            get(move || {
                let page = page.clone();
                async move { (headers(Some(100)), page) }
            }),
        )
        .route(
            "/api/clicks/capture",
            // The body is read, not parsed; the answer has the length of a recorded capture's.
            post(|_body: Bytes| async {
                (
                    StatusCode::CREATED,
                    headers(Some(6000)),
                    "{\"status\":\"recorded\",\"click_id\":\"load-1795916400-0-1\"}",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("bind");
    println!("floor listening on {port}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("serve");
}
