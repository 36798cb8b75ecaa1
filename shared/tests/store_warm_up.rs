//! The store warm-up every function runs at init (`bootstrap::warm_up_store`): exactly one key
//! lookup that finds nothing, and a store that fails it does not stop the function from starting.

use trcker_shared::bootstrap::warm_up_store;
use trcker_shared::store::StoreError;
use trcker_shared::store::counting::{CountingStore, StoreOperation};
use trcker_shared::store::faulty::FaultyStore;
use trcker_shared::store::memory::MemoryStore;

#[tokio::test]
async fn the_warm_up_costs_exactly_one_key_lookup() {
    let store = CountingStore::new(MemoryStore::new());
    warm_up_store(&store).await;
    assert_eq!(store.calls(StoreOperation::FindKeyByHash), 1);
    assert_eq!(
        store.total_calls(),
        1,
        "the warm-up reads once and writes nothing"
    );
}

#[tokio::test]
async fn a_failing_store_only_costs_the_warm_up_its_one_call() {
    let store = FaultyStore::new(MemoryStore::new());
    store.fail_always(
        StoreOperation::FindKeyByHash,
        StoreError::Unavailable("connection refused".into()),
    );
    // Returns (no panic, no error to propagate): init goes on and the requests report the store.
    warm_up_store(&store).await;
    assert_eq!(store.calls(), 1);
    assert_eq!(store.faults_fired(), 1);
}
