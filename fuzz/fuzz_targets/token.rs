//! Fuzz target `token`: offline key parsing (`token::parse_key`) and key-shaped redaction
//! (`token::redact_key_shaped`) on arbitrary text. Invariants: only a 43-character `tk_` +
//! base62 string with a matching checksum parses (`{{KEY}}` in the input becomes a freshly
//! generated key); each refusal names the first check that fails;
//! redaction leaves nothing key-shaped behind and never touches text without `tk_`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trcker_shared::testing::key_shaped_strings;
use trcker_shared::token::{KEY_LEN, KEY_PREFIX, TokenError, parse_key, redact_key_shaped};

/// A real key for this process, put where the input says `{{KEY}}`, so the fuzzer explores around
/// a valid checksum instead of having to find one.
fn generated_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        trcker_shared::token::generate_key()
            .expect("the OS random source")
            .expose_secret()
            .to_owned()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).replace("{{KEY}}", generated_key());
    match parse_key(&text) {
        Ok(key) => {
            let key = key.expose_secret();
            assert_eq!(key.len(), KEY_LEN);
            assert!(key.starts_with(KEY_PREFIX));
            assert!(
                key[KEY_PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric())
            );
            assert_eq!(redact_key_shaped(key), "tk_<redacted>");
        }
        Err(TokenError::Empty) => assert!(text.is_empty()),
        Err(TokenError::WrongLength) => assert!(!text.is_empty() && text.len() != KEY_LEN),
        Err(TokenError::WrongPrefix) => {
            assert_eq!(text.len(), KEY_LEN);
            assert!(!text.starts_with(KEY_PREFIX));
        }
        Err(TokenError::InvalidCharacter) => {
            assert!(text.len() == KEY_LEN && text.starts_with(KEY_PREFIX));
            assert!(
                !text.as_bytes()[KEY_PREFIX.len()..]
                    .iter()
                    .all(u8::is_ascii_alphanumeric)
            );
        }
        Err(TokenError::ChecksumMismatch) => {
            assert!(text.len() == KEY_LEN && text.starts_with(KEY_PREFIX));
            assert!(
                text.as_bytes()[KEY_PREFIX.len()..]
                    .iter()
                    .all(u8::is_ascii_alphanumeric)
            );
        }
    }
    let redacted = redact_key_shaped(&text);
    assert!(
        key_shaped_strings(&redacted).is_empty(),
        "redaction left a key-shaped string"
    );
    if !text.contains(KEY_PREFIX) {
        assert_eq!(redacted, text);
    }
});
