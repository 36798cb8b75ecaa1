//! Key generation and revocation under injected store faults, through the keys function's payload
//! handler: a fault at every store call the action makes (the Nth call, walked until the action
//! makes fewer calls) answers the typed `store_unavailable` error and leaves the store exactly as
//! it was (no key without its hash lookup, no counter drift), in memory and on DynamoDB (moto,
//! where every item of the table is compared). A response lost after the write is the one case
//! where the store changed: it changed completely and consistently, and a retried revoke is
//! idempotent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use trcker_shared::clock::SystemClock;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_shared::store::faulty::FaultyStore;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::store::{KeyStore, MAX_LIVE_KEYS_PER_BRAND};
use trcker_shared::testing::{all_items as scan_table, fresh_dynamo_store};

const TIMEOUT: Duration = Duration::from_millis(20);

fn faults() -> [Fault; 4] {
    [
        Fault::Throttled,
        Fault::ServerError,
        Fault::Timeout(TIMEOUT),
        Fault::ResponseLost,
    ]
}

/// One keys function over a fault-injecting store; `scan` lists every stored item (moto only).
struct Harness<S> {
    store: Arc<FaultyStore<S>>,
    service: KeyService,
    scan: Option<(aws_sdk_dynamodb::Client, String)>,
}

fn harness<S: KeyStore + 'static>(
    inner: S,
    scan: Option<(aws_sdk_dynamodb::Client, String)>,
) -> Harness<S> {
    let store = Arc::new(FaultyStore::new(inner));
    let service = KeyService::with_insecure_dev_pepper(store.clone(), Arc::new(SystemClock));
    Harness {
        store,
        service,
        scan,
    }
}

/// Everything observable about the brand's keys: the brand's live-key counter, each key record,
/// each key's hash lookup, and (on moto) every item of the table.
#[derive(Debug, PartialEq)]
struct State {
    live_keys: u32,
    keys: Vec<String>,
    lookups: Vec<String>,
    items: BTreeSet<String>,
}

impl<S: KeyStore> Harness<S> {
    async fn invoke(&self, payload: Value) -> Value {
        trcker_keys::handle_payload(&self.service, payload).await
    }

    async fn state(&self) -> State {
        let brand = BrandId::parse("acme").unwrap();
        let inner = self.store.inner();
        let live_keys = inner.get_brand(&brand).await.unwrap().unwrap().live_keys;
        let records = inner.list_keys(&brand, 100, None).await.unwrap().items;
        let mut lookups = Vec::new();
        for record in &records {
            let lookup = inner
                .find_key_by_hash(&record.key_hash)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("key {} has no hash lookup", record.key_id));
            assert_eq!(lookup.key_id, record.key_id);
            assert_eq!(
                lookup.revoked_at, record.revoked_at,
                "lookup and key agree on revocation"
            );
            lookups.push(format!("{lookup:?}"));
        }
        let live = records.iter().filter(|record| !record.is_revoked()).count();
        assert_eq!(
            live_keys as usize, live,
            "the counter matches the live keys"
        );
        let items = match &self.scan {
            Some((client, table)) => {
                let items = all_items(client, table).await;
                let key_items = items
                    .iter()
                    .filter(|i| i.contains("KEY#key_") && !i.contains("KEYUSE#"))
                    .count();
                let hash_items = items.iter().filter(|i| i.contains("KEYHASH#")).count();
                assert_eq!(key_items, records.len(), "no key item outside the listing");
                assert_eq!(hash_items, key_items, "no orphan hash lookup: {items:#?}");
                items
            }
            None => BTreeSet::new(),
        };
        State {
            live_keys,
            keys: records.iter().map(|record| format!("{record:?}")).collect(),
            lookups,
            items,
        }
    }
}

