//! The behaviour every [`BrandDataStore`] backend must have. The in-memory backend runs it in unit
//! tests, the DynamoDB backend against moto.

use crate::brand_data::ClickStoreExt;
use crate::brand_data::DocumentStoreExt;
use serde_json::json;

use super::clicks::{ClickFilter, ClickRecord};
use super::rollups::{
    CLICKS, CONVERSIONS, FLAGGED_CLICKS, MAX_SPANS_PER_ROW_UPDATE, MAX_TRANSACTION_ITEMS,
    PAYOUT_MICROS_PREFIX, REVENUE_MICROS_PREFIX, ROLLUP_SHARDS, RollupDimension, RollupIncrement,
    RollupRow, SIGNALS_PREFIX, StreamSpan, increments_for, rollup_shard, to_micros, utc_day,
};
use super::{
    ActivityFilter, ActivityRecord, BrandDataStore, CountedThrough, Document, DocumentKind,
    SourceHits, Surface, UniqueClaim,
};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::StoreError;
use crate::store::conformance::fresh_brand_id;

pub async fn run_all(store: &dyn BrandDataStore) {
    documents_have_a_versioned_lifecycle(store).await;
    unique_claims_hold_per_brand_and_kind(store).await;
    documents_list_in_pages_within_the_brand(store).await;
    activity_lists_newest_first_with_filters(store).await;
    counters_count_per_window(store).await;
    activity_summaries_keep_the_largest_count(store).await;
    a_replaced_activity_record_stands_in_place_of_the_first(store).await;
    document_writes_store_their_activity_record(store).await;
    failed_document_writes_store_no_activity_record(store).await;
    a_document_write_whose_record_slot_is_taken_writes_nothing(store).await;
    an_activity_record_counts_toward_the_transaction_limit(store).await;
    clicks_are_stored_once_and_listed_newest_first(store).await;
    documents_are_created_together_and_queried_by_id_range(store).await;
    clicks_are_rescored_in_place(store).await;
    source_hits_count_per_window_and_remember_the_last_sighting(store).await;
    source_hits_from_the_stream_are_counted_once(store).await;
    concurrent_source_hits_are_each_counted_once(store).await;
    rollups_count_with_the_click_and_sum_across_shards(store).await;
    a_duplicate_click_adds_nothing_to_rollups(store).await;
    documents_with_a_taken_claim_add_nothing_to_rollups(store).await;
    increments_to_one_row_in_one_call_are_merged(store).await;
    rollup_day_ranges_are_inclusive(store).await;
    rollup_groups_are_separate_per_offer_and_partner(store).await;
    money_micros_sum_exactly(store).await;
    bad_rollup_input_is_rejected_and_writes_nothing(store).await;
    stream_rollups_are_counted_once_per_origin(store).await;
}

fn slug(value: &str) -> UniqueClaim {
    UniqueClaim {
        field: "slug",
        value: value.to_owned(),
    }
}

fn partner(brand_id: &BrandId, id: &str, version: u64, name: &str) -> Document {
    Document {
        brand_id: brand_id.clone(),
        kind: DocumentKind::Partner,
        id: id.to_owned(),
        version,
        body: json!({ "name": name }),
    }
}

pub async fn documents_have_a_versioned_lifecycle(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("docs");
    let v1 = partner(&brand, "ptr_1", 1, "First");
    store.create_document(&v1, &[slug("first")]).await.unwrap();
    assert_eq!(
        store.create_document(&v1, &[slug("other")]).await,
        Err(StoreError::AlreadyExists),
        "same id twice"
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Offer, "ptr_1")
            .await
            .unwrap(),
        None
    );

    let v2 = partner(&brand, "ptr_1", 2, "Renamed");
    store
        .update_document(&v2, &[slug("first")], &[slug("second")], None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        Some(v2.clone())
    );
    // A writer still holding version 1 loses instead of overwriting.
    let stale = partner(&brand, "ptr_1", 2, "Stale");
    assert_eq!(
        store.update_document(&stale, &[], &[], None).await,
        Err(StoreError::Contention)
    );
    let missing = partner(&brand, "ptr_missing", 2, "Nobody");
    assert_eq!(
        store.update_document(&missing, &[], &[], None).await,
        Err(StoreError::NotFound)
    );

    // The released slug is free again; the new one is held.
    store
        .create_document(&partner(&brand, "ptr_2", 1, "Reuses"), &[slug("first")])
        .await
        .unwrap();
    assert_eq!(
        store
            .create_document(&partner(&brand, "ptr_3", 1, "Clash"), &[slug("second")])
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_3")
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        store
            .delete_document(
                &brand,
                DocumentKind::Partner,
                "ptr_1",
                1,
                &[slug("second")],
                None,
            )
            .await,
        Err(StoreError::Contention),
        "deleting needs the current version"
    );
    store
        .delete_document(
            &brand,
            DocumentKind::Partner,
            "ptr_1",
            2,
            &[slug("second")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .delete_document(&brand, DocumentKind::Partner, "ptr_1", 2, &[], None)
            .await,
        Err(StoreError::NotFound)
    );
    store
        .create_document(
            &partner(&brand, "ptr_4", 1, "Takes freed"),
            &[slug("second")],
        )
        .await
        .unwrap();
}

pub async fn unique_claims_hold_per_brand_and_kind(store: &dyn BrandDataStore) {
    let acme = fresh_brand_id("claims");
    let globex = fresh_brand_id("claims");
    store
        .create_document(&partner(&acme, "ptr_a", 1, "A"), &[slug("shared")])
        .await
        .unwrap();
    store
        .create_document(&partner(&globex, "ptr_b", 1, "B"), &[slug("shared")])
        .await
        .unwrap();
    let offer = Document {
        kind: DocumentKind::Offer,
        ..partner(&acme, "off_a", 1, "Offer")
    };
    store
        .create_document(&offer, &[slug("shared")])
        .await
        .unwrap();
}

