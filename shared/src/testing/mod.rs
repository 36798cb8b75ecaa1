//! Test harness pieces shared by every crate's tests and benches: a DynamoDB/Secrets Manager client
//! pointed at the moto server that `scripts/test` starts, fresh tables, a capture of all log output,
//! and the in-memory edge the criterion benches measure; one request/response client for routers
//! and base URLs ([`client`]), and the two store backends with a macro that runs each scenario on
//! both ([`backend`]).

use crate::brand_data::DocumentStoreExt;
pub mod backend;
pub mod client;

pub use crate::backend_tests;
pub use backend::{Backend, TestApp};
pub use client::{TestClient, TestRequest, TestResponse};

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use crate::bootstrap::aws_config_loader;
use crate::brand_data::memory::MemoryBrandData;
use crate::brand_data::{BrandDataStore, Document, DocumentKind, UniqueClaim};
use crate::clock::SystemClock;
use crate::config::TrustRoots;
use crate::edge::config::EdgeLimits;
use crate::ids::BrandId;
use crate::keys::KeyService;
use crate::store::dynamo::DynamoStore;
use crate::store::schema::{KEYS_TABLE, create_table};

/// What the in-process benches serve from: a current-thread runtime to drive requests on, the
/// in-memory key service (on the insecure development pepper) and brand data store, and limits
/// with the rate limit out of the way, so a bench measures serving rather than refusing.
pub fn in_memory_edge() -> (
    tokio::runtime::Runtime,
    Arc<KeyService>,
    Arc<dyn BrandDataStore>,
    EdgeLimits,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(crate::store::memory::MemoryStore::new()),
        Arc::new(SystemClock),
    ));
    let limits = EdgeLimits {
        rate_limit_per_minute: 1_000_000_000,
        ..EdgeLimits::default()
    };
    (runtime, keys, Arc::new(MemoryBrandData::new()), limits)
}

/// The references a capture names, in `brand_id`'s data: the offer `summer-sale`
/// (`off_00000000000000aa`) and the partner `alice` (`ptr_00000000000000bb`), each claiming its
/// slug.
pub async fn create_capture_references(data: &dyn BrandDataStore, brand_id: &BrandId) {
    for (kind, id, slug) in [
        (DocumentKind::Offer, "off_00000000000000aa", "summer-sale"),
        (DocumentKind::Partner, "ptr_00000000000000bb", "alice"),
    ] {
        let document = Document {
            brand_id: brand_id.clone(),
            kind,
            id: id.into(),
            version: 1,
            body: serde_json::json!({ "id": id, "slug": slug }),
        };
        let claims = [UniqueClaim {
            field: "slug",
            value: slug.into(),
        }];
        data.create_document(&document, &claims)
            .await
            .expect("the capture references are created");
    }
}

/// The brand's recorded conversions as the data table's stream delivers them to the stream
/// function, for a store whose changes nobody streams (a moto table made by
/// [`fresh_dynamo_brand_data`] has no stream; a memory store whose change feed is off): each
/// conversion, and each fraud signal its transaction wrote, read back as the `INSERT` of its
/// creation (`Change::NewDocument` at version 1, from the brand's partition; the body as it is
/// now, whose counted fields a status change leaves alone), in creation order. Their sequence
/// numbers come from their time-ordered ids, so a conversion delivered again is skipped by the
/// rollup rows' marks, and one recorded since is counted (unless it is from the same millisecond
/// as the last one delivered before). Not for a store whose change feed is on: the feed numbers
/// its changes otherwise.
pub async fn recorded_conversion_events(
    data: &dyn BrandDataStore,
    brand_id: &BrandId,
) -> Vec<crate::brand_data::changes::ChangeEvent> {
    use crate::brand_data::changes::{Change, ChangeEvent};
    let mut events = Vec::new();
    for kind in [DocumentKind::Conversion, DocumentKind::FraudSignal] {
        let mut after = None;
        loop {
            let page = data
                .list_documents(brand_id, kind, 100, after.as_deref())
                .await
                .expect("the brand's documents are listed");
            for document in page.items {
                if kind == DocumentKind::FraudSignal && document.body["conversion_id"].is_null() {
                    continue;
                }
                // `<prefix>_<11 hex digits of creation time><5 random hex digits>`.
                let sequence = document
                    .id
                    .split_once('_')
                    .and_then(|(_, hex)| u64::from_str_radix(hex, 16).ok())
                    .expect("a time-ordered id");
                events.push((
                    sequence,
                    ChangeEvent {
                        partition: crate::brand_data::layout::document(
                            brand_id,
                            kind,
                            &document.id,
                        )
                        .partition,
                        sequence: sequence.to_string(),
                        change: Change::NewDocument(Box::new(Document {
                            version: 1,
                            ..document
                        })),
                    },
                ));
            }
            match page.next_position {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    events.sort_by_key(|(sequence, _)| *sequence);
    events.into_iter().map(|(_, event)| event).collect()
}

/// Derives [`recorded_conversion_events`] as the stream function would, in one batch, through
/// [`derive_batch`](crate::program::derived::derive_batch): what a test on such a store runs
/// before it reads a conversion's rollups. Returns how many documents were delivered.
pub async fn derive_recorded_conversions(data: &dyn BrandDataStore, brand_id: &BrandId) -> usize {
    let events = recorded_conversion_events(data, brand_id).await;
    crate::program::derived::derive_batch(
        data,
        &crate::program::scoring::Thresholds::default(),
        &events,
    )
    .await
    .expect("the recorded conversions are derived");
    events.len()
}

/// Set by `scripts/test` to the moto server it started.
pub const MOTO_ENDPOINT_VAR: &str = "TRCKER_TEST_DYNAMODB_ENDPOINT";

/// AWS configuration for moto only: a loopback endpoint and static fake credentials, so a test can
/// never reach a real account.
pub async fn moto_aws_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var(MOTO_ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{MOTO_ENDPOINT_VAR} is not set: these tests need the moto server that `scripts/test` \
             installs and starts. Run `scripts/test`."
        )
    });
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "{MOTO_ENDPOINT_VAR} must be a loopback URL, got {endpoint}"
    );
    aws_config_loader(5_000, TrustRoots::Amazon)
        .region("us-east-1")
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// A keys table of its own (random name) on moto, and a store over it.
pub async fn fresh_dynamo_store() -> (aws_sdk_dynamodb::Client, DynamoStore) {
    let config = moto_aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!(
        "keys-test-{:016x}",
        crate::token::random_u64().expect("randomness")
    );
    create_table(&client, &KEYS_TABLE, &table)
        .await
        .expect("create table on moto");
    (client.clone(), DynamoStore::new(client, table))
}

