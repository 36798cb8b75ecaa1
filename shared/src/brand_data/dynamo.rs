//! DynamoDB [`BrandDataStore`] on the `data` table (string keys `pk`/`sk`, built by
//! [`super::layout`]; TTL attribute `expires_at`):
//! - document: `pk = <brand_id>`, `sk = <KIND>#<id>`, `body` (JSON text), `version`
//! - unique claim: `pk = <brand_id>`, `sk = <KIND>CLAIM#<field>#<value>`, `id`
//! - activity: `pk = <brand_id>#ACTIVITY#<surface>#<shard>` (shard from the request id, 16 for
//!   capture, 4 for the API and MCP), `sk = <ms, 13 digits>#<request id>`
//! - counter: `pk = <brand_id>#COUNTER#<name>`, `sk = <window start ms>`, `count`
//! - click: `pk = <brand_id>#CLICK#<shard 00-31>`, `sk = ID#<click id>`, `record`; listed by time
//!   through the `by_time` index (`gsi1pk` = the same partition, `gsi1sk = <ms, 13 digits>#<id>`)
//! - rollup row: `pk = <brand_id>#ROLLUP#<T|O|P>#<shard 00-15>`, `sk = <YYYY-MM-DD>#<group>` (group
//!   empty for the total), one number attribute `n:<counter>` per counter, `expires_at`; added to
//!   with `ADD` in the transaction that writes the counted event
//! - source: `pk = <brand_id>#SOURCE#<client ip>`, `sk = HITS`, `window_start`, `clicks` (in that
//!   window), `last_at`, `expires_at`; for counts from the stream, `w:<origin partition>` per
//!   origin

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::clicks::{ClickFilter, ClickRecord, click_shard, click_sort_key};
use super::layout;
use super::rollups::{
    RollupDimension, RollupIncrement, RollupRow, StreamSpan, check_rollup_range,
    check_transaction_size, merge_increments, normalized_spans, rollup_brand, rollup_expires_at,
};
use super::{
    ActivityFilter, ActivityRecord, ActivityStore, ClickStore, CountedThrough, CounterStore,
    Document, DocumentKind, DocumentStore, RollupStore, SourceHits, SourceTally, Surface,
    UniqueClaim, list_activity_across_surfaces, list_clicks_across_shards,
    read_rollups_across_shards,
};
use crate::clock::UnixMillis;
use crate::ids::BrandId;
use crate::store::dynamo::{
    Item, build_error, cancellation_codes, classify, is_condition_failure, is_throttling_reason,
    number, read_number, read_optional_number, read_text, retry_on_contention, text,
};
use crate::store::schema::{CLICKS_BY_TIME, TTL_ATTRIBUTE};
use crate::store::{Page, StoreError};

/// Prefix of a rollup row's counter attributes: `n:clicks`, `n:revenue_micros:USD`.
pub const ROLLUP_COUNTER_PREFIX: &str = "n:";
/// Prefix of the attribute of a rollup row or source item that holds, per origin partition, the
/// last sequence number it counted (zero-padded to 40 digits): `w:<origin partition>`.
pub const STREAM_MARK_PREFIX: &str = "w:";

#[derive(Debug, Clone)]
pub struct DynamoBrandData {
    client: Client,
    table: String,
}

impl DynamoBrandData {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(partition: String, sort: String) -> Item {
        Item::from([
            ("pk".to_owned(), AttributeValue::S(partition)),
            ("sk".to_owned(), AttributeValue::S(sort)),
        ])
    }

