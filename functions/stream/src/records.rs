//! Stream records of the `data` table as change events: what a record means to the derivation
//! ([`Change`]), decided from its operation and the images of its item, laid out as
//! `trcker_shared::brand_data::dynamo` writes them (`shared/src/brand_data/layout.rs`):
//!
//! - click: `pk = <brand_id>#CLICK#<shard>`, `sk = ID#<click id>`, the click as JSON text in
//!   `record`. An `INSERT` is [`Change::NewClick`], a `MODIFY` (the rescoring update) is
//!   [`Change::ClickChanged`] with both images.
//! - document: `pk = <brand_id>`, `sk = <KIND>#<id>`, `body` (JSON text), `version`. An `INSERT`
//!   at version 1 is [`Change::NewDocument`].
//! - anything else (claims, activity, counters, source counters, rollup rows, document updates,
//!   every `REMOVE`), and an `INSERT` whose new image holds nothing but the key (moto writes one
//!   before the real image when an `UpdateItem` creates an item): [`Change::Other`].
//!
//! A record that should derive something but does not decode (an image missing, an attribute of
//! the wrong type, JSON that is not a click) is a [`DecodeError`]: [`change_event`] logs it by
//! item kind and sequence number only (never a key, an id or the record's text) and carries on
//! with [`Change::Other`], so one bad item can neither stop nor panic the shard.
//!
//! Every event also carries its origin partition ([`origin_partition`]: the item's `pk`), which the
//! derivation keeps its once-only marks by (see the crate's documentation).
//!
//! [`decode_record`] and [`decode_or_other`] take the images as [`Item`]s (serde_dynamo's, which the
//! Lambda event carries), so a reader of the stream through the SDK (the local gateway, with
//! `aws-sdk-dynamodbstreams`) converts each record's `Keys`, `NewImage` and `OldImage` with
//! serde_dynamo's `From` impls (its `aws-sdk-dynamodbstreams+1` feature) and gets the same changes.

use std::fmt;

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_dynamo::{AttributeValue, Item};
use trcker_shared::brand_data::changes::{Change, ChangeEvent};
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::brand_data::layout::partition_kind;
use trcker_shared::brand_data::{Document, DocumentKind};
use trcker_shared::ids::BrandId;

/// The table's key attributes (`shared/src/store/schema.rs`, `DATA_TABLE`).
const PARTITION_KEY: &str = "pk";
const SORT_KEY: &str = "sk";

/// Every kind of document, by the name its sort key starts with.
const DOCUMENT_KINDS: [DocumentKind; 5] = [
    DocumentKind::Partner,
    DocumentKind::Offer,
    DocumentKind::PricingRule,
    DocumentKind::Conversion,
    DocumentKind::FraudSignal,
];

/// What was done to the item (the record's `eventName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Modify,
    Remove,
}

impl Operation {
    /// `INSERT`, `MODIFY` or `REMOVE`, as the stream names them.
    pub fn parse(event_name: &str) -> Option<Self> {
        match event_name {
            "INSERT" => Some(Self::Insert),
            "MODIFY" => Some(Self::Modify),
            "REMOVE" => Some(Self::Remove),
            _ => None,
        }
    }
}

/// Why a record that should derive something could not be decoded. It holds no text of the item:
/// the kind of its partition (`CLICK`, `DOCUMENTS`, as [`partition_kind`] names them) and a fixed
/// reason, safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub item_kind: &'static str,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} item: {}", self.item_kind, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Which family of item a key belongs to, as far as the derivation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemFamily {
    Click,
    Document(DocumentKind),
    Other,
}

fn item_family(partition: &str, sort: &str) -> ItemFamily {
    match partition_kind(partition) {
        "CLICK" if sort.starts_with("ID#") => ItemFamily::Click,
        // Brand ids hold no '#': a partition key without one is a brand's documents and claims.
        "DOCUMENTS" if !partition.contains('#') => sort
            .split_once('#')
            .and_then(|(name, _)| DOCUMENT_KINDS.into_iter().find(|k| k.as_str() == name))
            .map_or(ItemFamily::Other, ItemFamily::Document),
        _ => ItemFamily::Other,
    }
}

/// A string attribute of an image.
fn text<'a>(image: &'a Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// Whether an image holds nothing beyond the item's key: no image at all, or moto's key-only one.
fn is_key_only(image: &Item) -> bool {
    image
        .keys()
        .all(|name| name == PARTITION_KEY || name == SORT_KEY)
}

