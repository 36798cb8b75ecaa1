//! Per-brand daily rollups: counters (clicks, flagged clicks, conversions, revenue, payout, fraud
//! signals) per UTC day, for the brand as a whole and per offer and per partner. They are added to
//! atomically (DynamoDB `ADD`) by the data table's stream from the clicks, conversions and signals
//! they count (`program::derived`, exactly once per origin partition), or in the transaction that
//! writes an event with its increments (`*_counted` store calls), so statistics cost
//! O(days x groups) reads, never a scan over events.

use std::collections::BTreeMap;

use super::{Document, UniqueClaim};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::StoreError;

/// Write shards per brand and dimension: a brand's whole capture rate lands on the total row of
/// the day, so it is spread like clicks are ([`super::clicks::CLICK_SHARDS`]). A read sums them.
pub const ROLLUP_SHARDS: u32 = 16;
/// The longest range one statistics read may cover.
pub const MAX_ROLLUP_DAYS: u32 = 366;
/// How long a rollup row is kept (DynamoDB TTL): a little over a year.
pub const ROLLUP_RETENTION_DAYS: i64 = 400;
/// Items one DynamoDB transaction may write: the event's items plus its merged rollup rows.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// The longest counter name a row may carry (names end up in stored attribute names).
pub const MAX_COUNTER_NAME_LEN: usize = 128;
/// The longest group (offer or partner id) a row may be keyed by.
pub const MAX_GROUP_LEN: usize = 128;
const DAY_MS: i64 = 86_400_000;
/// The last instant of 9999-12-31: every day up to it has a `YYYY-MM-DD` form.
const LAST_DAY_MS: i64 = 253_402_300_799_999;

/// Counter names. Money counters carry the currency: `revenue_micros:USD`.
pub const CLICKS: &str = "clicks";
pub const FLAGGED_CLICKS: &str = "flagged_clicks";
pub const CONVERSIONS: &str = "conversions";
pub const REVENUE_MICROS_PREFIX: &str = "revenue_micros:";
pub const PAYOUT_MICROS_PREFIX: &str = "payout_micros:";
pub const SIGNALS_PREFIX: &str = "signals:";

/// What a rollup row is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RollupDimension {
    /// The brand as a whole (group is empty).
    Total,
    Offer,
    Partner,
}

impl RollupDimension {
    pub const ALL: [RollupDimension; 3] = [Self::Total, Self::Offer, Self::Partner];

    /// The name in the stored key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "T",
            Self::Offer => "O",
            Self::Partner => "P",
        }
    }
}

/// Counters to add to one rollup row, written together with the event they count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupIncrement {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub dimension: RollupDimension,
    /// The offer or partner id; empty for [`RollupDimension::Total`].
    pub group: String,
    /// `0..ROLLUP_SHARDS`, from the id of the counted event ([`rollup_shard`]).
    pub shard: u32,
    /// Counter name and amount to add (amounts may be negative).
    pub counters: Vec<(String, i64)>,
}

/// One rollup row as read back: one shard's counters, or several shards summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub day: String,
    pub dimension: RollupDimension,
    pub group: String,
    pub counters: BTreeMap<String, i64>,
}