    /// Writes `item` unless an item with its key exists: `AlreadyExists` then, and nothing changes.
    async fn put_if_absent(&self, item: Item) -> Result<(), StoreError> {
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

    /// The key attributes of an item where [`layout`] puts it.
    fn item_key(key: layout::ItemKey) -> Item {
        Self::key(key.partition, key.sort)
    }

    fn document_key(brand_id: &BrandId, kind: DocumentKind, id: &str) -> Item {
        Self::item_key(layout::document(brand_id, kind, id))
    }

    fn claim_key(brand_id: &BrandId, kind: DocumentKind, claim: &UniqueClaim) -> Item {
        Self::item_key(layout::claim(brand_id, kind, claim))
    }

    /// `ADD` of every counter of one (merged) increment to its row, and the row's TTL.
    fn rollup_update(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = self.rollup_change(brand_id, increment, &[])?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The update of one rollup row: `ADD` of every counter of one (merged) increment and the
    /// row's TTL; with stream spans (origin, first and last sequence, normalized), also the row's
    /// mark for each origin, on the condition that the row has counted none of the spans' first
    /// events yet.
    fn rollup_change(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
        spans: &[(&str, &str, &str)],
    ) -> Result<Update, StoreError> {
        let expires_at = rollup_expires_at(&increment.day).ok_or_else(|| {
            StoreError::Rejected(format!("rollup day {:?} is not YYYY-MM-DD", increment.day))
        })?;
        let mut additions = Vec::with_capacity(increment.counters.len());
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(layout::rollup_row(
                brand_id,
                increment.dimension,
                increment.shard,
                &increment.day,
                &increment.group,
            ))))
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":expires", number(expires_at));
        // Counter names may hold ':' and other characters an expression cannot name directly.
        for (index, (name, amount)) in increment.counters.iter().enumerate() {
            additions.push(format!("#c{index} :c{index}"));
            update = update
                .expression_attribute_names(
                    format!("#c{index}"),
                    format!("{ROLLUP_COUNTER_PREFIX}{name}"),
                )
                .expression_attribute_values(format!(":c{index}"), number(*amount));
        }
        let mut sets = "#ttl = :expires".to_owned();
        let mut conditions = Vec::with_capacity(spans.len());
        for (index, (origin, first, last)) in spans.iter().enumerate() {
            sets.push_str(&format!(", #m{index} = :l{index}"));
            conditions.push(format!(
                "(attribute_not_exists(#m{index}) OR #m{index} < :f{index})"
            ));
            update = update
                .expression_attribute_names(
                    format!("#m{index}"),
                    format!("{STREAM_MARK_PREFIX}{origin}"),
                )
                .expression_attribute_values(format!(":f{index}"), text(*first))
                .expression_attribute_values(format!(":l{index}"), text(*last));
        }
        if !conditions.is_empty() {
            update = update.condition_expression(conditions.join(" AND "));
        }
        update
            .update_expression(format!("ADD {} SET {sets}", additions.join(", ")))
            .build()
            .map_err(build_error)
    }

    /// Runs `items` (the event's writes, its own item first) and the rollup updates in one
    /// transaction, mapping a cancellation as [`Self::transact`] does. Hot rollup rows make
    /// transaction conflicts likelier than for the event alone; a cancelled transaction wrote
    /// nothing, so it is simply tried again (a few times, with jitter).
    async fn transact_counted(
        &self,
        brand_id: &BrandId,
        mut items: Vec<TransactWriteItem>,
        increments: &[RollupIncrement],
        event_failure: StoreError,
    ) -> Result<(), StoreError> {
        for increment in increments {
            items.push(self.rollup_update(brand_id, increment)?);
        }
        check_transaction_size(items.len())?;
        retry_on_contention(|| {
            self.transact(items.clone(), event_failure.clone(), Idempotency::None)
        })
        .await
    }

    /// A version-checked write of one document (its item first, then its claims' items), with the
    /// request's record last if given: a failed version condition is told apart as the document
    /// gone (`NotFound`) or changed (`Contention`).
    async fn transact_versioned(
        &self,
        mut items: Vec<TransactWriteItem>,
        activity: Option<&ActivityRecord>,
        (brand_id, kind, id): (&BrandId, DocumentKind, &str),
    ) -> Result<(), StoreError> {
        if let Some(record) = activity {
            items.push(self.put_activity(record)?);
        }
        check_transaction_size(items.len())?;
        match self
            .transact(items, StoreError::Contention, Idempotency::of(activity))
            .await
        {
            Err(StoreError::Contention) => Err(self.missing_or_contended(brand_id, kind, id).await),
            other => other,
        }
    }

    /// An activity record's item, as [`ActivityStore::append_activity`] writes it and as a
    /// document write that carries the record puts it in its transaction.
    fn activity_item(record: &ActivityRecord) -> Result<Item, StoreError> {
        let body = encode_record(record, "activity record")?;
        let mut item = Self::item_key(layout::activity(record));
        item.insert("record".into(), text(body));
        item.insert(TTL_ATTRIBUTE.into(), number(record.expires_at));
        Ok(item)
    }

    /// A document write's audit record in its transaction: put only into a free slot, as
    /// [`ActivityStore::append_activity`] does. It goes after the document's own item, so its
    /// failed condition reads as `AlreadyExists` in [`Self::transact`].
    fn put_activity(&self, record: &ActivityRecord) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::activity_item(record)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn document_item(document: &Document) -> Item {
        let mut item = Self::document_key(&document.brand_id, document.kind, &document.id);
        item.insert("body".into(), text(document.body.to_string()));
        item.insert(
            "version".into(),
            number(i64::try_from(document.version).unwrap_or(i64::MAX)),
        );
        item
    }

    fn put_claim(
        &self,
        document: &Document,
        claim: &UniqueClaim,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = Self::claim_key(&document.brand_id, document.kind, claim);
        item.insert("id".into(), text(&document.id));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_claim(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::claim_key(brand_id, kind, claim)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a transaction whose first item is the document itself and maps a cancellation:
    /// the document's condition failing is `document_failure`, a claim's or the audit record's
    /// (its slot taken) is `AlreadyExists`.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        document_failure: StoreError,
        idempotency: Idempotency,
    ) -> Result<(), StoreError> {
        let token = match idempotency {
            Idempotency::PerRequest => Some(idempotency_token(&items)),
            Idempotency::None => None,
        };
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_client_request_token(token)
            .send()
            .await;
        let Err(error) = result else { return Ok(()) };
        match cancellation_codes(&error) {
            Some(codes) if codes.iter().any(|code| code == "TransactionConflict") => {
                Err(StoreError::Contention)
            }
            Some(codes) if codes.iter().any(|code| is_throttling_reason(code)) => {
                Err(StoreError::Throttled)
            }
            Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                Err(document_failure)
            }
            Some(codes) if codes.iter().any(|code| code == "ConditionalCheckFailed") => {
                Err(StoreError::AlreadyExists)
            }
            Some(codes) => Err(StoreError::Corrupt(format!(
                "transaction cancelled: {codes:?}"
            ))),
            None => Err(classify(error)),
        }
    }

    /// After a failed version condition: gone, or changed by someone else?
    async fn missing_or_contended(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> StoreError {
        match self.get_document(brand_id, kind, id).await {
            Ok(None) => StoreError::NotFound,
            Ok(Some(_)) => StoreError::Contention,
            Err(error) => error,
        }
    }
}