/// What one stream record means to the derivation, from its operation, its `Keys` and its images
/// (empty when the record carries none). `Err` only for a record that should derive something and
/// does not decode; the caller decides what to do with it ([`change_event`] logs it and goes on).
pub fn decode_record(
    operation: Operation,
    keys: &Item,
    new_image: &Item,
    old_image: &Item,
) -> Result<Change, DecodeError> {
    let key = |name| {
        text(keys, name)
            .or_else(|| text(new_image, name))
            .or_else(|| text(old_image, name))
    };
    let (Some(partition), Some(sort)) = (key(PARTITION_KEY), key(SORT_KEY)) else {
        return Err(DecodeError {
            item_kind: "unknown",
            reason: "the record names no string pk and sk",
        });
    };
    let item_kind = partition_kind(partition);
    let error = |reason| DecodeError { item_kind, reason };
    match (operation, item_family(partition, sort)) {
        (Operation::Insert, _) if is_key_only(new_image) => Ok(Change::Other),
        (Operation::Insert, ItemFamily::Click) => decode_click(new_image, partition, sort)
            .map(|click| Change::NewClick(Box::new(click)))
            .map_err(error),
        (Operation::Modify, ItemFamily::Click) => {
            if is_key_only(old_image) || is_key_only(new_image) {
                return Err(error(
                    "a click update without both images (the stream must be NEW_AND_OLD_IMAGES)",
                ));
            }
            let before = decode_click(old_image, partition, sort).map_err(error)?;
            let after = decode_click(new_image, partition, sort).map_err(error)?;
            Ok(Change::ClickChanged {
                before: Box::new(before),
                after: Box::new(after),
            })
        }
        (Operation::Insert, ItemFamily::Document(kind)) => {
            let document = decode_document(new_image, partition, sort, kind).map_err(error)?;
            // A create writes version 1 (an update is a `MODIFY`): anything else derives nothing.
            Ok(if document.version == 1 {
                Change::NewDocument(Box::new(document))
            } else {
                Change::Other
            })
        }
        _ => Ok(Change::Other),
    }
}

/// The click in an image's `record`, held to the item's key: its brand's partition and its id's
/// sort key.
fn decode_click(image: &Item, partition: &str, sort: &str) -> Result<ClickRecord, &'static str> {
    let record = text(image, "record").ok_or("no string record attribute")?;
    let click: ClickRecord =
        serde_json::from_str(record).map_err(|_| "the record attribute is not a click")?;
    let brand = partition
        .split_once('#')
        .map_or(partition, |(brand, _)| brand);
    if click.brand_id.as_str() != brand || sort.strip_prefix("ID#") != Some(&click.click_id) {
        return Err("the click's brand or id differs from the item's key");
    }
    Ok(click)
}

/// A document from its image, as the DynamoDB store reads one: the brand from `pk`, the id from
/// `sk` after `<KIND>#`, `body` (JSON text) and `version`.
fn decode_document(
    image: &Item,
    partition: &str,
    sort: &str,
    kind: DocumentKind,
) -> Result<Document, &'static str> {
    let brand_id = BrandId::parse(partition).map_err(|_| "the partition key is not a brand id")?;
    let id = sort
        .strip_prefix(kind.as_str())
        .and_then(|rest| rest.strip_prefix('#'))
        .filter(|id| !id.is_empty())
        .ok_or("the sort key names no document id")?;
    let body = text(image, "body").ok_or("no string body attribute")?;
    let body = serde_json::from_str(body).map_err(|_| "the body attribute is not JSON")?;
    let version = match image.get("version") {
        Some(AttributeValue::N(number)) => number
            .parse::<u64>()
            .map_err(|_| "the version is not a whole number")?,
        _ => return Err("no number version attribute"),
    };
    Ok(Document {
        brand_id,
        kind,
        id: id.to_owned(),
        version,
        body,
    })
}

/// The partition key of the item a record is about, from its `Keys` (or, failing those, an
/// image): the origin partition the derivation counts per. Empty if no image names one.
pub fn origin_partition<'a>(keys: &'a Item, new_image: &'a Item, old_image: &'a Item) -> &'a str {
    [keys, new_image, old_image]
        .into_iter()
        .find_map(|image| text(image, PARTITION_KEY))
        .unwrap_or_default()
}

/// One record of a Lambda stream event as a change event. A record that does not decode is
/// logged (item kind and sequence number only) and becomes [`Change::Other`]; a record without a
/// sequence number (none that Lambda sends) cannot be placed in the shard and is left out, logged.
pub fn change_event(record: &EventRecord) -> Option<ChangeEvent> {
    let Some(sequence) = record
        .change
        .sequence_number
        .clone()
        .filter(|sequence| is_sequence_number(sequence))
    else {
        tracing::error!(
            event_name = %record.event_name,
            "stream record without a sequence number: skipped"
        );
        return None;
    };
    let change = match Operation::parse(&record.event_name) {
        Some(operation) => decode_or_other(
            operation,
            &record.change.keys,
            &record.change.new_image,
            &record.change.old_image,
            &sequence,
        ),
        None => {
            tracing::warn!(
                event_name = %record.event_name,
                sequence = %sequence,
                "stream record of an unknown operation: derives nothing"
            );
            Change::Other
        }
    };
    let partition = origin_partition(
        &record.change.keys,
        &record.change.new_image,
        &record.change.old_image,
    );
    Some(ChangeEvent {
        partition: partition.to_owned(),
        sequence,
        change,
    })
}

