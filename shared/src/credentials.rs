//! Pulls the presented API key out of HTTP headers the way RFC 9110 says: a case-insensitive
//! `Bearer` scheme, one or more spaces, optional surrounding whitespace; or an `x-api-key` header.

/// Why no usable token could be read from the request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("no API key was presented: send `Authorization: Bearer tk_…`")]
    Missing,
    #[error("the Authorization header must use the Bearer scheme")]
    UnsupportedScheme,
    #[error("the Authorization header has the Bearer scheme but no key")]
    EmptyToken,
    #[error("the header value is not valid text")]
    NotText,
    #[error("Authorization and x-api-key carry different keys")]
    Conflicting,
    #[error("send the key once: more than one Authorization or x-api-key header was sent")]
    Repeated,
}

/// Reads the token from an `Authorization` header value.
pub fn bearer_token(header_value: &[u8]) -> Result<&str, CredentialsError> {
    let value = std::str::from_utf8(header_value)
        .map_err(|_| CredentialsError::NotText)?
        .trim_matches(is_optional_whitespace);
    if value.is_empty() {
        return Err(CredentialsError::Missing);
    }
    let (scheme, rest) = match value.find(' ') {
        Some(split) => value.split_at(split),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialsError::UnsupportedScheme);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(CredentialsError::EmptyToken);
    }
    Ok(token)
}

/// Reads the token from an `x-api-key` header value (the whole value, without surrounding
/// whitespace).
pub fn api_key_header_token(header_value: &[u8]) -> Result<&str, CredentialsError> {
    let token = std::str::from_utf8(header_value)
        .map_err(|_| CredentialsError::NotText)?
        .trim_matches(is_optional_whitespace);
    if token.is_empty() {
        return Err(CredentialsError::EmptyToken);
    }
    Ok(token)
}

/// Combines the two header styles: either is enough, and two different keys are refused rather
/// than guessed between.
pub fn presented_token<'a>(
    authorization: Option<&'a [u8]>,
    x_api_key: Option<&'a [u8]>,
) -> Result<&'a str, CredentialsError> {
    match (authorization, x_api_key) {
        (None, None) => Err(CredentialsError::Missing),
        (Some(auth), None) => bearer_token(auth),
        (None, Some(api_key)) => api_key_header_token(api_key),
        (Some(auth), Some(api_key)) => {
            let from_auth = bearer_token(auth)?;
            let from_header = api_key_header_token(api_key)?;
            // Both values are the caller's own; a plain comparison leaks nothing they lack.
            if from_auth == from_header {
                Ok(from_auth)
            } else {
                Err(CredentialsError::Conflicting)
            }
        }
    }
}

fn is_optional_whitespace(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_scheme_in_any_case_with_extra_spaces() {
        for header in [
            "Bearer tk_abc",
            "bearer tk_abc",
            "BEARER tk_abc",
            "  Bearer    tk_abc \t",
        ] {
            assert_eq!(bearer_token(header.as_bytes()), Ok("tk_abc"), "{header:?}");
        }
    }

    #[test]
    fn rejects_other_schemes_and_empty_tokens() {
        assert_eq!(
            bearer_token(b"Basic dXNlcjpwYXNz"),
            Err(CredentialsError::UnsupportedScheme)
        );
        assert_eq!(
            bearer_token(b"tk_abc"),
            Err(CredentialsError::UnsupportedScheme)
        );
        assert_eq!(bearer_token(b"Bearer"), Err(CredentialsError::EmptyToken));
        assert_eq!(
            bearer_token(b"Bearer   "),
            Err(CredentialsError::EmptyToken)
        );
        assert_eq!(bearer_token(b""), Err(CredentialsError::Missing));
        assert_eq!(
            bearer_token(&[0x42, 0xff, 0x20]),
            Err(CredentialsError::NotText)
        );
    }

    #[test]
    fn either_header_works_and_conflicts_are_refused() {
        assert_eq!(presented_token(None, Some(b" tk_abc ")), Ok("tk_abc"));
        assert_eq!(presented_token(Some(b"Bearer tk_abc"), None), Ok("tk_abc"));
        assert_eq!(
            presented_token(Some(b"Bearer tk_abc"), Some(b"tk_abc")),
            Ok("tk_abc")
        );
        assert_eq!(
            presented_token(Some(b"Bearer tk_abc"), Some(b"tk_xyz")),
            Err(CredentialsError::Conflicting)
        );
        assert_eq!(presented_token(None, None), Err(CredentialsError::Missing));
    }
}