/// Runs `query` until `limit` items are read or the range is exhausted: DynamoDB ends a page at
/// 1 MB whatever its `Limit`, and a short page must not pass for the end of the range.
async fn query_up_to(
    query: QueryFluentBuilder,
    start: Option<Item>,
    limit: u32,
) -> Result<Vec<Item>, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut items: Vec<Item> = Vec::new();
    let mut start = start;
    loop {
        let remaining = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
        let output = query
            .clone()
            .set_exclusive_start_key(start.take())
            .limit(remaining)
            .send()
            .await
            .map_err(classify)?;
        let last_key = output.last_evaluated_key().cloned();
        items.extend(output.items.unwrap_or_default());
        match last_key {
            Some(key) if items.len() < limit => start = Some(key),
            _ => return Ok(items),
        }
    }
}

fn decode_record<T: serde::de::DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(read_text(item, "record")?)
        .map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

fn document_from_item(
    brand_id: &BrandId,
    kind: DocumentKind,
    item: &Item,
) -> Result<Document, StoreError> {
    let sort = read_text(item, "sk")?;
    let id = sort
        .strip_prefix(kind.as_str())
        .and_then(|rest| rest.strip_prefix('#'))
        .ok_or_else(|| StoreError::Corrupt(format!("unexpected sort key {sort}")))?;
    let body = serde_json::from_str(read_text(item, "body")?)
        .map_err(|error| StoreError::Corrupt(format!("document body: {error}")))?;
    Ok(Document {
        brand_id: brand_id.clone(),
        kind,
        id: id.to_owned(),
        version: u64::try_from(read_number(item, "version")?)
            .map_err(|_| StoreError::Corrupt("negative version".into()))?,
        body,
    })
}

/// Whether a transaction is sent with a client request token, so that the SDK's retry of one
/// whose answer was lost after it committed is answered as the success it was, not cancelled on
/// the conditions the first attempt met (a 409 for a write that stands).
#[derive(Clone, Copy)]
enum Idempotency {
    /// The transaction carries its request's activity record, whose time and request id no other
    /// request shares: its items are the request's alone, and a token made from them is too.
    PerRequest,
    /// Two requests may send the same items (no record in them): no token, or the second would
    /// be answered as a replay of the first.
    None,
}

