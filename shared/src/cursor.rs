//! Opaque pagination cursors: a store position signed with HMAC and bound to the brand that
//! minted it, so a tampered cursor or another brand's cursor is refused before any store call.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::hashing::KeyHasher;
use crate::ids::BrandId;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longer cursors than this are never minted, so they are refused before decoding.
pub const MAX_CURSOR_LEN: usize = 512;

/// The cursor is not one this service minted for this brand. One variant on purpose: the answer
/// must not tell a foreign cursor from a forged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is invalid: pass back the next_cursor value from the previous page unchanged")]
pub struct InvalidCursor;

#[derive(Clone)]
pub struct CursorCodec {
    signing_key: Hmac<Sha256>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(<redacted>)")
    }
}

impl CursorCodec {
    pub fn new(hasher: &KeyHasher) -> Self {
        Self {
            signing_key: Hmac::new_from_slice(hasher.cursor_signing_key())
                .expect("HMAC accepts keys of any length"),
        }
    }

    pub fn encode(&self, brand_id: &BrandId, position: &str) -> String {
        let brand = brand_id.as_str().as_bytes();
        let mut payload = Vec::with_capacity(2 + brand.len() + position.len() + TAG_LEN);
        payload.push(VERSION);
        // Brand ids are at most 64 bytes, so the length fits in one byte.
        payload.push(u8::try_from(brand.len()).unwrap_or(u8::MAX));
        payload.extend_from_slice(brand);
        payload.extend_from_slice(position.as_bytes());
        let tag = self.tag(&payload);
        payload.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// Returns the store position if `cursor` was minted by this service for `brand_id`.
    pub fn decode(&self, brand_id: &BrandId, cursor: &str) -> Result<String, InvalidCursor> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(InvalidCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
        if bytes.len() < 2 + TAG_LEN {
            return Err(InvalidCursor);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut verifier = self.signing_key.clone();
        verifier.update(payload);
        verifier
            .verify_truncated_left(tag)
            .map_err(|_| InvalidCursor)?;
        let [version, brand_len, rest @ ..] = payload else {
            return Err(InvalidCursor);
        };
        let brand_len = usize::from(*brand_len);
        if *version != VERSION || rest.len() < brand_len {
            return Err(InvalidCursor);
        }
        let (brand, position) = rest.split_at(brand_len);
        if brand != brand_id.as_str().as_bytes() {
            return Err(InvalidCursor);
        }
        String::from_utf8(position.to_vec()).map_err(|_| InvalidCursor)
    }

    fn tag(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.signing_key.clone();
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::Pepper;

    fn codec() -> CursorCodec {
        CursorCodec::new(&KeyHasher::new(&Pepper::insecure_dev()))
    }

    fn brand(id: &str) -> BrandId {
        BrandId::parse(id).unwrap()
    }

    #[test]
    fn round_trips_for_the_minting_brand() {
        let cursor = codec().encode(&brand("acme"), "key_0000000000010000beef");
        assert_eq!(
            codec().decode(&brand("acme"), &cursor),
            Ok("key_0000000000010000beef".to_owned())
        );
        assert!(!cursor.contains("acme"), "cursors are opaque");
    }

    #[test]
    fn refuses_other_brands_tampering_truncation_and_garbage() {
        let codec = codec();
        let cursor = codec.encode(&brand("acme"), "key_0000000000010000beef");
        assert_eq!(codec.decode(&brand("globex"), &cursor), Err(InvalidCursor));
        assert_eq!(codec.decode(&brand("acm"), &cursor), Err(InvalidCursor));
        assert_eq!(
            codec.decode(&brand("acme"), &cursor[..cursor.len() - 2]),
            Err(InvalidCursor)
        );
        let mut tampered = cursor.clone().into_bytes();
        tampered[4] = if tampered[4] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            codec.decode(&brand("acme"), &String::from_utf8(tampered).unwrap()),
            Err(InvalidCursor)
        );
        for garbage in ["", "!!!", "AAAA", &"A".repeat(600), "é"] {
            assert_eq!(codec.decode(&brand("acme"), garbage), Err(InvalidCursor));
        }
    }

    #[test]
    fn a_cursor_signed_under_another_pepper_is_refused() {
        let other = CursorCodec::new(&KeyHasher::new(&Pepper::from_bytes(vec![9; 32]).unwrap()));
        let cursor = other.encode(&brand("acme"), "key_0000000000010000beef");
        assert_eq!(codec().decode(&brand("acme"), &cursor), Err(InvalidCursor));
    }
}