/// [`decode_record`], with a record that does not decode logged and taken as [`Change::Other`]:
/// what both the Lambda handler and a reader of the stream through the SDK want.
pub fn decode_or_other(
    operation: Operation,
    keys: &Item,
    new_image: &Item,
    old_image: &Item,
    sequence: &str,
) -> Change {
    decode_record(operation, keys, new_image, old_image).unwrap_or_else(|error| {
        tracing::error!(
            item_kind = error.item_kind,
            reason = error.reason,
            sequence = %sequence,
            "stream record does not decode: derives nothing"
        );
        Change::Other
    })
}

/// Sequence numbers are decimal digits, 1 to 40 of them (DynamoDB Streams' own are 21 to 40).
pub fn is_sequence_number(text: &str) -> bool {
    (1..=40).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Every record of a batch as change events, in the batch's (the shard's) order.
pub fn change_events(records: &[EventRecord]) -> Vec<ChangeEvent> {
    records.iter().filter_map(change_event).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn item(attributes: &[(&str, AttributeValue)]) -> Item {
        Item::from(
            attributes
                .iter()
                .cloned()
                .map(|(name, value)| (name.to_owned(), value))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    #[test]
    fn families_follow_the_layout() {
        assert_eq!(item_family("acme#CLICK#07", "ID#c-1"), ItemFamily::Click);
        assert_eq!(
            item_family("acme", "FRAUD#frd_1"),
            ItemFamily::Document(DocumentKind::FraudSignal)
        );
        assert_eq!(
            item_family("acme", "RULE#rul_1"),
            ItemFamily::Document(DocumentKind::PricingRule)
        );
        for (partition, sort) in [
            ("acme", "PARTNERCLAIM#slug#x"),
            ("acme", "NOPE#1"),
            ("acme#ROLLUP#T#03", "2026-01-01#"),
            ("acme#SOURCE#192.0.2.1", "HITS"),
            ("acme#ACTIVITY#capture#03", "0000000000001#r"),
            ("acme#CLICK#07", "HITS"),
        ] {
            assert_eq!(item_family(partition, sort), ItemFamily::Other, "{sort}");
        }
    }

    #[test]
    fn key_only_inserts_and_unknown_items_derive_nothing() {
        let keys = item(&[("pk", s("acme#CLICK#07")), ("sk", s("ID#c-1"))]);
        let empty = Item::default();
        assert_eq!(
            decode_record(Operation::Insert, &keys, &keys, &empty),
            Ok(Change::Other)
        );
        assert_eq!(
            decode_record(Operation::Insert, &keys, &empty, &empty),
            Ok(Change::Other)
        );
        assert_eq!(
            decode_record(Operation::Remove, &keys, &empty, &keys),
            Ok(Change::Other)
        );
        let broken = item(&[
            ("pk", s("acme#CLICK#07")),
            ("sk", s("ID#c-1")),
            ("record", s("{not json")),
        ]);
        let error = decode_record(Operation::Insert, &keys, &broken, &empty).unwrap_err();
        assert_eq!(error.item_kind, "CLICK");
        assert!(!error.to_string().contains("c-1"), "{error}");
        assert_eq!(
            decode_or_other(Operation::Insert, &keys, &broken, &empty, "5"),
            Change::Other
        );
        assert!(decode_record(Operation::Insert, &empty, &empty, &empty).is_err());
    }

    /// A recorded conversion reaches the derivation as a new document (it counts in the rollups);
    /// its status update, a `MODIFY` at a later version, derives nothing.
    #[test]
    fn a_new_conversion_is_a_new_document_and_its_update_derives_nothing() {
        let keys = item(&[
            ("pk", s("acme")),
            ("sk", s("CONVERSION#cnv_19bc0e212fb3c5a1")),
        ]);
        let image = |version: &str, status: &str| {
            item(&[
                ("pk", s("acme")),
                ("sk", s("CONVERSION#cnv_19bc0e212fb3c5a1")),
                (
                    "body",
                    s(&format!(
                        r#"{{"id":"cnv_19bc0e212fb3c5a1","status":"{status}"}}"#
                    )),
                ),
                ("version", AttributeValue::N(version.to_owned())),
            ])
        };
        let created = image("1", "pending");
        let Ok(Change::NewDocument(document)) =
            decode_record(Operation::Insert, &keys, &created, &Item::default())
        else {
            panic!("a new conversion is a new document");
        };
        assert_eq!(document.kind, DocumentKind::Conversion);
        assert_eq!(document.id, "cnv_19bc0e212fb3c5a1");
        assert_eq!(document.version, 1);
        assert_eq!(document.body["status"], "pending");
        let approved = image("2", "approved");
        assert_eq!(
            decode_record(Operation::Modify, &keys, &approved, &created),
            Ok(Change::Other)
        );
        assert_eq!(
            decode_record(Operation::Insert, &keys, &approved, &Item::default()),
            Ok(Change::Other),
            "only version 1 is a creation"
        );
    }

    #[test]
    fn sequence_numbers_are_digits() {
        assert!(is_sequence_number("4421584500000000017450439091"));
        assert!(!is_sequence_number(""));
        assert!(!is_sequence_number("12a"));
        assert!(!is_sequence_number(&"1".repeat(41)));
    }
}