impl Idempotency {
    fn of(activity: Option<&ActivityRecord>) -> Self {
        match activity {
            Some(_) => Self::PerRequest,
            None => Self::None,
        }
    }
}

/// A client request token (at most 36 characters) made from the transaction's items, so every
/// retry of one call carries the same token and a call with other items (a conversion's next id)
/// another.
fn idempotency_token(items: &[TransactWriteItem]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{items:?}").as_bytes());
    let mut token = String::with_capacity(36);
    for byte in &digest[..18] {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

#[async_trait]
impl DocumentStore for DynamoBrandData {
    async fn create_documents_counted(
        &self,
        documents: &[(&Document, &[UniqueClaim])],
        increments: &[RollupIncrement],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        let increments = merge_increments(increments)?;
        let brand_id = rollup_brand(documents, &increments)?;
        if documents.is_empty() && activity.is_none() {
            return Ok(());
        }
        let mut items = Vec::new();
        for (document, claims) in documents {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(Self::document_item(document)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
            for claim in *claims {
                items.push(self.put_claim(document, claim)?);
            }
        }
        if let Some(record) = activity {
            items.push(self.put_activity(record)?);
        }
        match brand_id {
            // Documents, claims and the record come first, so the cancellation reasons keep their
            // indices.
            Some(brand_id) => {
                self.transact_counted(brand_id, items, &increments, StoreError::AlreadyExists)
                    .await
            }
            None => {
                check_transaction_size(items.len())?;
                let idempotency = Idempotency::of(activity);
                self.transact(items, StoreError::AlreadyExists, idempotency)
                    .await
            }
        }
    }

    async fn claim_holder(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        claim: &UniqueClaim,
    ) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::claim_key(brand_id, kind, claim)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output
            .item
            .map(|item| read_text(&item, "id").map(str::to_owned))
            .transpose()
    }

    async fn query_documents(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        if lower > upper {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lower AND :upper")
            .expression_attribute_values(":pk", text(brand_id.as_str()))
            .expression_attribute_values(":lower", text(format!("{}#{lower}", kind.as_str())))
            .expression_attribute_values(":upper", text(format!("{}#{upper}", kind.as_str())))
            .scan_index_forward(false);
        query_up_to(query, None, limit)
            .await?
            .iter()
            .map(|item| document_from_item(brand_id, kind, item))
            .collect()
    }

    async fn get_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::document_key(brand_id, kind, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output
            .item
            .map(|item| document_from_item(brand_id, kind, &item))
            .transpose()
    }

    async fn update_document(
        &self,
        document: &Document,
        released_claims: &[UniqueClaim],
        new_claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        let previous = i64::try_from(document.version.saturating_sub(1)).unwrap_or(i64::MAX);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::document_item(document)))
            .condition_expression("version = :previous")
            .expression_attribute_values(":previous", number(previous))
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for claim in released_claims {
            items.push(self.delete_claim(&document.brand_id, document.kind, claim)?);
        }
        for claim in new_claims {
            items.push(self.put_claim(document, claim)?);
        }
        self.transact_versioned(
            items,
            activity,
            (&document.brand_id, document.kind, &document.id),
        )
        .await
    }

    async fn delete_document(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id: &str,
        version: u64,
        claims: &[UniqueClaim],
        activity: Option<&ActivityRecord>,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::document_key(brand_id, kind, id)))
            .condition_expression("version = :version")
            .expression_attribute_values(
                ":version",
                number(i64::try_from(version).unwrap_or(i64::MAX)),
            )
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for claim in claims {
            items.push(self.delete_claim(brand_id, kind, claim)?);
        }
        self.transact_versioned(items, activity, (brand_id, kind, id))
            .await
    }

    async fn list_documents_by_prefix(
        &self,
        brand_id: &BrandId,
        kind: DocumentKind,
        id_prefix: &str,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        let start = after_position.map(|id| Self::document_key(brand_id, kind, id));
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", text(brand_id.as_str()))
            .expression_attribute_values(":prefix", text(format!("{}#{id_prefix}", kind.as_str())));
        let mut items = query_up_to(query, start, limit.saturating_add(1))
            .await?
            .iter()
            .map(|item| document_from_item(brand_id, kind, item))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let has_more = items.len() > limit;
        items.truncate(limit);
        let next_position = if has_more {
            items.last().map(|last| last.id.clone())
        } else {
            None
        };
        Ok(Page {
            items,
            next_position,
        })
    }
}

