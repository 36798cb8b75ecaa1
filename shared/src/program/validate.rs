//! Field rules for what a brand writes, whichever adapter it comes through. Each returns a message
//! that names the field.
//!
//! Every free-text field a brand writes (names, emails, URLs, transaction ids) passes
//! [`plain_text`]: no control characters, and none of the invisible format characters that hide
//! or reorder text from whoever reads it later (Unicode tag characters, bidirectional overrides
//! and isolates, zero-width spaces, the word joiner, the byte-order mark; see
//! [`crate::caller_text::is_hidden_format_char`]). ZWJ and ZWNJ stay allowed: emoji and
//! several scripts need them. Such text is refused rather than cleaned, so what the brand sent is
//! exactly what is stored.

use crate::caller_text::first_hidden_format_char;
use crate::ids::validate_text;

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_URL_LEN: usize = 2_048;
pub const MAX_SLUG_LEN: usize = 64;

/// The character rule of every free-text field: refuses a control character or a hidden format
/// character, naming the field and the character's code point.
pub fn plain_text(field: &str, value: &str) -> Result<(), String> {
    if let Some(control) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{field} contains a control character ({}): send plain text",
            code_point(control)
        ));
    }
    if let Some(hidden) = first_hidden_format_char(value) {
        return Err(format!(
            "{field} contains an invisible formatting character ({}), which hides or reorders text \
             from whoever reads it: remove it (ZWJ U+200D and ZWNJ U+200C are allowed)",
            code_point(hidden)
        ));
    }
    Ok(())
}

/// `U+202E`, `U+E0041`: how a character is named in messages (it may not be visible itself).
fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

pub fn name(value: &str) -> Result<String, String> {
    plain_text("name", value.trim())?;
    validate_text("name", value, MAX_NAME_LEN).map_err(|error| error.to_string())
}

pub fn email(value: &str) -> Result<String, String> {
    let value = value.trim();
    plain_text("email", value)?;
    let valid = value.len() <= 254
        && !value.chars().any(char::is_whitespace)
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(value.to_owned())
    } else {
        Err("email must be an address like partner@example.com".into())
    }
}

pub fn slug(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_SLUG_LEN
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "slug must be 1-{MAX_SLUG_LEN} characters of a-z, 0-9 and '-', starting with a letter or digit"
        ))
    }
}

pub fn url(field: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    plain_text(field, value)?;
    let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
    let host_ok = value
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if scheme_ok && host_ok && value.len() <= MAX_URL_LEN && !value.chars().any(char::is_whitespace)
    {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{field} must be an http(s) URL of at most {MAX_URL_LEN} characters without spaces"
        ))
    }
}

pub fn currency(value: &str) -> Result<String, String> {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value.to_owned())
    } else {
        Err("currency must be a 3-letter ISO 4217 code in upper case, e.g. USD".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(email("a@b.co").is_ok());
        for bad in ["", "a", "a@b", "@b.co", "a b@c.co", "a@.co", "a@b.co."] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(slug("partner-1").is_ok());
        for bad in ["", "-a", "A", "a_b", "a/b", "a#b", "é"] {
            assert!(slug(bad).is_err(), "{bad}");
        }
        assert!(url("destination_url", "https://shop.example/landing?x=1").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///x",
            "javascript:alert(1)",
            "https://a b",
        ] {
            assert!(url("destination_url", bad).is_err(), "{bad}");
        }
        assert!(currency("EUR").is_ok());
        assert!(currency("eur").is_err());
    }

    /// Hidden format characters are refused in every free-text rule, with the field and the code
    /// point in the message; joiners that emoji and scripts need are not.
    #[test]
    fn hidden_format_characters_are_refused_by_name_and_code_point() {
        for (text, code) in [
            ("Acme\u{E0041}\u{E0042}", "U+E0041"),
            ("Acme\u{202E}moc.evil", "U+202E"),
            ("Ac\u{200B}me", "U+200B"),
            ("Ac\u{2060}me", "U+2060"),
            ("\u{FEFF}Acme", "U+FEFF"),
            ("Acme\u{2066}x\u{2069}", "U+2066"),
        ] {
            let message = name(text).unwrap_err();
            assert!(
                message.starts_with("name contains an invisible formatting character")
                    && message.contains(code),
                "{message}"
            );
            let message =
                url("destination_url", &format!("https://shop.example/{text}")).unwrap_err();
            assert!(
                message.starts_with("destination_url contains") && message.contains(code),
                "{message}"
            );
            let message = email(&format!("{text}@example.com")).unwrap_err();
            assert!(message.starts_with("email contains") && message.contains(code));
        }
        let message = name("a\u{7}b").unwrap_err();
        assert!(message.contains("control character (U+0007)"), "{message}");
        for kept in [
            "👨\u{200D}👩\u{200D}👧 family",
            "می\u{200C}خواهم",
            "❤\u{FE0F} Partner",
        ] {
            assert_eq!(name(kept).as_deref(), Ok(kept));
        }
        // Surrounding whitespace is still trimmed, not refused.
        assert_eq!(name("  Acme \n").as_deref(), Ok("Acme"));
    }
}
