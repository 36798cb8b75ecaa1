//! Wall-clock time as Unix milliseconds behind a trait, so cache expiry and revocation bounds can
//! be tested with a clock that only moves when the test says so.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> UnixMillis;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMillis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            })
    }
}

/// A clock for tests: it stands still until advanced.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_at(now_ms: UnixMillis) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    pub fn advance_ms(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMillis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that follows tokio's time from a starting instant: under a paused runtime (a model
/// run, a paused-clock test) it moves exactly as far as the simulation does.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_ms: UnixMillis,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Must be called inside a tokio runtime with its time driver enabled.
    pub fn starting_at(start_ms: UnixMillis) -> Self {
        Self {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> UnixMillis {
        let elapsed = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.start_ms.saturating_add(elapsed)
    }
}

/// Formats a timestamp as RFC 3339 UTC with millisecond precision, e.g. `2026-11-28T01:50:54.123Z`.
/// Every item of a list is formatted this way, so the common case (years 0-9999) is written
/// digit by digit into a fixed buffer rather than through the formatting machinery.
pub fn format_rfc3339(at: UnixMillis) -> String {
    let mut text = Vec::with_capacity(24);
    write_rfc3339(&mut text, at);
    // Only ASCII digits, separators and a sign are written: the conversion cannot fail.
    String::from_utf8(text).unwrap_or_default()
}

/// Appends [`format_rfc3339`]'s text to `out` (a JSON writer's buffer); for years 0-9999, without
/// an allocation.
pub fn write_rfc3339(out: &mut Vec<u8>, at: UnixMillis) {
    let parts = civil_parts(at);
    match rfc3339_in_four_digit_years(parts) {
        Some(bytes) => out.extend_from_slice(&bytes),
        None => out.extend_from_slice(format_civil(parts).as_bytes()),
    }
}

/// (year, month, day, hour, minute, second, millisecond), UTC.
type CivilParts = (i64, u32, u32, u32, u32, u32, u32);

/// Any year, through the formatting machinery: a sign or a fifth digit where needed.
fn format_civil((year, month, day, hour, minute, second, millis): CivilParts) -> String {
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// The 24 bytes of `YYYY-MM-DDThh:mm:ss.mmmZ`, for years 0-9999 (the others need more digits or a
/// sign).
fn rfc3339_in_four_digit_years(
    (year, month, day, hour, minute, second, millis): CivilParts,
) -> Option<[u8; 24]> {
    let year = u32::try_from(year).ok().filter(|year| *year <= 9999)?;
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (value, end, width) in [
        (year, 4, 4),
        (month, 7, 2),
        (day, 10, 2),
        (hour, 13, 2),
        (minute, 16, 2),
        (second, 19, 2),
        (millis, 23, 3),
    ] {
        let mut rest = value;
        for position in (end - width..end).rev() {
            // `rest % 10` is a single digit.
            text[position] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    }
    Some(text)
}

/// The calendar parts of a Unix millisecond timestamp, UTC.
fn civil_parts(at: UnixMillis) -> CivilParts {
    let days = at.div_euclid(86_400_000);
    // `rem_euclid` is in 0..86,400,000, which always fits in a u32.
    let millis_of_day = u32::try_from(at.rem_euclid(86_400_000)).unwrap_or_default();
    let (year, month, day) = civil_from_days(days);
    let seconds = millis_of_day / 1000;
    (
        year,
        month,
        day,
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60,
        millis_of_day % 1000,
    )
}

/// Appends `value` in decimal, zero-padded to at least `width` digits: what `{value:0width$}`
/// writes, without the formatting machinery (sort keys and timestamps are built for every item a
/// list reads).
pub fn push_zero_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let written = digits.len() - start;
    out.extend(std::iter::repeat_n('0', width.saturating_sub(written)));
    // Only ASCII digits were written, so the conversion always succeeds.
    if let Ok(text) = std::str::from_utf8(&digits[start..]) {
        out.push_str(text);
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_795_830_654_123),
            "2026-11-28T01:50:54.123Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    /// The digit-by-digit path writes exactly what the formatting machinery writes, over the
    /// whole range, the edges of four-digit years included.
    #[test]
    fn fast_formatting_matches_the_format_macro() {
        let reference = |at: UnixMillis| {
            let days = at.div_euclid(86_400_000);
            let millis_of_day = at.rem_euclid(86_400_000);
            let (year, month, day) = civil_from_days(days);
            let seconds = millis_of_day / 1000;
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                seconds / 3600,
                (seconds / 60) % 60,
                seconds % 60,
                millis_of_day % 1000
            )
        };
        // From the last millisecond of year -1 to the first of year 10000, in uneven steps.
        let mut at: i64 = -62_167_219_200_001;
        let mut step: i64 = 1;
        while at <= 253_402_300_800_000 {
            assert_eq!(format_rfc3339(at), reference(at), "{at}");
            let mut written = Vec::new();
            write_rfc3339(&mut written, at);
            assert_eq!(written, reference(at).into_bytes(), "{at}");
            at += step;
            step = ((step * 3 + 7) % 9_876_543_211).max(1);
        }
        for at in [
            i64::MIN / 2,
            -62_167_219_200_000,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MAX / 2,
        ] {
            assert_eq!(format_rfc3339(at), reference(at), "{at}");
            let mut written = b"[".to_vec();
            write_rfc3339(&mut written, at);
            assert_eq!(written, format!("[{}", reference(at)).into_bytes(), "{at}");
        }
        for (value, width) in [(0, 13), (7, 2), (123, 2), (u64::MAX, 13), (42, 25)] {
            let mut text = String::new();
            push_zero_padded(&mut text, value, width);
            assert_eq!(text, format!("{value:0width$}"));
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::starting_at(10);
        assert_eq!(clock.now_ms(), 10);
        clock.advance_ms(5);
        assert_eq!(clock.now_ms(), 15);
    }
}
