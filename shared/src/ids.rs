//! Validated identifiers and labels. Brand ids lead every brand-owned partition key, so their
//! alphabet excludes the `#` separator and upper case (reserved for system prefixes).

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;

pub const MAX_BRAND_ID_LEN: usize = 64;
pub const MAX_LABEL_LEN: usize = 100;
pub const MAX_BRAND_NAME_LEN: usize = 200;

/// Why an identifier or label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "brand_id must be 1-{MAX_BRAND_ID_LEN} characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
    )]
    InvalidBrandId,
    #[error("key_id must look like `key_` followed by 20 lowercase hex characters")]
    InvalidKeyId,
    #[error("{field} must be 1-{max} characters without control characters")]
    InvalidText { field: &'static str, max: usize },
}

/// A brand's identifier, e.g. `acme` or `acme-eu_2`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct BrandId(String);

impl TryFrom<String> for BrandId {
    type Error = IdError;

    fn try_from(text: String) -> Result<Self, IdError> {
        Self::parse(&text)
    }
}

impl From<BrandId> for String {
    fn from(brand_id: BrandId) -> Self {
        brand_id.0
    }
}

impl BrandId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if first_ok && rest_ok && bytes.len() <= MAX_BRAND_ID_LEN {
            Ok(Self(text.to_owned()))
        } else {
            Err(IdError::InvalidBrandId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BrandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key's public identifier: `key_` + 12 hex digits of creation time in milliseconds + 8 random
/// hex digits, so a brand's keys list in creation order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

const KEY_ID_PREFIX: &str = "key_";
const KEY_ID_HEX_LEN: usize = 20;

impl KeyId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let hex = text
            .strip_prefix(KEY_ID_PREFIX)
            .ok_or(IdError::InvalidKeyId)?;
        if hex.len() == KEY_ID_HEX_LEN
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(IdError::InvalidKeyId)
        }
    }

    /// A fresh id for a key created at `created_at_ms`.
    pub fn new(created_at_ms: i64) -> Result<Self, crate::token::RandomSourceError> {
        let mut random = [0u8; 4];
        OsRng
            .try_fill_bytes(&mut random)
            .map_err(|error| crate::token::RandomSourceError::new(error.to_string()))?;
        let millis = created_at_ms.clamp(0, 0xffff_ffff_ffff);
        Ok(Self(format!(
            "{KEY_ID_PREFIX}{millis:012x}{:08x}",
            u32::from_be_bytes(random)
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text an operator attaches (a key label, a brand name), bounded and free of control
/// characters (so it is safe in logs) and of the invisible format characters that hide or reorder
/// text (so what a reader sees is what is stored).
pub fn validate_text(field: &'static str, text: &str, max: usize) -> Result<String, IdError> {
    let trimmed = text.trim();
    let length = trimmed.chars().count();
    let hidden = crate::caller_text::first_hidden_format_char(trimmed).is_some();
    if length == 0 || length > max || hidden || trimmed.chars().any(char::is_control) {
        return Err(IdError::InvalidText { field, max });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_ids() {
        for ok in ["acme", "a", "0day", "acme-eu_2", &"a".repeat(64)] {
            assert!(BrandId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-acme",
            "_x",
            "Acme",
            "ac#me",
            "ac/me",
            "acmé",
            " acme",
            &"a".repeat(65),
        ] {
            assert_eq!(BrandId::parse(bad), Err(IdError::InvalidBrandId), "{bad}");
        }
    }

    #[test]
    fn key_ids_are_time_ordered_and_validated() {
        let first = KeyId::new(1_000).unwrap();
        let second = KeyId::new(2_000).unwrap();
        assert!(first < second);
        assert_eq!(KeyId::parse(first.as_str()), Ok(first));
        for bad in [
            "",
            "key_",
            "key_XYZ",
            "KEY_00000000000000000000",
            "key_0000000000000000000g",
        ] {
            assert_eq!(KeyId::parse(bad), Err(IdError::InvalidKeyId), "{bad}");
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(validate_text("label", " ci ", 10), Ok("ci".into()));
        assert!(validate_text("label", "", 10).is_err());
        assert!(validate_text("label", "a\nb", 10).is_err());
        assert!(validate_text("label", "ci\u{202E}dorp", 10).is_err());
        assert!(validate_text("label", "ci\u{E0041}", 10).is_err());
        assert!(validate_text("label", "👩\u{200D}💻", 10).is_ok());
        assert!(validate_text("label", &"é".repeat(11), 10).is_err());
        assert!(validate_text("label", &"é".repeat(10), 10).is_ok());
    }
}
