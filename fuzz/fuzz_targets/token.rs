//! Fuzz target `token`: offline key parsing (`token::parse_key`) and the caller-text redaction
//! (`caller_text::redact_keys`, `caller_text::for_record`) on arbitrary text. Invariants: only a
//! 43-character `tk_` + base62 string with a matching checksum parses (`{{KEY}}` in the input
//! becomes a freshly generated key, `{{%KEY}}` the same key percent-encoded); each refusal names
//! the first check that fails; redaction, and redaction with a cut at any length the input's
//! first byte picks, leaves no key material behind, decoded or not, and never touches text
//! without `tk_` or `%`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trcker_shared::caller_text::{for_record, redact_keys};
use trcker_shared::testing::key_shaped_strings as key_material;
use trcker_shared::token::{KEY_LEN, KEY_PREFIX, TokenError, parse_key};

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
    let encoded: String = generated_key()
        .bytes()
        .map(|byte| format!("%{byte:02x}"))
        .collect();
    let text = String::from_utf8_lossy(data)
        .replace("{{KEY}}", generated_key())
        .replace("{{%KEY}}", &encoded);
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
            assert_eq!(redact_keys(key), "tk_<redacted>");
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
    let redacted = redact_keys(&text);
    assert!(
        key_material(&redacted).is_empty(),
        "redaction left key material"
    );
    let cut = usize::from(data.first().copied().unwrap_or(0));
    assert!(
        key_material(&for_record(&text, cut)).is_empty(),
        "a cut at {cut} left key material"
    );
    if !text.contains(KEY_PREFIX) && !text.contains('%') {
        assert_eq!(redacted, text);
    }
});
