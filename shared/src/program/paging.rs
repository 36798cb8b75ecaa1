//! Paging and the typed values of list queries: `limit` and `cursor`, and times given as RFC 3339
//! UTC or Unix milliseconds. The adapters build these from query strings or tool arguments.

use crate::clock::UnixMillis;
use crate::keys::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};

use super::ProgramError;

/// The last value of `name` among query pairs (a repeated parameter: the last one wins).
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
    /// A page of `limit` items (default 25), after `cursor`.
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, ProgramError> {
        let limit = match limit {
            None => DEFAULT_PAGE_LIMIT,
            Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => limit,
            Some(_) => return Err(out_of_range()),
        };
        Ok(Self { limit, cursor })
    }

    /// `limit` and `cursor` from query pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ProgramError> {
        let limit = param(pairs, "limit")
            .map(|raw| raw.parse::<u32>().map_err(|_| out_of_range()))
            .transpose()?;
        Self::new(limit, param(pairs, "cursor").map(str::to_owned))
    }
}

fn out_of_range() -> ProgramError {
    ProgramError::invalid(format!(
        "limit must be an integer between 1 and {MAX_PAGE_LIMIT}"
    ))
}

/// An optional time field (see [`parse_time`]).
pub fn optional_time(field: &str, raw: Option<&str>) -> Result<Option<UnixMillis>, ProgramError> {
    raw.map(|raw| parse_time(field, raw)).transpose()
}

/// A time given as RFC 3339 UTC (`2026-11-28T10:00:00Z`, fractions allowed) or Unix milliseconds.
pub fn parse_time(field: &str, raw: &str) -> Result<UnixMillis, ProgramError> {
    if let Ok(millis) = raw.parse::<i64>()
        && (0..=253_402_300_799_999).contains(&millis)
    {
        return Ok(millis);
    }
    parse_rfc3339_utc(raw).ok_or_else(|| {
        ProgramError::invalid(format!(
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
    use crate::clock::format_rfc3339;

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
}
