//! One-way key hashing: HMAC-SHA256 under a pepper kept in AWS Secrets Manager, and the short
//! non-secret fingerprint that names a key in logs, listings and the audit trail.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Fewer bytes than this would make the pepper guessable; Secrets Manager generates far more.
pub const MIN_PEPPER_LEN: usize = 32;
/// Used only in local/dev mode, never in AWS: start-up says so loudly.
const INSECURE_DEV_PEPPER: &[u8] = b"trcker-insecure-dev-pepper-do-not-use-in-production";
const CURSOR_KEY_LABEL: &[u8] = b"trcker/cursor-signing-key/v1";
const FINGERPRINT_LABEL: &[u8] = b"trcker/fingerprint/v1";

/// Why a pepper could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum PepperError {
    #[error("the pepper secret is shorter than {MIN_PEPPER_LEN} bytes")]
    TooShort,
    #[error("the pepper secret `{secret_id}` has no SecretString value")]
    NoSecretString { secret_id: String },
    #[error("could not read the pepper secret `{secret_id}` from Secrets Manager: {reason}")]
    Fetch { secret_id: String, reason: String },
}

/// The HMAC key. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl Pepper {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, PepperError> {
        if bytes.len() < MIN_PEPPER_LEN {
            return Err(PepperError::TooShort);
        }
        Ok(Self(bytes))
    }

    /// A fixed, publicly known pepper for local runs and tests.
    pub fn insecure_dev() -> Self {
        Self(INSECURE_DEV_PEPPER.to_vec())
    }

    /// Reads the pepper once, at container init. The value is never logged.
    pub async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<Self, PepperError> {
        let output = client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|error| PepperError::Fetch {
                secret_id: secret_id.to_owned(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&error).to_string(),
            })?;
        let value = output
            .secret_string()
            .ok_or_else(|| PepperError::NoSecretString {
                secret_id: secret_id.to_owned(),
            })?;
        Self::from_bytes(value.as_bytes().to_vec())
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// HMAC-SHA256 of a key: the only thing stored about it. Equality is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex_decode(text)?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The non-secret name of the key: a hash of the hash, so it reveals nothing of the lookup
    /// value either.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_LABEL)
            .chain_update(self.0)
            .finalize();
        Fingerprint(format!("fp_{}", hex_encode(&digest[..6])))
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.fingerprint())
    }
}

/// `fp_` + 12 hex characters. Safe to log and show to the brand.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a fingerprint read back from storage; `None` if it does not have the shape.
    pub fn from_stored(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("fp_")?;
        (hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(text.into()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pre-keyed HMAC: hashing a key clones the keyed state instead of re-deriving it.
#[derive(Clone)]
pub struct KeyHasher {
    keyed: HmacSha256,
    cursor_signing_key: [u8; 32],
}

impl KeyHasher {
    pub fn new(pepper: &Pepper) -> Self {
        let keyed = HmacSha256::new_from_slice(&pepper.0).expect("HMAC accepts keys of any length");
        // A separate key for cursors, so a cursor tag can never be confused with a key hash.
        let cursor_signing_key = keyed
            .clone()
            .chain_update(CURSOR_KEY_LABEL)
            .finalize()
            .into_bytes()
            .into();
        Self {
            keyed,
            cursor_signing_key,
        }
    }

    /// Hashes a presented or generated token.
    pub fn hash(&self, token: &str) -> KeyHash {
        KeyHash(
            self.keyed
                .clone()
                .chain_update(token.as_bytes())
                .finalize()
                .into_bytes()
                .into(),
        )
    }

    pub(crate) fn cursor_signing_key(&self) -> &[u8; 32] {
        &self.cursor_signing_key
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher(<redacted>)")
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_keyed_by_the_pepper() {
        let a = KeyHasher::new(&Pepper::insecure_dev());
        let b = KeyHasher::new(&Pepper::from_bytes(vec![7; 32]).unwrap());
        assert_eq!(a.hash("tk_x"), a.hash("tk_x"));
        assert_ne!(a.hash("tk_x"), b.hash("tk_x"));
        assert_ne!(a.hash("tk_x"), a.hash("tk_y"));
    }

    #[test]
    fn hash_matches_a_reference_hmac() {
        let pepper = vec![0x0b; 32];
        let hasher = KeyHasher::new(&Pepper::from_bytes(pepper.clone()).unwrap());
        let mut reference = HmacSha256::new_from_slice(&pepper).unwrap();
        reference.update(b"tk_example");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hasher.hash("tk_example").0, expected);
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let hash = KeyHasher::new(&Pepper::insecure_dev()).hash("tk_x");
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(KeyHash::from_hex("zz"), None);
        assert_eq!(KeyHash::from_hex("abc"), None);
        assert_eq!(KeyHash::from_hex("ab"), None);
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        let hash = KeyHasher::new(&Pepper::insecure_dev()).hash("tk_x");
        let fingerprint = hash.fingerprint();
        assert_eq!(fingerprint.as_str().len(), 15);
        assert_eq!(fingerprint, hash.fingerprint());
        assert!(!hash.to_hex().contains(&fingerprint.as_str()[3..]));
        assert_eq!(
            Fingerprint::from_stored(fingerprint.as_str()),
            Some(fingerprint)
        );
        assert_eq!(Fingerprint::from_stored("fp_nothex!!!!!!"), None);
    }

    #[test]
    fn short_peppers_are_refused_and_debug_redacts() {
        assert!(matches!(
            Pepper::from_bytes(vec![1; 31]),
            Err(PepperError::TooShort)
        ));
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        assert!(!format!("{pepper:?}").contains("0123"));
        assert!(!format!("{:?}", KeyHasher::new(&pepper)).contains("0123"));
    }
}
