//! Brand API key format: generation from the OS CSPRNG and offline validation (length, prefix,
//! alphabet, CRC32 checksum) so that mistyped or random strings are rejected without a lookup.

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;

/// Every key starts with this prefix, so secret scanners can find leaked keys.
pub const KEY_PREFIX: &str = "tk_";
/// Characters after the prefix: 34 random + 6 checksum.
pub const KEY_BODY_LEN: usize = 40;
/// Total length of a well-formed key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + KEY_BODY_LEN;
const RANDOM_LEN: usize = 34;
const CHECKSUM_LEN: usize = KEY_BODY_LEN - RANDOM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The largest multiple of 62 that fits in a byte: bytes at or above it are redrawn so that every
/// character is uniformly distributed (no modulo bias).
const UNBIASED_BYTE_LIMIT: u8 = 248;

/// Why a presented token is not a well-formed key. Checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the API key is empty")]
    Empty,
    #[error("an API key is exactly {KEY_LEN} characters long")]
    WrongLength,
    #[error("an API key starts with \"{KEY_PREFIX}\"")]
    WrongPrefix,
    #[error("an API key contains only the characters 0-9, A-Z and a-z after its prefix")]
    InvalidCharacter,
    #[error("the API key's checksum does not match: it was probably mistyped or truncated")]
    ChecksumMismatch,
}

/// The operating system's random source failed; no key can be made safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomSourceError(String);

impl RandomSourceError {
    pub(crate) fn new(reason: String) -> Self {
        Self(reason)
    }
}

/// A plaintext key. It exists only between generation and the one response that shows it, and
/// it never prints: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextKey(String);

impl PlaintextKey {
    /// The key itself. Call this only to hash it or to put it in the generation response.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextKey(tk_<redacted>)")
    }
}

impl fmt::Display for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tk_<redacted>")
    }
}

/// A presented token that passed every offline check. It borrows the caller's string and, like
/// [`PlaintextKey`], never prints.
#[derive(Clone, Copy)]
pub struct WellFormedKey<'a>(&'a str);

impl<'a> WellFormedKey<'a> {
    /// The token, for hashing only.
    pub fn expose_secret(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for WellFormedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WellFormedKey(tk_<redacted>)")
    }
}

/// Draws a new key: 34 uniformly random base62 characters from the OS CSPRNG (about 202 bits)
/// followed by their 6-character checksum.
pub fn generate_key() -> Result<PlaintextKey, RandomSourceError> {
    let mut random_chars = [0u8; RANDOM_LEN];
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < RANDOM_LEN {
        OsRng
            .try_fill_bytes(&mut pool)
            .map_err(|error| RandomSourceError::new(error.to_string()))?;
        for byte in pool {
            if byte < UNBIASED_BYTE_LIMIT && filled < RANDOM_LEN {
                random_chars[filled] = BASE62[usize::from(byte % 62)];
                filled += 1;
            }
        }
    }
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(KEY_PREFIX);
    // Both parts are ASCII from BASE62, so the conversions below cannot fail.
    key.extend(random_chars.iter().map(|&b| char::from(b)));
    key.extend(checksum_of(&random_chars).iter().map(|&b| char::from(b)));
    Ok(PlaintextKey(key))
}

/// A random number from the OS CSPRNG, for ids and retry jitter.
pub fn random_u64() -> Result<u64, RandomSourceError> {
    OsRng
        .try_next_u64()
        .map_err(|error| RandomSourceError::new(error.to_string()))
}

/// Validates a presented token offline: exact length, prefix, alphabet, then checksum.
pub fn parse_key(token: &str) -> Result<WellFormedKey<'_>, TokenError> {
    let bytes = token.as_bytes();
    if bytes.is_empty() {
        return Err(TokenError::Empty);
    }
    if bytes.len() != KEY_LEN {
        return Err(TokenError::WrongLength);
    }
    let (prefix, body) = bytes.split_at(KEY_PREFIX.len());
    if prefix != KEY_PREFIX.as_bytes() {
        return Err(TokenError::WrongPrefix);
    }
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return Err(TokenError::InvalidCharacter);
    }
    let (random_part, checksum) = body.split_at(RANDOM_LEN);
    if checksum != checksum_of(random_part) {
        return Err(TokenError::ChecksumMismatch);
    }
    Ok(WellFormedKey(token))
}

