//! Request extractors with the public API's error contract: JSON bodies (1 MB limit, unknown
//! fields rejected), the `{id}` path segment, and query pairs checked against the names a route
//! accepts (the typed list queries are built from them in `trcker_shared::program`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use trcker_shared::edge::error::ApiError;
use trcker_shared::error::ErrorCode;

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "the request body is empty: send a JSON object",
            ));
        }
        // serde reads a struct from a JSON array too (fields by position): `[null, null]` would
        // be a valid update. Bodies are objects.
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid("the request body must be a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))
    }
}

/// The `{id}` segment of a path. One that does not even decode cannot name anything: it gets the
/// same JSON 404 as a missing id, not the framework's plain-text 400.
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IdPath(id))
            .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such resource"))
    }
}

/// The query string as name/value pairs, refusing names not in `allowed`.
pub fn query_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    // The same decoding as axum's `Query` (form-urlencoded: `+` is a space, undecodable
    // escapes are kept as they are), without writing the query into a new URI first.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    for (name, _) in &pairs {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::invalid(format!(
                "unknown query parameter {:?}: allowed are {}",
                name.chars().take(64).collect::<String>(),
                allowed.join(", ")
            )));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_as_axums_query_decodes_them() {
        for query in [
            "limit=5&cursor=abc",
            "a=1&&b=2&",
            "from=2026-01-01T00%3A00%3A00Z&to=x+y",
            "name=%zz%4&bare&=empty&caf%C3%A9=%E2%82%AC",
            "bad=%FF%FE&plus=a%2Bb",
            "",
        ] {
            let uri: axum::http::Uri = format!("/?{query}").parse().unwrap();
            let axum::extract::Query(expected) =
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).unwrap();
            let names: Vec<&str> = expected.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(
                query_params(Some(query), &names).unwrap(),
                expected,
                "{query}"
            );
        }
    }

    #[test]
    fn unknown_query_parameters_are_refused() {
        assert!(query_params(Some("limit=5&cursor=x"), &["limit", "cursor"]).is_ok());
        assert!(query_params(Some("limit=5&sort=asc"), &["limit", "cursor"]).is_err());
        assert!(query_params(None, &[]).unwrap().is_empty());
    }
}
