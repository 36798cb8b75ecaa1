//! The behaviour every [`KeyStore`] backend must have, as plain async functions. The in-memory
//! backend runs them in unit tests; the DynamoDB backend runs them against moto in CI.

use std::sync::Arc;

use super::{BrandRecord, KeyRecord, KeyStore, MAX_LIVE_KEYS_PER_BRAND, RevokeOutcome, StoreError};
use crate::hashing::{KeyHasher, Pepper};
use crate::ids::{BrandId, KeyId};
use crate::token::generate_key;

/// Runs every check. Each uses its own fresh brand ids, so one store can serve them all.
pub async fn run_all(store: Arc<dyn KeyStore>) {
    brands_are_created_once(store.as_ref()).await;
    inserted_keys_are_found_by_hash_and_by_id(store.as_ref()).await;
    live_key_limit_is_enforced_and_freed_by_revoke(store.as_ref()).await;
    keys_for_unknown_brands_are_refused_without_writes(store.as_ref()).await;
    duplicate_keys_are_refused(store.as_ref()).await;
    listing_pages_in_creation_order_within_the_brand(store.as_ref()).await;
    revoke_is_idempotent_and_brand_scoped(store.as_ref()).await;
    key_use_is_recorded(store.as_ref()).await;
    concurrent_inserts_never_exceed_the_limit(store).await;
}

/// A brand id no other test uses.
pub fn fresh_brand_id(prefix: &str) -> BrandId {
    let suffix = crate::token::random_u64().expect("randomness");
    BrandId::parse(&format!("{prefix}-{suffix:016x}")).expect("valid brand id")
}

pub async fn create_fresh_brand(store: &dyn KeyStore, prefix: &str) -> BrandId {
    let brand_id = fresh_brand_id(prefix);
    store
        .create_brand(&BrandRecord {
            brand_id: brand_id.clone(),
            name: format!("Brand {brand_id}"),
            created_at: 1_700_000_000_000,
            live_keys: 0,
        })
        .await
        .expect("create brand");
    brand_id
}

/// A key record as the service would build it, with a real random key behind the hash.
pub fn new_key_record(brand_id: &BrandId, created_at: i64) -> KeyRecord {
    let hasher = KeyHasher::new(&Pepper::insecure_dev());
    let key = generate_key().expect("randomness");
    let key_hash = hasher.hash(key.expose_secret());
    KeyRecord {
        brand_id: brand_id.clone(),
        key_id: KeyId::new(created_at).expect("randomness"),
        fingerprint: key_hash.fingerprint(),
        key_hash,
        label: Some("conformance".into()),
        created_at,
        last_used_at: None,
        revoked_at: None,
    }
}

pub async fn brands_are_created_once(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "brand").await;
    let brand = store.get_brand(&brand_id).await.unwrap().expect("brand");
    assert_eq!(brand.live_keys, 0);
    assert_eq!(brand.name, format!("Brand {brand_id}"));
    let again = store
        .create_brand(&BrandRecord {
            name: "Other name".into(),
            ..brand.clone()
        })
        .await;
    assert_eq!(again, Err(StoreError::AlreadyExists));
    assert_eq!(store.get_brand(&brand_id).await.unwrap(), Some(brand));
    assert_eq!(
        store.get_brand(&fresh_brand_id("none")).await.unwrap(),
        None
    );
}

pub async fn inserted_keys_are_found_by_hash_and_by_id(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "lookup").await;
    let record = new_key_record(&brand_id, 1_700_000_000_001);
    store
        .insert_key(&record, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();

    let lookup = store
        .find_key_by_hash(&record.key_hash)
        .await
        .unwrap()
        .expect("lookup");
    assert_eq!(lookup.brand_id, brand_id);
    assert_eq!(lookup.key_id, record.key_id);
    assert_eq!(lookup.fingerprint, record.fingerprint);
    assert_eq!(lookup.revoked_at, None);
    assert_eq!(
        store.get_key(&brand_id, &record.key_id).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        1
    );

    let stranger = new_key_record(&brand_id, 1_700_000_000_002);
    assert_eq!(
        store.find_key_by_hash(&stranger.key_hash).await.unwrap(),
        None
    );
    let other_brand = create_fresh_brand(store, "other").await;
    assert_eq!(
        store.get_key(&other_brand, &record.key_id).await.unwrap(),
        None
    );
}

