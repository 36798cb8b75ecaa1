//! One request/response client for tests: it sends a request (method, path, headers, body) to a
//! function's router in process, with the API Gateway request context the edge reads, or to a
//! server at a base URL over HTTP/1.1, and returns status, headers and body bytes.
//!
//! ```text
//! let client = TestClient::router(router);
//! let created = client.post("/api/public/partners").bearer(&key).json(body).await;
//! assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
//! let id = created.json()["id"].as_str().unwrap();
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::clock::{Clock, SystemClock};
use crate::edge::context::{api_gateway_context, request_id_with_prefix};

/// The caller's address in the API Gateway context of in-process requests (TEST-NET-1).
pub const DEFAULT_SOURCE_IP: &str = "192.0.2.10";
/// The `User-Agent` a client sends (header and context) unless told otherwise.
pub const DEFAULT_USER_AGENT: &str = "http-test/1.0";
/// Larger answers fail the test: no route should write one.
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// A base-URL request that takes longer (connect, or the whole exchange) fails the test.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a [`TestClient`] sends its requests.
#[derive(Clone)]
enum Transport {
    /// A router called in process, as the Lambda adapter calls it.
    Router(Router),
    /// A server over TCP: `host:port`, and a path prefix put before every request's path.
    BaseUrl { authority: String, prefix: String },
}

/// Sends test requests to one place, with a caller identity (source IP, user agent) that each
/// request may override.
#[derive(Clone)]
pub struct TestClient {
    transport: Transport,
    source_ip: String,
    user_agent: Option<String>,
    json_answers: bool,
}

impl TestClient {
    /// Calls `router` in process; every request carries an API Gateway (HTTP API) context with
    /// the client's source IP and user agent and a fresh request id, unless it says otherwise.
    pub fn router(router: Router) -> Self {
        Self::with_transport(Transport::Router(router))
    }

    /// Calls the server at `base_url` (`http://host:port`, optionally with a path prefix) over
    /// HTTP/1.1, one connection a request. The server sees the connection's own address: the
    /// client's source IP and a request's [`TestRequest::without_context`] do not apply.
    pub fn base_url(base_url: &str) -> Self {
        let rest = base_url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("a test base URL is plain http://host:port, got {base_url}"));
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        assert!(!authority.is_empty(), "no host in {base_url}");
        Self::with_transport(Transport::BaseUrl {
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    fn with_transport(transport: Transport) -> Self {
        Self {
            transport,
            source_ip: DEFAULT_SOURCE_IP.to_owned(),
            user_agent: Some(DEFAULT_USER_AGENT.to_owned()),
            json_answers: false,
        }
    }

    /// The source IP of every request's API Gateway context (in process only).
    pub fn with_source_ip(mut self, source_ip: &str) -> Self {
        self.source_ip = source_ip.to_owned();
        self
    }

    /// The user agent every request sends, in its header and its context.
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = Some(user_agent.to_owned());
        self
    }

    /// Every answer's body must be JSON (or empty): read as it arrives, failing the test quoting
    /// the body otherwise, whether or not the test looks at it.
    pub fn expect_json(mut self) -> Self {
        self.json_answers = true;
        self
    }

    /// A request to `path` (with any query string), to build on and then `.await`.
    pub fn request(&self, method: Method, path: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: Vec::new(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: None,
            context: true,
        }
    }

    pub fn get(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::DELETE, path)
    }

    /// Sends `request` exactly as built: nothing added, not even a context (a request the Lambda
    /// adapter made from an API Gateway event carries its own).
    pub async fn send_request(&self, request: Request<Body>) -> TestResponse {
        let response = match &self.transport {
            Transport::Router(router) => in_process(router, request).await,
            Transport::BaseUrl { authority, prefix } => {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .expect("the request body reads");
                let target = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |target| target.as_str());
                over_http(
                    authority,
                    &parts.method,
                    &format!("{prefix}{target}"),
                    &parts.headers,
                    &body,
                )
                .await
            }
        };
        self.checked(response)
    }

    fn checked(&self, response: TestResponse) -> TestResponse {
        if self.json_answers {
            response.json();
        }
        response
    }
}

/// One request being built; `.await` (or [`TestRequest::send`]) sends it.
#[must_use = "a request does nothing until it is awaited"]
pub struct TestRequest<'a> {
    client: &'a TestClient,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    source_ip: String,
    user_agent: Option<String>,
    request_id: Option<String>,
    context: bool,
}

