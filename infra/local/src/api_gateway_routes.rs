//! The API Gateway's route table in the local gateway: a request that no route of
//! `infra/template.yaml` matches (the functions' `ROUTES`, which the template contract test holds
//! equal to the template) gets API Gateway's own 404 and never reaches a function, as in AWS.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The Lambda Invoke API path, where the local gateway serves the key-management function.
pub const INVOKE_PATH: &str = "/2015-03-31/functions/{function}/invocations";

/// Routes only the local gateway has: the Invoke API (in AWS that is Lambda's own API, not the
/// API Gateway's).
pub const LOCAL_ROUTES: &[(&str, &str)] = &[("POST", INVOKE_PATH)];

/// What API Gateway (HTTP API) answers a request that matches no route.
pub const NOT_FOUND_BODY: &str = r#"{"message":"Not Found"}"#;

/// Whether a route of the template (or [`LOCAL_ROUTES`]) takes `method` on `path`.
pub fn is_routed(method: &str, path: &str) -> bool {
    [
        trcker_public_api::ROUTES,
        trcker_capture::ROUTES,
        trcker_mcp::ROUTES,
        LOCAL_ROUTES,
    ]
    .into_iter()
    .flatten()
    .any(|(route_method, pattern)| {
        (*route_method == "ANY" || *route_method == method) && path_matches(pattern, path)
    })
}

/// API Gateway's path matching: literal segments match themselves, `{name}` one non-empty segment,
/// and a final greedy `{name+}` one or more segments.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return true,
            (Some(variable), Some(segment)) if variable.starts_with('{') => {
                if variable.ends_with("+}") {
                    return !segment.is_empty() || path_segments.any(|rest| !rest.is_empty());
                }
                if segment.is_empty() {
                    return false;
                }
            }
            (Some(literal), Some(segment)) if literal == segment => {}
            _ => return false,
        }
    }
}

/// Middleware: API Gateway's 404 for a request no route takes; any other goes on to its function.
pub async fn refuse_unrouted(request: Request, next: Next) -> Response {
    if is_routed(request.method().as_str(), request.uri().path()) {
        return next.run(request).await;
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        NOT_FOUND_BODY,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    //! API Gateway's path matching and the route table, case by case.

    use super::*;

    #[test]
    fn paths_match_as_api_gateway_matches_them() {
        let proxy = "/api/public/{proxy+}";
        for path in [
            "/api/public/whoami",
            "/api/public/partners/ptr_1",
            "/api/public/a/",
        ] {
            assert!(path_matches(proxy, path), "{path}");
        }
        for path in [
            "/api/public",
            "/api/public/",
            "/api/publicx/a",
            "/api/other/a",
            "/",
        ] {
            assert!(!path_matches(proxy, path), "{path}");
        }
        assert!(path_matches("/api/mcp", "/api/mcp"));
        for path in ["/api/mcp/", "/api/mcp/x", "/api", "/api/MCP"] {
            assert!(!path_matches("/api/mcp", path), "{path}");
        }
        assert!(path_matches(
            INVOKE_PATH,
            "/2015-03-31/functions/keys/invocations"
        ));
        assert!(!path_matches(
            INVOKE_PATH,
            "/2015-03-31/functions//invocations"
        ));
        assert!(!path_matches(
            INVOKE_PATH,
            "/2015-03-31/functions/a/b/invocations"
        ));
    }

    #[test]
    fn only_the_declared_methods_are_routed() {
        for (method, path) in [
            ("GET", "/api/public/whoami"),
            ("DELETE", "/api/public/partners/ptr_1"),
            ("POST", "/api/mcp"),
            ("GET", "/api/mcp"),
            ("DELETE", "/api/mcp"),
            ("POST", "/api/clicks/capture"),
            ("OPTIONS", "/api/clicks/capture"),
            ("POST", "/2015-03-31/functions/keys/invocations"),
        ] {
            assert!(is_routed(method, path), "{method} {path}");
        }
        for (method, path) in [
            ("PUT", "/api/mcp"),
            ("OPTIONS", "/api/mcp"),
            ("GET", "/api/clicks/capture"),
            ("PUT", "/api/clicks/capture"),
            ("GET", "/2015-03-31/functions/keys/invocations"),
            ("GET", "/"),
            ("GET", "/api/public"),
            ("GET", "/favicon.ico"),
        ] {
            assert!(!is_routed(method, path), "{method} {path}");
        }
    }
}