pub async fn live_key_limit_is_enforced_and_freed_by_revoke(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "limit").await;
    let first = new_key_record(&brand_id, 1_700_000_000_001);
    let second = new_key_record(&brand_id, 1_700_000_000_002);
    let third = new_key_record(&brand_id, 1_700_000_000_003);
    store
        .insert_key(&first, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();
    store
        .insert_key(&second, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();
    assert_eq!(
        store.insert_key(&third, MAX_LIVE_KEYS_PER_BRAND).await,
        Err(StoreError::LimitReached)
    );
    // The refused key left nothing behind.
    assert_eq!(store.find_key_by_hash(&third.key_hash).await.unwrap(), None);
    assert_eq!(store.get_key(&brand_id, &third.key_id).await.unwrap(), None);
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        2
    );

    let outcome = store
        .revoke_key(&brand_id, &first.key_id, 1_700_000_000_010)
        .await
        .unwrap();
    assert!(
        matches!(outcome, RevokeOutcome::Revoked(ref r) if r.revoked_at == Some(1_700_000_000_010))
    );
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        1
    );
    store
        .insert_key(&third, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        2
    );
}

pub async fn keys_for_unknown_brands_are_refused_without_writes(store: &dyn KeyStore) {
    let brand_id = fresh_brand_id("ghost");
    let record = new_key_record(&brand_id, 1_700_000_000_001);
    assert_eq!(
        store.insert_key(&record, MAX_LIVE_KEYS_PER_BRAND).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.find_key_by_hash(&record.key_hash).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_key(&brand_id, &record.key_id).await.unwrap(),
        None
    );
    assert_eq!(store.get_brand(&brand_id).await.unwrap(), None);
    assert_eq!(
        store.revoke_key(&brand_id, &record.key_id, 1).await,
        Err(StoreError::NotFound)
    );
}