pub async fn documents_list_in_pages_within_the_brand(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("pages");
    let neighbour = fresh_brand_id("pages");
    store
        .create_document(&partner(&neighbour, "ptr_0", 1, "N"), &[])
        .await
        .unwrap();
    for index in 1..=5 {
        store
            .create_document(&partner(&brand, &format!("ptr_{index}"), 1, "P"), &[])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut position = None;
    loop {
        let page = store
            .list_documents(&brand, DocumentKind::Partner, 2, position.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        assert!(page.items.iter().all(|doc| doc.brand_id == brand));
        seen.extend(page.items.into_iter().map(|doc| doc.id));
        match page.next_position {
            Some(next) => position = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["ptr_1", "ptr_2", "ptr_3", "ptr_4", "ptr_5"]);
    let offers = store
        .list_documents(&brand, DocumentKind::Offer, 10, None)
        .await
        .unwrap();
    assert!(offers.items.is_empty() && offers.next_position.is_none());

    // A prefix narrows the listing to matching ids, still in pages.
    for id in ["rul_a_1", "rul_a_2", "rul_a_3", "rul_b_1"] {
        let rule = Document {
            kind: DocumentKind::PricingRule,
            ..partner(&brand, id, 1, "R")
        };
        store.create_document(&rule, &[]).await.unwrap();
    }
    let ids = |page: &crate::store::Page<Document>| {
        page.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>()
    };
    let first = store
        .list_documents_by_prefix(&brand, DocumentKind::PricingRule, "rul_a_", 2, None)
        .await
        .unwrap();
    assert_eq!(ids(&first), ["rul_a_1", "rul_a_2"]);
    let rest = store
        .list_documents_by_prefix(
            &brand,
            DocumentKind::PricingRule,
            "rul_a_",
            2,
            first.next_position.as_deref(),
        )
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["rul_a_3"]);
    assert_eq!(rest.next_position, None);
    let none = store
        .list_documents_by_prefix(&brand, DocumentKind::PricingRule, "rul_c_", 10, None)
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

/// An activity record with placeholder request details, for tests that store, count or order them.
pub fn sample_activity(
    brand_id: &BrandId,
    at: i64,
    surface: Surface,
    request_id: &str,
) -> ActivityRecord {
    ActivityRecord {
        brand_id: brand_id.clone(),
        at,
        request_id: request_id.to_owned(),
        surface,
        method: "GET".into(),
        target: "/api/public/whoami".into(),
        status: 200,
        latency_ms: 3,
        key_id: "key_00000000000000000001".into(),
        fingerprint: "fp_000000000001".into(),
        source_ip: "203.0.113.7".into(),
        user_agent: "conformance".into(),
        outcome: "ok".into(),
        attempts: None,
        expires_at: 1_900_000_000,
        click_id: None,
    }
}

pub async fn activity_lists_newest_first_with_filters(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("activity");
    let other = fresh_brand_id("activity");
    let records = [
        sample_activity(&brand, 1_000, Surface::Api, "r1"),
        sample_activity(&brand, 2_000, Surface::Mcp, "r2"),
        sample_activity(&brand, 3_000, Surface::Capture, "r3"),
        sample_activity(&brand, 4_000, Surface::Api, "r4"),
        sample_activity(&brand, 4_000, Surface::Api, "r5"),
    ];
    for record in &records {
        store.append_activity(record).await.unwrap();
    }
    store
        .append_activity(&sample_activity(&other, 2_500, Surface::Api, "x"))
        .await
        .unwrap();

    assert_eq!(
        store.append_activity(&records[0]).await,
        Err(StoreError::AlreadyExists),
        "a record is never overwritten"
    );

    let mut seen = Vec::new();
    let mut position = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_activity(&brand, ActivityFilter::default(), 2, position.as_deref())
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|r| r.request_id.clone()));
        match page.next_position {
            Some(next) => position = Some(next),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(
        seen,
        ["r5", "r4", "r3", "r2", "r1"],
        "newest first, each once"
    );
    assert_eq!(pages, 3);
    assert_eq!(
        store
            .list_activity(&brand, ActivityFilter::default(), 10, None)
            .await
            .unwrap()
            .items,
        records.iter().rev().cloned().collect::<Vec<_>>(),
        "records come back exactly as written"
    );

    let api_only = ActivityFilter {
        surface: Some(Surface::Api),
        ..ActivityFilter::default()
    };
    let api = store
        .list_activity(&brand, api_only, 10, None)
        .await
        .unwrap();
    assert_eq!(
        api.items
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r5", "r4", "r1"]
    );
    let window = ActivityFilter {
        from: Some(2_000),
        to: Some(3_000),
        ..ActivityFilter::default()
    };
    let windowed = store.list_activity(&brand, window, 10, None).await.unwrap();
    assert_eq!(
        windowed
            .items
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r3", "r2"]
    );
    let empty = ActivityFilter {
        from: Some(5_000),
        to: Some(1_000),
        ..ActivityFilter::default()
    };
    assert!(
        store
            .list_activity(&brand, empty, 10, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // The leak audit: only the attempts with a revoked key, across surfaces, paged to the end.
    for (at, surface, id) in [(4_500, Surface::Mcp, "r6"), (4_600, Surface::Capture, "r7")] {
        let mut refused = sample_activity(&brand, at, surface, id);
        refused.status = 401;
        refused.outcome = "revoked_key".into();
        store.append_activity(&refused).await.unwrap();
    }
    let revoked_only = ActivityFilter {
        outcome: super::activity_outcome("revoked_key"),
        ..ActivityFilter::default()
    };
    let mut refused = Vec::new();
    let mut position = None;
    for _ in 0..10 {
        let page = store
            .list_activity(&brand, revoked_only, 1, position.as_deref())
            .await
            .unwrap();
        refused.extend(page.items.iter().map(|r| r.request_id.clone()));
        position = page.next_position;
        if position.is_none() {
            break;
        }
    }
    assert_eq!(refused, ["r7", "r6"], "only the revoked-key attempts");
    let ok_api = ActivityFilter {
        surface: Some(Surface::Api),
        outcome: super::activity_outcome("ok"),
        ..ActivityFilter::default()
    };
    let ok_api = store.list_activity(&brand, ok_api, 10, None).await.unwrap();
    assert_eq!(
        ok_api
            .items
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r5", "r4", "r1"]
    );
}

pub async fn counters_count_per_window(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("counter");
    let other = fresh_brand_id("counter");
    for expected in 1..=3 {
        let count = store
            .increment_counter(&brand, "rate#key_1", 60_000, 1, 1_900_000_000)
            .await
            .unwrap();
        assert_eq!(count, expected);
    }
    assert_eq!(
        store
            .increment_counter(&brand, "rate#key_1", 120_000, 1, 1_900_000_000)
            .await
            .unwrap(),
        1,
        "a new window starts from one"
    );
    assert_eq!(
        store
            .increment_counter(&brand, "rate#key_2", 120_000, 1, 1_900_000_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .increment_counter(&other, "rate#key_1", 120_000, 1, 1_900_000_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .increment_counter(&brand, "rate#key_2", 120_000, -1, 1_900_000_000)
            .await
            .unwrap(),
        0,
        "a refund hands back what was counted"
    );
}

/// A replacement takes the place of the record with its time and request id (the guard's rewrite
/// of a read refused after its record was written), or stands as a new record.
pub async fn a_replaced_activity_record_stands_in_place_of_the_first(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("replace");
    let first = sample_activity(&brand, 60_500, Surface::Mcp, "r1");
    store.append_activity(&first).await.unwrap();
    let refused = ActivityRecord {
        status: 429,
        outcome: "rate_limited".into(),
        ..first.clone()
    };
    store.replace_activity(&refused).await.unwrap();
    // With nothing in its place, a replacement is a new record.
    let alone = sample_activity(&brand, 61_000, Surface::Mcp, "r2");
    store.replace_activity(&alone).await.unwrap();
    let listed = store
        .list_activity(&brand, ActivityFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(listed.items, vec![alone, refused]);
}

/// A summary stands for many refused attempts: the largest count written wins, whichever
/// container writes last, and it lists like any other record.
pub async fn activity_summaries_keep_the_largest_count(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("summary");
    let summary = |attempts: u64, source_ip: &str| ActivityRecord {
        request_id: "summary-revoked-key_1-60000".into(),
        outcome: "revoked_key".into(),
        status: 401,
        attempts: Some(attempts),
        source_ip: source_ip.into(),
        ..sample_activity(&brand, 60_000, Surface::Api, "unused")
    };
    store
        .append_activity(&sample_activity(&brand, 60_500, Surface::Api, "r1"))
        .await
        .unwrap();
    for (attempts, source) in [(1, "a"), (5, "b"), (3, "late"), (5, "same")] {
        store
            .record_activity_summary(&summary(attempts, source))
            .await
            .unwrap();
    }
    let listed = store
        .list_activity(&brand, ActivityFilter::default(), 10, None)
        .await
        .unwrap();
    let summaries: Vec<_> = listed
        .items
        .iter()
        .filter(|record| record.attempts.is_some())
        .collect();
    assert_eq!(summaries.len(), 1, "{:?}", listed.items);
    assert_eq!(summaries[0].attempts, Some(5));
    assert_eq!(summaries[0].source_ip, "b");
    assert_eq!(listed.items.len(), 2);
}

/// Every record of `brand`'s activity log, newest first.
async fn logged_activity(store: &dyn BrandDataStore, brand: &BrandId) -> Vec<ActivityRecord> {
    store
        .list_activity(brand, ActivityFilter::default(), 100, None)
        .await
        .unwrap()
        .items
}

/// The records of `record`'s shard of its surface at its instant, read as a shard's query reads
/// them.
async fn records_in_slot(
    store: &dyn BrandDataStore,
    record: &ActivityRecord,
) -> Vec<ActivityRecord> {
    let at = super::activity_sort_bounds(&ActivityFilter {
        from: Some(record.at),
        to: Some(record.at),
        ..ActivityFilter::default()
    });
    let shard = record.surface.activity_shard(&record.request_id);
    store
        .query_activity(&record.brand_id, record.surface, shard, &at.0, &at.1, 10)
        .await
        .unwrap()
}

/// A create, an update and a delete each store the record they carry, on any surface, with
/// rollups or without, exactly as an appended one: listed and queried as written, and in the
/// same slot (appending it again is refused).
pub async fn document_writes_store_their_activity_record(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("write-audit");
    let appended = sample_activity(&brand, 1_000, Surface::Api, "req_appended");
    store.append_activity(&appended).await.unwrap();

    let created = sample_activity(&brand, 2_000, Surface::Api, "req_create");
    let v1 = partner(&brand, "ptr_1", 1, "First");
    store
        .create_documents_counted(&[(&v1, &[slug("first")])], &[], Some(&created))
        .await
        .unwrap();
    let counted = sample_activity(&brand, 2_500, Surface::Mcp, "req_counted");
    let conversion = conversion_document(&brand, "cnv_1");
    let increments = increments_for(
        ROLLUP_START,
        "cnv_1",
        Some("off_a"),
        None,
        &counters(&[(CONVERSIONS, 1)]),
    );
    store
        .create_documents_counted(
            &[(&conversion, std::slice::from_ref(&txn("order-1")))],
            &increments,
            Some(&counted),
        )
        .await
        .unwrap();
    let mut updated = sample_activity(&brand, 3_000, Surface::Mcp, "req_update");
    updated.method = "tools/call".into();
    let v2 = partner(&brand, "ptr_1", 2, "Renamed");
    store
        .update_document(&v2, &[slug("first")], &[slug("second")], Some(&updated))
        .await
        .unwrap();
    let mut deleted = sample_activity(&brand, 4_000, Surface::Capture, "req_delete");
    deleted.status = 204;
    store
        .delete_document(
            &brand,
            DocumentKind::Partner,
            "ptr_1",
            2,
            &[slug("second")],
            Some(&deleted),
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        None,
        "the writes themselves took effect"
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Conversion, "cnv_1")
            .await
            .unwrap(),
        Some(conversion)
    );
    let day = utc_day(ROLLUP_START);
    assert_eq!(
        column(&totals(store, &brand, &day).await, CONVERSIONS),
        [row(&day, "", 1)]
    );
    assert_eq!(
        logged_activity(store, &brand).await,
        [
            deleted.clone(),
            updated.clone(),
            counted.clone(),
            created.clone(),
            appended.clone()
        ],
        "listed exactly as written, beside an appended record"
    );
    for record in [&appended, &created, &counted, &updated, &deleted] {
        assert_eq!(
            records_in_slot(store, record).await,
            std::slice::from_ref(record),
            "{}",
            record.request_id
        );
        assert_eq!(
            store.append_activity(record).await,
            Err(StoreError::AlreadyExists),
            "{}: the record holds its slot, as an appended one does",
            record.request_id
        );
    }
}

/// A write that fails stores none of its record, and the document stays as it was.
pub async fn failed_document_writes_store_no_activity_record(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("write-audit");
    let v1 = partner(&brand, "ptr_1", 1, "First");
    store.create_document(&v1, &[slug("first")]).await.unwrap();
    let v2 = partner(&brand, "ptr_1", 2, "Renamed");
    store.update_document(&v2, &[], &[], None).await.unwrap();
    let record = |request_id: &str| sample_activity(&brand, 1_000, Surface::Api, request_id);

    let stale = partner(&brand, "ptr_1", 2, "Stale");
    assert_eq!(
        store
            .update_document(
                &stale,
                &[slug("first")],
                &[slug("stale")],
                Some(&record("r1"))
            )
            .await,
        Err(StoreError::Contention),
        "a stale version"
    );
    let missing = partner(&brand, "ptr_missing", 2, "Nobody");
    assert_eq!(
        store
            .update_document(&missing, &[], &[], Some(&record("r2")))
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store
            .create_documents_counted(
                &[(&partner(&brand, "ptr_2", 1, "Clash"), &[slug("first")])],
                &[],
                Some(&record("r3")),
            )
            .await,
        Err(StoreError::AlreadyExists),
        "a taken claim"
    );
    let counted = increments_for(
        ROLLUP_START,
        "cnv_1",
        None,
        None,
        &counters(&[(CONVERSIONS, 1)]),
    );
    assert_eq!(
        store
            .create_documents_counted(
                &[
                    (&conversion_document(&brand, "cnv_1"), &[]),
                    (&partner(&brand, "ptr_3", 1, "Clash"), &[slug("first")]),
                ],
                &counted,
                Some(&record("r4")),
            )
            .await,
        Err(StoreError::AlreadyExists),
        "a taken claim in a counted batch"
    );
    assert_eq!(
        store
            .create_documents_counted(&[(&v1, &[])], &[], Some(&record("r5")))
            .await,
        Err(StoreError::AlreadyExists),
        "a taken id"
    );
    assert_eq!(
        store
            .delete_document(
                &brand,
                DocumentKind::Partner,
                "ptr_1",
                1,
                &[slug("first")],
                Some(&record("r6")),
            )
            .await,
        Err(StoreError::Contention),
        "a stale version"
    );
    assert_eq!(
        store
            .delete_document(
                &brand,
                DocumentKind::Partner,
                "ptr_missing",
                1,
                &[],
                Some(&record("r7")),
            )
            .await,
        Err(StoreError::NotFound)
    );

    assert_eq!(logged_activity(store, &brand).await, [], "no record stored");
    for id in ["r1", "r2", "r3", "r4", "r5", "r6", "r7"] {
        assert!(records_in_slot(store, &record(id)).await.is_empty(), "{id}");
    }
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        Some(v2),
        "the document is unchanged"
    );
    for id in ["ptr_2", "ptr_3"] {
        assert_eq!(
            store
                .get_document(&brand, DocumentKind::Partner, id)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Conversion, "cnv_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Partner, &slug("first"))
            .await
            .unwrap()
            .as_deref(),
        Some("ptr_1")
    );
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Partner, &slug("stale"))
            .await
            .unwrap(),
        None
    );
    assert!(
        totals(store, &brand, &utc_day(ROLLUP_START))
            .await
            .is_empty()
    );
}

/// A write whose record's slot is taken (the same surface, instant and request id) writes
/// nothing: `AlreadyExists`, the document and its claims as they were, the stored record kept.
pub async fn a_document_write_whose_record_slot_is_taken_writes_nothing(
    store: &dyn BrandDataStore,
) {
    let brand = fresh_brand_id("write-audit");
    let first = sample_activity(&brand, 1_000, Surface::Api, "req_taken");
    store.append_activity(&first).await.unwrap();
    let mut again = first.clone();
    again.status = 201;
    again.target = "/api/public/partners".into();

    let v1 = partner(&brand, "ptr_1", 1, "First");
    assert_eq!(
        store
            .create_documents_counted(&[(&v1, &[slug("first")])], &[], Some(&again))
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Partner, &slug("first"))
            .await
            .unwrap(),
        None,
        "the claim was not taken"
    );
    let counted = increments_for(
        ROLLUP_START,
        "cnv_1",
        None,
        None,
        &counters(&[(CONVERSIONS, 1)]),
    );
    assert_eq!(
        store
            .create_documents_counted(
                &[(&conversion_document(&brand, "cnv_1"), &[])],
                &counted,
                Some(&again),
            )
            .await,
        Err(StoreError::AlreadyExists),
        "a counted create"
    );
    assert!(
        totals(store, &brand, &utc_day(ROLLUP_START))
            .await
            .is_empty()
    );

    store.create_document(&v1, &[slug("first")]).await.unwrap();
    let v2 = partner(&brand, "ptr_1", 2, "Renamed");
    assert_eq!(
        store
            .update_document(&v2, &[slug("first")], &[slug("second")], Some(&again))
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .delete_document(
                &brand,
                DocumentKind::Partner,
                "ptr_1",
                1,
                &[slug("first")],
                Some(&again),
            )
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        Some(v1),
        "neither the update nor the delete happened"
    );
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Partner, &slug("first"))
            .await
            .unwrap()
            .as_deref(),
        Some("ptr_1")
    );
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Partner, &slug("second"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        logged_activity(store, &brand).await,
        [first],
        "the stored record is kept"
    );
}

/// The record is one item of the write's transaction: a write that fits the limit only without
/// it is refused with it, and stores nothing.
pub async fn an_activity_record_counts_toward_the_transaction_limit(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("write-audit");
    let record = sample_activity(&brand, 1_000, Surface::Api, "req_big");
    let claims: Vec<UniqueClaim> = (1..MAX_TRANSACTION_ITEMS)
        .map(|index| slug(&format!("s{index:03}")))
        .collect();
    let v1 = partner(&brand, "ptr_1", 1, "Big");
    assert!(rejected(
        store
            .create_documents_counted(&[(&v1, &claims)], &[], Some(&record))
            .await
    ));
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        None
    );
    store.create_document(&v1, &[]).await.unwrap();
    let v2 = partner(&brand, "ptr_1", 2, "Bigger");
    assert!(rejected(
        store
            .update_document(&v2, &[], &claims, Some(&record))
            .await
    ));
    assert!(rejected(
        store
            .delete_document(
                &brand,
                DocumentKind::Partner,
                "ptr_1",
                1,
                &claims,
                Some(&record),
            )
            .await
    ));
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Partner, "ptr_1")
            .await
            .unwrap(),
        Some(v1)
    );
    assert_eq!(logged_activity(store, &brand).await, []);
    // Without the record, the same update fits.
    store
        .update_document(&v2, &[], &claims, None)
        .await
        .unwrap();
}