/// CRC32 of the random part, written as 6 base62 digits, most significant first, zero-padded.
/// 62^6 exceeds 2^32, so every CRC value fits.
fn checksum_of(random_part: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random_part);
    let mut digits = [BASE62[0]; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_key() -> String {
        generate_key().unwrap().expose_secret().to_owned()
    }

    #[test]
    fn generated_keys_have_the_documented_shape_and_parse() {
        for _ in 0..200 {
            let key = valid_key();
            assert_eq!(key.len(), 43);
            assert!(key.starts_with("tk_"));
            assert!(key[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(parse_key(&key).is_ok(), "generated key failed to parse");
        }
    }

    #[test]
    fn generated_keys_differ() {
        let keys: std::collections::HashSet<String> = (0..1000).map(|_| valid_key()).collect();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn every_base62_character_appears_in_generated_keys() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            seen.extend(valid_key()[3..37].bytes());
        }
        assert_eq!(
            seen.len(),
            62,
            "the random part should use the whole alphabet"
        );
    }

    #[test]
    fn checksum_matches_crc32_in_base62() {
        let random = b"0000000000000000000000000000000000";
        let crc = crc32fast::hash(random);
        let mut expected = String::new();
        let mut v = crc;
        for _ in 0..6 {
            expected.insert(0, char::from(BASE62[(v % 62) as usize]));
            v /= 62;
        }
        assert_eq!(checksum_of(random).to_vec(), expected.into_bytes());
    }

    #[test]
    fn rejects_each_malformation_with_its_own_error() {
        let key = valid_key();
        assert_eq!(parse_key("").unwrap_err(), TokenError::Empty);
        assert_eq!(parse_key(&key[..42]).unwrap_err(), TokenError::WrongLength);
        assert_eq!(
            parse_key(&format!("{key}a")).unwrap_err(),
            TokenError::WrongLength
        );
        assert_eq!(
            parse_key(&"a".repeat(10 * 1024)).unwrap_err(),
            TokenError::WrongLength
        );
        assert_eq!(
            parse_key(&format!("tr_{}", &key[3..])).unwrap_err(),
            TokenError::WrongPrefix
        );
        assert_eq!(
            parse_key(&format!("TK_{}", &key[3..])).unwrap_err(),
            TokenError::WrongPrefix
        );
        assert_eq!(
            parse_key(&format!("tk_-{}", &key[4..])).unwrap_err(),
            TokenError::InvalidCharacter
        );
        // 'é' is two bytes: keep the byte length at 43 so the alphabet check is what fails.
        assert_eq!(
            parse_key(&format!("tk_é{}", &key[5..])).unwrap_err(),
            TokenError::InvalidCharacter
        );
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = valid_key();
        for position in 3..43 {
            let mut bytes = key.clone().into_bytes();
            bytes[position] = if bytes[position] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse_key(&typo).unwrap_err(),
                TokenError::ChecksumMismatch,
                "typo at {position}"
            );
        }
    }

    #[test]
    fn swapped_adjacent_characters_fail_the_checksum() {
        let key = valid_key();
        let mut bytes = key.clone().into_bytes();
        let (a, b) = (5, 6);
        if bytes[a] != bytes[b] {
            bytes.swap(a, b);
            let swapped = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse_key(&swapped).unwrap_err(),
                TokenError::ChecksumMismatch
            );
        }
    }

    #[test]
    fn plaintext_never_prints() {
        let key = generate_key().unwrap();
        let secret = key.expose_secret().to_owned();
        assert!(!format!("{key:?}").contains(&secret[3..]));
        assert!(!format!("{key}").contains(&secret[3..]));
        let parsed = parse_key(&secret).unwrap();
        assert!(!format!("{parsed:?}").contains(&secret[3..]));
    }
}