pub async fn duplicate_keys_are_refused(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "dup").await;
    let record = new_key_record(&brand_id, 1_700_000_000_001);
    store
        .insert_key(&record, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();
    let same_hash = KeyRecord {
        key_id: KeyId::new(1_700_000_000_002).unwrap(),
        ..record.clone()
    };
    assert_eq!(
        store.insert_key(&same_hash, MAX_LIVE_KEYS_PER_BRAND).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.get_key(&brand_id, &same_hash.key_id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        1
    );
}

pub async fn listing_pages_in_creation_order_within_the_brand(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "list").await;
    let neighbour = create_fresh_brand(store, "list").await;
    store
        .insert_key(
            &new_key_record(&neighbour, 1_700_000_000_000),
            MAX_LIVE_KEYS_PER_BRAND,
        )
        .await
        .unwrap();
    // Five keys over time, revoking as we go so the limit allows them.
    let mut created = Vec::new();
    for step in 0..5 {
        let record = new_key_record(&brand_id, 1_700_000_000_000 + step * 1_000);
        store
            .insert_key(&record, MAX_LIVE_KEYS_PER_BRAND)
            .await
            .unwrap();
        if step < 4 {
            store
                .revoke_key(&brand_id, &record.key_id, 1_700_000_000_500 + step * 1_000)
                .await
                .unwrap();
        }
        created.push(record.key_id);
    }

    let mut seen = Vec::new();
    let mut position: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_keys(&brand_id, 2, position.as_deref())
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        assert!(page.items.iter().all(|record| record.brand_id == brand_id));
        seen.extend(page.items.iter().map(|record| record.key_id.clone()));
        match page.next_position {
            Some(next) => position = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(seen, created, "every key once, oldest first");
    assert_eq!(
        pages, 3,
        "5 keys in pages of 2, the last page has no next position"
    );

    let everything = store.list_keys(&brand_id, 100, None).await.unwrap();
    assert_eq!(everything.items.len(), 5);
    assert_eq!(everything.next_position, None);
    assert_eq!(
        everything.items.iter().filter(|r| r.is_revoked()).count(),
        4
    );
    let empty = store
        .list_keys(&fresh_brand_id("none"), 10, None)
        .await
        .unwrap();
    assert!(empty.items.is_empty());
}

pub async fn revoke_is_idempotent_and_brand_scoped(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "revoke").await;
    let other_brand = create_fresh_brand(store, "revoke").await;
    let record = new_key_record(&brand_id, 1_700_000_000_001);
    store
        .insert_key(&record, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();

    assert_eq!(
        store.revoke_key(&other_brand, &record.key_id, 5).await,
        Err(StoreError::NotFound),
        "another brand cannot revoke this key"
    );
    assert_eq!(
        store
            .find_key_by_hash(&record.key_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );

    let first = store
        .revoke_key(&brand_id, &record.key_id, 10)
        .await
        .unwrap();
    let RevokeOutcome::Revoked(revoked) = first else {
        panic!("first revoke should revoke, got {first:?}");
    };
    assert_eq!(revoked.revoked_at, Some(10));
    let second = store
        .revoke_key(&brand_id, &record.key_id, 20)
        .await
        .unwrap();
    assert_eq!(second, RevokeOutcome::AlreadyRevoked(revoked));
    assert_eq!(
        store
            .find_key_by_hash(&record.key_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(10)
    );
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        0
    );
    assert_eq!(
        store
            .revoke_key(&brand_id, &KeyId::new(1).unwrap(), 30)
            .await,
        Err(StoreError::NotFound)
    );
}

pub async fn key_use_is_recorded(store: &dyn KeyStore) {
    let brand_id = create_fresh_brand(store, "use").await;
    let record = new_key_record(&brand_id, 1_700_000_000_001);
    store
        .insert_key(&record, MAX_LIVE_KEYS_PER_BRAND)
        .await
        .unwrap();
    store
        .record_key_use(&brand_id, &record.key_id, 1_700_000_000_100)
        .await
        .unwrap();
    assert_eq!(
        last_used(store, &brand_id, &record.key_id).await,
        Some(1_700_000_000_100)
    );

    // A container with a slower clock never moves it backwards.
    store
        .record_key_use(&brand_id, &record.key_id, 1_700_000_000_050)
        .await
        .unwrap();
    assert_eq!(
        last_used(store, &brand_id, &record.key_id).await,
        Some(1_700_000_000_100)
    );

    // A revoked key keeps the last use it had before revocation.
    store
        .revoke_key(&brand_id, &record.key_id, 1_700_000_000_200)
        .await
        .unwrap();
    store
        .record_key_use(&brand_id, &record.key_id, 1_700_000_000_300)
        .await
        .unwrap();
    assert_eq!(
        last_used(store, &brand_id, &record.key_id).await,
        Some(1_700_000_000_100)
    );

    // Recording use never creates a key.
    let ghost = KeyId::new(1).unwrap();
    store.record_key_use(&brand_id, &ghost, 1).await.unwrap();
    assert_eq!(store.get_key(&brand_id, &ghost).await.unwrap(), None);
}

async fn last_used(store: &dyn KeyStore, brand_id: &BrandId, key_id: &KeyId) -> Option<i64> {
    let stored = store.get_key(brand_id, key_id).await.unwrap().unwrap();
    stored.last_used_at
}

pub async fn concurrent_inserts_never_exceed_the_limit(store: Arc<dyn KeyStore>) {
    let brand_id = create_fresh_brand(store.as_ref(), "race").await;
    let mut tasks = tokio::task::JoinSet::new();
    for attempt in 0..20 {
        let store = Arc::clone(&store);
        let record = new_key_record(&brand_id, 1_700_000_000_000 + attempt);
        tasks.spawn(async move { store.insert_key(&record, MAX_LIVE_KEYS_PER_BRAND).await });
    }
    let mut inserted = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok(()) => inserted += 1,
            Err(StoreError::LimitReached | StoreError::Contention) => {}
            Err(other) => panic!("unexpected error under concurrency: {other:?}"),
        }
    }
    assert_eq!(inserted, MAX_LIVE_KEYS_PER_BRAND);
    let listed = store.list_keys(&brand_id, 100, None).await.unwrap();
    assert_eq!(listed.items.len(), MAX_LIVE_KEYS_PER_BRAND as usize);
    assert_eq!(
        store.get_brand(&brand_id).await.unwrap().unwrap().live_keys,
        MAX_LIVE_KEYS_PER_BRAND
    );
}
