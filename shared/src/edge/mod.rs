//! What every HTTP function shares at its edge: the caller's request context as API Gateway
//! reports it, typed API errors, bearer authentication with audit and rate limiting, and the
//! activity log writer.

pub mod audit;
pub mod auth;
pub mod config;
pub mod context;
pub mod error;
pub mod rate_limit;
