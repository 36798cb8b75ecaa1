//! The DynamoDB backend against a real DynamoDB wire endpoint (moto, started by `scripts/test`):
//! the shared conformance suites, the stored layout of rollup rows, the pepper read through Secrets
//! Manager, and the revocation bound.

use std::sync::Arc;
use trcker_shared::brand_data::ClickStore;

use trcker_shared::bootstrap::load_pepper;
use trcker_shared::clock::ManualClock;
use trcker_shared::config::PepperSource;
use trcker_shared::hashing::{KeyHasher, Pepper};
use trcker_shared::ids::BrandId;
use trcker_shared::keys::{KeyService, KeySettings, Rejection};
use trcker_shared::store::StoreError;
use trcker_shared::store::conformance;
use trcker_shared::store::schema::{KEYS_TABLE, create_table};
use trcker_shared::testing::{fresh_dynamo_store, moto_aws_config};

/// Held by each conformance suite here: moto runs a transaction against a copy of its tables and
/// puts the copy back when it is cancelled, so two suites' transactions at once, even on
/// different tables, can lose or resurrect each other's writes (seen as a spurious
/// `AlreadyExists`). The suites take turns; the other tests run beside them.
static MOTO_TRANSACTIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_passes_the_conformance_suite() {
    let _turn = MOTO_TRANSACTIONS.lock().await;
    let (_, store) = fresh_dynamo_store().await;
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_behind_the_wrappers_passes_the_conformance_suite() {
    use trcker_shared::store::counting::CountingStore;
    use trcker_shared::store::faulty::FaultyStore;
    let _turn = MOTO_TRANSACTIONS.lock().await;
    let (_, store) = fresh_dynamo_store().await;
    let store = Arc::new(FaultyStore::new(CountingStore::new(store)));
    conformance::run_all(store.clone()).await;
    assert_eq!(store.faults_fired(), 0);
    assert_eq!(
        store.inner().total_calls(),
        store.calls(),
        "one call in, one call on"
    );
}

#[tokio::test]
async fn creating_an_existing_table_is_an_error_not_a_silent_success() {
    let (client, store) = fresh_dynamo_store().await;
    let again = create_table(&client, &KEYS_TABLE, store.table()).await;
    assert!(
        matches!(again, Err(StoreError::Unavailable(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_pepper_is_read_from_secrets_manager() {
    let config = moto_aws_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let secret_id = format!(
        "trcker/pepper-{:x}",
        trcker_shared::token::random_u64().unwrap()
    );
    let secret_value = "x".repeat(16) + &"0123456789abcdef".repeat(3);
    secrets
        .create_secret()
        .name(&secret_id)
        .secret_string(&secret_value)
        .send()
        .await
        .expect("create secret on moto");

    let source = PepperSource::SecretsManager {
        secret_id: secret_id.clone(),
    };
    let pepper = load_pepper(&source, &config).await.expect("pepper");
    let expected = Pepper::from_bytes(secret_value.into_bytes()).unwrap();
    assert_eq!(
        KeyHasher::new(&pepper).hash("tk_probe"),
        KeyHasher::new(&expected).hash("tk_probe")
    );

    let missing = PepperSource::SecretsManager {
        secret_id: "trcker/does-not-exist".into(),
    };
    let error = load_pepper(&missing, &config).await.unwrap_err();
    assert!(error.to_string().contains("trcker/does-not-exist"));

    let short_id = format!("{secret_id}-short");
    secrets
        .create_secret()
        .name(&short_id)
        .secret_string("too-short")
        .send()
        .await
        .unwrap();
    let short = PepperSource::SecretsManager {
        secret_id: short_id,
    };
    assert!(load_pepper(&short, &config).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_generates_leave_exactly_two_live_keys() {
    let (_, store) = fresh_dynamo_store().await;
    let service = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(store),
        Arc::new(trcker_shared::clock::SystemClock),
    ));
    let brand_id = BrandId::parse("race").unwrap();
    service.create_brand(&brand_id, "Race").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let service = Arc::clone(&service);
        let brand_id = brand_id.clone();
        tasks.spawn(async move { service.generate(&brand_id, None).await });
    }
    let mut issued = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(generated) => issued.push(generated),
            Err(error) => assert!(
                matches!(
                    error.code(),
                    trcker_shared::error::ErrorCode::KeyLimitReached
                        | trcker_shared::error::ErrorCode::StoreUnavailable
                ),
                "{error:?}"
            ),
        }
    }
    assert_eq!(issued.len(), 2);
    let listing = service.list(&brand_id, None, None).await.unwrap();
    assert_eq!(listing.keys.len(), 2);
    for generated in &issued {
        service.verify(generated.key.expose_secret()).await.unwrap();
    }
}

#[tokio::test]
async fn a_revoked_key_fails_on_the_first_request_after_the_ttl() {
    let (_, store) = fresh_dynamo_store().await;
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::starting_at(1_795_000_000_000));
    let settings = KeySettings::default();
    let edge = KeyService::new(
        store.clone(),
        KeyHasher::new(&Pepper::insecure_dev()),
        clock.clone(),
        settings,
    );
    let operator = KeyService::new(
        store,
        KeyHasher::new(&Pepper::insecure_dev()),
        clock.clone(),
        settings,
    );
    let brand_id = BrandId::parse("ttl").unwrap();
    operator.create_brand(&brand_id, "TTL").await.unwrap();
    let generated = operator.generate(&brand_id, None).await.unwrap();
    let token = generated.key.expose_secret();
    edge.verify(token).await.unwrap();

    operator.revoke(&brand_id, &generated.key_id).await.unwrap();
    clock.advance_ms(settings.cache_ttl_ms - 1);
    assert!(
        edge.verify(token).await.is_ok(),
        "within the TTL the cache answers"
    );
    clock.advance_ms(1);
    match edge.verify(token).await {
        Err(Rejection::Revoked(principal)) => {
            assert_eq!(principal.brand_id, brand_id);
            assert_eq!(principal.key_id, generated.key_id);
        }
        other => panic!("expected a revoked rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn dynamodb_brand_data_passes_the_conformance_suite() {
    let _turn = MOTO_TRANSACTIONS.lock().await;
    let store = trcker_shared::testing::fresh_dynamo_brand_data().await;
    trcker_shared::brand_data::conformance::run_all(&store).await;
    // Then behind the test wrapper, which forwards every method. In turn, not in a test of its
    // own: two brand-data suites' transactions at once on moto fail with `AlreadyExists`.
    let wrapped = trcker_shared::brand_data::faulty::FaultyBrandData::new(
        trcker_shared::testing::fresh_dynamo_brand_data().await,
    );
    trcker_shared::brand_data::conformance::run_all(&wrapped).await;
    assert_eq!(wrapped.faults_fired(), 0);
}

#[tokio::test]
async fn rollup_rows_have_the_documented_item_layout() {
    use aws_sdk_dynamodb::types::AttributeValue;

    use trcker_shared::brand_data::clicks::ClickRecord;
    use trcker_shared::brand_data::rollups::{
        CLICKS, RollupDimension, increments_for, rollup_expires_at, rollup_shard, utc_day,
    };

    let store = trcker_shared::testing::fresh_dynamo_brand_data().await;
    let client = aws_sdk_dynamodb::Client::new(&moto_aws_config().await);
    let brand_id = conformance::fresh_brand_id("layout");
    let at = 1_795_000_000_000;
    let click = ClickRecord {
        brand_id: brand_id.clone(),
        click_id: "layout-1".into(),
        at,
        offer_id: Some("off_0123abcd".into()),
        partner_id: None,
        sub_ids: Default::default(),
        landing_url: None,
        referrer: None,
        source_ip: "203.0.113.1".into(),
        user_agent: "layout".into(),
        fraud_score: 0,
        audit: None,
    };
    let counters = [
        (CLICKS.to_owned(), 1),
        ("revenue_micros:USD".to_owned(), 2_500_000),
    ];
    let increments = increments_for(at, "layout-1", Some("off_0123abcd"), None, &counters);
    store
        .insert_click_counted(&click, &increments)
        .await
        .unwrap();

    let day = utc_day(at);
    let shard = rollup_shard("layout-1");
    for (dimension, group) in [
        (RollupDimension::Total, ""),
        (RollupDimension::Offer, "off_0123abcd"),
    ] {
        let key = |name: &str, value: String| (name.to_owned(), AttributeValue::S(value));
        let pk = format!("{brand_id}#ROLLUP#{}#{shard:02}", dimension.as_str());
        let sk = format!("{day}#{group}");
        let item = client
            .get_item()
            .table_name(store.table())
            .set_key(Some([key("pk", pk.clone()), key("sk", sk.clone())].into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no rollup item at {pk} / {sk}"));
        let number = |value: i64| AttributeValue::N(value.to_string());
        let expected = std::collections::HashMap::from([
            key("pk", pk),
            key("sk", sk),
            ("n:clicks".to_owned(), number(1)),
            ("n:revenue_micros:USD".to_owned(), number(2_500_000)),
            (
                "expires_at".to_owned(),
                number(rollup_expires_at(&day).unwrap()),
            ),
        ]);
        assert_eq!(item, expected, "{dimension:?}");
    }
}

/// A source item as docs/ARCHITECTURE.md describes it: the window, its clicks, the last sighting
/// and the TTL as numbers, and per stream shard that counted into it a `w:<stream shard>` mark,
/// the last sequence number zero-padded to 40 digits (as a rollup row's).
#[tokio::test]
async fn source_items_have_the_documented_item_layout() {
    use aws_sdk_dynamodb::types::AttributeValue;

    use trcker_shared::brand_data::rollups::StreamSpan;
    use trcker_shared::brand_data::{CounterStore, SourceHits};

    let store = trcker_shared::testing::fresh_dynamo_brand_data().await;
    let client = aws_sdk_dynamodb::Client::new(&moto_aws_config().await);
    let brand_id = conformance::fresh_brand_id("layout");
    let hour = 3_600_000;
    let hits = |count, latest_at| SourceHits {
        window_start: hour,
        count,
        latest_at,
        expires_at: 10_800,
    };
    let span = StreamSpan {
        origin: "shardId-1".into(),
        first_sequence: "41".into(),
        last_sequence: "4200".into(),
    };
    store
        .count_source_hits(&brand_id, "203.0.113.1", &hits(1, hour + 7), None)
        .await
        .unwrap();
    store
        .count_source_hits(&brand_id, "203.0.113.1", &hits(3, hour + 5), Some(&span))
        .await
        .unwrap();

    let text = |value: String| AttributeValue::S(value);
    let number = |value: i64| AttributeValue::N(value.to_string());
    let pk = format!("{brand_id}#SOURCE#203.0.113.1");
    let item = client
        .get_item()
        .table_name(store.table())
        .set_key(Some(
            [
                ("pk".to_owned(), text(pk.clone())),
                ("sk".to_owned(), text("HITS".into())),
            ]
            .into(),
        ))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("no source item");
    let expected = std::collections::HashMap::from([
        ("pk".to_owned(), text(pk)),
        ("sk".to_owned(), text("HITS".into())),
        ("window_start".to_owned(), number(hour)),
        ("clicks".to_owned(), number(4)),
        ("last_at".to_owned(), number(hour + 7)),
        ("expires_at".to_owned(), number(10_800)),
        ("w:shardId-1".to_owned(), text(format!("{:0>40}", 4200))),
    ]);
    assert_eq!(item, expected);
}

/// The activity item a document write carries in its transaction is the item
/// `append_activity` stores: the same key, record text and TTL attribute, attribute for
/// attribute.
#[tokio::test]
async fn a_document_writes_activity_item_is_the_appended_item() {
    use trcker_shared::brand_data::conformance::sample_activity;
    use trcker_shared::brand_data::{
        ActivityStore, Document, DocumentKind, DocumentStore, Surface,
    };
    use trcker_shared::testing::RawItem;

    // A transaction, cancelled or not, takes its turn with the suites' (see MOTO_TRANSACTIONS).
    let _turn = MOTO_TRANSACTIONS.lock().await;
    let client = aws_sdk_dynamodb::Client::new(&moto_aws_config().await);
    let brand_id = conformance::fresh_brand_id("layout");
    let record = sample_activity(&brand_id, 1_795_000_000_000, Surface::Api, "req_layout");
    let key = trcker_shared::brand_data::layout::activity(&record);
    let stored = |table: String| {
        let client = client.clone();
        let key = key.clone();
        async move {
            client
                .get_item()
                .table_name(table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(key.partition),
                )
                .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.sort))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .expect("the activity item")
        }
    };

    let appending = trcker_shared::testing::fresh_dynamo_brand_data().await;
    appending.append_activity(&record).await.unwrap();
    let appended: RawItem = stored(appending.table().to_owned()).await;

    let writing = trcker_shared::testing::fresh_dynamo_brand_data().await;
    let document = Document {
        brand_id: brand_id.clone(),
        kind: DocumentKind::Partner,
        id: "ptr_layout".into(),
        version: 1,
        body: serde_json::json!({ "name": "Layout" }),
    };
    writing
        .create_documents_counted(&[(&document, &[])], &[], Some(&record))
        .await
        .unwrap();
    assert_eq!(stored(writing.table().to_owned()).await, appended);
    assert!(appended.contains_key("expires_at"), "{appended:?}");
}
