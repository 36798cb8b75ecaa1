//! Proves a plaintext key appears only in the generation result: never in any log line (captured
//! at TRACE, AWS SDK included), never in a stored DynamoDB item, never in an error.

use std::sync::Arc;

use trcker_shared::clock::SystemClock;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{
    LogCapture, all_items_as_text, fresh_dynamo_store, key_shaped_strings,
};

/// Runs a whole lifecycle and returns the one plaintext it produced.
async fn exercise_lifecycle(store: Arc<dyn KeyStore>) -> String {
    let service = KeyService::with_insecure_dev_pepper(store, Arc::new(SystemClock));
    let brand_id = BrandId::parse(&format!(
        "hygiene-{:x}",
        trcker_shared::token::random_u64().unwrap()
    ))
    .unwrap();
    service.create_brand(&brand_id, "Hygiene").await.unwrap();
    let generated = service.generate(&brand_id, Some("ci")).await.unwrap();
    let token = generated.key.expose_secret().to_owned();
    assert!(!format!("{generated:?}").contains(&token[3..]));

    service.verify(&token).await.unwrap();
    service.list(&brand_id, None, None).await.unwrap();
    service.revoke(&brand_id, &generated.key_id).await.unwrap();
    for attempt in [token.clone(), format!("{token}x"), format!(" {token}")] {
        let rejection = service.verify(&attempt).await.unwrap_err();
        assert!(!rejection.message().contains(&token[3..]));
        assert!(!format!("{rejection:?}").contains(&token[3..]));
    }
    token
}

fn assert_no_plaintext(haystack: &str, token: &str, what: &str) {
    assert!(
        !haystack.contains(token),
        "{what} contains the plaintext key"
    );
    assert!(
        !haystack.contains(&token[3..23]),
        "{what} contains part of the key"
    );
    assert!(
        key_shaped_strings(haystack).is_empty(),
        "{what} contains a key-shaped string"
    );
}

#[tokio::test]
async fn no_plaintext_in_logs_or_items_memory_and_dynamodb() {
    let logs = LogCapture::install_global();

    let memory_token = exercise_lifecycle(Arc::new(MemoryStore::new())).await;

    let (client, store) = fresh_dynamo_store().await;
    let table = store.table().to_owned();
    let dynamo_token = exercise_lifecycle(Arc::new(store)).await;
    let items = all_items_as_text(&client, &table).await;
    assert_eq!(
        items.len(),
        4,
        "brand, key, hash lookup and key use items: {items:#?}"
    );
    let items = items.join("\n");
    assert!(items.contains("fp_"), "items were read: {items}");
    assert_no_plaintext(&items, &dynamo_token, "a stored DynamoDB item");

    let text = logs.text();
    assert!(text.contains("API key generated"), "logs were captured");
    assert!(text.contains("API key revoked"));
    assert_no_plaintext(&text, &memory_token, "the logs");
    assert_no_plaintext(&text, &dynamo_token, "the logs");
}
