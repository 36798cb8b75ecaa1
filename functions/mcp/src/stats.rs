//! Program statistics from the daily rollups (never from events): totals and a day series over a
//! date range, grouped by offer or partner, top partners, and the fraud summary. Every answer reads
//! one rollup query per shard and dimension, so its cost is O(days x groups).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trcker_shared::brand_data::rollups::{
    CLICKS, CONVERSIONS, FLAGGED_CLICKS, PAYOUT_MICROS_PREFIX, REVENUE_MICROS_PREFIX,
    RollupDimension, RollupRow, SIGNALS_PREFIX, utc_day,
};
use trcker_shared::clock::UnixMillis;
use trcker_shared::ids::BrandId;
use trcker_shared::program::Program;
use trcker_shared::program::ProgramError;

/// The longest range a statistics tool covers, so that a day series stays small for a model.
pub const MAX_RANGE_DAYS: i64 = 92;
/// The default range: the last 30 days, today included.
pub const DEFAULT_RANGE_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// A date range in UTC days, both ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    pub from_day: String,
    pub to_day: String,
}

impl DayRange {
    /// Validates `from_day`/`to_day` (`YYYY-MM-DD`); missing ends default to the last 30 days.
    pub fn resolve(
        from_day: Option<&str>,
        to_day: Option<&str>,
        now: UnixMillis,
    ) -> Result<Self, ProgramError> {
        let to = match to_day {
            Some(raw) => day_number("to_day", raw)?,
            None => now.div_euclid(DAY_MS),
        };
        let from = match from_day {
            Some(raw) => day_number("from_day", raw)?,
            None => to - (DEFAULT_RANGE_DAYS - 1),
        };
        if from > to {
            return Err(ProgramError::invalid("from_day must not be after to_day"));
        }
        if to - from + 1 > MAX_RANGE_DAYS {
            return Err(ProgramError::invalid(format!(
                "a range covers at most {MAX_RANGE_DAYS} days; ask for a shorter one"
            )));
        }
        Ok(Self {
            from_day: utc_day(from * DAY_MS),
            to_day: utc_day(to * DAY_MS),
        })
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date that exists.
fn day_number(field: &str, raw: &str) -> Result<i64, ProgramError> {
    let invalid = || ProgramError::invalid(format!("{field} must be a date like 2026-11-28"));
    let bytes = raw.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| {
        raw.get(range)
            .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<i64>().ok())
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(invalid());
    };
    let days = days_from_civil(year, month, day);
    // Round-tripping rejects 2026-02-30 and friends.
    if !(1970..=9999).contains(&year) || utc_day(days * DAY_MS) != raw {
        return Err(invalid());
    }
    Ok(days)
}

/// Howard Hinnant's days-from-civil, for the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Clicks, conversions and money for one day, group or range. Money is per currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Totals {
    pub clicks: i64,
    pub flagged_clicks: i64,
    pub conversions: i64,
    /// Revenue of the conversions recorded, by currency.
    pub revenue: BTreeMap<String, f64>,
    /// Payout owed for the conversions recorded, by currency.
    pub payout: BTreeMap<String, f64>,
}

/// Sums rollup rows exactly: counts and micro-units in `i128` (no overflow however many rows),
/// turned into [`Totals`] once at the end (counts saturating at the `i64` range).
#[derive(Debug, Clone, Default)]
struct Tally {
    clicks: i128,
    flagged_clicks: i128,
    conversions: i128,
    revenue_micros: BTreeMap<String, i128>,
    payout_micros: BTreeMap<String, i128>,
    signals: BTreeMap<String, i128>,
}

impl Tally {
    fn add(&mut self, row: &RollupRow) {
        self.clicks += i128::from(row.counter(CLICKS));
        self.flagged_clicks += i128::from(row.counter(FLAGGED_CLICKS));
        self.conversions += i128::from(row.counter(CONVERSIONS));
        for (name, value) in &row.counters {
            let (map, key) = if let Some(currency) = name.strip_prefix(REVENUE_MICROS_PREFIX) {
                (&mut self.revenue_micros, currency)
            } else if let Some(currency) = name.strip_prefix(PAYOUT_MICROS_PREFIX) {
                (&mut self.payout_micros, currency)
            } else if let Some(kind) = name.strip_prefix(SIGNALS_PREFIX) {
                (&mut self.signals, kind)
            } else {
                continue;
            };
            *map.entry(key.to_owned()).or_insert(0) += i128::from(*value);
        }
    }