/// A data table of its own (random name) on moto, and a brand data store over it. The table has
/// no stream: nothing in these tests reads one, and moto copies a table's whole stream on every
/// cancelled transaction, which slows the suites and, under concurrent requests, lost and
/// resurrected writes in the conformance suite (the stream's own tests, in `infra/local`, create
/// the table as `--create-tables` does).
pub async fn fresh_dynamo_brand_data() -> crate::brand_data::dynamo::DynamoBrandData {
    let config = moto_aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!(
        "data-test-{:016x}",
        crate::token::random_u64().expect("randomness")
    );
    let without_stream = crate::store::schema::TableDefinition {
        stream_view_type: None,
        ..crate::store::schema::DATA_TABLE
    };
    create_table(&client, &without_stream, &table)
        .await
        .expect("create table on moto");
    crate::brand_data::dynamo::DynamoBrandData::new(client, table)
}

/// One stored item, as the SDK returns it.
pub type RawItem = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Every item of a table, page after page, for tests that inspect raw storage. Production code
/// never scans.
pub async fn all_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<RawItem> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan test table");
        items.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return items,
        }
    }
}

/// [`all_items`], each rendered as text.
pub async fn all_items_as_text(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    all_items(client, table)
        .await
        .iter()
        .map(|item| format!("{item:?}"))
        .collect()
}

/// Collects everything the tracing subscriber writes, at every level, as text.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Routes all of this process's tracing output (TRACE and up, JSON) here. Process-wide on
    /// purpose: a thread-local subscriber misses events whose callsites another thread cached
    /// as disabled. Give log-capturing tests their own test binary.
    pub fn install_global() -> Self {
        Self::install_global_filtered(None)
    }

    /// Like [`Self::install_global`], through the functions' own filter for `RUST_LOG=trace`:
    /// everything at TRACE but what the deployed filter always holds back (the MCP SDK's
    /// per-request lines, which quote requests verbatim, unless `RUST_LOG` names it).
    pub fn install_global_as_deployed() -> Self {
        Self::install_global_filtered(Some(crate::telemetry::log_filter(Some("trace")).0))
    }

    fn install_global_filtered(filter: Option<tracing_subscriber::filter::Targets>) -> Self {
        use tracing_subscriber::layer::SubscriberExt;
        static GLOBAL: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let capture = Self::default();
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_max_level(tracing::Level::TRACE)
                    .with_writer(capture.clone())
                    .finish()
                    .with(filter);
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in a log-capturing test binary");
                capture
            })
            .clone()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every piece of key material in `text`: `tk_` followed by 20 or more alphanumerics (a key, or
/// enough of one to matter: its last 6 characters are a checksum of the 34 before), found in the
/// text as it is and once percent-decoded (only `%XX`: a query's `&` and `=` separate values, so
/// decoding must not join them). Written apart from `caller_text`, so the tests do not check the
/// redaction with itself.
pub fn key_shaped_strings(text: &str) -> Vec<String> {
    let decoded = percent_decoded(text);
    let mut found = Vec::new();
    let haystacks = std::iter::once(text).chain((decoded != text).then_some(decoded.as_str()));
    for haystack in haystacks {
        let bytes = haystack.as_bytes();
        let mut start = 0;
        while let Some(offset) = haystack[start..].find("tk_") {
            let at = start + offset;
            let run = bytes[at + 3..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if run >= 20 {
                found.push(haystack[at..at + 3 + run].to_owned());
            }
            start = at + 3;
        }
    }
    found
}

/// `text` with each `%XX` replaced by its byte (invalid UTF-8 replaced), nothing else changed.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |offset: usize| {
            bytes
                .get(at + offset)
                .and_then(|&b| char::from(b).to_digit(16))
        };
        match (bytes[at], hex(1), hex(2)) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(0));
                at += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    //! The key-material detector's own cases (the fuzz target `token` relies on it).
    use super::*;

    #[test]
    fn key_material_is_found_decoded_but_never_joined_across_separators() {
        let twenty = "0123456789abcdefghij";
        assert_eq!(key_shaped_strings(&format!("a tk_{twenty} b")).len(), 1);
        assert_eq!(key_shaped_strings(&format!("%74k_{twenty}")).len(), 1);
        assert_eq!(key_shaped_strings(&format!("tk%5F{twenty}")).len(), 1);
        assert!(key_shaped_strings(&format!("tk_{}", &twenty[1..])).is_empty());
        // Found by the fuzz target: `tk_&=x…` is no key, in the text or in any query value.
        assert!(key_shaped_strings(&format!("q=ytk_&=x{twenty}")).is_empty());
        assert!(key_shaped_strings(&format!("tk_+{twenty}")).is_empty());
    }
}
