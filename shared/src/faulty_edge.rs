//! The harness the functions' fault tests share: a key service and a brand data store that inject
//! faults, a brand with a key, and a request through a router with the API Gateway context, its
//! answer read as status, headers and a JSON body.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use crate::brand_data::BrandDataStore;
use crate::brand_data::faulty::FaultyBrandData;
use crate::brand_data::memory::MemoryBrandData;
use crate::clock::SystemClock;
use crate::edge::context::api_gateway_context;
use crate::ids::BrandId;
use crate::keys::KeyService;
use crate::store::faulty::FaultyStore;
use crate::store::memory::MemoryStore;

/// Stores that inject faults, and the key service over them.
pub struct FaultyEdge<D> {
    pub keys: Arc<KeyService>,
    pub key_store: Arc<FaultyStore<MemoryStore>>,
    pub data: Arc<FaultyBrandData<D>>,
}

impl FaultyEdge<MemoryBrandData> {
    pub fn memory() -> Self {
        Self::over(MemoryBrandData::new())
    }
}

impl<D: BrandDataStore + 'static> FaultyEdge<D> {
    /// Fault injection over `data` and an in-memory key store.
    pub fn over(data: D) -> Self {
        let key_store = Arc::new(FaultyStore::new(MemoryStore::new()));
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            key_store.clone(),
            Arc::new(SystemClock),
        ));
        Self {
            keys,
            key_store,
            data: Arc::new(FaultyBrandData::new(data)),
        }
    }

    /// Registers brand `id` and returns a new key of it.
    pub async fn brand_key(&self, id: &str) -> String {
        let brand_id = BrandId::parse(id).unwrap();
        self.keys.create_brand(&brand_id, id).await.unwrap();
        let generated = self.keys.generate(&brand_id, None).await.unwrap();
        generated.key.expose_secret().to_owned()
    }
}

/// An answer, its body parsed as JSON.
pub struct JsonResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl JsonResponse {
    /// The transient-store answer: 503, `Retry-After: 1`, a JSON `store_unavailable` error that
    /// says to retry.
    pub fn assert_unavailable(&self, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            self.body
        );
        assert_eq!(self.headers["retry-after"], "1", "{what}");
        assert!(
            self.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        assert_eq!(self.body["error"]["code"], "store_unavailable", "{what}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("retry")),
            "{what}: {}",
            self.body
        );
    }
}

/// Sends `request` through `router` as API Gateway would deliver it (source IP, user agent, a
/// fresh request id) and reads the JSON answer; a body that is not JSON fails the test.
pub async fn send(
    router: &Router,
    mut request: Request<Body>,
    source_ip: &str,
    user_agent: &str,
) -> JsonResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(api_gateway_context(
        &method,
        &path,
        source_ip,
        Some(user_agent),
        &format!("req-{:x}", crate::token::random_u64().unwrap()),
        0,
    ));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&bytes)));
    JsonResponse {
        status,
        headers,
        body,
    }
}