/// Every item of the table, each with its attributes in name order (a scan: tests only).
async fn all_items(client: &aws_sdk_dynamodb::Client, table: &str) -> BTreeSet<String> {
    scan_table(client, table)
        .await
        .iter()
        .map(|item| {
            let sorted: BTreeMap<&String, String> = item
                .iter()
                .map(|(name, value)| (name, format!("{value:?}")))
                .collect();
            format!("{sorted:?}")
        })
        .collect()
}

/// A brand with one key; returns that key's id.
async fn seeded<S: KeyStore>(h: &Harness<S>) -> String {
    let created = h
        .invoke(json!({"action": "create_brand", "brand_id": "acme", "name": "Acme"}))
        .await;
    assert!(created["error"].is_null(), "{created}");
    let first = h
        .invoke(json!({"action": "generate", "brand_id": "acme", "label": "first"}))
        .await;
    first["key_id"].as_str().unwrap().to_owned()
}

fn assert_store_unavailable(response: &Value, what: &str) {
    assert_eq!(
        response["error"]["code"], "store_unavailable",
        "{what}: {response}"
    );
    assert!(
        response["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("retry")),
        "{what}: {response}"
    );
    assert!(response.get("key").is_none(), "{what}: no key on failure");
}

/// Walks every fault over every store call of `generate` and of `revoke`.
async fn walk<S: KeyStore + 'static>(make: impl AsyncFn() -> Harness<S>) {
    for fault in faults() {
        for action in ["generate", "revoke"] {
            let mut step = 1;
            loop {
                let what = format!("{action}, {fault:?} at store call {step}");
                let h = make().await;
                let first_key = seeded(&h).await;
                let payload = match action {
                    "generate" => json!({"action": "generate", "brand_id": "acme"}),
                    _ => json!({"action": "revoke", "brand_id": "acme", "key_id": first_key}),
                };
                let before = h.state().await;
                h.store.inject(None, fault.clone(), Trigger::Nth(step));
                let response = h.invoke(payload.clone()).await;
                let reached = h.store.faults_fired() > 0;
                h.store.clear();
                let after = h.state().await;
                if !reached {
                    assert!(response["error"].is_null(), "{what}: {response}");
                    assert!(step > 1, "{what}: the walk reached a store call");
                    break;
                }
                assert_store_unavailable(&response, &what);
                if fault == Fault::ResponseLost {
                    // Written in full, answer lost: one whole key more, or the key revoked.
                    let live_change = i64::from(after.live_keys) - i64::from(before.live_keys);
                    let expected = if action == "generate" { 1 } else { -1 };
                    assert_eq!(live_change, expected, "{what}");
                } else {
                    assert_eq!(after, before, "{what}: nothing changed");
                }
                let retried = h.invoke(payload).await;
                if action == "generate" && fault == Fault::ResponseLost {
                    // The documented caveat: the key exists but its plaintext was lost with the
                    // answer; with the brand now full the operator lists and revokes it first.
                    assert_eq!(retried["error"]["code"], "key_limit_reached", "{what}");
                    step += 1;
                    continue;
                }
                // Otherwise the operator's retry completes the action exactly once.
                assert!(retried["error"].is_null(), "{what}: retry: {retried}");
                let settled = h.state().await;
                match action {
                    "generate" => assert!(
                        settled.live_keys <= MAX_LIVE_KEYS_PER_BRAND
                            && settled.live_keys > before.live_keys,
                        "{what}: {settled:?}"
                    ),
                    _ => {
                        assert_eq!(settled.live_keys, 0, "{what}");
                        assert_eq!(retried["key"]["key_id"], first_key.as_str(), "{what}");
                    }
                }
                step += 1;
            }
        }
    }
}

#[tokio::test]
async fn generate_and_revoke_are_all_or_nothing_in_memory() {
    walk(async || harness(MemoryStore::new(), None)).await;
}

#[tokio::test]
async fn generate_and_revoke_are_all_or_nothing_on_dynamodb() {
    walk(async || {
        let (client, store) = fresh_dynamo_store().await;
        let table = store.table().to_owned();
        harness(store, Some((client, table)))
    })
    .await;
}