#[async_trait]
impl ActivityStore for DynamoBrandData {
    async fn append_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        // Never overwrite another request's record (request ids are unique; make sure).
        self.put_if_absent(Self::activity_item(record)?).await
    }

    async fn replace_activity(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::activity_item(record)?))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn record_activity_summary(&self, record: &ActivityRecord) -> Result<(), StoreError> {
        let attempts = record.attempts.ok_or_else(|| {
            StoreError::Rejected("an activity summary needs its attempt count".into())
        })?;
        let attempts = i64::try_from(attempts).unwrap_or(i64::MAX);
        let body = encode_record(record, "activity summary")?;
        let mut item = Self::item_key(layout::activity(record));
        item.insert("record".into(), text(body));
        item.insert("attempts".into(), number(attempts));
        item.insert(TTL_ATTRIBUTE.into(), number(record.expires_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR attempts < :attempts")
            .expression_attribute_values(":attempts", number(attempts))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another container already stored as many attempts or more: that one stands.
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }

    async fn query_activity(
        &self,
        brand_id: &BrandId,
        surface: Surface,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        if lower > upper {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lower AND :upper")
            .expression_attribute_values(
                ":pk",
                text(layout::activity_partition(brand_id, surface, shard)),
            )
            .expression_attribute_values(":lower", text(lower))
            .expression_attribute_values(":upper", text(upper))
            .scan_index_forward(false);
        query_up_to(query, None, limit)
            .await?
            .iter()
            .map(|item| decode_record(item, "activity record"))
            .collect()
    }

    async fn list_activity(
        &self,
        brand_id: &BrandId,
        filter: ActivityFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<ActivityRecord>, StoreError> {
        list_activity_across_surfaces(self, brand_id, filter, limit, after_position).await
    }
}

#[async_trait]
impl ClickStore for DynamoBrandData {
    async fn insert_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        let increments = merge_increments(increments)?;
        let body = encode_record(click, "click record")?;
        let key = layout::click(
            &click.brand_id,
            click_shard(&click.click_id),
            &click.click_id,
        );
        let partition = key.partition.clone();
        let mut item = Self::item_key(key);
        item.insert("record".into(), text(body));
        // The time view is the index entry of this same item: one conditional write per click.
        item.insert(CLICKS_BY_TIME.partition_key.into(), text(partition));
        item.insert(CLICKS_BY_TIME.sort_key.into(), text(click_sort_key(click)));
        if increments.is_empty() {
            return self.put_if_absent(item).await;
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let items = vec![TransactWriteItem::builder().put(put).build()];
        self.transact_counted(
            &click.brand_id,
            items,
            &increments,
            StoreError::AlreadyExists,
        )
        .await
    }

    async fn get_click(
        &self,
        brand_id: &BrandId,
        click_id: &str,
    ) -> Result<Option<ClickRecord>, StoreError> {
        let key = Self::item_key(layout::click(brand_id, click_shard(click_id), click_id));
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            // A conversion may follow its click by milliseconds: read what was just written.
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output
            .item
            .map(|item| decode_record(&item, "click record"))
            .transpose()
    }

    async fn query_clicks(
        &self,
        brand_id: &BrandId,
        shard: u32,
        lower: &str,
        upper: &str,
        limit: u32,
    ) -> Result<Vec<ClickRecord>, StoreError> {
        if lower > upper {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CLICKS_BY_TIME.name)
            .key_condition_expression("#ipk = :pk AND #isk BETWEEN :lower AND :upper")
            .expression_attribute_names("#ipk", CLICKS_BY_TIME.partition_key)
            .expression_attribute_names("#isk", CLICKS_BY_TIME.sort_key)
            .expression_attribute_values(":pk", text(layout::click_partition(brand_id, shard)))
            .expression_attribute_values(":lower", text(lower))
            .expression_attribute_values(":upper", text(upper))
            .scan_index_forward(false);
        query_up_to(query, None, limit)
            .await?
            .iter()
            .map(|item| decode_record(item, "click record"))
            .collect()
    }

    async fn list_clicks(
        &self,
        brand_id: &BrandId,
        filter: &ClickFilter,
        limit: u32,
        after_position: Option<&str>,
    ) -> Result<Page<Arc<ClickRecord>>, StoreError> {
        list_clicks_across_shards(self, brand_id, filter, limit, after_position).await
    }

    async fn update_click_counted(
        &self,
        click: &ClickRecord,
        increments: &[RollupIncrement],
    ) -> Result<(), StoreError> {
        let increments = merge_increments(increments)?;
        let body = encode_record(click, "click record")?;
        let key = || {
            Self::item_key(layout::click(
                &click.brand_id,
                click_shard(&click.click_id),
                &click.click_id,
            ))
        };
        if !increments.is_empty() {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key()))
                .update_expression("SET #record = :record, #time = :time")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#record", "record")
                .expression_attribute_names("#time", CLICKS_BY_TIME.sort_key)
                .expression_attribute_values(":record", text(body))
                .expression_attribute_values(":time", text(click_sort_key(click)))
                .build()
                .map_err(build_error)?;
            let items = vec![TransactWriteItem::builder().update(update).build()];
            return self
                .transact_counted(&click.brand_id, items, &increments, StoreError::NotFound)
                .await;
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key()))
            .update_expression("SET #record = :record, #time = :time")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#time", CLICKS_BY_TIME.sort_key)
            .expression_attribute_values(":record", text(body))
            .expression_attribute_values(":time", text(click_sort_key(click)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Err(StoreError::NotFound),
            Err(error) => Err(classify(error)),
        }
    }
}

#[async_trait]
impl RollupStore for DynamoBrandData {
    async fn query_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        shard: u32,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        check_rollup_range(shard, from_day, to_day)?;
        if from_day > to_day {
            return Ok(Vec::new());
        }
        // Group ids are printable ASCII below '~' (`is_rollup_group`), so `<day>#~` sorts after
        // every row of the day and `<day>#` before the first (the total, group empty).
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lower AND :upper")
            .expression_attribute_values(
                ":pk",
                text(layout::rollup_partition(brand_id, dimension, shard)),
            )
            .expression_attribute_values(":lower", text(format!("{from_day}#")))
            .expression_attribute_values(":upper", text(format!("{to_day}#~")));
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let output = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for item in output.items() {
                rows.push(rollup_row_from_item(dimension, item)?);
            }
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(rows),
            }
        }
    }

    async fn read_rollups(
        &self,
        brand_id: &BrandId,
        dimension: RollupDimension,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<RollupRow>, StoreError> {
        read_rollups_across_shards(self, brand_id, dimension, from_day, to_day).await
    }

    async fn add_rollup_once(
        &self,
        brand_id: &BrandId,
        increment: &RollupIncrement,
        spans: &[StreamSpan],
    ) -> Result<Option<CountedThrough>, StoreError> {
        let merged = merge_increments(std::slice::from_ref(increment))?;
        let normalized = normalized_spans(spans)?;
        let Some(increment) = merged.first() else {
            // Nothing to count.
            return Ok(None);
        };
        let marks: Vec<(&str, &str, &str)> = normalized
            .iter()
            .map(|(origin, (first, last))| (origin.as_str(), first.as_str(), last.as_str()))
            .collect();
        let change = self.rollup_change(brand_id, increment, &marks)?;
        let result = self
            .client
            .update_item()
            .table_name(change.table_name())
            .set_key(Some(change.key().clone()))
            .update_expression(change.update_expression())
            .set_condition_expression(change.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(change.expression_attribute_names().cloned())
            .set_expression_attribute_values(change.expression_attribute_values().cloned())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(error) if is_condition_failure(&error) => {
                // The row as it stands came back with the failure: the marks that refused it.
                let item = condition_failure_item(&error).ok_or_else(|| {
                    StoreError::Corrupt("a replayed rollup row came back without its item".into())
                })?;
                let counted: CountedThrough = normalized
                    .iter()
                    .filter_map(|(origin, (first, _))| {
                        let mark = item
                            .get(&format!("{STREAM_MARK_PREFIX}{origin}"))
                            .and_then(|value| value.as_s().ok())?;
                        (mark >= first).then(|| (origin.clone(), mark.clone()))
                    })
                    .collect();
                if counted.is_empty() {
                    return Err(StoreError::Corrupt(
                        "a replayed rollup row without the mark that refused it".into(),
                    ));
                }
                Ok(Some(counted))
            }
            Err(error) => Err(classify(error)),
        }
    }
}

