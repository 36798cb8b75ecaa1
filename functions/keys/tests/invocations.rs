//! The key-management function end to end through its invocation handler: the sample events in
//! `events/keys/`, the full lifecycle on both store backends, and every bad payload.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use trcker_keys::{handle_payload, handle_payload_bytes};
use trcker_shared::clock::SystemClock;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::KeyStore;
use trcker_shared::store::counting::CountingStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::fresh_dynamo_store;

fn service_over(store: Arc<dyn KeyStore>) -> KeyService {
    KeyService::with_insecure_dev_pepper(store, Arc::new(SystemClock))
}

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/keys")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn by_id<'a>(keys: &'a [Value], key_id: &str) -> &'a Value {
    keys.iter()
        .find(|key| key["key_id"] == key_id)
        .unwrap_or_else(|| panic!("{key_id} not listed"))
}

fn error_code(response: &Value) -> &str {
    response["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {response}"))
}

/// Operator's whole journey with the committed sample events: register, generate, rotate
/// (second key while the first works), revoke the first, see it listed as revoked.
async fn lifecycle_from_sample_events(service: &KeyService) {
    let created = handle_payload(service, event("create-brand.json")).await;
    assert_eq!(created["brand"]["brand_id"], "demo", "{created}");

    let first = handle_payload(service, event("generate.json")).await;
    let first_key = first["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    assert!(first_key.starts_with("tk_") && first_key.len() == 43);
    assert!(first["fingerprint"].as_str().unwrap().starts_with("fp_"));
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    let first_id = first["key_id"].as_str().unwrap().to_owned();

    // Rotation, step one: a replacement while the current key still works.
    let second = handle_payload(service, event("generate.json")).await;
    let second_key = second["key"].as_str().unwrap().to_owned();
    assert!(service.verify(&first_key).await.is_ok());
    assert!(service.verify(&second_key).await.is_ok());
    let third = handle_payload(service, event("generate.json")).await;
    assert_eq!(error_code(&third), "key_limit_reached");

    let listed = handle_payload(service, event("list.json")).await;
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let listed_first = by_id(keys, &first_id);
    assert_eq!(listed_first["status"], "active");
    assert_eq!(listed_first["label"], "production");
    for key in keys {
        let fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "fingerprint",
                "key_id",
                "label",
                "last_used_at",
                "revoked_at",
                "status"
            ],
            "metadata only: no hash, no key"
        );
    }
    assert!(!listed.to_string().contains(&first_key[3..]));

    // The sample's key id belongs to no key.
    let stale = handle_payload(service, event("revoke.json")).await;
    assert_eq!(error_code(&stale), "not_found");

    // Rotation, step two: revoke the old key.
    let mut revoke = event("revoke.json");
    revoke["key_id"] = json!(first_id);
    let revoked = handle_payload(service, revoke.clone()).await;
    assert_eq!(revoked["key"]["status"], "revoked", "{revoked}");
    assert!(revoked["key"]["revoked_at"].is_string());
    let again = handle_payload(service, revoke).await;
    assert_eq!(again, revoked, "revoke is idempotent");
    assert!(service.verify(&first_key).await.is_err());
    assert!(service.verify(&second_key).await.is_ok());

    let listed = handle_payload(service, event("list.json")).await;
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(by_id(keys, &first_id)["status"], "revoked");
    let second_id = second["key_id"].as_str().unwrap();
    assert_eq!(by_id(keys, second_id)["status"], "active");
    assert!(by_id(keys, second_id)["last_used_at"].is_string());
    assert_eq!(listed["next_cursor"], Value::Null);
}

