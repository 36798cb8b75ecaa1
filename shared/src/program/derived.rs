//! What the data table's stream derives, so that capture writes one item (the click, which is
//! also its capture's activity record) and a conversion only its own documents: the per-source
//! counters with the rescoring and fraud signals they lead to, and the daily rollups of clicks,
//! flags, conversions (with their revenue and payout per currency) and fraud signals of every
//! kind, each counted exactly once under at-least-once delivery.
//!
//! Every write here is safe to repeat: a signal is created once (a replay finds it there); a
//! source counter and a rollup row note, per origin partition, the last sequence number they
//! counted, and skip what they have (a row takes a batch's events of all its origins in one
//! write, each with its span); a rescoring only raises a score, and
//! the flag it adds is counted from the click's own change, once. A failure names the earliest
//! event whose effects are not all written: the feed redelivers from there
//! (`ReportBatchItemFailures` on Lambda), and what was written is skipped.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt};

use crate::brand_data::changes::{Change, ChangeEvent, sequence_order};
use crate::brand_data::clicks::ClickRecord;
use crate::brand_data::memory::MemoryBrandData;
use crate::brand_data::rollups::{
    CLICKS, CONVERSIONS, FLAGGED_CLICKS, MAX_SPANS_PER_ROW_UPDATE, PAYOUT_MICROS_PREFIX,
    REVENUE_MICROS_PREFIX, RollupIncrement, SIGNALS_PREFIX, StreamSpan, increments_for, to_micros,
};
use crate::brand_data::{
    BrandDataStore, ClickStoreExt, Document, DocumentKind, SourceHit, SourceHits, UniqueClaim,
};
use crate::clock::{UnixMillis, format_rfc3339};
use crate::ids::BrandId;
use crate::program::conversions::Conversion;
use crate::program::fraud::{self, FraudSignal, ReviewState};
use crate::program::scoring::{
    Finding, Thresholds, score, source_findings, source_of, user_agent_finding,
};
use crate::store::StoreError;

const HOUR_MS: i64 = 3_600_000;
/// Writes in flight at once for one batch: enough to hide the store's latency, few enough that a
/// batch of 1,000 does not open 1,000 connections.
const WRITE_CONCURRENCY: usize = 64;
/// How many times one row or source update is re-sent for the events its replay answer
/// shows it has not counted yet.
const MAX_PARTIAL_REPLAYS: usize = 3;
/// The unique claim that keeps click signals to one per kind, source and hour.
const SIGNAL_CLAIM_FIELD: &str = "source_hour";

/// A batch that was not wholly derived: redeliver from `first_failed_sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub first_failed_sequence: String,
    pub error: StoreError,
}

/// What one batch wrote, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeriveReport {
    pub source_updates: usize,
    pub rescored_clicks: usize,
    pub signals: usize,
    pub rollup_updates: usize,
}

/// The failure at the earliest sequence number seen so far.
#[derive(Default)]
struct Failures(Option<BatchFailure>);

impl Failures {
    fn note(&mut self, sequence: &str, error: StoreError) {
        let earlier = self.0.as_ref().is_none_or(|failed| {
            sequence_order(sequence) < sequence_order(&failed.first_failed_sequence)
        });
        if earlier {
            self.0 = Some(BatchFailure {
                first_failed_sequence: sequence.to_owned(),
                error,
            });
        }
    }
}

/// Runs `futures`, [`WRITE_CONCURRENCY`] at a time. They come boxed and collected: a lazy
/// iterator of closures held across the await would not be `Send` for every lifetime, which the
/// feed's spawned task needs.
async fn run_all<T>(futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    futures_util::stream::iter(futures)
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await
}

/// Derives what `events` (one stream shard's batch, in order) imply. The source counters and the
/// rollups are written concurrently; the rescoring and signals follow their source counter.
pub async fn derive_batch(
    store: &dyn BrandDataStore,
    thresholds: &Thresholds,
    events: &[ChangeEvent],
) -> Result<DeriveReport, BatchFailure> {
    let new_clicks = new_clicks(events);
    let (sources, rollups) = tokio::join!(
        score_sources(store, thresholds, &new_clicks),
        write_rollups(store, events),
    );
    let mut failures = Failures::default();
    let mut report = DeriveReport::default();
    for (part, failure) in [sources, rollups] {
        report.source_updates += part.source_updates;
        report.rescored_clicks += part.rescored_clicks;
        report.signals += part.signals;
        report.rollup_updates += part.rollup_updates;
        if let Some(failure) = failure.0 {
            failures.note(&failure.first_failed_sequence, failure.error);
        }
    }
    failures.0.map_or(Ok(report), Err)
}

/// One new click of the batch, with where it came from.
struct NewClick<'a> {
    partition: &'a str,
    sequence: &'a str,
    click: &'a ClickRecord,
}

/// The batch's new clicks, each once (moto can hand the same image twice).
fn new_clicks(events: &[ChangeEvent]) -> Vec<NewClick<'_>> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter_map(|event| match &event.change {
            Change::NewClick(click)
                if seen.insert((click.brand_id.clone(), click.click_id.clone())) =>
            {
                Some(NewClick {
                    partition: &event.partition,
                    sequence: &event.sequence,
                    click,
                })
            }
            _ => None,
        })
        .collect()
}

/// The batch's clicks from one source, in time order. The source's item holds one window and
/// one mark per origin, so they are counted together, into the latest hour among them (a late
/// click counts into the current hour, as everywhere): two writes of one origin for two hours
/// could otherwise land in either order and the later-sequenced one be taken for a replay.
struct SourceBatch<'a> {
    brand_id: &'a BrandId,
    source_ip: &'a str,
    window_start: UnixMillis,
    clicks: Vec<&'a NewClick<'a>>,
}

/// How a click stood in its source's counter.
struct Sighting {
    hit: SourceHit,
    /// Whether `hit` is what the counter held as this click was counted. A redelivered click's
    /// sighting is reconstructed from the counter as it now stands, and its rescoring reads the
    /// click first, so that a score is only ever raised.
    exact: bool,
}

