//! The behaviour every [`BrandDataStore`] backend must have. The in-memory backend runs it in unit
//! tests, the DynamoDB backend against moto.

use serde_json::json;

use super::clicks::{ClickFilter, ClickRecord};
use super::{
    ActivityFilter, ActivityRecord, BrandDataStore, Document, DocumentKind, Surface, UniqueClaim,
};
use crate::ids::BrandId;
use crate::store::StoreError;
use crate::store::conformance::fresh_brand_id;

pub async fn run_all(store: &dyn BrandDataStore) {
    documents_have_a_versioned_lifecycle(store).await;
    unique_claims_hold_per_brand_and_kind(store).await;
    documents_list_in_pages_within_the_brand(store).await;
    activity_lists_newest_first_with_filters(store).await;
    counters_count_per_window(store).await;
    clicks_are_stored_once_and_listed_newest_first(store).await;
    documents_are_created_together_and_queried_by_id_range(store).await;
    clicks_are_rescored_in_place(store).await;
    source_hits_count_per_window_and_remember_the_last_sighting(store).await;
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
        .update_document(&v2, &[slug("first")], &[slug("second")])
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
        store.update_document(&stale, &[], &[]).await,
        Err(StoreError::Contention)
    );
    let missing = partner(&brand, "ptr_missing", 2, "Nobody");
    assert_eq!(
        store.update_document(&missing, &[], &[]).await,
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
            .delete_document(&brand, DocumentKind::Partner, "ptr_1", 1, &[slug("second")])
            .await,
        Err(StoreError::Contention),
        "deleting needs the current version"
    );
    store
        .delete_document(&brand, DocumentKind::Partner, "ptr_1", 2, &[slug("second")])
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
            .delete_document(&brand, DocumentKind::Partner, "ptr_1", 2, &[])
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

fn activity(brand_id: &BrandId, at: i64, surface: Surface, request_id: &str) -> ActivityRecord {
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
        expires_at: 1_900_000_000,
    }
}

pub async fn activity_lists_newest_first_with_filters(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("activity");
    let other = fresh_brand_id("activity");
    let records = [
        activity(&brand, 1_000, Surface::Api, "r1"),
        activity(&brand, 2_000, Surface::Mcp, "r2"),
        activity(&brand, 3_000, Surface::Capture, "r3"),
        activity(&brand, 4_000, Surface::Api, "r4"),
        activity(&brand, 4_000, Surface::Api, "r5"),
    ];
    for record in &records {
        store.append_activity(record).await.unwrap();
    }
    store
        .append_activity(&activity(&other, 2_500, Surface::Api, "x"))
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
        surface: None,
        from: Some(2_000),
        to: Some(3_000),
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
        surface: None,
        from: Some(5_000),
        to: Some(1_000),
    };
    assert!(
        store
            .list_activity(&brand, empty, 10, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn counters_count_per_window(store: &dyn BrandDataStore) {
    let brand = fresh_brand_id("counter");
    let other = fresh_brand_id("counter");
    for expected in 1..=3 {
        let count = store
            .increment_counter(&brand, "rate#key_1", 60_000, 1_900_000_000)
            .await
            .unwrap();
        assert_eq!(count, expected);
    }
    assert_eq!(
        store
            .increment_counter(&brand, "rate#key_1", 120_000, 1_900_000_000)
            .await
            .unwrap(),
        1,
        "a new window starts from one"
    );
    assert_eq!(
        store
            .increment_counter(&brand, "rate#key_2", 120_000, 1_900_000_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .increment_counter(&other, "rate#key_1", 120_000, 1_900_000_000)
            .await
            .unwrap(),
        1
    );
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
            seen.extend(page.items);
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
        vec![rescored],
        "the time view shows the new record, once"
    );
}

pub async fn source_hits_count_per_window_and_remember_the_last_sighting(
    store: &dyn BrandDataStore,
) {
    let brand = fresh_brand_id("sources");
    let other = fresh_brand_id("sources");
    let hour = 3_600_000;
    let first = store
        .record_source_hit(&brand, "203.0.113.9", hour, hour + 10, 99)
        .await
        .unwrap();
    assert_eq!(first.clicks_in_window, 1);
    assert_eq!(first.previous_at, None);
    let second = store
        .record_source_hit(&brand, "203.0.113.9", hour, hour + 500, 99)
        .await
        .unwrap();
    assert_eq!(second.clicks_in_window, 2);
    assert_eq!(second.previous_at, Some(hour + 10));
    // Another source and another brand count apart.
    let elsewhere = store
        .record_source_hit(&brand, "203.0.113.10", hour, hour + 600, 99)
        .await
        .unwrap();
    assert_eq!(
        (elsewhere.clicks_in_window, elsewhere.previous_at),
        (1, None)
    );
    let foreign = store
        .record_source_hit(&other, "203.0.113.9", hour, hour + 700, 99)
        .await
        .unwrap();
    assert_eq!((foreign.clicks_in_window, foreign.previous_at), (1, None));
    // A new window starts the count again but still knows the last sighting.
    let next_window = store
        .record_source_hit(&brand, "203.0.113.9", 2 * hour, 2 * hour + 1, 99)
        .await
        .unwrap();
    assert_eq!(next_window.clicks_in_window, 1);
    assert_eq!(next_window.previous_at, Some(hour + 500));
    let again = store
        .record_source_hit(&brand, "203.0.113.9", 2 * hour, 2 * hour + 2, 99)
        .await
        .unwrap();
    assert_eq!(
        (again.clicks_in_window, again.previous_at),
        (2, Some(2 * hour + 1))
    );
    // A late request stamped with the previous window counts into the current one.
    let late = store
        .record_source_hit(&brand, "203.0.113.9", hour, 2 * hour + 3, 99)
        .await
        .unwrap();
    assert_eq!(late.clicks_in_window, 3);
    let after = store
        .record_source_hit(&brand, "203.0.113.9", 2 * hour, 2 * hour + 4, 99)
        .await
        .unwrap();
    assert_eq!(
        after.clicks_in_window, 4,
        "the current window was not reset"
    );
}