#[tokio::test]
async fn sample_events_drive_the_lifecycle_in_memory() {
    lifecycle_from_sample_events(&service_over(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn sample_events_drive_the_lifecycle_on_dynamodb() {
    let (_, store) = fresh_dynamo_store().await;
    lifecycle_from_sample_events(&service_over(Arc::new(store))).await;
}

#[tokio::test]
async fn every_sample_event_is_valid_json_with_a_known_action() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/keys");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let payload = event(&name);
        let action = payload["action"].as_str().unwrap();
        assert!(trcker_keys::ACTIONS.contains(&action), "{name}: {action}");
        seen += 1;
    }
    assert_eq!(seen, trcker_keys::ACTIONS.len());
}

#[tokio::test]
async fn bad_payloads_get_typed_errors_and_write_nothing() {
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let service = service_over(store.clone());
    handle_payload(
        &service,
        json!({"action":"create_brand","brand_id":"acme","name":"Acme"}),
    )
    .await;

    let long_brand = "a".repeat(65);
    let huge_brand = "a".repeat(10 * 1024);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty payload", b"".to_vec(), "invalid_request"),
        ("invalid JSON", b"{\"action\":".to_vec(), "invalid_request"),
        ("not UTF-8", vec![0x7b, 0xff, 0x7d], "invalid_request"),
        ("null", b"null".to_vec(), "invalid_request"),
        ("array", b"[]".to_vec(), "invalid_request"),
        (
            "no action",
            br#"{"brand_id":"acme"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "action not a string",
            br#"{"action":5}"#.to_vec(),
            "invalid_request",
        ),
        (
            "empty action",
            br#"{"action":""}"#.to_vec(),
            "invalid_request",
        ),
        (
            "unknown action",
            br#"{"action":"rotate","brand_id":"acme"}"#.to_vec(),
            "unknown_action",
        ),
        (
            "missing brand_id",
            br#"{"action":"generate"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "brand_id wrong type",
            br#"{"action":"generate","brand_id":5}"#.to_vec(),
            "invalid_request",
        ),
        (
            "brand_id too long",
            format!(r#"{{"action":"generate","brand_id":"{long_brand}"}}"#).into_bytes(),
            "invalid_request",
        ),
        (
            "brand_id 10 KB",
            format!(r#"{{"action":"list","brand_id":"{huge_brand}"}}"#).into_bytes(),
            "invalid_request",
        ),
        (
            "brand_id with #",
            br#"{"action":"generate","brand_id":"ac#me"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "unknown field",
            br#"{"action":"generate","brand_id":"acme","scope":"all"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "label wrong type",
            br#"{"action":"generate","brand_id":"acme","label":[1]}"#.to_vec(),
            "invalid_request",
        ),
        (
            "label too long",
            format!(
                r#"{{"action":"generate","brand_id":"acme","label":"{}"}}"#,
                "x".repeat(101)
            )
            .into_bytes(),
            "invalid_request",
        ),
        (
            "label control chars",
            br#"{"action":"generate","brand_id":"acme","label":"a\nb"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "unknown brand",
            br#"{"action":"generate","brand_id":"nobody"}"#.to_vec(),
            "brand_not_found",
        ),
        (
            "list unknown brand",
            br#"{"action":"list","brand_id":"nobody"}"#.to_vec(),
            "brand_not_found",
        ),
        (
            "negative limit",
            br#"{"action":"list","brand_id":"acme","limit":-1}"#.to_vec(),
            "invalid_request",
        ),
        (
            "zero limit",
            br#"{"action":"list","brand_id":"acme","limit":0}"#.to_vec(),
            "invalid_request",
        ),
        (
            "huge limit",
            br#"{"action":"list","brand_id":"acme","limit":99999999999}"#.to_vec(),
            "invalid_request",
        ),
        (
            "string limit",
            br#"{"action":"list","brand_id":"acme","limit":"10"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "garbage cursor",
            br#"{"action":"list","brand_id":"acme","cursor":"garbage"}"#.to_vec(),
            "invalid_cursor",
        ),
        (
            "malformed key_id",
            br#"{"action":"revoke","brand_id":"acme","key_id":"tk_oops"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "missing key_id",
            br#"{"action":"revoke","brand_id":"acme"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "unknown key_id",
            br#"{"action":"revoke","brand_id":"acme","key_id":"key_00000000000000000000"}"#
                .to_vec(),
            "not_found",
        ),
        (
            "brand name empty",
            br#"{"action":"create_brand","brand_id":"new","name":" "}"#.to_vec(),
            "invalid_request",
        ),
        (
            "existing brand",
            br#"{"action":"create_brand","brand_id":"acme","name":"Again"}"#.to_vec(),
            "already_exists",
        ),
        (
            "oversized payload",
            format!(
                r#"{{"action":"generate","brand_id":"acme","label":"{}"}}"#,
                "x".repeat(20_000)
            )
            .into_bytes(),
            "invalid_request",
        ),
    ];
    // Only these need the store to decide; everything else is refused before any store call.
    let decided_by_store = [
        "unknown brand",
        "list unknown brand",
        "unknown key_id",
        "existing brand",
    ];
    let acme = BrandId::parse("acme").unwrap();
    for (name, payload, expected) in cases {
        store.reset();
        let response = handle_payload_bytes(&service, &payload).await;
        assert_eq!(error_code(&response), expected, "{name}: {response}");
        let message = response["error"]["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && message.len() < 400,
            "{name}: {message}"
        );
        if !decided_by_store.contains(&name) {
            assert_eq!(store.total_calls(), 0, "{name} reached the store");
        }
        // Nothing changed, whatever the case.
        let state = store.inner();
        let brand = state.get_brand(&acme).await.unwrap().unwrap();
        assert_eq!(
            (brand.name.as_str(), brand.live_keys),
            ("Acme", 0),
            "{name}"
        );
        assert!(
            state
                .list_keys(&acme, 10, None)
                .await
                .unwrap()
                .items
                .is_empty(),
            "{name}"
        );
        for absent in ["nobody", "new"] {
            let absent = BrandId::parse(absent).unwrap();
            assert_eq!(state.get_brand(&absent).await.unwrap(), None, "{name}");
        }
    }
}

#[test]
fn the_binary_refuses_to_start_without_its_configuration() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keys"))
        .env_clear()
        .output()
        .expect("run the keys binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stderr.contains("TRCKER_KEYS_TABLE") || stdout.contains("TRCKER_KEYS_TABLE"),
        "the start-up error names the variable: {stderr} {stdout}"
    );
}

#[tokio::test]
async fn errors_never_echo_a_key_placed_in_the_payload() {
    let service = service_over(Arc::new(MemoryStore::new()));
    handle_payload(
        &service,
        json!({"action":"create_brand","brand_id":"acme","name":"Acme"}),
    )
    .await;
    let generated = handle_payload(&service, json!({"action":"generate","brand_id":"acme"})).await;
    let key = generated["key"].as_str().unwrap().to_owned();
    for payload in [
        json!({"action": key}),
        json!({"action": "list", "brand_id": "acme", "limit": key}),
        json!({"action": "list", "brand_id": "acme", "cursor": key}),
        json!({"action": "revoke", "brand_id": "acme", "key_id": key}),
        json!({"action": "generate", "brand_id": key}),
        json!({"action": "generate", "brand_id": "acme", key.clone(): 1}),
    ] {
        let response = handle_payload(&service, payload.clone()).await;
        assert!(
            response["error"]["code"].is_string(),
            "{payload}: {response}"
        );
        assert!(
            !response.to_string().contains(&key[3..]),
            "the error echoes the key: {response}"
        );
    }
}
