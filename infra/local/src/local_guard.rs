//! What keeps web pages out of the local gateway (issue 19). Any page a developer visits can send
//! requests to 127.0.0.1, and through DNS rebinding (the page's own name re-resolved to
//! 127.0.0.1) even read the answers, so the gateway checks two things a page cannot fake:
//!
//! - every route answers only requests whose `Host` is a loopback name or address (`localhost`,
//!   `127.0.0.0/8`, `[::1]`, optional port): a rebinding page's requests carry the page's own
//!   name, since the browser sets `Host`, and a page cannot;
//! - the Lambda Invoke path, which needs no brand key (it creates brands and keys), answers only
//!   what the AWS CLI and SDKs send: a SigV4 `Authorization` header, and no `Origin` or
//!   `Sec-Fetch-Site` other than `none`. A page can only send `Authorization` to another origin
//!   after a CORS preflight, which the gateway never grants (OPTIONS on the path is unrouted), and
//!   a browser marks every request it makes with `Sec-Fetch-Site` and every POST with `Origin`.
//!   The gateway serves no pages, so no browser request to the path is legitimate, same-origin
//!   included.
//!
//! The signature is checked for its shape only: locally there is no secret to verify it against
//! (the CLI signs with whatever credentials it finds). What it proves is that the caller is not a
//! web page, which is what this guard is for; in AWS, IAM verifies it.
//!
//! Refusals are `403` with a stable code (`host_not_allowed`, `cross_site_request`,
//! `signature_required`), the status the MCP server already answers a foreign `Host` with; not
//! `421 Misdirected Request`, which invites a client to retry on another connection.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use trcker_shared::error::{ErrorBody, ErrorCode};

/// `Sec-Fetch-Site` (Fetch Metadata): set by browsers on every request they make.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The SigV4 algorithm, and the service the CLI and SDKs sign a Lambda Invoke for.
const SIGV4_PREFIX: &str = "AWS4-HMAC-SHA256 ";
const LAMBDA_SERVICE: &str = "lambda";

/// The `Authorization` header `aws lambda invoke` (AWS CLI 1.36.40) sent, for the tests (these
/// unit tests and the bad-input matrix, `tests/bad_input_matrix.rs`).
pub const EXAMPLE_SIGV4: &str = "AWS4-HMAC-SHA256 \
    Credential=AKIDEXAMPLE/20261202/us-east-1/lambda/aws4_request, \
    SignedHeaders=host;x-amz-date, \
    Signature=eea4727ada79f34d91edb5b1ff7db6f3941067d8263604b352f9f309e4d13f82";

/// Middleware for every route: only a loopback `Host` (and, for an absolute-form request target,
/// a loopback authority too) gets through.
pub async fn loopback_host(request: Request, next: Next) -> Response {
    let hosts = request.headers().get_all(header::HOST);
    let mut presented = hosts
        .iter()
        .map(|value| value.to_str().ok())
        .collect::<Vec<_>>();
    // An absolute-form target (`POST http://name/… HTTP/1.1`) or HTTP/2's `:authority` names the
    // host as well, and HTTP/1.1 says it wins over `Host`: it must be loopback too.
    if let Some(authority) = request.uri().authority() {
        presented.push(Some(authority.as_str()));
    }
    let loopback = !presented.is_empty()
        && presented
            .iter()
            .all(|host| host.is_some_and(is_loopback_host));
    if loopback {
        return next.run(request).await;
    }
    refusal(
        ErrorCode::HostNotAllowed,
        "trcker-local answers only requests addressed to localhost or a loopback address \
         (Host: localhost, 127.0.0.1 or [::1], with an optional port)",
    )
}

/// Middleware for the Lambda Invoke path: a browser's request is refused, and so is a request
/// without a SigV4 `Authorization` header.
pub async fn invoke_callers(request: Request, next: Next) -> Response {
    match check_invoke_caller(request.headers()) {
        Ok(()) => next.run(request).await,
        Err((code, message)) => refusal(code, message),
    }
}