#[async_trait]
impl CounterStore for DynamoBrandData {
    async fn count_source_hits(
        &self,
        brand_id: &BrandId,
        source: &str,
        hits: &SourceHits,
        span: Option<&StreamSpan>,
    ) -> Result<SourceTally, StoreError> {
        let span = hits.checked(span)?;
        let mark = span
            .as_ref()
            .map(|(origin, _, _)| format!("{STREAM_MARK_PREFIX}{origin}"));
        let key = Self::item_key(layout::source(brand_id, source));
        // Every write returns the item as it was before, and a failed condition returns it too:
        // what the item holds picks the next write (a replay is known from the first one's
        // failure, so it costs no read), and that write's condition holds the item to it.
        let update = |write: SourceWrite| {
            let mut sets = vec!["#ttl = :expires"];
            let mut conditions = vec![if write.reset {
                "window_start < :window"
            } else {
                "(attribute_not_exists(pk) OR window_start >= :window)"
            }];
            if write.keep_last {
                conditions.push("last_at > :latest");
            } else {
                conditions.push("(attribute_not_exists(last_at) OR last_at <= :latest)");
                sets.push("last_at = :latest");
            }
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":count", number(hits_count(hits)))
                .expression_attribute_values(":latest", number(hits.latest_at))
                .expression_attribute_values(":expires", number(hits.expires_at))
                .expression_attribute_values(":window", number(hits.window_start))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let (Some(mark), Some((_, first, last))) = (&mark, &span) {
                conditions.push("(attribute_not_exists(#mark) OR #mark < :first)");
                sets.push("#mark = :last");
                request = request
                    .expression_attribute_names("#mark", mark)
                    .expression_attribute_values(":first", text(first))
                    .expression_attribute_values(":last", text(last));
            }
            let expression = if write.reset {
                format!(
                    "SET window_start = :window, clicks = :count, {}",
                    sets.join(", ")
                )
            } else {
                // A late request from an earlier window counts into the current one.
                format!(
                    "ADD clicks :count SET window_start = if_not_exists(window_start, :window), {}",
                    sets.join(", ")
                )
            };
            request
                .update_expression(expression)
                .condition_expression(conditions.join(" AND "))
                .send()
        };
        // The first write counts into the stored window (or a new item), this sighting the latest:
        // a capture's one click almost always is. The first hits of a new window for a known
        // source, or hits older than the last sighting, take a second write; if another request
        // changed the item in between, the item it left picks the next.
        let mut write = SourceWrite::default();
        for _ in 0..SOURCE_WRITE_ROUNDS {
            let error = match update(write).await {
                Ok(output) => {
                    let old = output.attributes.unwrap_or_default();
                    let stored = StoredSource::from_item(&old, mark.as_deref())?;
                    return Ok(SourceTally {
                        applied: true,
                        clicks_in_window: if write.reset { 0 } else { stored.clicks },
                        last_at: stored.last_at,
                        counted_through: None,
                    });
                }
                Err(error) if is_condition_failure(&error) => error,
                Err(error) => return Err(classify(error)),
            };
            let Some(item) = condition_failure_item(&error) else {
                // The item is gone (expired) since: count it as new.
                write = SourceWrite::default();
                continue;
            };
            let stored = StoredSource::from_item(&item, mark.as_deref())?;
            let Some(window_start) = stored.window_start else {
                return Err(StoreError::Corrupt(
                    "source item without window_start".into(),
                ));
            };
            if let (Some(counted), Some((_, first, _))) = (&stored.mark, &span)
                && counted >= first
            {
                return Ok(SourceTally::standing(
                    window_start,
                    stored.clicks,
                    stored.last_at,
                    hits.window_start,
                    counted.clone(),
                ));
            }
            write = SourceWrite {
                reset: window_start < hits.window_start,
                keep_last: stored.last_at.is_some_and(|last| last > hits.latest_at),
            };
        }
        Err(StoreError::Contention)
    }

    async fn increment_counter(
        &self,
        brand_id: &BrandId,
        name: &str,
        window_start: UnixMillis,
        amount: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(layout::counter(
                brand_id,
                name,
                window_start,
            ))))
            .update_expression("ADD #count :amount SET #ttl = :expires")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":amount", number(amount))
            .expression_attribute_values(":expires", number(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify)?;
        let attributes = output
            .attributes
            .ok_or_else(|| StoreError::Corrupt("counter update returned nothing".into()))?;
        read_number(&attributes, "count")
    }
}