impl<'a> TestRequest<'a> {
    /// Adds a header (repeatable: a second call with the same name adds a second value).
    /// `value` may hold any bytes a header can (visible ASCII, spaces, obs-text).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|_| panic!("not a header name: {name:?}"));
        let value = HeaderValue::from_bytes(value.as_ref())
            .unwrap_or_else(|_| panic!("not a header value for {name}"));
        self.headers.append(name, value);
        self
    }

    /// `Authorization: Bearer <key>`.
    pub fn bearer(self, key: &str) -> Self {
        self.header(header::AUTHORIZATION.as_str(), format!("Bearer {key}"))
    }

    /// `body` as JSON, with `Content-Type: application/json`.
    pub fn json(self, body: impl serde::Serialize) -> Self {
        let bytes = serde_json::to_vec(&body).expect("a test body serializes");
        self.header(header::CONTENT_TYPE.as_str(), "application/json")
            .body(bytes)
    }

    /// [`Self::json`] when there is a body, nothing otherwise.
    pub fn json_opt(self, body: Option<impl serde::Serialize>) -> Self {
        match body {
            Some(body) => self.json(body),
            None => self,
        }
    }

    /// The body, as these bytes (no content type).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = bytes.into();
        self
    }

    /// This request's user agent, in its header and its context.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = Some(user_agent.to_owned());
        self
    }

    /// No `User-Agent` header, and none in the context.
    pub fn without_user_agent(mut self) -> Self {
        self.user_agent = None;
        self
    }

    /// This request's source IP in its context (in process only).
    pub fn source_ip(mut self, source_ip: &str) -> Self {
        self.source_ip = source_ip.to_owned();
        self
    }

    /// This request id in its context, instead of a fresh one (in process only).
    pub fn request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// No API Gateway context at all, as if the router were reached some other way (in
    /// process only).
    pub fn without_context(mut self) -> Self {
        self.context = false;
        self
    }

    pub async fn send(self) -> TestResponse {
        let mut headers = HeaderMap::new();
        if let Some(agent) = &self.user_agent {
            headers.insert(
                header::USER_AGENT,
                HeaderValue::from_str(agent).expect("a user agent is a header value"),
            );
        }
        // Headers the test set itself come after, and win over the defaults.
        for name in self.headers.keys() {
            headers.remove(name);
        }
        headers.extend(self.headers);
        let response = match &self.client.transport {
            Transport::Router(router) => {
                let mut request = Request::builder()
                    .method(self.method.clone())
                    .uri(&self.path)
                    .body(Body::from(self.body))
                    .unwrap_or_else(|error| panic!("{} {}: {error}", self.method, self.path));
                *request.headers_mut() = headers;
                if self.context {
                    let path = request.uri().path().to_owned();
                    let request_id = self
                        .request_id
                        .unwrap_or_else(|| request_id_with_prefix("req"));
                    request.extensions_mut().insert(api_gateway_context(
                        &self.method,
                        &path,
                        &self.source_ip,
                        self.user_agent.as_deref(),
                        &request_id,
                        SystemClock.now_ms(),
                    ));
                }
                in_process(router, request).await
            }
            Transport::BaseUrl { authority, prefix } => {
                over_http(
                    authority,
                    &self.method,
                    &format!("{prefix}{}", self.path),
                    &headers,
                    &self.body,
                )
                .await
            }
        };
        self.client.checked(response)
    }
}

impl<'a> IntoFuture for TestRequest<'a> {
    type Output = TestResponse;
    type IntoFuture = Pin<Box<dyn Future<Output = TestResponse> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// An answer: status, headers and the body's bytes, with the body read as JSON on demand.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    json: OnceLock<Value>,
}

impl TestResponse {
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            headers,
            body,
            json: OnceLock::new(),
        }
    }

    /// The body as JSON (parsed once); `null` for an empty body. A body that is not JSON fails
    /// the test, quoting it.
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            if self.body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&self.body)
                    .unwrap_or_else(|_| panic!("{}: not JSON: {}", self.status, self.text()))
            }
        })
    }

    /// The body as text, any invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of a JSON error answer; any other answer fails the test.
    pub fn error_code(&self) -> &str {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error: {} {}", self.status, self.text()))
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The transient-store answer (see [`crate::faulty_edge::JsonResponse::assert_unavailable`]).
    pub fn assert_unavailable(&self, what: &str) {
        crate::faulty_edge::JsonResponse {
            status: self.status,
            headers: self.headers.clone(),
            body: self.json().clone(),
        }
        .assert_unavailable(what);
    }
}