fn check_invoke_caller(headers: &HeaderMap) -> Result<(), (ErrorCode, &'static str)> {
    // Browser signals first: a page's request is refused as what it is, signed or not.
    if headers.contains_key(header::ORIGIN) {
        return Err((
            ErrorCode::CrossSiteRequest,
            "the Lambda Invoke API is for the AWS CLI and SDKs; a request with an Origin header \
             comes from a web page",
        ));
    }
    // `none` is a request the user made themselves (address bar, bookmark), never a page's.
    if headers
        .get_all(SEC_FETCH_SITE)
        .iter()
        .any(|value| value != "none")
    {
        return Err((
            ErrorCode::CrossSiteRequest,
            "the Lambda Invoke API is for the AWS CLI and SDKs; a request with Sec-Fetch-Site \
             comes from a web page",
        ));
    }
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let signed = match (authorizations.next(), authorizations.next()) {
        (Some(value), None) => value.to_str().is_ok_and(is_sigv4_shaped),
        _ => false,
    };
    if !signed {
        return Err((
            ErrorCode::SignatureRequired,
            "the Lambda Invoke API needs a SigV4 Authorization header, as `aws lambda invoke \
             --endpoint-url` and the AWS SDKs send (any credentials: trcker-local checks the \
             header's shape, not the signature)",
        ));
    }
    Ok(())
}

/// A 403 with the stable code, also as `x-amzn-errortype` and with a top-level `message`: where
/// the AWS CLI and SDKs read a Lambda error's type and text, so `aws lambda invoke` shows both.
fn refusal(code: ErrorCode, message: &'static str) -> Response {
    let mut body = ErrorBody::new(code, message).to_json();
    body["message"] = Value::from(message);
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let error_type = [(HeaderName::from_static("x-amzn-errortype"), code.as_str())];
    (status, error_type, Json(body)).into_response()
}

/// `localhost` (any case), an IPv4 address in 127.0.0.0/8 or `[::1]`, each with an optional
/// port. Nothing looser: no `*.localhost`, no trailing dot, no IPv4-mapped or zoned IPv6, no
/// short IPv4 forms (`127.1`), no empty port.
fn is_loopback_host(host: &str) -> bool {
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let Some((address, rest)) = bracketed.split_once(']') else {
            return false;
        };
        if !address.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()) {
            return false;
        }
        let port = match rest {
            "" => None,
            rest => match rest.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (None, port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    });
    let name_ok = name.is_none_or(|name| {
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    });
    port_ok && name_ok
}

