//! DynamoDB [`KeyStore`]: brand and key items partitioned by brand id, one hash-lookup item per
//! key, and TransactWriteItems with conditions for every multi-item change.
//!
//! Item layout (table `keys`, string keys `pk`/`sk`):
//! - brand:       `pk = <brand_id>`, `sk = BRAND`
//! - key:         `pk = <brand_id>`, `sk = KEY#<key_id>`
//! - hash lookup: `pk = KEYHASH#<hmac hex>`, `sk = KEYHASH`
//! - key use:     `pk = KEYUSE#<brand_id>`, `sk = KEY#<key_id>` (`last_used_at` alone: the one
//!   write the verifying functions make to this table, kept off the key records so that IAM can
//!   leave those to the `keys` function)

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::{BrandRecord, KeyLookup, KeyRecord, KeyStore, Page, RevokeOutcome, StoreError};
use crate::clock::UnixMillis;
use crate::hashing::{Fingerprint, KeyHash};
use crate::ids::{BrandId, KeyId};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
const BRAND_SORT_KEY: &str = "BRAND";
const KEY_SORT_PREFIX: &str = "KEY#";
const HASH_PARTITION_PREFIX: &str = "KEYHASH#";
const HASH_SORT_KEY: &str = "KEYHASH";
const USE_PARTITION_PREFIX: &str = "KEYUSE#";
/// Transactions that collide with another transaction on the same items are retried this often
/// before the caller is told to retry.
const CONTENTION_ATTEMPTS: u32 = 4;
/// Attempts per store operation in the SDK's retry policy (the first and up to two retries), all
/// within the operation timeout (`bootstrap::store_retries`).
pub const STORE_MAX_ATTEMPTS: u32 = 3;
/// First retry backoff; the SDK doubles it per retry, with full jitter.
pub const STORE_INITIAL_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key_of(partition: String, sort: String) -> Item {
        HashMap::from([
            (PARTITION_KEY.to_owned(), AttributeValue::S(partition)),
            (SORT_KEY.to_owned(), AttributeValue::S(sort)),
        ])
    }

    fn brand_key(brand_id: &BrandId) -> Item {
        Self::key_of(brand_id.to_string(), BRAND_SORT_KEY.to_owned())
    }

    fn key_item_key(brand_id: &BrandId, key_id: &KeyId) -> Item {
        Self::key_of(brand_id.to_string(), format!("{KEY_SORT_PREFIX}{key_id}"))
    }

    fn use_item_key(brand_id: &BrandId, key_id: &KeyId) -> Item {
        Self::key_of(
            format!("{USE_PARTITION_PREFIX}{brand_id}"),
            format!("{KEY_SORT_PREFIX}{key_id}"),
        )
    }

    fn hash_item_key(key_hash: &KeyHash) -> Item {
        Self::key_of(
            format!("{HASH_PARTITION_PREFIX}{}", key_hash.to_hex()),
            HASH_SORT_KEY.to_owned(),
        )
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item)
    }

    async fn try_insert_key(
        &self,
        record: &KeyRecord,
        max_live_keys: u32,
    ) -> Result<(), StoreError> {
        let claim_slot = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::brand_key(&record.brand_id)))
            .update_expression("SET live_keys = live_keys + :one")
            .condition_expression("attribute_exists(pk) AND live_keys < :max")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":max", number(i64::from(max_live_keys)))
            .build()
            .map_err(build_error)?;
        let mut key_item = Self::key_item_key(&record.brand_id, &record.key_id);
        key_item.insert("key_hash".into(), text(record.key_hash.to_hex()));
        key_item.insert("fingerprint".into(), text(record.fingerprint.as_str()));
        key_item.insert("created_at".into(), number(record.created_at));
        if let Some(label) = &record.label {
            key_item.insert("label".into(), text(label));
        }
        let mut hash_item = Self::hash_item_key(&record.key_hash);
        hash_item.insert("brand_id".into(), text(record.brand_id.as_str()));
        hash_item.insert("key_id".into(), text(record.key_id.as_str()));
        hash_item.insert("fingerprint".into(), text(record.fingerprint.as_str()));
        let put_new = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_error)
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(claim_slot).build())
            .transact_items(TransactWriteItem::builder().put(put_new(key_item)?).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(put_new(hash_item)?)
                    .build(),
            )
            .send()
            .await;
        let Err(error) = result else { return Ok(()) };
        match cancellation_codes(&error) {
            Some(codes) if codes.iter().any(|code| code == "TransactionConflict") => {
                Err(StoreError::Contention)
            }
            Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                match self.get_brand(&record.brand_id).await? {
                    None => Err(StoreError::NotFound),
                    Some(_) => Err(StoreError::LimitReached),
                }
            }
            Some(codes) if codes.iter().any(|code| code == "ConditionalCheckFailed") => {
                Err(StoreError::AlreadyExists)
            }
            Some(codes) if codes.iter().any(|code| is_throttling_reason(code)) => {
                Err(StoreError::Throttled)
            }
            _ => Err(classify(error)),
        }
    }

    async fn try_revoke_key(
        &self,
        record: &KeyRecord,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError> {
        let mark_key = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_item_key(&record.brand_id, &record.key_id)))
            .update_expression("SET revoked_at = :at")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":at", number(revoked_at))
            .build()
            .map_err(build_error)?;
        let mark_lookup = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::hash_item_key(&record.key_hash)))
            .update_expression("SET revoked_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", number(revoked_at))
            .build()
            .map_err(build_error)?;
        // Closes the key's use item too, so no later use is recorded (see `record_key_use`).
        let close_use = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::use_item_key(&record.brand_id, &record.key_id)))
            .update_expression("SET revoked_at = :at")
            .expression_attribute_values(":at", number(revoked_at))
            .build()
            .map_err(build_error)?;
        let free_slot = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::brand_key(&record.brand_id)))
            .update_expression("SET live_keys = live_keys - :one")
            .condition_expression("live_keys > :zero")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":zero", number(0))
            .build()
            .map_err(build_error)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark_key).build())
            .transact_items(TransactWriteItem::builder().update(mark_lookup).build())
            .transact_items(TransactWriteItem::builder().update(free_slot).build())
            .transact_items(TransactWriteItem::builder().update(close_use).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(RevokeOutcome::Revoked(KeyRecord {
                revoked_at: Some(revoked_at),
                ..record.clone()
            })),
            Err(error) => match cancellation_codes(&error) {
                Some(codes) if codes.iter().any(|code| code == "TransactionConflict") => {
                    Err(StoreError::Contention)
                }
                Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                    // Someone else revoked it between our read and our write.
                    match self.get_key(&record.brand_id, &record.key_id).await? {
                        Some(current) if current.is_revoked() => {
                            Ok(RevokeOutcome::AlreadyRevoked(current))
                        }
                        Some(_) => Err(StoreError::Contention),
                        None => Err(StoreError::NotFound),
                    }
                }
                Some(codes) if codes.iter().any(|code| is_throttling_reason(code)) => {
                    Err(StoreError::Throttled)
                }
                Some(codes) => Err(StoreError::Corrupt(format!(
                    "revoke of {} was cancelled: {codes:?}",
                    record.key_id
                ))),
                None => Err(classify(error)),
            },
        }
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn create_brand(&self, brand: &BrandRecord) -> Result<(), StoreError> {
        let mut item = Self::brand_key(&brand.brand_id);
        item.insert("name".into(), text(&brand.name));
        item.insert("created_at".into(), number(brand.created_at));
        item.insert("live_keys".into(), number(i64::from(brand.live_keys)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Err(StoreError::AlreadyExists),
            Err(error) => Err(classify(error)),
        }
    }

    async fn get_brand(&self, brand_id: &BrandId) -> Result<Option<BrandRecord>, StoreError> {
        let Some(item) = self.get_item(Self::brand_key(brand_id)).await? else {
            return Ok(None);
        };
        Ok(Some(BrandRecord {
            brand_id: brand_id.clone(),
            name: read_text(&item, "name")?.to_owned(),
            created_at: read_number(&item, "created_at")?,
            live_keys: u32::try_from(read_number(&item, "live_keys")?)
                .map_err(|_| StoreError::Corrupt("live_keys out of range".into()))?,
        }))
    }

    async fn insert_key(&self, record: &KeyRecord, max_live_keys: u32) -> Result<(), StoreError> {
        retry_on_contention(|| self.try_insert_key(record, max_live_keys)).await
    }

    async fn find_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        let Some(item) = self.get_item(Self::hash_item_key(key_hash)).await? else {
            return Ok(None);
        };
        Ok(Some(KeyLookup {
            brand_id: parse_brand(read_text(&item, "brand_id")?)?,
            key_id: parse_key_id(read_text(&item, "key_id")?)?,
            fingerprint: parse_fingerprint(read_text(&item, "fingerprint")?)?,
            revoked_at: read_optional_number(&item, "revoked_at")?,
        }))
    }

    async fn get_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let (key, key_use) = tokio::join!(
            self.get_item(Self::key_item_key(brand_id, key_id)),
            self.get_item(Self::use_item_key(brand_id, key_id)),
        );
        let Some(item) = key? else {
            return Ok(None);
        };
        let last_used = key_use?
            .map(|item| read_optional_number(&item, "last_used_at"))
            .transpose()?
            .flatten();
        key_record_from_item(&item).map(|record| Some(with_use(record, last_used)))
    }

    async fn list_keys(
        &self,
        brand_id: &BrandId,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<KeyRecord>, StoreError> {
        let start = match after_position {
            Some(position) => {
                let after = KeyId::parse(position)
                    .map_err(|_| StoreError::Corrupt("list position is not a key id".into()))?;
                Some(Self::key_item_key(brand_id, &after))
            }
            None => None,
        };
        // One extra item tells whether another page exists, so the last page carries no cursor.
        let fetch = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", text(brand_id.as_str()))
            .expression_attribute_values(":prefix", text(KEY_SORT_PREFIX))
            .set_exclusive_start_key(start)
            .limit(fetch)
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let mut items = output
            .items()
            .iter()
            .map(key_record_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let has_more = items.len() > limit;
        items.truncate(limit);
        let uses = self.key_uses(brand_id, &items).await?;
        let items: Vec<KeyRecord> = items
            .into_iter()
            .map(|record| {
                let last_used = uses.get(record.key_id.as_str()).copied();
                with_use(record, last_used)
            })
            .collect();
        let next_position = if has_more {
            items.last().map(|last| last.key_id.to_string())
        } else {
            None
        };
        Ok(Page {
            items,
            next_position,
        })
    }

    async fn revoke_key(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        revoked_at: UnixMillis,
    ) -> Result<RevokeOutcome, StoreError> {
        retry_on_contention(|| async {
            let record = self
                .get_key(brand_id, key_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if record.is_revoked() {
                return Ok(RevokeOutcome::AlreadyRevoked(record));
            }
            self.try_revoke_key(&record, revoked_at).await
        })
        .await
    }

    async fn record_key_use(
        &self,
        brand_id: &BrandId,
        key_id: &KeyId,
        used_at: UnixMillis,
    ) -> Result<(), StoreError> {
        // The key-use item, not the key: the verifying functions may not write key records. A
        // use of a missing key creates only a use item, which no key listing shows.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::use_item_key(brand_id, key_id)))
            .update_expression("SET last_used_at = :at")
            // Never after revocation (which closes the use item), never backwards (containers'
            // clocks differ).
            .condition_expression(
                "attribute_not_exists(revoked_at) \
                 AND (attribute_not_exists(last_used_at) OR last_used_at < :at)",
            )
            .expression_attribute_values(":at", number(used_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }
}

pub(crate) async fn retry_on_contention<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(StoreError::Contention) if tries < CONTENTION_ATTEMPTS => {
                // Stagger the retries of colliding callers a little.
                let jitter = crate::token::random_u64().unwrap_or(0) % 20;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(tries) + jitter)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

impl DynamoStore {
    /// The recorded uses of a page of keys (in key-id order, as listed), by key id: one query over
    /// the brand's use items between the page's first and last key.
    async fn key_uses(
        &self,
        brand_id: &BrandId,
        page: &[KeyRecord],
    ) -> Result<HashMap<String, UnixMillis>, StoreError> {
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(HashMap::new());
        };
        let mut uses = HashMap::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                .expression_attribute_values(
                    ":pk",
                    text(format!("{USE_PARTITION_PREFIX}{brand_id}")),
                )
                .expression_attribute_values(
                    ":first",
                    text(format!("{KEY_SORT_PREFIX}{}", first.key_id)),
                )
                .expression_attribute_values(
                    ":last",
                    text(format!("{KEY_SORT_PREFIX}{}", last.key_id)),
                )
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
            for item in output.items() {
                let sort = read_text(item, SORT_KEY)?;
                if let (Some(key_id), Some(at)) = (
                    sort.strip_prefix(KEY_SORT_PREFIX),
                    read_optional_number(item, "last_used_at")?,
                ) {
                    uses.insert(key_id.to_owned(), at);
                }
            }
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(uses),
            }
        }
    }
}

/// A key record with its recorded use: the later of the key item's own `last_used_at` (written
/// there before use items existed) and the use item's. A use timed at or after the revocation
/// (a container whose clock runs ahead, racing the revoke) is left out: a revoked key shows the
/// last use it had before it was revoked.
fn with_use(mut record: KeyRecord, recorded_use: Option<UnixMillis>) -> KeyRecord {
    let before_revocation =
        recorded_use.filter(|&at| record.revoked_at.is_none_or(|revoked_at| at < revoked_at));
    record.last_used_at = record.last_used_at.max(before_revocation);
    record
}

fn key_record_from_item(item: &Item) -> Result<KeyRecord, StoreError> {
    let sort = read_text(item, SORT_KEY)?;
    let key_id = sort
        .strip_prefix(KEY_SORT_PREFIX)
        .ok_or_else(|| StoreError::Corrupt(format!("unexpected sort key {sort}")))?;
    Ok(KeyRecord {
        brand_id: parse_brand(read_text(item, PARTITION_KEY)?)?,
        key_id: parse_key_id(key_id)?,
        key_hash: KeyHash::from_hex(read_text(item, "key_hash")?)
            .ok_or_else(|| StoreError::Corrupt("key_hash is not 32 hex bytes".into()))?,
        fingerprint: parse_fingerprint(read_text(item, "fingerprint")?)?,
        label: match item.get("label") {
            Some(AttributeValue::S(label)) => Some(label.clone()),
            _ => None,
        },
        created_at: read_number(item, "created_at")?,
        last_used_at: read_optional_number(item, "last_used_at")?,
        revoked_at: read_optional_number(item, "revoked_at")?,
    })
}

pub(crate) fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn read_text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(format!(
            "missing string attribute {name}"
        ))),
    }
}

