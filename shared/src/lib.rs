//! The crate every Trcker edge function shares: the brand API key format, its one-way hashing,
//! verification against DynamoDB with a short per-container cache, and the key lifecycle.

pub mod bootstrap;
pub mod brand_data;
pub mod cache;
pub mod caller_text;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod cursor;
pub mod edge;
pub mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod faulty_edge;
pub mod hashing;
pub mod ids;
pub mod keys;
pub mod program;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod token;
