//! Request extractors with the public API's error contract: JSON bodies (1 MB limit, unknown
//! fields rejected), list parameters (`limit`, `cursor`) and timestamps.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use trcker_shared::clock::UnixMillis;
use trcker_shared::edge::error::ApiError;
use trcker_shared::error::ErrorCode;
use trcker_shared::keys::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "the request body is empty: send a JSON object",
            ));
        }
        // serde reads a struct from a JSON array too (fields by position): `[null, null]` would
        // be a valid update. Bodies are objects.
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid("the request body must be a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))
    }
}

/// The `{id}` segment of a path. One that does not even decode cannot name anything: it gets the
/// same JSON 404 as a missing id, not the framework's plain-text 400.
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IdPath(id))
            .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such resource"))
    }
}

/// The query string as name/value pairs, refusing names not in `allowed`.
pub fn query_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    // The same decoding as axum's `Query` (form-urlencoded: `+` is a space, undecodable
    // escapes are kept as they are), without writing the query into a new URI first.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    for (name, _) in &pairs {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::invalid(format!(
                "unknown query parameter {:?}: allowed are {}",
                name.chars().take(64).collect::<String>(),
                allowed.join(", ")
            )));
        }
    }
    Ok(pairs)
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `limit` (1-100, default 25) and `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Paging {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let limit = match param(pairs, "limit") {
            None => DEFAULT_PAGE_LIMIT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE_LIMIT).contains(limit))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "limit must be an integer between 1 and {MAX_PAGE_LIMIT}"
                    ))
                })?,
        };
        let cursor = param(pairs, "cursor").map(str::to_owned);
        Ok(Self { limit, cursor })
    }
}

/// A time given as RFC 3339 UTC (`2026-11-28T10:00:00Z`, fractions allowed) or Unix milliseconds.
pub fn parse_time(field: &str, raw: &str) -> Result<UnixMillis, ApiError> {
    if let Ok(millis) = raw.parse::<i64>()
        && (0..=253_402_300_799_999).contains(&millis)
    {
        return Ok(millis);
    }
    parse_rfc3339_utc(raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "{field} must be an RFC 3339 UTC time like 2026-11-28T10:00:00Z or Unix milliseconds"
        ))
    })
}

fn parse_rfc3339_utc(raw: &str) -> Option<UnixMillis> {
    let text = raw
        .strip_suffix('Z')
        .or_else(|| raw.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.split('-');
    let year = fixed_digits(date_parts.next()?, 4)?;
    let month = fixed_digits(date_parts.next()?, 2)?;
    let day = fixed_digits(date_parts.next()?, 2)?;
    if date_parts.next().is_some()
        || !(0..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
    {
        return None;
    }
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.split(':');
    let hour = fixed_digits(clock_parts.next()?, 2)?;
    let minute = fixed_digits(clock_parts.next()?, 2)?;
    let second = fixed_digits(clock_parts.next()?, 2)?;
    if clock_parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis: i64 = if fraction.is_empty() {
        0
    } else if fraction.bytes().all(|b| b.is_ascii_digit()) {
        format!("{:0<3}", &fraction[..fraction.len().min(3)])
            .parse()
            .ok()?
    } else {
        return None;
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// A date or time field as RFC 3339 writes it: exactly `len` ASCII digits. No sign: `i64::parse`
/// alone took `T-5:00:00Z` as a time and overflowed on `T-9223372036854775808:00:00Z` (a panic
/// under the fuzz build's overflow checks; `tests/fuzz_regressions.rs`).
fn fixed_digits(field: &str, len: usize) -> Option<i64> {
    if field.len() != len || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use trcker_shared::clock::format_rfc3339;

    #[test]
    fn times_round_trip_with_the_formatter() {
        for millis in [0, 951_782_400_000, 1_795_830_654_123] {
            assert_eq!(parse_time("from", &format_rfc3339(millis)).unwrap(), millis);
        }
        assert_eq!(
            parse_time("from", "2026-11-28T01:50:54Z").unwrap(),
            1_795_830_654_000
        );
        assert_eq!(
            parse_time("from", "1795830654000").unwrap(),
            1_795_830_654_000
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-28T01:50:54+02:00",
            "-5",
        ] {
            assert!(parse_time("from", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paging_limits() {
        let pairs = |limit: &str| vec![("limit".to_owned(), limit.to_owned())];
        assert_eq!(Paging::from_pairs(&[]).unwrap().limit, 25);
        assert_eq!(Paging::from_pairs(&pairs("100")).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "abc", "99999999999", "1.5", ""] {
            assert!(Paging::from_pairs(&pairs(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_strings_decode_as_axums_query_decodes_them() {
        for query in [
            "limit=5&cursor=abc",
            "a=1&&b=2&",
            "from=2026-01-01T00%3A00%3A00Z&to=x+y",
            "name=%zz%4&bare&=empty&caf%C3%A9=%E2%82%AC",
            "bad=%FF%FE&plus=a%2Bb",
            "",
        ] {
            let uri: axum::http::Uri = format!("/?{query}").parse().unwrap();
            let axum::extract::Query(expected) =
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).unwrap();
            let names: Vec<&str> = expected.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(
                query_params(Some(query), &names).unwrap(),
                expected,
                "{query}"
            );
        }
    }

    #[test]
    fn unknown_query_parameters_are_refused() {
        assert!(query_params(Some("limit=5&cursor=x"), &["limit", "cursor"]).is_ok());
        assert!(query_params(Some("limit=5&sort=asc"), &["limit", "cursor"]).is_err());
        assert!(query_params(None, &[]).unwrap().is_empty());
    }
}