/// A click with no offer, partner, sub ids or audit, from a browser: for tests that need only its
/// identity and time.
pub fn bare_click(brand_id: &BrandId, click_id: &str, at: i64) -> ClickRecord {
    ClickRecord {
        brand_id: brand_id.clone(),
        click_id: click_id.to_owned(),
        at,
        offer_id: None,
        partner_id: None,
        sub_ids: Default::default(),
        landing_url: None,
        referrer: None,
        source_ip: "198.51.100.7".into(),
        user_agent: "Mozilla/5.0".into(),
        fraud_score: 0,
        audit: None,
    }
}

fn click(brand_id: &BrandId, click_id: &str, at: i64, offer: &str, partner: &str) -> ClickRecord {
    ClickRecord {
        brand_id: brand_id.clone(),
        click_id: click_id.to_owned(),
        at,
        offer_id: Some(offer.to_owned()),
        partner_id: Some(partner.to_owned()),
        sub_ids: [Some("s1".into()), None, None, None, None],
        landing_url: Some("https://shop.example/landing".into()),
        referrer: None,
        source_ip: "203.0.113.5".into(),
        user_agent: "conformance".into(),
        fraud_score: 0,
        audit: None,
    }
}

pub async fn clicks_are_stored_once_and_listed_newest_first(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("clicks");
    let other = fresh_brand_id("clicks");
    let mut written = Vec::new();
    for index in 0..40 {
        let record = click(
            &brand,
            &format!("c{index:02}"),
            1_000 + index * 10,
            if index % 2 == 0 {
                "off_even"
            } else {
                "off_odd"
            },
            if index % 3 == 0 {
                "ptr_three"
            } else {
                "ptr_other"
            },
        );
        store.insert_click(&record).await.unwrap();
        written.push(record);
    }
    store
        .insert_click(&click(&other, "c00", 5, "off_even", "ptr_three"))
        .await
        .unwrap();

    let duplicate = ClickRecord {
        at: 99_999,
        ..written[0].clone()
    };
    assert_eq!(
        store.insert_click(&duplicate).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.get_click(&brand, "c00").await.unwrap(),
        Some(written[0].clone())
    );
    assert_eq!(store.get_click(&brand, "nope").await.unwrap(), None);
    assert_eq!(store.get_click(&other, "c00").await.unwrap().unwrap().at, 5);

    let even_three = |c: &&ClickRecord| {
        c.offer_id.as_deref() == Some("off_even") && c.partner_id.as_deref() == Some("ptr_three")
    };
    for (filter, expected) in [
        (ClickFilter::default(), written.clone()),
        (
            ClickFilter {
                offer_id: Some("off_even".into()),
                partner_id: Some("ptr_three".into()),
                ..ClickFilter::default()
            },
            written.iter().filter(even_three).cloned().collect(),
        ),
        (
            ClickFilter {
                from: Some(1_100),
                to: Some(1_200),
                ..ClickFilter::default()
            },
            written
                .iter()
                .filter(|c| (1_100..=1_200).contains(&c.at))
                .cloned()
                .collect(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut position: Option<String> = None;
        for _ in 0..100 {
            let page = store
                .list_clicks(&brand, &filter, 3, position.as_deref())
                .await
                .unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|click| ClickRecord::clone(click)));
            match page.next_position {
                Some(next) => position = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<ClickRecord> = expected;
        expected.reverse();
        assert_eq!(seen, expected, "{filter:?}");
    }
}

pub async fn documents_are_created_together_and_queried_by_id_range(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("batch");
    let conversion = |id: &str| Document {
        kind: DocumentKind::Conversion,
        ..partner(&brand, id, 1, "C")
    };
    let signal = Document {
        kind: DocumentKind::FraudSignal,
        ..partner(&brand, "frd_1", 1, "F")
    };
    let txn = UniqueClaim {
        field: "txn_id",
        value: "order-1".into(),
    };
    store
        .create_documents(&[
            (&conversion("cnv_1"), std::slice::from_ref(&txn)),
            (&signal, &[]),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Conversion, &txn)
            .await
            .unwrap(),
        Some("cnv_1".to_owned())
    );
    let other_txn = UniqueClaim {
        field: "txn_id",
        value: "order-2".into(),
    };
    assert_eq!(
        store
            .claim_holder(&brand, DocumentKind::Conversion, &other_txn)
            .await
            .unwrap(),
        None
    );
    // A batch with one taken claim writes nothing at all.
    let second_signal = Document {
        id: "frd_2".into(),
        ..signal.clone()
    };
    assert_eq!(
        store
            .create_documents(&[
                (&conversion("cnv_2"), std::slice::from_ref(&txn)),
                (&second_signal, &[])
            ])
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::Conversion, "cnv_2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::FraudSignal, "frd_2")
            .await
            .unwrap(),
        None
    );

    for id in ["cnv_2", "cnv_3", "cnv_4"] {
        store.create_document(&conversion(id), &[]).await.unwrap();
    }
    let newest_first = store
        .query_documents(&brand, DocumentKind::Conversion, "cnv_2", "cnv_3", 10)
        .await
        .unwrap();
    assert_eq!(
        newest_first
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        ["cnv_3", "cnv_2"]
    );
    let limited = store
        .query_documents(&brand, DocumentKind::Conversion, "cnv_", "cnv_~", 2)
        .await
        .unwrap();
    assert_eq!(
        limited.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["cnv_4", "cnv_3"]
    );
}

pub async fn clicks_are_rescored_in_place(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rescore");
    let original = click(&brand, "r1", 5_000, "off_a", "ptr_a");
    assert_eq!(
        store.update_click(&original).await,
        Err(StoreError::NotFound),
        "only an existing click can be updated"
    );
    store.insert_click(&original).await.unwrap();
    let rescored = ClickRecord {
        fraud_score: 95,
        ..original.clone()
    };
    store.update_click(&rescored).await.unwrap();
    assert_eq!(
        store.get_click(&brand, "r1").await.unwrap(),
        Some(rescored.clone())
    );
    let page = store
        .list_clicks(&brand, &ClickFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(
        page.items,
        vec![std::sync::Arc::new(rescored)],
        "the time view shows the new record, once"
    );
}

/// `count` hits from `source` in the window at `window_start`, the latest at `latest_at`; the
/// item expires long after the test.
async fn count_hits(
    store: &dyn BrandDataStore,
    brand: &BrandId,
    source: &str,
    (window_start, count, latest_at): (UnixMillis, u64, UnixMillis),
    span: Option<&StreamSpan>,
) -> Result<(bool, u64, Option<UnixMillis>), StoreError> {
    let hits = SourceHits {
        window_start,
        count,
        latest_at,
        expires_at: 1_900_000_000,
    };
    store
        .count_source_hits(brand, source, &hits, span)
        .await
        .map(|tally| (tally.applied, tally.clicks_in_window, tally.last_at))
}

pub async fn source_hits_count_per_window_and_remember_the_last_sighting(
    store: &dyn BrandDataStore,
) {
    let brand = fresh_brand_id("sources");
    let other = fresh_brand_id("sources");
    let hour = 3_600_000;
    // One capture's click: `(window start, 1, now)`. The answer is the item before it.
    let click = |brand: &BrandId, source: &'static str, window_start, now| {
        let brand = brand.clone();
        async move {
            count_hits(store, &brand, source, (window_start, 1, now), None)
                .await
                .unwrap()
        }
    };
    let source = "203.0.113.9";
    assert_eq!(
        click(&brand, source, hour, hour + 10).await,
        (true, 0, None)
    );
    assert_eq!(
        click(&brand, source, hour, hour + 500).await,
        (true, 1, Some(hour + 10))
    );
    // Another source and another brand count apart.
    assert_eq!(
        click(&brand, "203.0.113.10", hour, hour + 600).await,
        (true, 0, None)
    );
    assert_eq!(
        click(&other, source, hour, hour + 700).await,
        (true, 0, None)
    );
    // A new window starts the count again but still knows the last sighting.
    assert_eq!(
        click(&brand, source, 2 * hour, 2 * hour + 1).await,
        (true, 0, Some(hour + 500))
    );
    assert_eq!(
        click(&brand, source, 2 * hour, 2 * hour + 2).await,
        (true, 1, Some(2 * hour + 1))
    );
    // A late request stamped with the previous window counts into the current one.
    assert_eq!(
        click(&brand, source, hour, 2 * hour + 3).await,
        (true, 2, Some(2 * hour + 2))
    );
    assert_eq!(
        click(&brand, source, 2 * hour, 2 * hour + 4).await,
        (true, 3, Some(2 * hour + 3)),
        "the current window was not reset"
    );

    // Several hits at once; the last sighting is the latest ever seen, whatever order the hits
    // arrive in.
    let batch = "203.0.113.11";
    let count = |window_start, count, latest_at| {
        let brand = brand.clone();
        async move {
            count_hits(store, &brand, batch, (window_start, count, latest_at), None)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(2 * hour, 3, 2 * hour + 100).await, (true, 0, None));
    assert_eq!(
        count(2 * hour, 2, 2 * hour + 50).await,
        (true, 3, Some(2 * hour + 100))
    );
    assert_eq!(
        count(2 * hour, 1, 2 * hour + 60).await,
        (true, 5, Some(2 * hour + 100)),
        "an older sighting does not replace the latest"
    );
    // A new window whose hits are older than the last sighting: the count starts again, the
    // sighting stays.
    assert_eq!(
        count(3 * hour, 4, 2 * hour + 90).await,
        (true, 0, Some(2 * hour + 100))
    );
    assert_eq!(
        count(3 * hour, 1, 3 * hour + 1).await,
        (true, 4, Some(2 * hour + 100))
    );
    assert_eq!(
        count(3 * hour, 1, 3 * hour + 2).await,
        (true, 5, Some(3 * hour + 1))
    );
}

/// Concurrent hits from one source, the first of a new window, in no order of their sightings:
/// each is counted once, each sees a different count before it, and the sighting ends at the
/// latest. (The backends' answer to the races: a lock in memory, conditional writes chosen from
/// the item the last one failed on in DynamoDB.)
pub async fn concurrent_source_hits_are_each_counted_once(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("sources");
    let source = "203.0.113.12";
    let hour = 3_600_000;
    assert_eq!(
        count_hits(store, &brand, source, (hour, 1, hour + 1), None).await,
        Ok((true, 0, None))
    );
    let sightings = [7, 3, 8, 1, 6, 2, 5, 4];
    let racing = sightings.map(|offset| {
        let brand = brand.clone();
        async move {
            count_hits(
                store,
                &brand,
                source,
                (2 * hour, 1, 2 * hour + offset),
                None,
            )
            .await
        }
    });
    let mut before: Vec<u64> = futures_util::future::join_all(racing)
        .await
        .into_iter()
        .map(|answer| {
            let (applied, clicks, last_at) = answer.unwrap();
            assert!(applied);
            assert!(last_at.is_some());
            clicks
        })
        .collect();
    before.sort_unstable();
    assert_eq!(before, (0..8).collect::<Vec<u64>>());
    assert_eq!(
        count_hits(store, &brand, source, (2 * hour, 1, 2 * hour + 9), None).await,
        Ok((true, 8, Some(2 * hour + 8)))
    );
}

/// A stream batch's clicks are counted into the source once per stream shard: the item notes the
/// last sequence number each shard counted, as a rollup row does.
pub async fn source_hits_from_the_stream_are_counted_once(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("stream-sources");
    let source = "198.51.100.20";
    let hour = 3_600_000;
    let span = |shard: &str, first: &str, last: &str| StreamSpan {
        origin: shard.into(),
        first_sequence: first.into(),
        last_sequence: last.into(),
    };
    let count = |hits: (UnixMillis, u64, UnixMillis), span: Option<StreamSpan>| {
        let brand = brand.clone();
        async move { count_hits(store, &brand, source, hits, span.as_ref()).await }
    };
    let shard_a = "shardId-00000001795000000000-aaaaaaaa";
    let shard_b = "shardId-b";
    assert_eq!(
        count((hour, 3, hour + 30), Some(span(shard_a, "100", "120"))).await,
        Ok((true, 0, None))
    );
    // A replay of the batch, or of any part of it, changes nothing and answers the standing count.
    assert_eq!(
        count((hour, 3, hour + 30), Some(span(shard_a, "100", "120"))).await,
        Ok((false, 3, Some(hour + 30)))
    );
    assert_eq!(
        count((hour, 2, hour + 45), Some(span(shard_a, "110", "130"))).await,
        Ok((false, 3, Some(hour + 30))),
        "an overlapping span"
    );
    // Sequence numbers compare as numbers, whatever their length.
    assert_eq!(
        count((hour, 1, hour + 45), Some(span(shard_a, "99", "99"))).await,
        Ok((false, 3, Some(hour + 30)))
    );
    assert_eq!(
        count((hour, 2, hour + 40), Some(span(shard_a, "121", "1000"))).await,
        Ok((true, 3, Some(hour + 30)))
    );
    // Another stream shard has its own mark, whatever its sequence numbers.
    assert_eq!(
        count((hour, 4, hour + 35), Some(span(shard_b, "7", "9"))).await,
        Ok((true, 5, Some(hour + 40)))
    );
    assert_eq!(
        count((hour, 4, hour + 35), Some(span(shard_b, "7", "9"))).await,
        Ok((false, 9, Some(hour + 40)))
    );
    assert_eq!(
        count((hour, 1, hour + 36), Some(span(shard_a, "999", "1000"))).await,
        Ok((false, 9, Some(hour + 40)))
    );
    // Without a span, hits always count.
    assert_eq!(
        count((hour, 1, hour + 50), None).await,
        Ok((true, 9, Some(hour + 40)))
    );
    // A new window with a span resets the count and moves the mark.
    assert_eq!(
        count(
            (2 * hour, 2, 2 * hour + 5),
            Some(span(shard_a, "1001", "1005"))
        )
        .await,
        Ok((true, 0, Some(hour + 50)))
    );
    assert_eq!(
        count(
            (2 * hour, 2, 2 * hour + 5),
            Some(span(shard_a, "1001", "1005"))
        )
        .await,
        Ok((false, 2, Some(2 * hour + 5)))
    );
    // A replay stamped with a later window than the item's reads the item's window as empty,
    // and changes nothing: the next hits of the item's window count on from 2.
    assert_eq!(
        count((3 * hour, 1, 3 * hour + 1), Some(span(shard_b, "8", "9"))).await,
        Ok((false, 0, Some(2 * hour + 5)))
    );
    // No hits, or a bad span, is refused and changes nothing.
    let refused = [
        ((2 * hour, 0, 2 * hour + 9), None),
        (
            (2 * hour, 0, 2 * hour + 9),
            Some(span(shard_a, "2000", "2001")),
        ),
        (
            (2 * hour, 1, 2 * hour + 9),
            Some(span(shard_a, "2001", "2000")),
        ),
        (
            (2 * hour, 1, 2 * hour + 9),
            Some(span(shard_a, "20a0", "2001")),
        ),
        (
            (2 * hour, 1, 2 * hour + 9),
            Some(span(shard_a, "1", &"9".repeat(41))),
        ),
        ((2 * hour, 1, 2 * hour + 9), Some(span("", "2000", "2001"))),
    ];
    for (hits, bad) in refused {
        assert!(
            matches!(count(hits, bad.clone()).await, Err(StoreError::Rejected(_))),
            "{hits:?} {bad:?}"
        );
    }
    assert_eq!(
        count(
            (2 * hour, 1, 2 * hour + 6),
            Some(span(shard_a, "1006", "1006"))
        )
        .await,
        Ok((true, 2, Some(2 * hour + 5)))
    );
    assert_eq!(
        count((2 * hour, 1, 2 * hour + 7), None).await,
        Ok((true, 3, Some(2 * hour + 6)))
    );
}

/// 2026-11-18T08:26:40Z.
const ROLLUP_START: UnixMillis = 1_795_000_000_000;
const DAY_MS: UnixMillis = 86_400_000;

fn counters(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs
        .iter()
        .map(|(name, amount)| ((*name).to_owned(), *amount))
        .collect()
}

/// Increments for the total, offer and partner rows of one click.
fn click_increments(click: &ClickRecord, pairs: &[(&str, i64)]) -> Vec<RollupIncrement> {
    increments_for(
        click.at,
        &click.click_id,
        click.offer_id.as_deref(),
        click.partner_id.as_deref(),
        &counters(pairs),
    )
}

/// `(day, group, counter)` of every row, for compact assertions.
fn column(rows: &[RollupRow], counter: &str) -> Vec<(String, String, i64)> {
    rows.iter()
        .map(|row| (row.day.clone(), row.group.clone(), row.counter(counter)))
        .collect()
}

fn row(day: &str, group: &str, count: i64) -> (String, String, i64) {
    (day.to_owned(), group.to_owned(), count)
}

async fn totals(store: &dyn BrandDataStore, brand: &BrandId, day: &str) -> Vec<RollupRow> {
    store
        .read_rollups(brand, RollupDimension::Total, day, day)
        .await
        .unwrap()
}

pub async fn rollups_count_with_the_click_and_sum_across_shards(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let other = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    let mut per_shard = vec![0_i64; ROLLUP_SHARDS as usize];
    for index in 0..40 {
        let record = click(
            &brand,
            &format!("c{index:02}"),
            ROLLUP_START + index,
            "off_a",
            "ptr_a",
        );
        let mut pairs = vec![(CLICKS, 1)];
        if index % 4 == 0 {
            pairs.push((FLAGGED_CLICKS, 1));
        }
        store
            .insert_click_counted(&record, &click_increments(&record, &pairs))
            .await
            .unwrap();
        per_shard[rollup_shard(&record.click_id) as usize] += 1;
    }
    let elsewhere = click(&other, "c00", ROLLUP_START, "off_a", "ptr_a");
    store
        .insert_click_counted(&elsewhere, &click_increments(&elsewhere, &[(CLICKS, 1)]))
        .await
        .unwrap();
    assert!(
        per_shard.iter().filter(|count| **count > 0).count() > 1,
        "the clicks spread over several shards: {per_shard:?}"
    );

    let summed = totals(store, &brand, &day).await;
    assert_eq!(column(&summed, CLICKS), [row(&day, "", 40)]);
    assert_eq!(column(&summed, FLAGGED_CLICKS), [row(&day, "", 10)]);
    assert_eq!(summed[0].dimension, RollupDimension::Total);
    assert!(
        store.get_click(&brand, "c07").await.unwrap().is_some(),
        "the click itself is stored with its counters"
    );
    // Each shard holds the clicks whose id hashes to it, and only those.
    for shard in 0..ROLLUP_SHARDS {
        let rows = store
            .query_rollups(&brand, RollupDimension::Total, shard, &day, &day)
            .await
            .unwrap();
        let expected = per_shard[shard as usize];
        if expected == 0 {
            assert!(rows.is_empty(), "shard {shard}: {rows:?}");
        } else {
            assert_eq!(
                column(&rows, CLICKS),
                [row(&day, "", expected)],
                "shard {shard}"
            );
        }
    }
    assert_eq!(
        column(&totals(store, &other, &day).await, CLICKS),
        [row(&day, "", 1)],
        "another brand counts apart"
    );
    // Rescoring counts with the update that flags the click.
    let mut rescored = store.get_click(&brand, "c01").await.unwrap().unwrap();
    rescored.fraud_score = 95;
    store
        .update_click_counted(
            &rescored,
            &click_increments(&rescored, &[(FLAGGED_CLICKS, 1)]),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_click(&brand, "c01").await.unwrap(),
        Some(rescored)
    );
    assert_eq!(
        column(&totals(store, &brand, &day).await, FLAGGED_CLICKS),
        [row(&day, "", 11)]
    );
}

pub async fn a_duplicate_click_adds_nothing_to_rollups(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    let next_day = utc_day(ROLLUP_START + DAY_MS);
    let first = click(&brand, "dup", ROLLUP_START, "off_a", "ptr_a");
    store
        .insert_click_counted(&first, &click_increments(&first, &[(CLICKS, 1)]))
        .await
        .unwrap();
    // The same id again, a day later and with more counters: refused, and nothing is added.
    let again = ClickRecord {
        at: ROLLUP_START + DAY_MS,
        ..first.clone()
    };
    assert_eq!(
        store
            .insert_click_counted(
                &again,
                &click_increments(&again, &[(CLICKS, 1), (FLAGGED_CLICKS, 1)])
            )
            .await,
        Err(StoreError::AlreadyExists)
    );
    let rows = store
        .read_rollups(&brand, RollupDimension::Total, &day, &next_day)
        .await
        .unwrap();
    assert_eq!(column(&rows, CLICKS), [row(&day, "", 1)]);
    assert_eq!(rows[0].counter(FLAGGED_CLICKS), 0);
    for dimension in [RollupDimension::Offer, RollupDimension::Partner] {
        let rows = store
            .read_rollups(&brand, dimension, &day, &next_day)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{dimension:?}: {rows:?}");
        assert_eq!(rows[0].counter(CLICKS), 1);
    }
    // Rescoring a click that does not exist changes nothing either.
    let missing = click(&brand, "missing", ROLLUP_START, "off_a", "ptr_a");
    assert_eq!(
        store
            .update_click_counted(
                &missing,
                &click_increments(&missing, &[(FLAGGED_CLICKS, 1)])
            )
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.get_click(&brand, "missing").await.unwrap(), None);
    assert_eq!(
        totals(store, &brand, &day).await[0].counter(FLAGGED_CLICKS),
        0
    );
}

fn conversion_document(brand: &BrandId, id: &str) -> Document {
    Document {
        kind: DocumentKind::Conversion,
        ..partner(brand, id, 1, "C")
    }
}

fn txn(value: &str) -> UniqueClaim {
    UniqueClaim {
        field: "txn_id",
        value: value.to_owned(),
    }
}

pub async fn documents_with_a_taken_claim_add_nothing_to_rollups(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    let conversion = |id: &str| {
        increments_for(
            ROLLUP_START,
            id,
            Some("off_a"),
            Some("ptr_a"),
            &counters(&[(CONVERSIONS, 1)]),
        )
    };
    store
        .create_documents_counted(
            &[(
                &conversion_document(&brand, "cnv_1"),
                std::slice::from_ref(&txn("order-1")),
            )],
            &conversion("cnv_1"),
            None,
        )
        .await
        .unwrap();
    // A batch whose claim is taken writes neither its documents nor its counters.
    let signal = Document {
        kind: DocumentKind::FraudSignal,
        ..partner(&brand, "frd_1", 1, "F")
    };
    let mut increments = conversion("cnv_2");
    increments.extend(increments_for(
        ROLLUP_START,
        "cnv_2",
        None,
        None,
        &counters(&[("signals:fast_conversion", 1)]),
    ));
    assert_eq!(
        store
            .create_documents_counted(
                &[
                    (
                        &conversion_document(&brand, "cnv_2"),
                        std::slice::from_ref(&txn("order-1"))
                    ),
                    (&signal, &[]),
                ],
                &increments,
                None,
            )
            .await,
        Err(StoreError::AlreadyExists)
    );
    // So does a batch whose document id is taken (the document's own condition, item 0).
    assert_eq!(
        store
            .create_documents_counted(
                &[(&conversion_document(&brand, "cnv_1"), &[])],
                &conversion("cnv_1"),
                None,
            )
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .get_document(&brand, DocumentKind::FraudSignal, "frd_1")
            .await
            .unwrap(),
        None
    );
    let rows = totals(store, &brand, &day).await;
    assert_eq!(column(&rows, CONVERSIONS), [row(&day, "", 1)]);
    assert_eq!(rows[0].counter("signals:fast_conversion"), 0);
    let offers = store
        .read_rollups(&brand, RollupDimension::Offer, &day, &day)
        .await
        .unwrap();
    assert_eq!(column(&offers, CONVERSIONS), [row(&day, "off_a", 1)]);
    // Plain creates still work and count nothing.
    store
        .create_document(&conversion_document(&brand, "cnv_3"), &[])
        .await
        .unwrap();
    assert_eq!(
        column(&totals(store, &brand, &day).await, CONVERSIONS),
        [row(&day, "", 1)]
    );
}

pub async fn increments_to_one_row_in_one_call_are_merged(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    let record = click(&brand, "merged", ROLLUP_START, "off_a", "ptr_a");
    // Twice the same rows, and one counter named twice in one increment: DynamoDB refuses a
    // transaction that touches an item twice, so the store must merge them.
    let mut increments = click_increments(&record, &[(CLICKS, 1), (CLICKS, 2)]);
    increments.extend(click_increments(
        &record,
        &[(FLAGGED_CLICKS, 1), (CLICKS, 4)],
    ));
    store
        .insert_click_counted(&record, &increments)
        .await
        .unwrap();
    let rows = totals(store, &brand, &day).await;
    assert_eq!(column(&rows, CLICKS), [row(&day, "", 7)]);
    assert_eq!(column(&rows, FLAGGED_CLICKS), [row(&day, "", 1)]);
    let partners = store
        .read_rollups(&brand, RollupDimension::Partner, &day, &day)
        .await
        .unwrap();
    assert_eq!(column(&partners, CLICKS), [row(&day, "ptr_a", 7)]);

    let signal = |id: &str| Document {
        kind: DocumentKind::FraudSignal,
        ..partner(&brand, id, 1, "F")
    };
    // One increment per signal, all to the same rows.
    let increments: Vec<RollupIncrement> = (0..3)
        .flat_map(|_| {
            increments_for(
                ROLLUP_START,
                "merged",
                Some("off_a"),
                None,
                &counters(&[("signals:source_repeat", 1)]),
            )
        })
        .collect();
    store
        .create_documents_counted(
            &[
                (&signal("frd_1"), &[]),
                (&signal("frd_2"), &[]),
                (&signal("frd_3"), &[]),
            ],
            &increments,
            None,
        )
        .await
        .unwrap();
    let offers = store
        .read_rollups(&brand, RollupDimension::Offer, &day, &day)
        .await
        .unwrap();
    assert_eq!(
        column(&offers, "signals:source_repeat"),
        [row(&day, "off_a", 3)]
    );
}

pub async fn rollup_day_ranges_are_inclusive(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let midnight = ROLLUP_START - ROLLUP_START.rem_euclid(DAY_MS);
    // The last instant of the day before, the first of each day, and the day after the range.
    let instants = [
        midnight - 1,
        midnight,
        midnight + DAY_MS - 1,
        midnight + DAY_MS,
        midnight + DAY_MS + 5,
        midnight + 2 * DAY_MS,
    ];
    for (index, at) in instants.into_iter().enumerate() {
        let record = click(&brand, &format!("d{index}"), at, "off_a", "ptr_a");
        store
            .insert_click_counted(&record, &click_increments(&record, &[(CLICKS, 1)]))
            .await
            .unwrap();
    }
    let before = utc_day(midnight - 1);
    let first = utc_day(midnight);
    let second = utc_day(midnight + DAY_MS);
    let after = utc_day(midnight + 2 * DAY_MS);
    let read = |from: String, to: String| {
        let brand = brand.clone();
        async move {
            store
                .read_rollups(&brand, RollupDimension::Total, &from, &to)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        column(&read(first.clone(), second.clone()).await, CLICKS),
        [row(&first, "", 2), row(&second, "", 2)],
        "both ends included, the neighbours excluded"
    );
    assert_eq!(
        column(&read(second.clone(), second.clone()).await, CLICKS),
        [row(&second, "", 2)]
    );
    assert_eq!(
        column(&read(before.clone(), after.clone()).await, CLICKS),
        [
            row(&before, "", 1),
            row(&first, "", 2),
            row(&second, "", 2),
            row(&after, "", 1)
        ]
    );
    assert!(read(second, first).await.is_empty(), "an empty range");
    let offers = store
        .read_rollups(&brand, RollupDimension::Offer, &after, &after)
        .await
        .unwrap();
    assert_eq!(column(&offers, CLICKS), [row(&after, "off_a", 1)]);
}

pub async fn rollup_groups_are_separate_per_offer_and_partner(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    let plan = [
        ("g1", Some("off_0123abcd"), Some("ptr_x")),
        ("g2", Some("off_0123abcd"), Some("ptr_y")),
        ("g3", Some("off_0123abce"), Some("ptr_x")),
        ("g4", Some("off_0123abcd"), None),
        ("g5", None, None),
    ];
    for (id, offer, partner_id) in plan {
        let record = ClickRecord {
            offer_id: offer.map(str::to_owned),
            partner_id: partner_id.map(str::to_owned),
            ..click(&brand, id, ROLLUP_START, "", "")
        };
        store
            .insert_click_counted(&record, &click_increments(&record, &[(CLICKS, 1)]))
            .await
            .unwrap();
    }
    let read = |dimension| store.read_rollups(&brand, dimension, &day, &day);
    assert_eq!(
        column(&read(RollupDimension::Total).await.unwrap(), CLICKS),
        [row(&day, "", 5)]
    );
    let offers = read(RollupDimension::Offer).await.unwrap();
    assert_eq!(
        column(&offers, CLICKS),
        [row(&day, "off_0123abcd", 3), row(&day, "off_0123abce", 1)]
    );
    assert!(offers.iter().all(|r| r.dimension == RollupDimension::Offer));
    let partners = read(RollupDimension::Partner).await.unwrap();
    assert_eq!(
        column(&partners, CLICKS),
        [row(&day, "ptr_x", 2), row(&day, "ptr_y", 1)]
    );
    assert!(
        partners
            .iter()
            .all(|r| r.dimension == RollupDimension::Partner)
    );
}

pub async fn money_micros_sum_exactly(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    let revenue_usd = format!("{REVENUE_MICROS_PREFIX}USD");
    let revenue_eur = format!("{REVENUE_MICROS_PREFIX}EUR");
    let payout_usd = format!("{PAYOUT_MICROS_PREFIX}USD");
    // Ten times 0.1 is not 1.0 in floating point; in micros it is exactly 1_000_000.
    let mut amounts = vec![0.1; 10];
    amounts.extend([19.99, 999_999_999_999.99, -5.25]);
    let mut expected_usd = 0_i64;
    for (index, amount) in amounts.iter().enumerate() {
        let id = format!("cnv_m{index:02}");
        let increments = increments_for(
            ROLLUP_START,
            &id,
            Some("off_a"),
            None,
            &[
                (CONVERSIONS.to_owned(), 1),
                (revenue_usd.clone(), to_micros(*amount)),
                (payout_usd.clone(), to_micros(amount / 10.0)),
            ],
        );
        store
            .create_documents_counted(
                &[(&conversion_document(&brand, &id), &[])],
                &increments,
                None,
            )
            .await
            .unwrap();
        expected_usd += to_micros(*amount);
    }
    let euro = increments_for(
        ROLLUP_START,
        "cnv_eur",
        Some("off_a"),
        None,
        &[
            (CONVERSIONS.to_owned(), 1),
            (revenue_eur.clone(), to_micros(0.07)),
        ],
    );
    store
        .create_documents_counted(
            &[(&conversion_document(&brand, "cnv_eur"), &[])],
            &euro,
            None,
        )
        .await
        .unwrap();

    assert_eq!(
        expected_usd,
        1_000_000 + 19_990_000 + 999_999_999_999_990_000 - 5_250_000
    );
    let rows = totals(store, &brand, &day).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].counter(CONVERSIONS), 14);
    assert_eq!(rows[0].counter(&revenue_usd), expected_usd);
    assert_eq!(
        rows[0].counter(&revenue_eur),
        70_000,
        "currencies count apart"
    );
    assert_eq!(
        rows[0].counter(&payout_usd),
        amounts
            .iter()
            .map(|amount| to_micros(amount / 10.0))
            .sum::<i64>()
    );
    let offers = store
        .read_rollups(&brand, RollupDimension::Offer, &day, &day)
        .await
        .unwrap();
    assert_eq!(
        column(&offers, &revenue_usd),
        [row(&day, "off_a", expected_usd)]
    );
    assert_eq!(
        rows[0]
            .counters
            .keys()
            .filter(|name| name.starts_with(SIGNALS_PREFIX))
            .count(),
        0
    );
}

fn rejected<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Rejected(_)))
}

