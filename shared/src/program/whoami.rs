//! The calling key as its holder may see it: brand, key id and fingerprint (never the key).

use serde::Serialize;

use crate::keys::Principal;

#[derive(Debug, Serialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct Whoami {
    pub brand_id: String,
    pub key_id: String,
    pub fingerprint: String,
}

impl From<&Principal> for Whoami {
    fn from(principal: &Principal) -> Self {
        Self {
            brand_id: principal.brand_id.to_string(),
            key_id: principal.key_id.to_string(),
            fingerprint: principal.fingerprint.to_string(),
        }
    }
}