fn source_batches<'a>(clicks: &'a [NewClick<'a>]) -> Vec<SourceBatch<'a>> {
    let mut batches: BTreeMap<(&BrandId, &str), Vec<&NewClick<'a>>> = BTreeMap::new();
    for new in clicks {
        let click = new.click;
        batches
            .entry((&click.brand_id, &click.source_ip))
            .or_default()
            .push(new);
    }
    batches
        .into_iter()
        .map(|((brand_id, source_ip), mut clicks)| {
            clicks.sort_by_key(|new| (new.click.at, sequence_order(new.sequence)));
            let latest = clicks.last().map_or(0, |new| new.click.at);
            let window_start = latest - latest.rem_euclid(HOUR_MS);
            SourceBatch {
                brand_id,
                source_ip,
                window_start,
                clicks,
            }
        })
        .collect()
}

fn span_of(partition: &str, sequences: &[&str]) -> StreamSpan {
    let first = sequences
        .iter()
        .min_by_key(|sequence| sequence_order(sequence))
        .copied()
        .unwrap_or_default();
    let last = sequences
        .iter()
        .max_by_key(|sequence| sequence_order(sequence))
        .copied()
        .unwrap_or_default();
    StreamSpan {
        origin: partition.to_owned(),
        first_sequence: first.to_owned(),
        last_sequence: last.to_owned(),
    }
}

/// Counts a source's clicks of the batch, one counter write per origin partition (the counter
/// notes what it counted per origin), and tells where each click stood: the count before the
/// batch plus its rank in time order, the click before it as its previous sighting. A write that
/// finds some of its clicks counted already (a redelivery) is sent the rest, and the batch's
/// sightings are then reconstructed from the counter as it stands.
async fn count_source(
    store: &dyn BrandDataStore,
    batch: &SourceBatch<'_>,
) -> Result<(Vec<Sighting>, usize), StoreError> {
    let mut origins: BTreeMap<&str, Vec<&NewClick>> = BTreeMap::new();
    for new in &batch.clicks {
        origins.entry(new.partition).or_default().push(new);
    }
    let mut origins: Vec<(&str, Vec<&NewClick>)> = origins.into_iter().collect();
    // The origin with the earliest click first, so a batch's first write sees the count before it.
    origins.sort_by_key(|(_, clicks)| clicks.first().map(|new| new.click.at));
    let mut writes = 0;
    let mut before: Option<(u64, Option<UnixMillis>)> = None;
    let mut standing = 0;
    let mut exact = true;
    for (partition, clicks) in origins {
        let mut pending = clicks;
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > MAX_PARTIAL_REPLAYS + 1 {
                return Err(StoreError::Contention);
            }
            let sequences: Vec<&str> = pending.iter().map(|new| new.sequence).collect();
            let hits = SourceHits {
                window_start: batch.window_start,
                count: pending.len() as u64,
                latest_at: pending.iter().map(|new| new.click.at).max().unwrap_or(0),
                expires_at: (batch.window_start + 2 * HOUR_MS) / 1000,
            };
            let tally = store
                .count_source_hits(
                    batch.brand_id,
                    batch.source_ip,
                    &hits,
                    Some(&span_of(partition, &sequences)),
                )
                .await?;
            writes += 1;
            if tally.applied {
                before.get_or_insert((tally.clicks_in_window, tally.last_at));
                standing = tally.clicks_in_window + hits.count;
                break;
            }
            exact = false;
            standing = tally.clicks_in_window;
            let through = tally.counted_through.as_deref().map(sequence_order);
            pending.retain(|new| {
                through
                    .as_ref()
                    .is_some_and(|through| sequence_order(new.sequence) > *through)
            });
        }
    }
    let count = batch.clicks.len() as u64;
    let (base, base_last_at) = match (exact, before) {
        (true, Some(before)) => before,
        // Redelivered: the batch's clicks are taken as the latest the counter holds.
        _ => (standing.saturating_sub(count), None),
    };
    let sightings = batch
        .clicks
        .iter()
        .enumerate()
        .map(|(rank, _)| Sighting {
            hit: SourceHit {
                clicks_in_window: base + rank as u64 + 1,
                previous_at: match rank.checked_sub(1) {
                    Some(earlier) => Some(batch.clicks[earlier].click.at),
                    None => base_last_at,
                },
            },
            exact,
        })
        .collect();
    Ok((sightings, writes))
}

