//! The affiliate program's domain: partners, offers, pricing rules and payout resolution,
//! conversions, fraud signals, clicks and the activity log, as plain operations over the brand
//! data store. Every operation is scoped to the brand it is given and returns a [`ProgramError`]
//! (a stable code and a message); the edge maps it to an HTTP status once, and the MCP server to a
//! tool error. No operation here sees an HTTP type.

use std::sync::Arc;

use crate::brand_data::BrandDataStore;
use crate::cursor::InvalidCursor;
use crate::error::ErrorCode;
use crate::keys::KeyService;
use crate::store::StoreError;

pub mod activity;
pub mod clicks;
pub mod conversions;
pub mod derived;
pub mod documents;
pub mod draft;
pub mod fraud;
pub mod offers;
pub mod paging;
pub mod partners;
pub mod pricing;
pub mod scoring;
pub mod validate;
pub mod whoami;

/// What the program's operations share: the key service (for the clock and the cursor codec), the
/// brand data store, and the one tunable the domain reads.
#[derive(Clone)]
pub struct Program {
    pub keys: Arc<KeyService>,
    pub data: Arc<dyn BrandDataStore>,
    /// A conversion sooner than this after its click raises a fraud signal.
    pub min_click_to_conversion_ms: i64,
    /// How long the delivery log keeps a record: a listing reads nothing older.
    pub activity_retention_days: u32,
}

/// Why a program operation was refused or could not be done: a stable code (one of
/// [`ErrorCode`]) and a message for whoever asked. Store failures arrive already classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ProgramError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProgramError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnprocessableEntity, message)
    }

    /// A failure that is nobody's input: logged where it happens, answered without detail.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<StoreError> for ProgramError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::new(ErrorCode::NotFound, "no such resource"),
            StoreError::AlreadyExists => Self::new(
                ErrorCode::AlreadyExists,
                "a resource with that value already exists",
            ),
            StoreError::Contention => Self::new(
                ErrorCode::Conflict,
                "the resource was changed by another request; read it again and retry",
            ),
            transient if transient.is_transient() => {
                tracing::warn!(error = %transient, "store unavailable");
                Self::new(
                    ErrorCode::StoreUnavailable,
                    "storage is temporarily unavailable; retry shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
        }
    }
}

impl From<InvalidCursor> for ProgramError {
    fn from(error: InvalidCursor) -> Self {
        Self::new(ErrorCode::InvalidCursor, error.to_string())
    }
}
