//! Field rules for public API input. Each returns a message that names the field.

use trcker_shared::ids::validate_text;

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_URL_LEN: usize = 2_048;
pub const MAX_SLUG_LEN: usize = 64;

pub fn name(value: &str) -> Result<String, String> {
    validate_text("name", value, MAX_NAME_LEN).map_err(|error| error.to_string())
}

pub fn email(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
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
    let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
    let host_ok = value
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if scheme_ok
        && host_ok
        && value.len() <= MAX_URL_LEN
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
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
}