impl RollupRow {
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// The shard an event's counters go to, from its id.
pub fn rollup_shard(event_id: &str) -> u32 {
    crc32fast::hash(event_id.as_bytes()) % ROLLUP_SHARDS
}

/// Whether `day` is a `YYYY-MM-DD` the store can key rows by (month 01-12, day 01-31).
pub fn is_rollup_day(day: &str) -> bool {
    let bytes = day.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
    if !shaped {
        return false;
    }
    let month = (bytes[5] - b'0') * 10 + (bytes[6] - b'0');
    let day_of_month = (bytes[8] - b'0') * 10 + (bytes[9] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day_of_month)
}

/// The UTC day of an instant, `YYYY-MM-DD` (instants outside 1970..=9999 count on the nearest
/// end, so the result always has that form).
pub fn utc_day(at: UnixMillis) -> String {
    let rfc3339 = crate::clock::format_rfc3339(at.clamp(0, LAST_DAY_MS));
    rfc3339[..10].to_owned()
}

/// When a row of `day` may be dropped (Unix seconds, DynamoDB TTL): the end of that UTC day plus
/// [`ROLLUP_RETENTION_DAYS`]. `None` if `day` is not a rollup day.
pub fn rollup_expires_at(day: &str) -> Option<i64> {
    if !is_rollup_day(day) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| day[range].parse::<i64>().ok();
    let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
    Some((days + 1 + ROLLUP_RETENTION_DAYS) * (DAY_MS / 1000))
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

/// Whether `group` can key a row of `dimension`: empty for the total, otherwise 1-128 printable
/// ASCII characters below `~` (so `<day>#~` is an upper bound for every group of the day).
pub fn is_rollup_group(dimension: RollupDimension, group: &str) -> bool {
    match dimension {
        RollupDimension::Total => group.is_empty(),
        RollupDimension::Offer | RollupDimension::Partner => {
            !group.is_empty()
                && group.len() <= MAX_GROUP_LEN
                && group.bytes().all(|byte| (b'!'..b'~').contains(&byte))
        }
    }
}

fn rejected(message: String) -> StoreError {
    StoreError::Rejected(message)
}

/// Checks `increments` and merges those that address the same row (dimension, shard, day,
/// group), adding their counters by name, in order of first appearance: a DynamoDB transaction
/// may not touch one item twice, nor an update expression name one attribute twice. Increments
/// without counters are dropped. `Rejected` for a bad day, shard, group or counter name.
pub fn merge_increments(
    increments: &[RollupIncrement],
) -> Result<Vec<RollupIncrement>, StoreError> {
    let mut merged: Vec<RollupIncrement> = Vec::new();
    for increment in increments {
        if !is_rollup_day(&increment.day) {
            return Err(rejected(format!(
                "rollup day {:?} is not YYYY-MM-DD",
                increment.day
            )));
        }
        if increment.shard >= ROLLUP_SHARDS {
            return Err(rejected(format!(
                "rollup shard {} is not below {ROLLUP_SHARDS}",
                increment.shard
            )));
        }
        if !is_rollup_group(increment.dimension, &increment.group) {
            return Err(rejected(format!(
                "rollup group {:?} does not fit dimension {:?}",
                increment.group, increment.dimension
            )));
        }
        if let Some((name, _)) = increment.counters.iter().find(|(name, _)| {
            name.is_empty()
                || name.len() > MAX_COUNTER_NAME_LEN
                || name.chars().any(char::is_control)
        }) {
            return Err(rejected(format!("rollup counter name {name:?} is invalid")));
        }
        if increment.counters.is_empty() {
            continue;
        }
        let same_row = merged.iter_mut().find(|row| {
            row.dimension == increment.dimension
                && row.shard == increment.shard
                && row.day == increment.day
                && row.group == increment.group
        });
        let row = match same_row {
            Some(row) => row,
            None => {
                merged.push(RollupIncrement {
                    counters: Vec::new(),
                    ..increment.clone()
                });
                let last = merged.len() - 1;
                &mut merged[last]
            }
        };
        for (name, amount) in &increment.counters {
            match row.counters.iter_mut().find(|(known, _)| known == name) {
                Some((_, total)) => *total = total.saturating_add(*amount),
                None => row.counters.push((name.clone(), *amount)),
            }
        }
    }
    Ok(merged)
}

/// `Rejected` if a transaction of `items` items would be over DynamoDB's limit.
pub fn check_transaction_size(items: usize) -> Result<(), StoreError> {
    if items > MAX_TRANSACTION_ITEMS {
        return Err(rejected(format!(
            "the write needs {items} items in one transaction; the limit is {MAX_TRANSACTION_ITEMS}"
        )));
    }
    Ok(())
}

/// Money as integer micro-units, so that sums are exact in every store. The amount is read from
/// its shortest decimal form (the digits the API received), not multiplied in floating point:
/// above about 9e9 a product with 1e6 is no longer exact in an `f64`. Rounded half away from
/// zero at the sixth decimal; saturates at the `i64` range; 0 for NaN and infinities.
pub fn to_micros(amount: f64) -> i64 {
    if !amount.is_finite() {
        return 0;
    }
    // `Display` of an f64 is the shortest decimal that reads back as the same number, and never
    // uses an exponent.
    let text = format!("{}", amount.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let Ok(whole) = whole.parse::<i128>() else {
        return if amount < 0.0 { i64::MIN } else { i64::MAX };
    };
    let digit = |index: usize| {
        fraction
            .as_bytes()
            .get(index)
            .map_or(0, |byte| i128::from(byte - b'0'))
    };
    let mut micros = (0..6).fold(whole, |total, index| {
        total.saturating_mul(10).saturating_add(digit(index))
    });
    if digit(6) >= 5 {
        micros = micros.saturating_add(1);
    }
    let signed = if amount < 0.0 { -micros } else { micros };
    i64::try_from(signed).unwrap_or(if amount < 0.0 { i64::MIN } else { i64::MAX })
}

/// Where one row's share of a stream batch came from: the origin partition (the partition key of
/// the items whose changes it counts) and the sequence numbers of the first and last of those
/// events. A row remembers, per origin, the last sequence number it has counted, so a replayed
/// batch, or any part of one, is counted once (docs/ARCHITECTURE.md, "The stream function").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpan {
    pub origin: String,
    pub first_sequence: String,
    pub last_sequence: String,
}

/// The longest stream sequence number DynamoDB Streams hands out (21 to 40 decimal digits).
const MAX_SEQUENCE_DIGITS: usize = 40;

impl StreamSpan {
    /// The span's sequence numbers zero-padded to 40 digits, so they compare as text the way
    /// they do as numbers. `Rejected` for a shard id that is empty or long, a sequence number
    /// that is not 1 to 40 digits, or a first after the last.
    pub fn normalized(&self) -> Result<(String, String), StoreError> {
        let pad = |text: &str| {
            (!text.is_empty()
                && text.len() <= MAX_SEQUENCE_DIGITS
                && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("{text:0>40}"))
            .ok_or_else(|| {
                rejected(format!(
                    "stream sequence number {text:?} is not 1 to 40 digits"
                ))
            })
        };
        if self.origin.is_empty()
            || self.origin.len() > 200
            || self.origin.chars().any(char::is_control)
        {
            return Err(rejected(format!(
                "stream shard id {:?} is empty, long or has control characters",
                self.origin
            )));
        }
        let (first, last) = (pad(&self.first_sequence)?, pad(&self.last_sequence)?);
        if first > last {
            return Err(rejected(
                "a stream span's first sequence is after its last".into(),
            ));
        }
        Ok((first, last))
    }
}

/// The most spans one [`add_rollup_once`](super::RollupStore::add_rollup_once) may carry: a batch
/// rarely holds more origins than a brand has click shards plus its documents partition, and the
/// condition (one clause per origin) must stay within DynamoDB's 4 KB expression limit.
pub const MAX_SPANS_PER_ROW_UPDATE: usize = 40;

/// Every span's sequence numbers normalized ([`StreamSpan::normalized`]), keyed by origin:
/// `Rejected` for no span, more than [`MAX_SPANS_PER_ROW_UPDATE`], two with one origin, or a bad
/// one. Every backend checks spans through this before it writes.
pub fn normalized_spans(
    spans: &[StreamSpan],
) -> Result<BTreeMap<String, (String, String)>, StoreError> {
    if spans.is_empty() || spans.len() > MAX_SPANS_PER_ROW_UPDATE {
        return Err(rejected(format!(
            "{} stream spans: a row update carries 1 to {MAX_SPANS_PER_ROW_UPDATE}",
            spans.len()
        )));
    }
    let mut normalized = BTreeMap::new();
    for span in spans {
        if normalized
            .insert(span.origin.clone(), span.normalized()?)
            .is_some()
        {
            return Err(rejected(format!(
                "two stream spans of origin {:?} in one row update",
                span.origin
            )));
        }
    }
    Ok(normalized)
}

/// The same counters for the brand total and, where present, the offer and the partner.
pub fn increments_for(
    at: UnixMillis,
    event_id: &str,
    offer_id: Option<&str>,
    partner_id: Option<&str>,
    counters: &[(String, i64)],
) -> Vec<RollupIncrement> {
    let day = utc_day(at);
    let shard = rollup_shard(event_id);
    let mut increments = vec![RollupIncrement {
        day: day.clone(),
        dimension: RollupDimension::Total,
        group: String::new(),
        shard,
        counters: counters.to_vec(),
    }];
    for (dimension, group) in [
        (RollupDimension::Offer, offer_id),
        (RollupDimension::Partner, partner_id),
    ] {
        if let Some(group) = group.filter(|group| !group.is_empty()) {
            increments.push(RollupIncrement {
                day: day.clone(),
                dimension,
                group: group.to_owned(),
                shard,
                counters: counters.to_vec(),
            });
        }
    }
    increments
}

/// The brand whose rollups a document batch's increments go to: the documents' one brand.
/// `Rejected` if increments come without documents, or with documents of several brands.
pub(crate) fn rollup_brand<'a>(
    documents: &[(&'a Document, &[UniqueClaim])],
    increments: &[RollupIncrement],
) -> Result<Option<&'a BrandId>, StoreError> {
    if increments.is_empty() {
        return Ok(None);
    }
    let Some((first, _)) = documents.first() else {
        return Err(rejected(
            "rollup increments need a document of their brand".to_owned(),
        ));
    };
    if documents
        .iter()
        .any(|(document, _)| document.brand_id != first.brand_id)
    {
        return Err(rejected(
            "rollup increments with documents of several brands".to_owned(),
        ));
    }
    Ok(Some(&first.brand_id))
}

/// `Rejected` for a shard or day a rollup query cannot address.
pub fn check_rollup_range(shard: u32, from_day: &str, to_day: &str) -> Result<(), StoreError> {
    if shard >= ROLLUP_SHARDS {
        return Err(rejected(format!(
            "rollup shard {shard} is not below {ROLLUP_SHARDS}"
        )));
    }
    for day in [from_day, to_day] {
        if !is_rollup_day(day) {
            return Err(rejected(format!("rollup day {day:?} is not YYYY-MM-DD")));
        }
    }
    Ok(())
}

/// Sums rows of several shards into one row per (day, group), in (day, group) order (rows of
/// different dimensions are never added together). Sums saturate rather than wrap.
pub fn sum_shards(rows: impl IntoIterator<Item = RollupRow>) -> Vec<RollupRow> {
    let mut summed: BTreeMap<(String, String, RollupDimension), RollupRow> = BTreeMap::new();
    for row in rows {
        let entry = summed
            .entry((row.day.clone(), row.group.clone(), row.dimension))
            .or_insert_with(|| RollupRow {
                day: row.day.clone(),
                dimension: row.dimension,
                group: row.group.clone(),
                counters: BTreeMap::new(),
            });
        for (name, value) in row.counters {
            let total = entry.counters.entry(name).or_insert(0);
            *total = total.saturating_add(value);
        }
    }
    summed.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_micros_and_shards() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_795_000_000_000), "2026-11-18");
        assert!(is_rollup_day("2026-11-28"));
        for bad in [
            "2026-11-2",
            "2026/11/28",
            "20261128xx",
            "2026-11-2a",
            "2026-13-01",
            "2026-00-10",
            "2026-11-00",
            "2026-11-32",
        ] {
            assert!(!is_rollup_day(bad), "{bad}");
        }
        assert_eq!(utc_day(-5), "1970-01-01", "clamped, still YYYY-MM-DD");
        assert_eq!(utc_day(i64::MAX), "9999-12-31");
        assert_eq!(to_micros(12.345_678_9), 12_345_679);
        assert_eq!(to_micros(-12.345_678_9), -12_345_679);
        assert_eq!(to_micros(0.1), 100_000);
        assert_eq!(to_micros(0.1 + 0.2), 300_000);
        assert_eq!(to_micros(0.000_000_4), 0);
        assert_eq!(to_micros(0.000_000_5), 1);
        assert_eq!(to_micros(19.99), 19_990_000);
        assert_eq!(
            to_micros(999_999_999_999.99),
            999_999_999_999_990_000,
            "exact where amount * 1e6 in f64 is not"
        );
        assert_eq!(to_micros(1e12), 1_000_000_000_000_000_000);
        assert_eq!(to_micros(1e300), i64::MAX);
        assert_eq!(to_micros(-1e300), i64::MIN);
        assert_eq!(to_micros(f64::NAN), 0);
        assert_eq!(to_micros(f64::INFINITY), 0);
        assert!((0..1000).all(|i| rollup_shard(&format!("c{i}")) < ROLLUP_SHARDS));
    }

    #[test]
    fn rows_expire_a_retention_period_after_their_day_ends() {
        // 2026-11-18 ends at 1_795_046_400 s (utc_day above), plus 400 days.
        assert_eq!(
            rollup_expires_at("2026-11-18"),
            Some(1_795_046_400 + ROLLUP_RETENTION_DAYS * 86_400)
        );
        assert_eq!(
            rollup_expires_at("1970-01-01"),
            Some((1 + ROLLUP_RETENTION_DAYS) * 86_400)
        );
        assert_eq!(
            rollup_expires_at("2024-03-01"),
            Some((19_783 + 1 + ROLLUP_RETENTION_DAYS) * 86_400),
            "after a leap day"
        );
        assert_eq!(rollup_expires_at("2026-1-18"), None);
    }

    #[test]
    fn groups_fit_their_dimension_and_sort_below_the_range_bound() {
        assert!(is_rollup_group(RollupDimension::Total, ""));
        assert!(!is_rollup_group(RollupDimension::Total, "off_1"));
        assert!(is_rollup_group(RollupDimension::Offer, "off_0123abcd"));
        assert!(is_rollup_group(RollupDimension::Partner, "ptr_x#y"));
        let long = "x".repeat(MAX_GROUP_LEN + 1);
        for bad in ["", "a~", "a b", "caf\u{e9}", long.as_str()] {
            assert!(!is_rollup_group(RollupDimension::Offer, bad), "{bad:?}");
        }
    }

    #[test]
    fn increments_to_one_row_are_merged_by_counter() {
        let counters = vec![(CLICKS.to_owned(), 1), (CLICKS.to_owned(), 2)];
        let mut increments = increments_for(0, "c1", Some("off_1"), None, &counters);
        increments.extend(increments_for(
            0,
            "c1",
            Some("off_1"),
            None,
            &[(FLAGGED_CLICKS.to_owned(), 1)],
        ));
        increments.push(RollupIncrement {
            counters: Vec::new(),
            ..increments[0].clone()
        });
        let merged = merge_increments(&increments).unwrap();
        assert_eq!(merged.len(), 2, "{merged:?}");
        assert_eq!(merged[0].dimension, RollupDimension::Total);
        assert_eq!(
            merged[0].counters,
            vec![(CLICKS.to_owned(), 3), (FLAGGED_CLICKS.to_owned(), 1)]
        );
        assert_eq!(merged[1].dimension, RollupDimension::Offer);
        let saturating = vec![(CLICKS.to_owned(), i64::MAX), (CLICKS.to_owned(), 1)];
        let merged = merge_increments(&increments_for(0, "c", None, None, &saturating)).unwrap();
        assert_eq!(merged[0].counters, vec![(CLICKS.to_owned(), i64::MAX)]);
        assert!(merge_increments(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_increments_are_rejected() {
        let good = increments_for(0, "c1", None, None, &[(CLICKS.to_owned(), 1)]).remove(0);
        let bad = [
            RollupIncrement {
                day: "1970-1-1".into(),
                ..good.clone()
            },
            RollupIncrement {
                shard: ROLLUP_SHARDS,
                ..good.clone()
            },
            RollupIncrement {
                group: "off_1".into(),
                ..good.clone()
            },
            RollupIncrement {
                counters: vec![(String::new(), 1)],
                ..good.clone()
            },
        ];
        for increment in bad {
            assert!(
                matches!(
                    merge_increments(std::slice::from_ref(&increment)),
                    Err(StoreError::Rejected(_))
                ),
                "{increment:?}"
            );
        }
        assert_eq!(check_transaction_size(MAX_TRANSACTION_ITEMS), Ok(()));
        assert!(matches!(
            check_transaction_size(MAX_TRANSACTION_ITEMS + 1),
            Err(StoreError::Rejected(_))
        ));
    }

    #[test]
    fn increments_cover_total_offer_and_partner() {
        let counters = vec![(CLICKS.to_owned(), 1)];
        let all = increments_for(0, "c1", Some("off_1"), Some("ptr_1"), &counters);
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|row| row.shard == rollup_shard("c1")));
        let total_only = increments_for(0, "c1", None, Some(""), &counters);
        assert_eq!(total_only.len(), 1);
        assert_eq!(total_only[0].dimension, RollupDimension::Total);
    }

    #[test]
    fn shards_sum_per_day_and_group() {
        let row = |day: &str, group: &str, clicks: i64| RollupRow {
            day: day.into(),
            dimension: RollupDimension::Offer,
            group: group.into(),
            counters: BTreeMap::from([(CLICKS.to_owned(), clicks)]),
        };
        let summed = sum_shards([
            row("d1", "a", 1),
            row("d2", "a", 5),
            row("d1", "a", 2),
            row("d1", "b", i64::MAX),
            row("d1", "b", 1),
        ]);
        assert_eq!(summed.len(), 3);
        assert_eq!(
            (summed[0].day.as_str(), summed[0].group.as_str()),
            ("d1", "a")
        );
        assert_eq!(summed[0].counter(CLICKS), 3);
        assert_eq!(summed[1].counter(CLICKS), i64::MAX, "saturates");
        assert_eq!(
            (summed[2].day.as_str(), summed[2].counter(CLICKS)),
            ("d2", 5)
        );
    }
}