/// The shape of a SigV4 `Authorization` header for a Lambda call:
/// `AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/lambda/aws4_request,
/// SignedHeaders=<…;host;…>, Signature=<64 hex digits>`, each parameter once.
fn is_sigv4_shaped(value: &str) -> bool {
    let Some(parameters) = value.strip_prefix(SIGV4_PREFIX) else {
        return false;
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for parameter in parameters.split(',') {
        let Some((name, value)) = parameter.trim().split_once('=') else {
            return false;
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return false,
        };
        if slot.replace(value).is_some() {
            return false;
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return false;
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = scope.as_slice() else {
        return false;
    };
    let scope_ok = (1..=128).contains(&key_id.len())
        && key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && *service == LAMBDA_SERVICE
        && *terminator == "aws4_request";
    // SigV4 always signs `host`; header names are lowercase, `;`-separated.
    let headers_ok = signed_headers.split(';').all(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) && signed_headers.split(';').any(|name| name == "host");
    let signature_ok = signature.len() == 64
        && signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    scope_ok && headers_ok && signature_ok
}

#[cfg(test)]
mod tests {
    //! The checks on their own, then through the whole gateway: every loopback form of `Host`
    //! reaches every surface, and a signed invoke is served. The refusals, route by route with
    //! "nothing written" checked on the store call logs, are in the bad-input matrix.

    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderValue, Request};
    use serde_json::json;
    use tower::ServiceExt;
    use trcker_capture::config::CaptureConfig;
    use trcker_mcp::config::McpConfig;
    use trcker_shared::brand_data::memory::MemoryBrandData;
    use trcker_shared::clock::SystemClock;
    use trcker_shared::edge::config::EdgeLimits;
    use trcker_shared::keys::KeyService;
    use trcker_shared::store::memory::MemoryStore;

    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:3000",
            "LocalHost:3000",
            "127.0.0.1",
            "127.0.0.1:3000",
            "127.0.0.2:80",
            "127.255.255.254:65535",
            "[::1]",
            "[::1]:3000",
            "[0:0:0:0:0:0:0:1]:3000",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "evil.localhost",
            "localhost.",
            "localhost:",
            "localhost:99999",
            "localhost:30a0",
            "localhost:+80",
            "localhost:3000:3000",
            "127.1",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "0.0.0.0",
            "10.0.0.1",
            "128.0.0.1",
            "::1",
            "[::1",
            "[::1]3000",
            "[::ffff:127.0.0.1]",
            "[::1%25lo]",
            "[::]",
            "localhost@evil.example",
            " localhost",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn sigv4_shapes() {
        assert!(is_sigv4_shaped(EXAMPLE_SIGV4));
        let good = |credential: &str, headers: &str, signature: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={headers}, \
                 Signature={signature}"
            )
        };
        let signature = "0123456789abcdef".repeat(4);
        let scope = "local/20261128/eu-west-3/lambda/aws4_request";
        // curl --aws-sigv4 writes the same; parameters without the space after the comma too.
        assert!(is_sigv4_shaped(&good(scope, "host", &signature)));
        assert!(is_sigv4_shaped(&format!(
            "AWS4-HMAC-SHA256 Credential={scope},SignedHeaders=host;x-amz-date,Signature={signature}"
        )));
        for bad in [
            String::new(),
            "AWS4-HMAC-SHA256".to_owned(),
            "AWS4-HMAC-SHA256 ".to_owned(),
            "Bearer tk_x".to_owned(),
            good(scope, "host", &signature).to_lowercase(),
            good(scope, "host", &signature).replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 "),
            good(&scope.replace("lambda", "s3"), "host", &signature),
            good(
                &scope.replace("aws4_request", "aws5_request"),
                "host",
                &signature,
            ),
            good(&scope.replace("20261128", "2026-11-28"), "host", &signature),
            good(&scope.replace("local/", "/"), "host", &signature),
            good(&scope.replace("eu-west-3", ""), "host", &signature),
            good(&format!("x/{scope}"), "host", &signature),
            good(scope, "x-amz-date", &signature),
            good(scope, "host;;x-amz-date", &signature),
            good(scope, "Host", &signature),
            good(scope, "host", &signature[1..]),
            good(scope, "host", &signature.to_uppercase()),
            good(scope, "host", &format!("{}g", &signature[1..])),
            format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host"),
            format!("{}, Signature={signature}", good(scope, "host", &signature)),
            format!("{}, Extra=1", good(scope, "host", &signature)),
            format!("{}, Junk", good(scope, "host", &signature)),
        ] {
            assert!(!is_sigv4_shaped(&bad), "{bad}");
        }
    }

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn invoke_callers_are_the_cli_and_sdks() {
        let signed = ("authorization", EXAMPLE_SIGV4);
        assert_eq!(check_invoke_caller(&headers(&[signed])), Ok(()));
        assert_eq!(
            check_invoke_caller(&headers(&[signed, ("sec-fetch-site", "none")])),
            Ok(())
        );
        for (list, code) in [
            (&[][..], ErrorCode::SignatureRequired),
            (&[signed, signed], ErrorCode::SignatureRequired),
            (
                &[("authorization", "Bearer tk_x")],
                ErrorCode::SignatureRequired,
            ),
            (
                &[signed, ("origin", "https://evil.example")],
                ErrorCode::CrossSiteRequest,
            ),
            (&[signed, ("origin", "null")], ErrorCode::CrossSiteRequest),
            (
                &[signed, ("origin", "http://localhost:3000")],
                ErrorCode::CrossSiteRequest,
            ),
            (
                &[("origin", "https://evil.example")],
                ErrorCode::CrossSiteRequest,
            ),
            (
                &[signed, ("sec-fetch-site", "cross-site")],
                ErrorCode::CrossSiteRequest,
            ),
            (
                &[signed, ("sec-fetch-site", "same-site")],
                ErrorCode::CrossSiteRequest,
            ),
            (
                &[signed, ("sec-fetch-site", "same-origin")],
                ErrorCode::CrossSiteRequest,
            ),
            (
                &[
                    signed,
                    ("sec-fetch-site", "none"),
                    ("sec-fetch-site", "cross-site"),
                ],
                ErrorCode::CrossSiteRequest,
            ),
        ] {
            assert_eq!(
                check_invoke_caller(&headers(list)).map_err(|(code, _)| code),
                Err(code),
                "{list:?}"
            );
        }
    }

    fn app() -> Router {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
        ));
        let data = Arc::new(MemoryBrandData::new());
        let stats = Arc::new(crate::stats::GatewayStats::new(Some(data.clone())));
        crate::with_stats(
            crate::gateway(
                keys,
                data,
                EdgeLimits::default(),
                CaptureConfig::default(),
                McpConfig::default(),
            ),
            stats,
        )
    }

    async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn invoke(host: &str, payload: &Value) -> Request<Body> {
        Request::post("/2015-03-31/functions/keys/invocations")
            .header("host", host)
            .header("authorization", EXAMPLE_SIGV4)
            .header("x-amz-date", "20261202T135710Z")
            .header(
                "user-agent",
                "aws-cli/1.36.40 Python/3.11.2 Linux botocore/1.35.99",
            )
            .body(Body::from(payload.to_string()))
            .unwrap()
    }

    fn get(host: &str, path: &str) -> Request<Body> {
        Request::get(path)
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn every_loopback_host_reaches_every_surface() {
        let app = app();
        // The MCP server also checks `Host`, against TRCKER_MCP_ALLOWED_HOSTS (by default
        // localhost, 127.0.0.1 and ::1): a narrower list, which 127.0.0.7 is not on.
        for (index, (host, mcp)) in [
            ("localhost:3000", true),
            ("127.0.0.1:3000", true),
            ("[::1]:3000", true),
            ("LOCALHOST", true),
            ("127.0.0.7", false),
        ]
        .into_iter()
        .enumerate()
        {
            let brand = format!("host-{index}");
            let (status, _, created) = send(
                &app,
                invoke(
                    host,
                    &json!({"action": "create_brand", "brand_id": brand, "name": "Host"}),
                ),
            )
            .await;
            assert_eq!(
                (status, &created["brand"]["brand_id"]),
                (StatusCode::OK, &json!(brand)),
                "{host}: {created}"
            );
            let (_, _, generated) = send(
                &app,
                invoke(host, &json!({"action": "generate", "brand_id": brand})),
            )
            .await;
            let key = generated["key"]
                .as_str()
                .unwrap_or_else(|| panic!("{host}: {generated}"));

            let (status, _, health) = send(&app, get(host, "/api/public/health")).await;
            assert_eq!(status, StatusCode::OK, "{host}: {health}");
            let whoami = Request::get("/api/public/whoami")
                .header("host", host)
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap();
            let (status, _, whoami) = send(&app, whoami).await;
            assert_eq!(
                (status, &whoami["brand_id"]),
                (StatusCode::OK, &json!(brand)),
                "{host}"
            );
            // Capture: refused for its body, not for the Host.
            let capture = Request::post("/api/clicks/capture")
                .header("host", host)
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"click_id":"host-check","offer":"nowhere"}"#))
                .unwrap();
            let (status, _, answer) = send(&app, capture).await;
            assert_ne!(
                answer["error"]["code"], "host_not_allowed",
                "{host}: {status} {answer}"
            );
            if mcp {
                let tools = Request::post("/api/mcp")
                    .header("host", host)
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .body(Body::from(
                        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
                    ))
                    .unwrap();
                let (status, _, tools) = send(&app, tools).await;
                assert!(
                    tools["result"]["tools"].is_array(),
                    "{host}: {status} {tools}"
                );
            }
            let (status, _, stats) = send(&app, get(host, crate::stats::STATS_PATH)).await;
            assert_eq!(status, StatusCode::OK, "{host}: {stats}");
        }
    }

    #[tokio::test]
    async fn a_signed_invoke_is_served_and_a_foreign_host_is_refused_on_the_stats_route_too() {
        let app = app();
        let (status, headers, body) = send(
            &app,
            invoke(
                "127.0.0.1:3000",
                &json!({"action": "create_brand", "brand_id": "signed", "name": "Signed"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["brand"]["brand_id"], "signed");
        assert!(headers.get("x-amzn-errortype").is_none());
        // Past the checks, the Invoke API's own answers are unchanged: an unknown function is
        // Lambda's 404.
        let other = Request::post("/2015-03-31/functions/other/invocations")
            .header("host", "localhost")
            .header("authorization", EXAMPLE_SIGV4)
            .body(Body::from("{}"))
            .unwrap();
        let (status, headers, _) = send(&app, other).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");

        let (status, headers, body) =
            send(&app, get("evil.example:3000", crate::stats::STATS_PATH)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], "host_not_allowed");
        assert_eq!(headers["x-amzn-errortype"], "host_not_allowed");
        // An absolute-form target names the host too, and it wins over `Host`.
        let absolute = Request::get("http://evil.example/api/public/health")
            .header("host", "localhost")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = send(&app, absolute).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (StatusCode::FORBIDDEN, &json!("host_not_allowed"))
        );
        let no_host = Request::get("/api/public/health")
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = send(&app, no_host).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let two_hosts = Request::get("/api/public/health")
            .header("host", "localhost")
            .header("host", "evil.example")
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = send(&app, two_hosts).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