    fn totals(&self) -> Totals {
        Totals {
            clicks: saturate(self.clicks),
            flagged_clicks: saturate(self.flagged_clicks),
            conversions: saturate(self.conversions),
            revenue: money(&self.revenue_micros),
            payout: money(&self.payout_micros),
        }
    }

    fn signals(&self) -> BTreeMap<String, i64> {
        self.signals
            .iter()
            .map(|(kind, count)| (kind.clone(), saturate(*count)))
            .collect()
    }

    /// The ranking key of `metric`; money in one currency's micro-units.
    fn rank(&self, metric: Metric, currency: &str) -> i128 {
        match metric {
            Metric::Clicks => self.clicks,
            Metric::Conversions => self.conversions,
            Metric::Revenue => self.revenue_micros.get(currency).copied().unwrap_or(0),
            Metric::Payout => self.payout_micros.get(currency).copied().unwrap_or(0),
        }
    }
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// Micro-units to amounts, once, at the end (exact up to 2^53 micro-units, about 9e9 units).
fn money(micros: &BTreeMap<String, i128>) -> BTreeMap<String, f64> {
    micros
        .iter()
        .map(|(currency, micros)| (currency.clone(), *micros as f64 / 1_000_000.0))
        .collect()
}

/// A statistics answer's ranked list (groups, top partners, top flagged partners): what is cut,
/// from the end, when the answer is too large for one tool result. The day series never is.
pub trait RankedAnswer: Serialize {
    fn ranked_len(&self) -> usize;
    fn truncate_ranked(&mut self, len: usize);
}

impl RankedAnswer for ProgramStats {
    fn ranked_len(&self) -> usize {
        self.groups.len()
    }
    fn truncate_ranked(&mut self, len: usize) {
        self.groups.truncate(len);
    }
}

impl RankedAnswer for TopPartners {
    fn ranked_len(&self) -> usize {
        self.partners.len()
    }
    fn truncate_ranked(&mut self, len: usize) {
        self.partners.truncate(len);
    }
}

impl RankedAnswer for FraudSummary {
    fn ranked_len(&self) -> usize {
        self.top_flagged_partners.len()
    }
    fn truncate_ranked(&mut self, len: usize) {
        self.top_flagged_partners.truncate(len);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DayTotals {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct GroupTotals {
    /// The offer or partner id.
    pub id: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// What `group_by` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Offer,
    Partner,
}

impl GroupBy {
    fn dimension(self) -> RollupDimension {
        match self {
            Self::Offer => RollupDimension::Offer,
            Self::Partner => RollupDimension::Partner,
        }
    }
}

/// The ranking metric for top lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Clicks,
    #[default]
    Conversions,
    Revenue,
    Payout,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ProgramStats {
    pub from_day: String,
    pub to_day: String,
    /// With `offer_id` or `partner_id`: the offer or partner the figures are for.
    pub only: Option<String>,
    /// The whole range (of the one offer or partner, if one was named).
    pub totals: Totals,
    /// Every day of the range that had any activity, oldest first.
    pub days: Vec<DayTotals>,
    /// With `group_by`: the range's totals per offer or partner, most clicks first, at most
    /// `limit`.
    pub groups: Vec<GroupTotals>,
    /// How many groups had activity in the range (more than `groups` lists when truncated).
    pub group_count: usize,
}

/// What a statistics read covers: the brand as a whole, or one offer or partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Brand,
    One(GroupBy, String),
}

/// Totals and the day series for the brand (or one offer or partner); with `group_by`,
/// per-group totals too.
pub async fn program_stats(
    app: &Program,
    brand_id: &BrandId,
    range: &DayRange,
    scope: &Scope,
    group_by: Option<GroupBy>,
    limit: usize,
) -> Result<ProgramStats, ProgramError> {
    let rows = match scope {
        Scope::Brand => read(app, brand_id, RollupDimension::Total, range).await?,
        Scope::One(dimension, id) => {
            let mut rows = read(app, brand_id, dimension.dimension(), range).await?;
            rows.retain(|row| &row.group == id);
            rows
        }
    };
    let mut whole = Tally::default();
    let mut days: BTreeMap<&str, Tally> = BTreeMap::new();
    for row in &rows {
        whole.add(row);
        days.entry(row.day.as_str()).or_default().add(row);
    }
    let (groups, group_count) = match group_by {
        None => (Vec::new(), 0),
        Some(group_by) => {
            let mut groups = group_tallies(app, brand_id, group_by.dimension(), range).await?;
            let count = groups.len();
            groups.sort_by(|(a_id, a), (b_id, b)| {
                b.clicks
                    .cmp(&a.clicks)
                    .then(b.conversions.cmp(&a.conversions))
                    .then(a_id.cmp(b_id))
            });
            groups.truncate(limit);
            let groups = groups
                .into_iter()
                .map(|(id, tally)| GroupTotals {
                    id,
                    totals: tally.totals(),
                })
                .collect();
            (groups, count)
        }
    };
    Ok(ProgramStats {
        from_day: range.from_day.clone(),
        to_day: range.to_day.clone(),
        only: match scope {
            Scope::Brand => None,
            Scope::One(_, id) => Some(id.clone()),
        },
        totals: whole.totals(),
        days: days
            .into_iter()
            .map(|(day, tally)| DayTotals {
                day: day.to_owned(),
                totals: tally.totals(),
            })
            .collect(),
        groups,
        group_count,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PartnerRank {
    pub partner_id: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TopPartners {
    pub from_day: String,
    pub to_day: String,
    pub by: Metric,
    /// The currency money rankings compare in.
    pub currency: String,
    /// The best first, at most `limit`.
    pub partners: Vec<PartnerRank>,
    /// How many partners had activity in the range (more than `partners` lists when cut).
    pub partner_count: usize,
}

/// The partners with the most clicks, conversions, revenue or payout (in one currency).
pub async fn top_partners(
    app: &Program,
    brand_id: &BrandId,
    range: &DayRange,
    by: Metric,
    currency: &str,
    limit: usize,
) -> Result<TopPartners, ProgramError> {
    let mut partners = group_tallies(app, brand_id, RollupDimension::Partner, range).await?;
    let partner_count = partners.len();
    partners.sort_by(|(a_id, a), (b_id, b)| {
        b.rank(by, currency)
            .cmp(&a.rank(by, currency))
            .then(a_id.cmp(b_id))
    });
    partners.truncate(limit);
    Ok(TopPartners {
        from_day: range.from_day.clone(),
        to_day: range.to_day.clone(),
        by,
        currency: currency.to_owned(),
        partners: partners
            .into_iter()
            .map(|(partner_id, tally)| PartnerRank {
                partner_id,
                totals: tally.totals(),
            })
            .collect(),
        partner_count,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FraudDay {
    pub day: String,
    pub clicks: i64,
    pub flagged_clicks: i64,
    /// Fraud signals raised that day, by kind.
    pub signals: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FlaggedPartner {
    pub partner_id: String,
    pub clicks: i64,
    pub flagged_clicks: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FraudSummary {
    pub from_day: String,
    pub to_day: String,
    pub clicks: i64,
    pub flagged_clicks: i64,
    /// flagged_clicks / clicks (0 without clicks).
    pub flagged_share: f64,
    /// Fraud signals raised in the range, by kind (bot_user_agent, source_velocity,
    /// source_repeat, fast_conversion).
    pub signals: BTreeMap<String, i64>,
    /// Days that had any activity, oldest first.
    pub days: Vec<FraudDay>,
    /// The partners with the most flagged clicks (at most 10).
    pub top_flagged_partners: Vec<FlaggedPartner>,
}

const TOP_FLAGGED_PARTNERS: usize = 10;

pub async fn fraud_summary(
    app: &Program,
    brand_id: &BrandId,
    range: &DayRange,
) -> Result<FraudSummary, ProgramError> {
    let rows = read(app, brand_id, RollupDimension::Total, range).await?;
    let mut whole = Tally::default();
    let mut days: BTreeMap<&str, Tally> = BTreeMap::new();
    for row in &rows {
        whole.add(row);
        days.entry(row.day.as_str()).or_default().add(row);
    }
    let mut partners = group_tallies(app, brand_id, RollupDimension::Partner, range).await?;
    partners.retain(|(_, tally)| tally.flagged_clicks > 0);
    partners.sort_by(|(a_id, a), (b_id, b)| {
        b.flagged_clicks.cmp(&a.flagged_clicks).then(a_id.cmp(b_id))
    });
    partners.truncate(TOP_FLAGGED_PARTNERS);
    let totals = whole.totals();
    Ok(FraudSummary {
        from_day: range.from_day.clone(),
        to_day: range.to_day.clone(),
        clicks: totals.clicks,
        flagged_clicks: totals.flagged_clicks,
        flagged_share: if whole.clicks > 0 {
            whole.flagged_clicks as f64 / whole.clicks as f64
        } else {
            0.0
        },
        signals: whole.signals(),
        days: days
            .into_iter()
            .map(|(day, tally)| {
                let totals = tally.totals();
                FraudDay {
                    day: day.to_owned(),
                    clicks: totals.clicks,
                    flagged_clicks: totals.flagged_clicks,
                    signals: tally.signals(),
                }
            })
            .collect(),
        top_flagged_partners: partners
            .into_iter()
            .map(|(partner_id, tally)| {
                let totals = tally.totals();
                FlaggedPartner {
                    partner_id,
                    clicks: totals.clicks,
                    flagged_clicks: totals.flagged_clicks,
                }
            })
            .collect(),
    })
}

async fn read(
    app: &Program,
    brand_id: &BrandId,
    dimension: RollupDimension,
    range: &DayRange,
) -> Result<Vec<RollupRow>, ProgramError> {
    Ok(app
        .data
        .read_rollups(brand_id, dimension, &range.from_day, &range.to_day)
        .await?)
}

/// Each group's tally over the whole range, in group order.
async fn group_tallies(
    app: &Program,
    brand_id: &BrandId,
    dimension: RollupDimension,
    range: &DayRange,
) -> Result<Vec<(String, Tally)>, ProgramError> {
    let rows = read(app, brand_id, dimension, range).await?;
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for row in &rows {
        groups.entry(row.group.clone()).or_default().add(row);
    }
    Ok(groups.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_867_200_000; // 2026-11-28T12:00:00Z

    #[test]
    fn ranges_default_validate_and_cap() {
        let range = DayRange::resolve(None, None, NOW).unwrap();
        assert_eq!(range.to_day, "2026-11-28");
        assert_eq!(range.from_day, "2026-10-30");
        let one = DayRange::resolve(Some("2026-02-28"), Some("2026-02-28"), NOW).unwrap();
        assert_eq!(one.from_day, "2026-02-28");
        for (from, to) in [
            (Some("2026-02-30"), None),
            (Some("2026-11-29"), Some("2026-11-28")),
            (Some("2026-1-01"), None),
            (Some("+026-01-01"), None),
            (Some("2025-01-01"), Some("2026-01-01")),
            (None, Some("28/11/2026")),
        ] {
            assert!(DayRange::resolve(from, to, NOW).is_err(), "{from:?} {to:?}");
        }
        assert_eq!(day_number("d", "1970-01-01").unwrap(), 0);
        assert_eq!(day_number("d", "2000-03-01").unwrap(), 11_017);
    }

    #[test]
    fn tallies_sum_money_exactly_per_currency_and_never_overflow() {
        let row = |revenue: i64| RollupRow {
            day: "2026-11-28".into(),
            dimension: RollupDimension::Total,
            group: String::new(),
            counters: BTreeMap::from([
                (CLICKS.to_owned(), 2),
                (format!("{REVENUE_MICROS_PREFIX}USD"), revenue),
                (format!("{PAYOUT_MICROS_PREFIX}EUR"), 1),
                (format!("{SIGNALS_PREFIX}bot_user_agent"), 1),
            ]),
        };
        let mut tally = Tally::default();
        for _ in 0..10 {
            tally.add(&row(100_000));
        }
        let totals = tally.totals();
        assert_eq!(totals.clicks, 20);
        assert_eq!(totals.revenue["USD"], 1.0);
        assert_eq!(totals.payout["EUR"], 0.000_01);
        assert_eq!(tally.signals()["bot_user_agent"], 10);

        // Rows that are each at the i64 limit still add up (a read saturates, never wraps).
        let mut huge = Tally::default();
        for _ in 0..3 {
            huge.add(&row(i64::MAX));
        }
        assert_eq!(huge.revenue_micros["USD"], 3 * i128::from(i64::MAX));
        assert!(huge.totals().revenue["USD"] > 2.7e13);
        assert_eq!(huge.rank(Metric::Revenue, "USD"), 3 * i128::from(i64::MAX));
        assert_eq!(saturate(i128::MAX), i64::MAX);
        assert_eq!(saturate(i128::MIN), i64::MIN);
    }
}
