//! The error every HTTP handler returns: a stable code, a message, and the headers its status
//! calls for (`WWW-Authenticate` on 401, `Retry-After` on 429 and 503).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cursor::InvalidCursor;
use crate::error::{ErrorBody, ErrorCode};
use crate::program::ProgramError;
use crate::store::StoreError;

/// Seconds a client should wait after a transient store failure.
pub const STORE_RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_seconds: match code {
                ErrorCode::StoreUnavailable => Some(STORE_RETRY_AFTER_SECONDS),
                _ => None,
            },
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ProgramError> for ApiError {
    fn from(error: ProgramError) -> Self {
        Self::new(error.code, error.message)
    }
}

/// Store failures are classified once, as the program's errors are.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ProgramError::from(error).into()
    }
}

impl From<InvalidCursor> for ApiError {
    fn from(error: InvalidCursor) -> Self {
        ProgramError::from(error).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody::new(self.code, self.message);
        let mut response = (status, Json(body.to_json())).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