pub async fn bad_rollup_input_is_rejected_and_writes_nothing(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("rollups");
    let day = utc_day(ROLLUP_START);
    for (shard, from, to) in [
        (0, "2026-13-01", "2026-12-01"),
        (0, "2026-11-18", "2026/11/19"),
        (ROLLUP_SHARDS, "2026-11-18", "2026-11-18"),
    ] {
        assert!(
            rejected(
                store
                    .query_rollups(&brand, RollupDimension::Total, shard, from, to)
                    .await
            ),
            "{shard} {from} {to}"
        );
    }
    assert!(rejected(
        store
            .read_rollups(&brand, RollupDimension::Offer, "yesterday", &day)
            .await
    ));

    let record = click(&brand, "bad", ROLLUP_START, "off_a", "ptr_a");
    let mut bad_day = click_increments(&record, &[(CLICKS, 1)]);
    bad_day[0].day = "2026-11-48".into();
    assert!(rejected(
        store.insert_click_counted(&record, &bad_day).await
    ));
    // 101 distinct rows (one per offer) with the click: over the transaction limit.
    let too_many: Vec<RollupIncrement> = (0..MAX_TRANSACTION_ITEMS)
        .flat_map(|index| {
            increments_for(
                ROLLUP_START,
                "bad",
                Some(&format!("off_{index:03}")),
                None,
                &counters(&[(CLICKS, 1)]),
            )
            .into_iter()
            .skip(usize::from(index > 0))
        })
        .collect();
    assert_eq!(too_many.len(), MAX_TRANSACTION_ITEMS + 1);
    assert!(rejected(
        store.insert_click_counted(&record, &too_many).await
    ));
    assert_eq!(
        store.get_click(&brand, "bad").await.unwrap(),
        None,
        "a refused write stores no click"
    );
    // Counters need a document to name their brand.
    assert!(rejected(
        store
            .create_documents_counted(&[], &click_increments(&record, &[(CLICKS, 1)]), None)
            .await
    ));
    assert!(totals(store, &brand, &day).await.is_empty());
    assert!(
        store
            .read_rollups(&brand, RollupDimension::Offer, &day, &day)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn stream_rollups_are_counted_once_per_origin(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("stream-rollups");
    let day = "2026-11-28";
    let increment = |clicks: i64| RollupIncrement {
        day: day.into(),
        dimension: RollupDimension::Total,
        group: String::new(),
        shard: 3,
        counters: vec![(CLICKS.to_owned(), clicks)],
    };
    let span = |shard: &str, first: &str, last: &str| StreamSpan {
        origin: shard.into(),
        first_sequence: first.into(),
        last_sequence: last.into(),
    };
    let clicks = |rows: Vec<RollupRow>| {
        rows.iter()
            .map(|row| row.counters.get(CLICKS).copied().unwrap_or(0))
            .sum::<i64>()
    };
    let add_spans = |clicks: i64, spans: Vec<StreamSpan>| {
        let brand = brand.clone();
        async move {
            store
                .add_rollup_once(&brand, &increment(clicks), &spans)
                .await
        }
    };
    let add = |clicks: i64, span: StreamSpan| add_spans(clicks, vec![span]);
    let through = |marks: &[(&str, &str)]| {
        Ok(Some(
            marks
                .iter()
                .map(|(origin, sequence)| ((*origin).to_owned(), format!("{sequence:0>40}")))
                .collect::<CountedThrough>(),
        ))
    };
    let shard_a = "shardId-00000001795000000000-aaaaaaaa";
    assert_eq!(add(3, span(shard_a, "100", "120")).await, Ok(None));
    assert_eq!(clicks(totals(store, &brand, day).await), 3);
    // A replay of the batch, or of any part of it (a bisected or partly reported batch), counts
    // nothing again.
    let through_120 = through(&[(shard_a, "120")]);
    assert_eq!(add(3, span(shard_a, "100", "120")).await, through_120);
    assert_eq!(add(1, span(shard_a, "110", "120")).await, through_120);
    // Sequence numbers compare as numbers, whatever their length.
    assert_eq!(add(1, span(shard_a, "99", "99")).await, through_120);
    assert_eq!(add(2, span(shard_a, "121", "1000")).await, Ok(None));
    assert_eq!(
        add(1, span(shard_a, "999", "999")).await,
        through(&[(shard_a, "1000")])
    );
    // Another origin has its own mark.
    assert_eq!(add(5, span("shardId-b", "7", "9")).await, Ok(None));
    assert_eq!(clicks(totals(store, &brand, day).await), 10);
    // Several origins in one write: all counted, or (one of them counted already) none, with the
    // answer naming only the origins that refused it.
    assert_eq!(
        add_spans(
            4,
            vec![span("origin-c", "1", "2"), span("origin-d", "5", "8")]
        )
        .await,
        Ok(None)
    );
    assert_eq!(clicks(totals(store, &brand, day).await), 14);
    assert_eq!(
        add_spans(
            6,
            vec![
                span("origin-c", "3", "4"),
                span("origin-d", "8", "9"),
                span("origin-e", "1", "1"),
            ]
        )
        .await,
        through(&[("origin-d", "8")])
    );
    assert_eq!(clicks(totals(store, &brand, day).await), 14);
    // Sent again without what origin-d had counted, it goes through, and every mark moved.
    assert_eq!(
        add_spans(
            5,
            vec![
                span("origin-c", "3", "4"),
                span("origin-d", "9", "9"),
                span("origin-e", "1", "1"),
            ]
        )
        .await,
        Ok(None)
    );
    assert_eq!(clicks(totals(store, &brand, day).await), 19);
    assert_eq!(
        add_spans(
            1,
            vec![
                span("origin-c", "4", "4"),
                span("origin-d", "9", "9"),
                span("origin-e", "1", "1"),
            ]
        )
        .await,
        through(&[("origin-c", "4"), ("origin-d", "9"), ("origin-e", "1")])
    );
    // No span, two spans of one origin, or more than a write may carry are refused.
    let many: Vec<StreamSpan> = (0..=MAX_SPANS_PER_ROW_UPDATE)
        .map(|index| span(&format!("many-{index}"), "1", "1"))
        .collect();
    for spans in [
        Vec::new(),
        vec![span("origin-f", "1", "1"), span("origin-f", "2", "2")],
        many,
    ] {
        assert!(
            matches!(
                add_spans(1, spans.clone()).await,
                Err(StoreError::Rejected(_))
            ),
            "{} spans",
            spans.len()
        );
    }
    assert_eq!(clicks(totals(store, &brand, day).await), 19);
    // A bad span or increment is refused and changes nothing.
    for bad in [
        span(shard_a, "2000", "1999"),
        span(shard_a, "12a", "130"),
        span(shard_a, "", "130"),
        span(shard_a, "1", &"9".repeat(41)),
        span("", "1", "2"),
    ] {
        assert!(
            matches!(add(1, bad.clone()).await, Err(StoreError::Rejected(_))),
            "{bad:?}"
        );
    }
    let bad_day = RollupIncrement {
        day: "28.11.2026".into(),
        ..increment(1)
    };
    assert!(matches!(
        store
            .add_rollup_once(&brand, &bad_day, &[span(shard_a, "5000", "5001")])
            .await,
        Err(StoreError::Rejected(_))
    ));
    assert_eq!(clicks(totals(store, &brand, day).await), 19);
    // The mark is not a counter: the row reads back with its counters only.
    let rows = totals(store, &brand, day).await;
    assert!(
        rows.iter()
            .all(|row| row.counters.keys().all(|name| name == CLICKS))
    );
}