pub(crate) fn read_optional_number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a number"
        ))),
    }
}

pub(crate) fn read_number(item: &Item, name: &str) -> Result<i64, StoreError> {
    read_optional_number(item, name)?
        .ok_or_else(|| StoreError::Corrupt(format!("missing number attribute {name}")))
}

pub(crate) fn parse_brand(text: &str) -> Result<BrandId, StoreError> {
    BrandId::parse(text).map_err(|_| StoreError::Corrupt(format!("bad stored brand id {text:?}")))
}

fn parse_key_id(text: &str) -> Result<KeyId, StoreError> {
    KeyId::parse(text).map_err(|_| StoreError::Corrupt(format!("bad stored key id {text:?}")))
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, StoreError> {
    Fingerprint::from_stored(text)
        .ok_or_else(|| StoreError::Corrupt(format!("bad stored fingerprint {text:?}")))
}

pub(crate) fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Corrupt(format!("request could not be built: {error}"))
}

pub(crate) fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

/// The per-item reasons of a cancelled transaction, in request order.
pub(crate) fn cancellation_codes<R>(
    error: &SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => Some(
            cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().unwrap_or("None").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

pub(crate) fn is_throttling_reason(code: &str) -> bool {
    matches!(code, "ThrottlingError" | "ProvisionedThroughputExceeded")
}

/// Maps any SDK failure to what the caller can do about it: throttling, timeouts, connection
/// failures and 5xx are transient (503 + Retry-After upstream); any other refusal (access denied,
/// missing table, validation) is a deployment or code problem that retrying will not fix.
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const THROTTLING: [&str; 4] = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
    ];
    const SERVER_SIDE: [&str; 2] = ["InternalServerError", "ServiceUnavailable"];
    if error.code().is_some_and(|code| THROTTLING.contains(&code)) {
        return StoreError::Throttled;
    }
    if error.code() == Some("TransactionConflictException") {
        return StoreError::Contention;
    }
    let description = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(description)
        }
        SdkError::ServiceError(service)
            if service.raw().status().is_server_error()
                || error.code().is_some_and(|code| SERVER_SIDE.contains(&code)) =>
        {
            StoreError::Unavailable(description)
        }
        _ => StoreError::Rejected(description),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn contention_is_retried_then_reported() {
        let attempts = AtomicU32::new(0);
        let succeeds_on_third = retry_on_contention(|| async {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt < 3 {
                Err(StoreError::Contention)
            } else {
                Ok(attempt)
            }
        })
        .await;
        assert_eq!(succeeds_on_third, Ok(3));

        let attempts = AtomicU32::new(0);
        let never = retry_on_contention(|| async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(StoreError::Contention)
        })
        .await;
        assert_eq!(never, Err(StoreError::Contention));
        assert_eq!(attempts.load(Ordering::SeqCst), CONTENTION_ATTEMPTS);

        let attempts = AtomicU32::new(0);
        let other = retry_on_contention(|| async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(StoreError::Throttled)
        })
        .await;
        assert_eq!(other, Err(StoreError::Throttled));
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            1,
            "only contention is retried here"
        );
    }

    #[test]
    fn brand_items_lead_with_the_brand_id_and_hash_items_do_not() {
        let brand = BrandId::parse("acme").unwrap();
        let key_id = KeyId::parse("key_0000000000010000beef").unwrap();
        let key = DynamoStore::key_item_key(&brand, &key_id);
        assert_eq!(key[PARTITION_KEY], text("acme"));
        assert_eq!(key[SORT_KEY], text("KEY#key_0000000000010000beef"));
        assert_eq!(DynamoStore::brand_key(&brand)[PARTITION_KEY], text("acme"));
        let hash =
            crate::hashing::KeyHasher::new(&crate::hashing::Pepper::insecure_dev()).hash("tk_x");
        let lookup = DynamoStore::hash_item_key(&hash);
        assert_eq!(
            lookup[PARTITION_KEY],
            text(format!("KEYHASH#{}", hash.to_hex()))
        );
    }
}