async fn in_process(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("a router's service never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES)
        .await
        .expect("the answer's body reads, within the test limit");
    TestResponse::new(status, headers, body)
}

/// One HTTP/1.1 exchange on a connection of its own (`Connection: close`): the request written
/// while the answer is read, so a server that answers before reading the whole body (a 413) is
/// still heard.
async fn over_http(
    authority: &str,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> TestResponse {
    let what = format!("{method} http://{authority}{target}");
    let mut head = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    if !headers.contains_key(header::HOST) {
        head.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::CONNECTION {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let sends_length = !body.is_empty() || !matches!(*method, Method::GET | Method::HEAD);
    if sends_length {
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head.extend_from_slice(body);

    let exchange = async {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .unwrap_or_else(|error| panic!("{what}: cannot connect: {error}"));
        let (mut reader, mut writer) = stream.into_split();
        let write = async move {
            // A server may close after an early answer; what it said is read below.
            let _ = writer.write_all(&head).await;
            let _ = writer.flush().await;
            writer
        };
        let read = async {
            let mut raw = Vec::new();
            let result = reader.read_to_end(&mut raw).await;
            (raw, result)
        };
        let (_writer, (raw, result)) = tokio::join!(write, read);
        (raw, result)
    };
    let (raw, result) = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HTTP_TIMEOUT:?}"));
    match parse_response(&raw, *method == Method::HEAD) {
        Ok(response) => response,
        Err(problem) => panic!(
            "{what}: {problem} (read: {result:?}): {}",
            String::from_utf8_lossy(&raw[..raw.len().min(2_000)])
        ),
    }
}

/// An HTTP/1.1 answer as read to the end of the connection: interim (1xx) answers skipped, a
/// chunked body decoded, a body cut at its `Content-Length`.
fn parse_response(raw: &[u8], head_request: bool) -> Result<TestResponse, String> {
    let mut rest = raw;
    loop {
        let end = find(rest, b"\r\n\r\n").ok_or("no end of the response head")?;
        let head = &rest[..end];
        let after = &rest[end + 4..];
        let mut lines = head.split(|byte| *byte == b'\n').map(trim_cr);
        let status_line = lines.next().ok_or("no status line")?;
        let status_line = std::str::from_utf8(status_line).map_err(|_| "status line not text")?;
        let code = status_line
            .split(' ')
            .nth(1)
            .ok_or("no status code")?
            .parse::<u16>()
            .map_err(|_| "status code not a number")?;
        let status = StatusCode::from_u16(code).map_err(|_| "status code out of range")?;
        let mut headers = HeaderMap::new();
        for line in lines {
            let colon = line
                .iter()
                .position(|byte| *byte == b':')
                .ok_or("header line without a colon")?;
            let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| "not a header name")?;
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
                .map_err(|_| "not a header value")?;
            headers.append(name, value);
        }
        if status.is_informational() {
            rest = after;
            continue;
        }
        let body = if head_request
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Vec::new()
        } else if headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"chunked"))
        {
            dechunk(after)?
        } else if let Some(length) = headers.get(header::CONTENT_LENGTH) {
            let length: usize = length
                .to_str()
                .ok()
                .and_then(|length| length.parse().ok())
                .ok_or("content-length not a number")?;
            after
                .get(..length)
                .ok_or_else(|| format!("{} of {length} body bytes", after.len()))?
                .to_vec()
        } else {
            after.to_vec()
        };
        return Ok(TestResponse::new(status, headers, Bytes::from(body)));
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let end = find(rest, b"\r\n").ok_or("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(&rest[..end]).map_err(|_| "chunk size not text")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("chunk size {size_text:?}"))?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("a chunk cut short")?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|after| after.strip_prefix(b"\r\n"))
            .ok_or("a chunk without its line end")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};

    use super::*;

    /// What the router saw: method, path and query, user agent, context source IP, body.
    async fn echo(request: Request<Body>) -> axum::Json<Value> {
        use lambda_http::RequestExt;
        let (parts, body) = request.into_parts();
        let source_ip = crate::edge::context::context_source_ip(&parts);
        let context_id = match parts.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
                context.request_id.clone()
            }
            _ => None,
        };
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        axum::Json(serde_json::json!({
            "method": parts.method.as_str(),
            "target": parts.uri.path_and_query().map(|t| t.as_str()),
            "host": parts.headers.get("host").and_then(|v| v.to_str().ok()),
            "user_agent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()),
            "authorization": parts.headers.get("authorization").and_then(|v| v.to_str().ok()),
            "content_type": parts.headers.get("content-type").and_then(|v| v.to_str().ok()),
            "source_ip": source_ip,
            "request_id": context_id,
            "body": String::from_utf8_lossy(&body),
        }))
    }

    fn app() -> Router {
        Router::new()
            .route("/echo", post(echo).get(echo))
            .route("/prefix/echo", get(echo))
            .route(
                "/chunked",
                get(|| async {
                    let parts = ["{\"a\":", "[1,2,", "3]}"]
                        .map(|part| Ok::<_, std::io::Error>(Bytes::from_static(part.as_bytes())));
                    Body::from_stream(futures_util::stream::iter(parts))
                }),
            )
            .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
            .route("/text", get(|| async { "plain" }))
    }

    #[tokio::test]
    async fn in_process_requests_carry_the_api_gateway_context() {
        let client = TestClient::router(app()).with_source_ip("198.51.100.1");
        let echoed = client
            .post("/echo?x=1")
            .bearer("tk_example")
            .json(serde_json::json!({"n": 1}))
            .await;
        assert_eq!(echoed.status, StatusCode::OK, "{}", echoed.text());
        let seen = echoed.json();
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["target"], "/echo?x=1");
        assert_eq!(seen["user_agent"], DEFAULT_USER_AGENT);
        assert_eq!(seen["authorization"], "Bearer tk_example");
        assert_eq!(seen["content_type"], "application/json");
        assert_eq!(seen["source_ip"], "198.51.100.1");
        assert!(seen["request_id"].as_str().unwrap().starts_with("req-"));
        assert_eq!(seen["body"], "{\"n\":1}");

        let bare = client
            .get("/echo")
            .without_context()
            .without_user_agent()
            .await;
        assert_eq!(bare.json()["source_ip"], Value::Null);
        assert_eq!(bare.json()["user_agent"], Value::Null);
        let named = client.get("/echo").request_id("fixed").await;
        assert_eq!(named.json()["request_id"], "fixed");
        assert!(client.get("/empty").await.json().is_null());
    }

    #[tokio::test]
    async fn base_url_requests_go_over_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app()).await });
        let client = TestClient::base_url(&format!("http://{address}"));

        let echoed = client
            .post("/echo?x=1")
            .bearer("tk_example")
            .json(serde_json::json!({"n": 1}))
            .user_agent("over-http/1.0")
            .await;
        assert_eq!(echoed.status, StatusCode::OK, "{}", echoed.text());
        let seen = echoed.json();
        assert_eq!(seen["target"], "/echo?x=1");
        assert_eq!(seen["host"], address.to_string());
        assert_eq!(seen["user_agent"], "over-http/1.0");
        assert_eq!(seen["authorization"], "Bearer tk_example");
        assert_eq!(seen["body"], "{\"n\":1}");
        assert_eq!(echoed.header("content-type"), Some("application/json"));

        let chunked = client.get("/chunked").await;
        assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
        assert_eq!(chunked.json()["a"], serde_json::json!([1, 2, 3]));
        let empty = client.get("/empty").await;
        assert_eq!(empty.status, StatusCode::NO_CONTENT);
        assert!(empty.body.is_empty());
        let missing = client.get("/nothing").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        let prefixed = TestClient::base_url(&format!("http://{address}/prefix/"));
        let echoed = prefixed.get("/echo").await;
        assert_eq!(echoed.json()["target"], "/prefix/echo");
        let raw = Request::get("/echo?raw=1")
            .header("user-agent", "raw/1.0")
            .body(Body::empty())
            .unwrap();
        let echoed = client.send_request(raw).await;
        assert_eq!(echoed.json()["target"], "/echo?raw=1");
        assert_eq!(echoed.json()["user_agent"], "raw/1.0");
        server.abort();
    }

    #[tokio::test]
    async fn a_client_expecting_json_reads_every_answer() {
        let client = TestClient::router(app());
        assert_eq!(client.get("/text").await.text(), "plain");
        let strict = client.expect_json();
        assert!(strict.get("/empty").await.json().is_null());
        let refused = tokio::spawn(async move { strict.get("/text").await.status });
        let panic = refused.await.expect_err("a text answer fails the test");
        let message = panic.into_panic();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("not JSON: plain"), "{message}");
    }

    #[test]
    fn responses_parse_from_the_wire() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}trailing";
        let response = parse_response(raw, false).unwrap();
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(&response.body[..], b"{}");
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\n\r\n";
        assert_eq!(&parse_response(chunked, false).unwrap().body[..], b"abcd");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nab", false).is_err());
        assert!(parse_response(b"garbage", false).is_err());
    }
}