/// Conditional writes [`CounterStore::count_source_hits`] tries before giving up with
/// `Contention`: each after the first is chosen from the item the one before failed on. A stored
/// window and sighting only move forward, so each of the two conditions can turn against a
/// write once: the first write (guessing), a reset another request beat, a sighting another
/// request passed, and the fourth holds, unless the item expires under it meanwhile.
const SOURCE_WRITE_ROUNDS: usize = 4;

/// Which write counts a source's hits, from what its item is known to hold (the default: what it
/// most often holds, the current window and an older sighting, or no item at all).
#[derive(Debug, Clone, Copy, Default)]
struct SourceWrite {
    /// The stored window is older than the hits': the count starts again from them.
    reset: bool,
    /// The stored sighting is later than the hits' latest: it stays.
    keep_last: bool,
}

/// What a source item holds, as a write returned it (before the write, or the item a condition
/// failed on); every attribute may be missing (no item).
struct StoredSource {
    window_start: Option<UnixMillis>,
    clicks: u64,
    last_at: Option<UnixMillis>,
    /// The zero-padded last sequence counted from the call's origin.
    mark: Option<String>,
}

impl StoredSource {
    fn from_item(item: &Item, mark: Option<&str>) -> Result<Self, StoreError> {
        let clicks = u64::try_from(read_optional_number(item, "clicks")?.unwrap_or(0))
            .map_err(|_| StoreError::Corrupt("negative click count".into()))?;
        let mark = match mark.and_then(|name| item.get(name)) {
            None => None,
            Some(AttributeValue::S(counted)) => Some(counted.clone()),
            Some(_) => {
                return Err(StoreError::Corrupt(
                    "a source item's stream mark is not text".into(),
                ));
            }
        };
        Ok(Self {
            window_start: read_optional_number(item, "window_start")?,
            clicks,
            last_at: read_optional_number(item, "last_at")?,
            mark,
        })
    }
}