async fn score_sources(
    store: &dyn BrandDataStore,
    thresholds: &Thresholds,
    clicks: &[NewClick<'_>],
) -> (DeriveReport, Failures) {
    let batches = source_batches(clicks);
    let work = batches.iter().map(|batch| {
        async move {
            let first = batch
                .clicks
                .iter()
                .map(|new| new.sequence)
                .min_by_key(|sequence| sequence_order(sequence))
                .unwrap_or_default();
            let (sightings, writes) = match count_source(store, batch).await {
                Ok(counted) => counted,
                Err(error) => {
                    let mut failures = Failures::default();
                    failures.note(first, error);
                    return (DeriveReport::default(), failures);
                }
            };
            let mut report = DeriveReport {
                source_updates: writes,
                ..DeriveReport::default()
            };
            let mut failures = Failures::default();
            // The kinds of signal this source has, per hour: raised, or found raised.
            let mut settled = HashSet::new();
            for (new, sighting) in batch.clicks.iter().zip(sightings) {
                let mut findings = findings_of(new.click, &sighting.hit, thresholds);
                if !sighting.exact {
                    // A reconstructed count may step over the one click that crosses the limit:
                    // any click over it may raise the signal (the claim keeps it to one).
                    for finding in &mut findings {
                        if finding.kind == "source_velocity" {
                            finding.raises_signal = true;
                        }
                    }
                }
                let outcome = rescore(store, new.click, &findings, sighting.exact).await;
                let outcome = match outcome {
                    Ok(rescored) => {
                        report.rescored_clicks += usize::from(rescored);
                        // The click's own hour: a batch's window depends on how it was cut.
                        let hour = new.click.at - new.click.at.rem_euclid(HOUR_MS);
                        raise_signals(store, new.click, hour, &findings, &mut settled).await
                    }
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(raised) => report.signals += raised,
                    Err(error) => failures.note(new.sequence, error),
                }
            }
            (report, failures)
        }
        .boxed()
    });
    let work: Vec<_> = work.collect();
    let mut report = DeriveReport::default();
    let mut failures = Failures::default();
    for (part, failure) in run_all(work).await {
        report.source_updates += part.source_updates;
        report.rescored_clicks += part.rescored_clicks;
        report.signals += part.signals;
        if let Some(failure) = failure.0 {
            failures.note(&failure.first_failed_sequence, failure.error);
        }
    }
    (report, failures)
}

/// Everything that looked wrong about a click: its user agent, and its source's counter.
fn findings_of(click: &ClickRecord, hit: &SourceHit, thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings: Vec<Finding> = user_agent_finding(&click.user_agent).into_iter().collect();
    findings.extend(source_findings(
        &click.source_ip,
        *hit,
        click.at,
        *thresholds,
    ));
    findings
}

/// Raises the click's score to what its findings add up to, if that is higher. Returns whether
/// the click was written.
async fn rescore(
    store: &dyn BrandDataStore,
    click: &ClickRecord,
    findings: &[Finding],
    exact: bool,
) -> Result<bool, StoreError> {
    let final_score = score(findings);
    if final_score <= click.fraud_score {
        return Ok(false);
    }
    let mut current = if exact {
        click.clone()
    } else {
        match store.get_click(&click.brand_id, &click.click_id).await? {
            Some(stored) if stored.fraud_score < final_score => stored,
            _ => return Ok(false),
        }
    };
    current.fraud_score = final_score;
    match store.update_click(&current).await {
        Ok(()) => Ok(true),
        // Gone (the brand deleted it, or its table was reset): nothing to raise.
        Err(StoreError::NotFound) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Stores a fraud signal per finding that raises one, at most one per kind, source and hour
/// (a unique claim keeps it so, redeliveries included; `settled` skips the kinds this batch has
/// already settled for the source, without a store call). Returns how many were stored.
async fn raise_signals(
    store: &dyn BrandDataStore,
    click: &ClickRecord,
    window_start: UnixMillis,
    findings: &[Finding],
    settled: &mut HashSet<(&'static str, UnixMillis)>,
) -> Result<usize, StoreError> {
    let mut raised = 0;
    for finding in findings.iter().filter(|finding| finding.raises_signal) {
        if settled.contains(&(finding.kind, window_start)) {
            continue;
        }
        let claim = UniqueClaim {
            field: SIGNAL_CLAIM_FIELD,
            value: format!(
                "{}#{}#{window_start}",
                finding.kind,
                source_of(&click.source_ip)
            ),
        };
        if raise_signal(store, click, finding, &claim).await? {
            raised += 1;
        }
        settled.insert((finding.kind, window_start));
    }
    Ok(raised)
}

async fn raise_signal(
    store: &dyn BrandDataStore,
    click: &ClickRecord,
    finding: &Finding,
    claim: &UniqueClaim,
) -> Result<bool, StoreError> {
    // Two tries: a fresh id is drawn if the first one was taken by another signal.
    for _ in 0..2 {
        let id = crate::program::documents::new_time_id(fraud::ID_PREFIX, click.at)
            .map_err(|_| StoreError::Unavailable("no randomness for a signal id".into()))?;
        let at = format_rfc3339(click.at);
        let signal = FraudSignal {
            id: id.clone(),
            kind: finding.kind.to_owned(),
            click_id: click.click_id.clone(),
            conversion_id: None,
            partner_id: click.partner_id.clone(),
            offer_id: click.offer_id.clone(),
            score: finding.score,
            detail: finding.detail.clone(),
            review_state: ReviewState::Open,
            created_at: at.clone(),
            updated_at: at,
        };
        let body = serde_json::to_value(&signal).map_err(|error| {
            StoreError::Corrupt(format!("fraud signal does not encode: {error}"))
        })?;
        let document = Document {
            brand_id: click.brand_id.clone(),
            kind: DocumentKind::FraudSignal,
            id,
            version: 1,
            body,
        };
        let claims = std::slice::from_ref(claim);
        match store
            .create_documents_counted(&[(&document, claims)], &[], None)
            .await
        {
            Ok(()) => return Ok(true),
            Err(StoreError::AlreadyExists) => {
                let holder = store
                    .claim_holder(&click.brand_id, DocumentKind::FraudSignal, claim)
                    .await?;
                if holder.is_some() {
                    // Raised already: by a redelivery of this click or an earlier click.
                    return Ok(false);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Contention)
}

/// One event's share of one rollup row, and the origin partition it came from.
struct Contribution {
    origin: String,
    sequence: String,
    counters: Vec<(String, i64)>,
}

/// One rollup row's events of the batch, from every origin partition they came from.
struct RowShare {
    brand_id: BrandId,
    increment: RollupIncrement,
    contributions: Vec<Contribution>,
}

type RowKey = (BrandId, String, &'static str, u32, String);

/// What each event adds to the rollups: a new click its click (and its flag if it was captured
/// flagged), a click's change the flag it gained, a fraud signal (of a click or a conversion) its
/// kind, a new conversion one conversion, its sale amount (if any) and its payout in micro-units
/// of their currencies, on its creation day. A conversion's later updates (its status) are not
/// new documents: they count nothing.
fn event_counters(event: &ChangeEvent) -> Option<(EventPlace, Vec<(String, i64)>)> {
    match &event.change {
        Change::NewClick(click) => {
            let mut counters = vec![(CLICKS.to_owned(), 1)];
            if click.flagged() {
                counters.push((FLAGGED_CLICKS.to_owned(), 1));
            }
            Some((EventPlace::of_click(click), counters))
        }
        // Scores only rise here, but the count follows the click's state whatever writes it.
        Change::ClickChanged { before, after } if before.flagged() != after.flagged() => Some((
            EventPlace::of_click(after),
            vec![(
                FLAGGED_CLICKS.to_owned(),
                if after.flagged() { 1 } else { -1 },
            )],
        )),
        Change::NewDocument(document) if document.kind == DocumentKind::FraudSignal => {
            let signal: FraudSignal = serde_json::from_value(document.body.clone()).ok()?;
            let at = crate::program::paging::parse_time("created_at", &signal.created_at).ok()?;
            Some((
                EventPlace {
                    brand_id: document.brand_id.clone(),
                    at,
                    shard_id: signal.click_id.clone(),
                    offer_id: signal.offer_id.clone(),
                    partner_id: signal.partner_id.clone(),
                    identity: format!("signal#{}", document.id),
                },
                vec![(format!("{SIGNALS_PREFIX}{}", signal.kind), 1)],
            ))
        }
        Change::NewDocument(document) if document.kind == DocumentKind::Conversion => {
            let conversion: Conversion = serde_json::from_value(document.body.clone()).ok()?;
            let at =
                crate::program::paging::parse_time("created_at", &conversion.created_at).ok()?;
            let mut counters = vec![(CONVERSIONS.to_owned(), 1)];
            if let Some(amount) = conversion.amount {
                counters.push((
                    format!("{REVENUE_MICROS_PREFIX}{}", conversion.currency),
                    to_micros(amount),
                ));
            }
            counters.push((
                format!("{PAYOUT_MICROS_PREFIX}{}", conversion.payout.currency),
                to_micros(conversion.payout.amount),
            ));
            Some((
                EventPlace {
                    brand_id: document.brand_id.clone(),
                    at,
                    // In the conversion's own shard, as its transaction used to write them.
                    shard_id: document.id.clone(),
                    offer_id: Some(conversion.offer_id),
                    partner_id: conversion.partner_id,
                    identity: format!("conversion#{}", document.id),
                },
                counters,
            ))
        }
        _ => None,
    }
}

/// Where an event's counters land, and what makes two images of it the same event.
struct EventPlace {
    brand_id: BrandId,
    at: UnixMillis,
    /// The id whose rollup shard the counters land in: the click's (a signal's click's), or the
    /// conversion's.
    shard_id: String,
    offer_id: Option<String>,
    partner_id: Option<String>,
    identity: String,
}

impl EventPlace {
    fn of_click(click: &ClickRecord) -> Self {
        Self {
            brand_id: click.brand_id.clone(),
            at: click.at,
            shard_id: click.click_id.clone(),
            offer_id: click.offer_id.clone(),
            partner_id: click.partner_id.clone(),
            identity: format!("click#{}#{}", click.click_id, click.flagged()),
        }
    }
}

/// The batch's rollup updates: one per row, in a fixed order.
fn row_shares(events: &[ChangeEvent]) -> Vec<RowShare> {
    let mut rows: BTreeMap<RowKey, RowShare> = BTreeMap::new();
    let mut seen: HashSet<(BrandId, String)> = HashSet::new();
    for event in events {
        let Some((place, counters)) = event_counters(event) else {
            continue;
        };
        // A new click's identity carries its flag, so a repeated image counts once; a change
        // counts once per click (a click gains its flag once).
        let identity = match &event.change {
            Change::NewClick(click) => format!("new#{}", click.click_id),
            _ => place.identity.clone(),
        };
        if !seen.insert((place.brand_id.clone(), identity)) {
            continue;
        }
        let increments = increments_for(
            place.at,
            &place.shard_id,
            place.offer_id.as_deref(),
            place.partner_id.as_deref(),
            &counters,
        );
        for increment in increments {
            let key = (
                place.brand_id.clone(),
                increment.day.clone(),
                increment.dimension.as_str(),
                increment.shard,
                increment.group.clone(),
            );
            let row = rows.entry(key).or_insert_with(|| RowShare {
                brand_id: place.brand_id.clone(),
                increment: RollupIncrement {
                    counters: Vec::new(),
                    ..increment.clone()
                },
                contributions: Vec::new(),
            });
            row.contributions.push(Contribution {
                origin: event.partition.clone(),
                sequence: event.sequence.clone(),
                counters: increment.counters,
            });
        }
    }
    rows.into_values().flat_map(split_by_origins).collect()
}

/// `row` as updates of at most [`MAX_SPANS_PER_ROW_UPDATE`] origins each (one span per origin).
fn split_by_origins(row: RowShare) -> Vec<RowShare> {
    let origins: BTreeSet<&str> = row
        .contributions
        .iter()
        .map(|c| c.origin.as_str())
        .collect();
    if origins.len() <= MAX_SPANS_PER_ROW_UPDATE {
        return vec![row];
    }
    let group_of: BTreeMap<String, usize> = origins
        .into_iter()
        .enumerate()
        .map(|(index, origin)| (origin.to_owned(), index / MAX_SPANS_PER_ROW_UPDATE))
        .collect();
    let mut groups: BTreeMap<usize, RowShare> = BTreeMap::new();
    for contribution in row.contributions {
        groups
            .entry(group_of[&contribution.origin])
            .or_insert_with(|| RowShare {
                brand_id: row.brand_id.clone(),
                increment: row.increment.clone(),
                contributions: Vec::new(),
            })
            .contributions
            .push(contribution);
    }
    groups.into_values().collect()
}

/// One span per origin of `contributions`: its first and last sequence among them.
fn spans_of(contributions: &[&Contribution]) -> Vec<StreamSpan> {
    let mut sequences: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for contribution in contributions {
        sequences
            .entry(contribution.origin.as_str())
            .or_default()
            .push(contribution.sequence.as_str());
    }
    sequences
        .into_iter()
        .map(|(origin, sequences)| span_of(origin, &sequences))
        .collect()
}

fn summed(contributions: &[&Contribution]) -> Vec<(String, i64)> {
    let mut totals: Vec<(String, i64)> = Vec::new();
    for contribution in contributions {
        for (name, amount) in &contribution.counters {
            match totals.iter_mut().find(|(total, _)| total == name) {
                // Money in micro-units can pass i64 over a batch: saturate, as reads do.
                Some((_, total)) => *total = total.saturating_add(*amount),
                None => totals.push((name.clone(), *amount)),
            }
        }
    }
    totals
}

/// Adds one row's share once, in one write carrying a span per origin. A row that has counted
/// part of it (a redelivery that reaches past what was delivered before) refuses the write and
/// names the origins it has counted and how far: the events after that are sent again, with
/// those of the origins it had not counted.
async fn write_row(store: &dyn BrandDataStore, row: &RowShare) -> Result<usize, StoreError> {
    let mut pending: Vec<&Contribution> = row.contributions.iter().collect();
    let mut writes = 0;
    for _ in 0..=MAX_PARTIAL_REPLAYS {
        if pending.is_empty() {
            return Ok(writes);
        }
        let increment = RollupIncrement {
            counters: summed(&pending),
            ..row.increment.clone()
        };
        let counted = store
            .add_rollup_once(&row.brand_id, &increment, &spans_of(&pending))
            .await?;
        writes += 1;
        let Some(counted) = counted else {
            return Ok(writes);
        };
        pending.retain(|contribution| {
            counted.get(&contribution.origin).is_none_or(|through| {
                sequence_order(&contribution.sequence) > sequence_order(through)
            })
        });
    }
    if pending.is_empty() {
        Ok(writes)
    } else {
        Err(StoreError::Contention)
    }
}

async fn write_rollups(
    store: &dyn BrandDataStore,
    events: &[ChangeEvent],
) -> (DeriveReport, Failures) {
    let rows = row_shares(events);
    let writes = rows.iter().map(|row| {
        async move {
            let first = row
                .contributions
                .iter()
                .map(|contribution| contribution.sequence.as_str())
                .min_by_key(|sequence| sequence_order(sequence))
                .unwrap_or_default();
            write_row(store, row).await.map_err(|error| (first, error))
        }
        .boxed()
    });
    let writes: Vec<_> = writes.collect();
    let mut report = DeriveReport::default();
    let mut failures = Failures::default();
    for result in run_all(writes).await {
        match result {
            Ok(written) => report.rollup_updates += written,
            Err((sequence, error)) => failures.note(sequence, error),
        }
    }
    (report, failures)
}

/// The memory store's change feed, derived the way Lambda's event source mapping does it: in
/// batches, in order, a failed batch redelivered from its failure. The derived writes go to the
/// store it was made with: the memory store itself, or a wrapper of it (the capacity model, a
/// faulty store) through which the feed is reached.
pub struct MemoryFeed {
    held: Box<dyn FeedStore>,
    thresholds: Thresholds,
    batch_size: usize,
}

/// A store and the memory store under it whose feed it derives.
trait FeedStore: Send + Sync {
    fn store(&self) -> &dyn BrandDataStore;
    fn memory(&self) -> &MemoryBrandData;
}

struct Held<S> {
    store: Arc<S>,
    memory: fn(&S) -> &MemoryBrandData,
}

impl<S: BrandDataStore + 'static> FeedStore for Held<S> {
    fn store(&self) -> &dyn BrandDataStore {
        self.store.as_ref()
    }

    fn memory(&self) -> &MemoryBrandData {
        (self.memory)(&self.store)
    }
}

/// Events per batch of the memory feed.
const MEMORY_BATCH: usize = 1_000;
/// Redeliveries of one failing batch before [`MemoryFeed::drain`] gives up and reports it.
const MEMORY_ATTEMPTS: usize = 5;

impl MemoryFeed {
    /// Turns the change feed of the memory store that `memory` reaches in `store` on; derived
    /// writes go to `store`.
    pub fn new<S: BrandDataStore + 'static>(
        store: Arc<S>,
        memory: fn(&S) -> &MemoryBrandData,
        thresholds: Thresholds,
    ) -> Self {
        memory(&store).enable_change_feed();
        Self {
            held: Box::new(Held { store, memory }),
            thresholds,
            batch_size: MEMORY_BATCH,
        }
    }

    /// The same feed in batches of at most `batch_size` events.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Derives every pending change, batch by batch, until the feed is empty (what tests wait
    /// for instead of sleeping). Returns how many events were derived.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let feed = self.held.memory();
        let mut derived = 0;
        let mut attempts = 0;
        loop {
            let batch = feed.pending_changes(self.batch_size);
            let Some(last) = batch.last() else {
                return Ok(derived);
            };
            match derive_batch(self.held.store(), &self.thresholds, &batch).await {
                Ok(_) => {
                    feed.acknowledge_changes(&last.sequence);
                    derived += batch.len();
                    attempts = 0;
                }
                Err(failure) => {
                    attempts += 1;
                    let done = batch
                        .iter()
                        .take_while(|event| event.sequence != failure.first_failed_sequence)
                        .last();
                    if let Some(done) = done {
                        feed.acknowledge_changes(&done.sequence);
                    }
                    if attempts >= MEMORY_ATTEMPTS {
                        return Err(failure.error);
                    }
                }
            }
        }
    }

    /// Drains the feed every `every`, for as long as the process runs (the local gateway).
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.drain().await {
                    tracing::warn!(error = %error, "stream derivation failed; retrying");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::brand_data::DocumentStore;
    use crate::brand_data::clicks::CaptureAudit;
    use crate::brand_data::faulty::FaultyBrandData;
    use crate::brand_data::rollups::{RollupDimension, utc_day};
    use crate::brand_data::{ActivityFilter, ClickStore, ClickStoreExt, DocumentStoreExt, Surface};
    use crate::program::conversions::{ConversionPayout, ConversionStatus};
    use crate::program::pricing::PayoutSource;
    use crate::store::fault::{Fault, Trigger};

    const DAY_MS: i64 = 86_400_000;
    const START: i64 = 1_795_000_000_000;
    const THRESHOLDS: Thresholds = Thresholds {
        source_clicks_per_hour: 3,
        repeat_window_ms: 60_000,
    };

    fn brands() -> Vec<BrandId> {
        ["acme", "globex"]
            .into_iter()
            .map(|id| BrandId::parse(id).unwrap())
            .collect()
    }

    /// Click `n` of a varied traffic mix: two brands, three days, two offers, three partners,
    /// some bots, and sources that repeat (five addresses, so some go over the hourly limit).
    fn click(n: u64) -> ClickRecord {
        let brands = brands();
        ClickRecord {
            brand_id: brands[(n % 2) as usize].clone(),
            click_id: format!("click-{n}"),
            at: START + i64::try_from(n % 3).unwrap() * DAY_MS + i64::try_from(n).unwrap() * 7_000,
            offer_id: Some(format!("off_{}", n % 2)),
            partner_id: (!n.is_multiple_of(5)).then(|| format!("ptr_{}", n % 3)),
            sub_ids: Default::default(),
            landing_url: None,
            referrer: None,
            source_ip: format!("192.0.2.{}", n % 5),
            user_agent: if n.is_multiple_of(7) {
                "curl/8.5.0"
            } else {
                "Mozilla/5.0"
            }
            .into(),
            fraud_score: if n.is_multiple_of(7) { 90 } else { 0 },
            audit: Some(CaptureAudit {
                request_id: format!("req-{n}"),
                method: "POST".into(),
                target: "/api/clicks/capture".into(),
                latency_ms: 3,
                key_id: "key_1".into(),
                fingerprint: "fp".into(),
                expires_at: 4_000_000_000,
            }),
        }
    }

    type Store = FaultyBrandData<MemoryBrandData>;

    fn feed(store: &Arc<Store>) -> MemoryFeed {
        MemoryFeed::new(store.clone(), FaultyBrandData::inner, THRESHOLDS)
    }

    /// One batch delivered by hand, wholly derived.
    async fn derive(store: &Store, batch: &[ChangeEvent]) -> DeriveReport {
        derive_batch(store, &THRESHOLDS, batch).await.unwrap()
    }

    /// After batches delivered by hand up to `events`' end: acknowledges them, derives what they
    /// led to (rescorings and signals are changes too), and checks the result.
    async fn settle_and_check(store: &Arc<Store>, events: &[ChangeEvent], clicks: usize) {
        let last = &events.last().expect("events were delivered").sequence;
        store.inner().acknowledge_changes(last);
        feed(store).drain().await.unwrap();
        assert_derived_once(store.inner(), clicks).await;
    }

    /// Clicks `range` as capture writes them, each one that converts ([`converts`]) followed by
    /// its conversion as the public API writes it.
    async fn capture(store: &Store, range: std::ops::Range<u64>) {
        for n in range {
            store.inner().insert_click(&click(n)).await.unwrap();
            if converts(n) {
                let (conversion, claims, signal) = conversion_of(n);
                let mut batch: Vec<(&Document, &[UniqueClaim])> = vec![(&conversion, &claims)];
                if let Some(signal) = &signal {
                    batch.push((signal, &[]));
                }
                store.inner().create_documents(&batch).await.unwrap();
            }
        }
    }

    /// Whether click `n` converts: every third, so conversions of both brands are in the mix,
    /// with and without an amount, in two sale currencies, with and without a partner, some
    /// fast enough to raise a signal, some a day after their click.
    fn converts(n: u64) -> bool {
        n % 3 == 1
    }

    /// The conversion of click `n`, its `txn_id` claim if it has one and its fast-conversion
    /// signal if it raises one: the documents `conversions::store_new` writes, and nothing else.
    fn conversion_of(n: u64) -> (Document, Vec<UniqueClaim>, Option<Document>) {
        let click = click(n);
        let k = n / 3;
        let fast = k.is_multiple_of(2);
        let created = click.at + if fast { 2_000 } else { DAY_MS + 90_000 };
        let amount = (k % 4 != 3).then_some(10.0 * k as f64 + 0.37);
        let currency = if k % 3 == 2 { "GBP" } else { "USD" };
        let payout = match amount {
            // 10% of the sale, in its currency.
            Some(amount) => ConversionPayout {
                amount: (amount * 10.0).round() / 100.0,
                currency: currency.into(),
                source: PayoutSource::OfferDefault,
                rule_id: None,
            },
            None => ConversionPayout {
                amount: 12.5,
                currency: "EUR".into(),
                source: PayoutSource::OfferRule,
                rule_id: Some("rul_1".into()),
            },
        };
        let id = format!("cnv_{created:011x}{n:05x}");
        let at = format_rfc3339(created);
        let conversion = Conversion {
            id: id.clone(),
            click_id: click.click_id.clone(),
            offer_id: click.offer_id.clone().unwrap(),
            partner_id: click.partner_id.clone(),
            txn_id: (k % 2 == 1).then(|| format!("order-{n}")),
            event: "sale".into(),
            amount,
            currency: currency.into(),
            payout,
            status: ConversionStatus::Pending,
            click_at: format_rfc3339(click.at),
            seconds_from_click: (created - click.at) as f64 / 1000.0,
            created_at: at.clone(),
            updated_at: at.clone(),
        };
        let claims = conversion
            .txn_id
            .iter()
            .map(|txn| UniqueClaim {
                field: "txn_id",
                value: txn.clone(),
            })
            .collect();
        let document = |kind, id: &str, body| Document {
            brand_id: click.brand_id.clone(),
            kind,
            id: id.to_owned(),
            version: 1,
            body,
        };
        let signal = fast.then(|| {
            let signal = FraudSignal {
                id: format!("frd_{created:011x}{n:05x}"),
                kind: "fast_conversion".into(),
                click_id: click.click_id.clone(),
                conversion_id: Some(id.clone()),
                partner_id: click.partner_id.clone(),
                offer_id: click.offer_id.clone(),
                score: 80,
                detail: "converted 2.0 s after the click".into(),
                review_state: ReviewState::Open,
                created_at: at.clone(),
                updated_at: at.clone(),
            };
            document(
                DocumentKind::FraudSignal,
                &signal.id,
                serde_json::to_value(&signal).unwrap(),
            )
        });
        let body = serde_json::to_value(&conversion).unwrap();
        (
            document(DocumentKind::Conversion, &id, body),
            claims,
            signal,
        )
    }

    /// Every rollup counter of every brand, day, dimension and group.
    async fn rollups(store: &dyn BrandDataStore) -> BTreeMap<String, i64> {
        let mut counters = BTreeMap::new();
        for brand in brands() {
            for dimension in [
                RollupDimension::Total,
                RollupDimension::Offer,
                RollupDimension::Partner,
            ] {
                let rows = store
                    .read_rollups(
                        &brand,
                        dimension,
                        &utc_day(START),
                        &utc_day(START + 3 * DAY_MS),
                    )
                    .await
                    .unwrap();
                for row in rows {
                    for (name, value) in &row.counters {
                        if *value != 0 {
                            let key =
                                format!("{brand}/{}/{dimension:?}/{}/{name}", row.day, row.group);
                            counters.insert(key, *value);
                        }
                    }
                }
            }
        }
        counters
    }

    /// The brute-force count, from the items the store holds: every click, flagged or not as
    /// it is now, every fraud signal (of a click or a conversion), and every conversion with its
    /// sale amount and payout as created, summed per brand, day, dimension and group.
    async fn recount(store: &dyn BrandDataStore) -> BTreeMap<String, i64> {
        let mut counters = BTreeMap::new();
        let mut add = |brand: &BrandId,
                       at: i64,
                       offer: &Option<String>,
                       partner: &Option<String>,
                       name: String,
                       value: i64| {
            let day = utc_day(at);
            let mut groups = vec![(RollupDimension::Total, String::new())];
            groups.extend(offer.clone().map(|id| (RollupDimension::Offer, id)));
            groups.extend(partner.clone().map(|id| (RollupDimension::Partner, id)));
            for (dimension, group) in groups {
                *counters
                    .entry(format!("{brand}/{day}/{dimension:?}/{group}/{name}"))
                    .or_insert(0) += value;
            }
        };
        for brand in brands() {
            let clicks = store
                .list_clicks(&brand, &Default::default(), 1_000, None)
                .await
                .unwrap();
            for click in &clicks.items {
                add(
                    &brand,
                    click.at,
                    &click.offer_id,
                    &click.partner_id,
                    CLICKS.into(),
                    1,
                );
                if click.flagged() {
                    add(
                        &brand,
                        click.at,
                        &click.offer_id,
                        &click.partner_id,
                        FLAGGED_CLICKS.into(),
                        1,
                    );
                }
            }
            for signal in signals(store, &brand).await {
                let at = crate::program::paging::parse_time("at", &signal.created_at).unwrap();
                add(
                    &brand,
                    at,
                    &signal.offer_id,
                    &signal.partner_id,
                    format!("{SIGNALS_PREFIX}{}", signal.kind),
                    1,
                );
            }
            for conversion in conversions(store, &brand).await {
                let at = crate::program::paging::parse_time("at", &conversion.created_at).unwrap();
                let offer = Some(conversion.offer_id.clone());
                let partner = &conversion.partner_id;
                add(&brand, at, &offer, partner, CONVERSIONS.into(), 1);
                if let Some(amount) = conversion.amount {
                    let name = format!("{REVENUE_MICROS_PREFIX}{}", conversion.currency);
                    add(&brand, at, &offer, partner, name, to_micros(amount));
                }
                let name = format!("{PAYOUT_MICROS_PREFIX}{}", conversion.payout.currency);
                let payout = to_micros(conversion.payout.amount);
                add(&brand, at, &offer, partner, name, payout);
            }
        }
        counters
    }

    async fn conversions(store: &dyn BrandDataStore, brand: &BrandId) -> Vec<Conversion> {
        store
            .list_documents(brand, DocumentKind::Conversion, 1_000, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|document| serde_json::from_value(document.body).unwrap())
            .collect()
    }

    async fn signals(store: &dyn BrandDataStore, brand: &BrandId) -> Vec<FraudSignal> {
        store
            .list_documents(brand, DocumentKind::FraudSignal, 1_000, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|document| serde_json::from_value(document.body).unwrap())
            .collect()
    }

    /// Checks what must hold however the feed was delivered: the rollups equal the recount, each
    /// capture is listed once in the delivery log (from its click), a source raises each kind of click signal once an hour, and a conversion
    /// at most one signal.
    async fn assert_derived_once(store: &dyn BrandDataStore, clicks: usize) {
        assert_eq!(rollups(store).await, recount(store).await);
        let mut records = 0;
        let mut seen = HashSet::new();
        for brand in brands() {
            let filter = ActivityFilter {
                surface: Some(Surface::Capture),
                ..ActivityFilter::default()
            };
            let page = store
                .list_activity(&brand, filter, 1_000, None)
                .await
                .unwrap();
            for record in page.items {
                assert!(
                    seen.insert(record.request_id.clone()),
                    "{}",
                    record.request_id
                );
                assert_eq!((record.status, record.outcome.as_str()), (201, "ok"));
                records += 1;
            }
            let mut raised = HashSet::new();
            let mut converted = HashSet::new();
            for signal in signals(store, &brand).await {
                if let Some(conversion_id) = &signal.conversion_id {
                    assert!(converted.insert(conversion_id.clone()), "{conversion_id}");
                    continue;
                }
                let click = store
                    .get_click(&brand, &signal.click_id)
                    .await
                    .unwrap()
                    .unwrap();
                let hour = click.at - click.at.rem_euclid(HOUR_MS);
                assert!(
                    raised.insert((signal.kind.clone(), click.source_ip.clone(), hour)),
                    "{} raised twice for {} in one hour",
                    signal.kind,
                    click.source_ip
                );
            }
        }
        assert_eq!(records, clicks, "one activity record per capture");
    }

    #[tokio::test]
    async fn one_batch_derives_every_kind_of_record() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let feed = feed(&store);
        capture(&store, 0..60).await;
        let batch = store.inner().pending_changes(1_000);
        let report = derive(&store, &batch).await;
        assert!(report.signals > 0, "{report:?}");
        // One rollup write per row, far fewer than one per click and row.
        let rows = store
            .take_calls()
            .iter()
            .filter(|call| **call == "add_rollup_once")
            .count();
        assert_eq!(rows, report.rollup_updates);
        store
            .inner()
            .acknowledge_changes(&batch.last().unwrap().sequence);
        // The rescoring and the signals are changes too: their flags and counts follow.
        feed.drain().await.unwrap();
        assert_derived_once(store.inner(), 60).await;
        // The 20 conversions (clicks 1, 4, ..., 58; see `conversion_of`), as created, for both
        // brands' totals: with and without an amount, in two sale currencies, 10 of them fast.
        let rollups = rollups(store.inner()).await;
        let total = |name: &str| -> i64 {
            rollups
                .iter()
                .filter(|(key, _)| key.contains("/Total//") && key.ends_with(&format!("//{name}")))
                .map(|(_, value)| value)
                .sum()
        };
        assert_eq!(total(CONVERSIONS), 20);
        assert_eq!(total(&format!("{REVENUE_MICROS_PREFIX}USD")), 893_700_000);
        assert_eq!(total(&format!("{REVENUE_MICROS_PREFIX}GBP")), 461_850_000);
        assert_eq!(total(&format!("{PAYOUT_MICROS_PREFIX}USD")), 89_400_000);
        assert_eq!(total(&format!("{PAYOUT_MICROS_PREFIX}GBP")), 46_200_000);
        assert_eq!(total(&format!("{PAYOUT_MICROS_PREFIX}EUR")), 62_500_000);
        assert_eq!(total(&format!("{SIGNALS_PREFIX}fast_conversion")), 10);
    }

    #[tokio::test]
    async fn a_batch_writes_one_update_per_row() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let _feed = feed(&store);
        // 1,000 clicks of one brand and day from 32 origin partitions: one update per row
        // (16 rollup shards x (total, 2 offers, 3 partners)), whatever the origins of its
        // events (each row takes two click shards'), not one per row and origin (2 x 96) and
        // not 3 per click.
        for n in 0..1_000 {
            let mut one = click(n);
            one.brand_id = brands()[0].clone();
            one.at = START;
            store.inner().insert_click(&one).await.unwrap();
        }
        let batch = store.inner().pending_changes(1_000);
        let report = derive(&store, &batch).await;
        assert_eq!(report.rollup_updates, 16 * 6, "{report:?}");
    }

    #[tokio::test]
    async fn a_source_over_its_hourly_limit_flags_the_clicks_beyond_it_and_signals_once() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let feed = feed(&store);
        // Ten browser clicks from one address within two minutes, spread over click shards.
        for n in 0..10 {
            let mut one = click(n * 2);
            one.brand_id = brands()[0].clone();
            one.at = START + i64::try_from(n).unwrap() * 12_000;
            one.source_ip = "198.51.100.7".into();
            one.user_agent = "Mozilla/5.0".into();
            one.fraud_score = 0;
            store.inner().insert_click(&one).await.unwrap();
        }
        feed.drain().await.unwrap();
        let clicks = store
            .list_clicks(&brands()[0], &Default::default(), 100, None)
            .await
            .unwrap();
        let flagged = clicks.items.iter().filter(|click| click.flagged()).count();
        assert_eq!(flagged, 7, "the limit is 3 an hour");
        let kinds: Vec<String> = signals(store.as_ref(), &brands()[0])
            .await
            .into_iter()
            .map(|signal| signal.kind)
            .collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|kind| *kind == "source_velocity")
                .count(),
            1,
            "{kinds:?}"
        );
        assert!(kinds.iter().filter(|kind| *kind == "source_repeat").count() <= 1);
        assert_derived_once(store.inner(), 10).await;
    }

    #[tokio::test]
    async fn a_failed_write_of_any_kind_then_redelivery_derives_everything_once() {
        // Two calls happen only on a redelivery, after a write whose answer was lost: the read of
        // a redelivered source's clicks before their rescoring, and the claim lookup of a signal
        // found raised.
        let operations = [
            ("count_source_hits", None),
            ("get_click", Some("count_source_hits")),
            ("update_click", None),
            ("create_documents", None),
            ("claim_holder", Some("create_documents")),
            ("add_rollup_once", None),
        ];
        for (operation, redelivered) in operations {
            let mut fired = 0;
            for fault in [Fault::ServerError, Fault::ResponseLost] {
                for k in [1, 2, 5, 9] {
                    let store = Arc::new(Store::new(MemoryBrandData::new()));
                    let feed = feed(&store).with_batch_size(25);
                    capture(&store, 0..80).await;
                    if let Some(before) = redelivered {
                        store.inject(Some(before), Fault::ResponseLost, Trigger::Nth(1));
                    }
                    store.inject(Some(operation), fault.clone(), Trigger::Nth(k));
                    feed.drain().await.unwrap();
                    assert_derived_once(store.inner(), 80).await;
                    fired += store.faults_fired();
                }
            }
            assert!(fired > 0, "no {operation} fault ever fired");
        }
    }

    #[tokio::test]
    async fn replayed_bisected_and_overlapping_deliveries_count_nothing_twice() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let _feed = feed(&store);
        capture(&store, 0..100).await;
        let events = store.inner().pending_changes(1_000);
        // Whole batches, the same again, bisected halves, and batches that straddle the earlier
        // ones (a redelivery from a failure that reaches past where the batch ended).
        for batch in events.chunks(25) {
            derive(&store, batch).await;
        }
        for batch in events.chunks(25) {
            derive(&store, batch).await;
            let (left, right) = batch.split_at(batch.len() / 2);
            derive(&store, left).await;
            derive(&store, right).await;
        }
        for batch in events[12..].chunks(30) {
            derive(&store, batch).await;
        }
        settle_and_check(&store, &events, 100).await;
    }

    #[tokio::test]
    async fn a_delivery_that_reaches_past_what_was_counted_counts_the_rest() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let _feed = feed(&store);
        capture(&store, 0..40).await;
        let events = store.inner().pending_changes(1_000);
        derive(&store, &events[..20]).await;
        // Redelivered from the 10th event, with 20 events never delivered before.
        derive(&store, &events[10..]).await;
        settle_and_check(&store, &events, 40).await;
    }

    #[tokio::test]
    async fn origins_delivered_in_any_interleaving_count_once() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let _feed = feed(&store);
        capture(&store, 0..90).await;
        let events = store.inner().pending_changes(1_000);
        // Per origin partition in order (what a stream guarantees), the partitions interleaved
        // in reverse.
        let mut by_partition: BTreeMap<String, Vec<ChangeEvent>> = BTreeMap::new();
        for event in &events {
            by_partition
                .entry(event.partition.clone())
                .or_default()
                .push(event.clone());
        }
        for events in by_partition.values().rev() {
            for batch in events.chunks(2) {
                derive(&store, batch).await;
            }
        }
        settle_and_check(&store, &events, 90).await;
    }

    /// A source's clicks that straddle an hour within one batch and one origin partition are
    /// all counted, into the later hour (two writes of one origin's mark for two hours would
    /// take the second for a replay).
    #[tokio::test]
    async fn a_source_straddling_an_hour_in_one_batch_is_counted_whole() {
        use crate::brand_data::clicks::click_shard;
        use crate::brand_data::{CounterStore, SourceHits};
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let feed = feed(&store);
        let ids: Vec<String> = (0..)
            .map(|n| format!("straddle-{n}"))
            .filter(|id| click_shard(id) == 0)
            .take(2)
            .collect();
        let hour = START - START.rem_euclid(HOUR_MS) + HOUR_MS;
        // Written in this order: the later click first, then a late one of the hour before.
        for (id, at) in [(&ids[0], hour + 10), (&ids[1], hour - 10)] {
            let mut one = click(0);
            one.click_id = id.clone();
            one.at = at;
            one.source_ip = "198.51.100.77".into();
            one.audit = None;
            store.inner().insert_click(&one).await.unwrap();
        }
        feed.drain().await.unwrap();
        let hits = SourceHits {
            window_start: hour,
            count: 1,
            latest_at: hour + 20,
            expires_at: 4_000_000_000,
        };
        let tally = store
            .inner()
            .count_source_hits(&brands()[0], "198.51.100.77", &hits, None)
            .await
            .unwrap();
        assert_eq!(tally.clicks_in_window, 2, "{tally:?}");
    }

    #[tokio::test]
    async fn a_key_only_insert_and_a_repeated_image_add_nothing() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let _feed = feed(&store);
        capture(&store, 0..30).await;
        let mut events = store.inner().pending_changes(1_000);
        // moto: a key-only INSERT before the real one, and the same image twice in one batch, of
        // a click and of a conversion.
        let kinds: [fn(&Change) -> bool; 2] = [
            |change| matches!(change, Change::NewClick(_)),
            |change| {
                matches!(change, Change::NewDocument(document)
                    if document.kind == DocumentKind::Conversion)
            },
        ];
        for is_kind in kinds {
            let at = events
                .iter()
                .position(|event| is_kind(&event.change))
                .unwrap()
                + 2;
            let at = at
                + events[at..]
                    .iter()
                    .position(|event| is_kind(&event.change))
                    .unwrap();
            let repeated = events[at].clone();
            events.insert(
                at,
                ChangeEvent {
                    change: Change::Other,
                    ..repeated.clone()
                },
            );
            events.insert(at + 2, repeated);
        }
        derive(&store, &events).await;
        settle_and_check(&store, &events, 30).await;
    }

    /// A conversion's status change is a document update: not on the feed (nor a new document
    /// on the stream), so its rollups stay as created, and a replay of its creation adds nothing.
    #[tokio::test]
    async fn a_conversion_status_change_counts_nothing() {
        let store = Arc::new(Store::new(MemoryBrandData::new()));
        let feed = feed(&store);
        capture(&store, 0..30).await;
        let created = store.inner().pending_changes(1_000);
        feed.drain().await.unwrap();
        let counted = rollups(store.inner()).await;
        assert!(
            counted.keys().any(|key| key.ends_with(CONVERSIONS)),
            "{counted:?}"
        );
        let mut approved = 0;
        for brand in brands() {
            let page = store
                .inner()
                .list_documents(&brand, DocumentKind::Conversion, 1_000, None)
                .await
                .unwrap();
            for document in page.items {
                let mut conversion: Conversion = serde_json::from_value(document.body).unwrap();
                conversion.status = ConversionStatus::Approved;
                conversion.updated_at = format_rfc3339(START + 5 * DAY_MS);
                let updated = Document {
                    version: document.version + 1,
                    body: serde_json::to_value(&conversion).unwrap(),
                    ..document
                };
                store
                    .inner()
                    .update_document(&updated, &[], &[], None)
                    .await
                    .unwrap();
                approved += 1;
            }
        }
        assert_eq!(approved, 10);
        assert_eq!(feed.drain().await.unwrap(), 0, "an update derives nothing");
        // The conversions' creation delivered again (a redelivery after the update).
        let conversions: Vec<ChangeEvent> = created
            .into_iter()
            .filter(|event| {
                matches!(&event.change, Change::NewDocument(document)
                    if document.kind == DocumentKind::Conversion)
            })
            .collect();
        assert_eq!(conversions.len(), 10);
        derive(&store, &conversions).await;
        assert_eq!(rollups(store.inner()).await, counted);
        assert_derived_once(store.inner(), 30).await;
    }
}
