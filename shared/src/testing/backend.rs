//! The two store backends a function's tests run on (in memory, and DynamoDB on the moto server
//! `scripts/test` starts), a router served over one of them with a [`TestClient`] to it, and
//! [`backend_tests!`](crate::backend_tests), which runs each scenario on both as its own tests.

use std::sync::Arc;

use axum::Router;

use super::client::TestClient;
use super::{fresh_dynamo_brand_data, fresh_dynamo_store};
use crate::brand_data::BrandDataStore;
use crate::brand_data::memory::MemoryBrandData;
use crate::clock::SystemClock;
use crate::ids::BrandId;
use crate::keys::KeyService;
use crate::store::KeyStore;
use crate::store::memory::MemoryStore;

/// A key service (on the insecure development pepper and the system clock) and a brand data
/// store, both new.
#[derive(Clone)]
pub struct Backend {
    pub keys: Arc<KeyService>,
    pub data: Arc<dyn BrandDataStore>,
}

impl Backend {
    /// Both stores in memory.
    pub fn in_memory() -> Self {
        Self::over(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBrandData::new()),
        )
    }

    /// Both stores on moto, each on a table of its own (needs
    /// [`MOTO_ENDPOINT_VAR`](super::MOTO_ENDPOINT_VAR)).
    pub async fn on_dynamodb() -> Self {
        let (_, keys) = fresh_dynamo_store().await;
        Self::over(Arc::new(keys), Arc::new(fresh_dynamo_brand_data().await))
    }

    /// Over these stores (wrapped ones: faulty, counting).
    pub fn over(key_store: Arc<dyn KeyStore>, data: Arc<dyn BrandDataStore>) -> Self {
        Self {
            keys: Arc::new(KeyService::with_insecure_dev_pepper(
                key_store,
                Arc::new(SystemClock),
            )),
            data,
        }
    }

    /// The router `router` builds over these stores, and an in-process client to it.
    pub fn serve(
        self,
        router: impl FnOnce(Arc<KeyService>, Arc<dyn BrandDataStore>) -> Router,
    ) -> TestApp {
        let client = TestClient::router(router(self.keys.clone(), self.data.clone()));
        TestApp {
            keys: self.keys,
            data: self.data,
            client,
        }
    }
}

/// A function's router over a [`Backend`]: its stores, for set-up and checks behind the API's
/// back, and a client that sends requests to it (what the app derefs to).
#[derive(Clone)]
pub struct TestApp {
    pub keys: Arc<KeyService>,
    pub data: Arc<dyn BrandDataStore>,
    pub client: TestClient,
}

impl TestApp {
    /// The same app, its client changed by `change` (another user agent, JSON answers only).
    pub fn with_client(mut self, change: impl FnOnce(TestClient) -> TestClient) -> Self {
        self.client = change(self.client);
        self
    }

    /// Registers brand `id` (named `id`) and returns a new key of it.
    pub async fn brand(&self, id: &str) -> String {
        let brand_id = BrandId::parse(id).expect("a valid brand id");
        self.keys
            .create_brand(&brand_id, id)
            .await
            .expect("the brand is created");
        self.keys
            .generate(&brand_id, None)
            .await
            .expect("a key is generated")
            .key
            .expose_secret()
            .to_owned()
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.client
    }
}

/// Runs each scenario on both backends, as tests of its own named after it: for every
/// `scenario` (an `async fn scenario(fixture: &F)` in the invoking module), a module `scenario`
/// with the tests `in_memory` and `on_dynamodb`, so `cargo test` names the one scenario and the
/// one backend that failed (`partner_lifecycle::on_dynamodb`). The two expressions build the
/// fixture, in each test's async body (they may `.await`), with the invoking module's names in
/// scope. The invoking crate depends on `tokio` (with `macros` and a runtime).
///
/// ```text
/// trcker_shared::backend_tests! {
///     in_memory: api(Backend::in_memory()),
///     on_dynamodb: api(Backend::on_dynamodb().await);
///     whoami_and_audit,
///     partner_lifecycle,
/// }
/// ```
#[macro_export]
macro_rules! backend_tests {
    (
        in_memory: $in_memory:expr,
        on_dynamodb: $on_dynamodb:expr;
        $($scenario:ident),+ $(,)?
    ) => {
        $(
            mod $scenario {
                #[allow(unused_imports)]
                use super::*;

                #[::tokio::test]
                async fn in_memory() {
                    let fixture = $in_memory;
                    super::$scenario(&fixture).await;
                }

                #[::tokio::test]
                async fn on_dynamodb() {
                    let fixture = $on_dynamodb;
                    super::$scenario(&fixture).await;
                }
            }
        )+
    };
}