/// The item an `UpdateItem` condition failed on (asked for with
/// `ReturnValuesOnConditionCheckFailure`), if there was one.
fn condition_failure_item(
    error: &aws_sdk_dynamodb::error::SdkError<
        UpdateItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Option<Item> {
    match error.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
        _ => None,
    }
}

/// The hits' count as a DynamoDB number ([`SourceHits::checked`] has refused larger ones).
fn hits_count(hits: &SourceHits) -> i64 {
    i64::try_from(hits.count).unwrap_or(i64::MAX)
}

/// A rollup row from its item: day and group from the sort key, every `n:` attribute a counter.
fn rollup_row_from_item(dimension: RollupDimension, item: &Item) -> Result<RollupRow, StoreError> {
    let sort = read_text(item, "sk")?;
    let (day, group) = sort
        .split_once('#')
        .ok_or_else(|| StoreError::Corrupt(format!("unexpected rollup sort key {sort}")))?;
    let mut counters = std::collections::BTreeMap::new();
    for (attribute, value) in item {
        let Some(name) = attribute.strip_prefix(ROLLUP_COUNTER_PREFIX) else {
            continue;
        };
        let AttributeValue::N(number) = value else {
            return Err(StoreError::Corrupt(format!(
                "rollup counter {attribute} is not a number"
            )));
        };
        counters.insert(name.to_owned(), counter_value(number)?);
    }
    Ok(RollupRow {
        day: day.to_owned(),
        dimension,
        group: group.to_owned(),
        counters,
    })
}

/// A stored counter as an `i64`. DynamoDB keeps 38 digits, so a sum beyond the `i64` range (a
/// money counter after many huge amounts) saturates rather than failing the whole read.
fn counter_value(number: &str) -> Result<i64, StoreError> {
    if let Ok(value) = number.parse::<i64>() {
        return Ok(value);
    }
    let digits = number.strip_prefix('-').unwrap_or(number);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(if number.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        });
    }
    Err(StoreError::Corrupt(format!(
        "rollup counter {number:?} is not an integer"
    )))
}

/// A record as the JSON text stored in its `record` attribute.
fn encode_record<T: serde::Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}
