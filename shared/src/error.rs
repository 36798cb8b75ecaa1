//! The stable error codes every function returns, with their HTTP status, in one place. Clients
//! match on `code`; `message` is for people.

use serde::Serialize;

/// A stable, machine-readable error code. Renaming one is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    UnknownAction,
    InvalidCursor,
    /// An API key (or a parameter named like one) in the URL: keys belong in headers only.
    CredentialsInUrl,
    /// No usable credentials: missing, malformed, unknown or revoked key.
    Unauthorized,
    ConflictingCredentials,
    /// A browser origin that capture's CORS configuration does not allow.
    OriginNotAllowed,
    /// A request whose `Host` the edge does not trust, which is what a DNS-rebinding web page sends:
    /// to the local gateway (`trcker-local`), one that is not a loopback name or address; to the
    /// MCP function, one that is neither the host API Gateway received the request on nor one of
    /// `TRCKER_MCP_ALLOWED_HOSTS`.
    HostNotAllowed,
    /// A browser's request (`Origin`, `Sec-Fetch-Site`) to the local gateway's Lambda Invoke
    /// path, which only the AWS CLI and SDKs call.
    CrossSiteRequest,
    /// A call to the local gateway's Lambda Invoke path without a SigV4 `Authorization` header.
    SignatureRequired,
    NotFound,
    BrandNotFound,
    AlreadyExists,
    KeyLimitReached,
    /// The resource changed since it was read (concurrent update); re-read and retry.
    Conflict,
    MethodNotAllowed,
    PayloadTooLarge,
    /// Well-formed but semantically wrong (e.g. a reference to something that does not exist).
    UnprocessableEntity,
    RateLimited,
    StoreUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnknownAction => "unknown_action",
            Self::InvalidCursor => "invalid_cursor",
            Self::CredentialsInUrl => "credentials_in_url",
            Self::Unauthorized => "unauthorized",
            Self::ConflictingCredentials => "conflicting_credentials",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::HostNotAllowed => "host_not_allowed",
            Self::CrossSiteRequest => "cross_site_request",
            Self::SignatureRequired => "signature_required",
            Self::NotFound => "not_found",
            Self::BrandNotFound => "brand_not_found",
            Self::AlreadyExists => "already_exists",
            Self::KeyLimitReached => "key_limit_reached",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnprocessableEntity => "unprocessable_entity",
            Self::RateLimited => "rate_limited",
            Self::StoreUnavailable => "store_unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status the code travels with on HTTP surfaces.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest
            | Self::UnknownAction
            | Self::InvalidCursor
            | Self::CredentialsInUrl => 400,
            Self::Unauthorized | Self::ConflictingCredentials => 401,
            Self::OriginNotAllowed
            | Self::HostNotAllowed
            | Self::CrossSiteRequest
            | Self::SignatureRequired => 403,
            Self::NotFound | Self::BrandNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::AlreadyExists | Self::KeyLimitReached | Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnprocessableEntity => 422,
            Self::RateLimited => 429,
            Self::StoreUnavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// `{"error":{"code":…,"message":…}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    /// Messages may quote caller input; anything key-shaped in them is redacted here, once, for
    /// every surface.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = crate::caller_text::redact_keys(&message).into_owned();
        Self {
            error: ErrorDetail { code, message },
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": { "code": self.error.code.as_str(), "message": self.error.message }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_as_str_agree() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::UnknownAction,
            ErrorCode::InvalidCursor,
            ErrorCode::CredentialsInUrl,
            ErrorCode::Unauthorized,
            ErrorCode::ConflictingCredentials,
            ErrorCode::OriginNotAllowed,
            ErrorCode::HostNotAllowed,
            ErrorCode::CrossSiteRequest,
            ErrorCode::SignatureRequired,
            ErrorCode::NotFound,
            ErrorCode::BrandNotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::KeyLimitReached,
            ErrorCode::Conflict,
            ErrorCode::MethodNotAllowed,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnprocessableEntity,
            ErrorCode::RateLimited,
            ErrorCode::StoreUnavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn body_shape() {
        let body = ErrorBody::new(ErrorCode::NotFound, "no such key");
        assert_eq!(
            body.to_json(),
            serde_json::json!({"error":{"code":"not_found","message":"no such key"}})
        );
        assert_eq!(serde_json::to_value(&body).unwrap(), body.to_json());
    }
}
