//! Where each brand-data item lives in the `data` table (its partition and sort key) and how big it
//! is: the DynamoDB backend builds its requests' keys from these functions, and the capacity model
//! ([`super::model`]) charges and locks the same items, so the two cannot drift apart.

use super::clicks::ClickRecord;
use super::rollups::RollupDimension;
use super::{ActivityRecord, DocumentKind, Surface, UniqueClaim};
use crate::ids::BrandId;

/// One item's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    pub partition: String,
    pub sort: String,
}

impl ItemKey {
    pub fn new(partition: impl Into<String>, sort: impl Into<String>) -> Self {
        Self {
            partition: partition.into(),
            sort: sort.into(),
        }
    }
}

/// How the capacity model names a partition of the `by_time` index (the index has partitions,
/// and throughput, of its own, even where its partition key repeats the table's).
pub fn index_partition(partition: &str) -> String {
    format!("{INDEX_MARK}{partition}")
}

const INDEX_MARK: &str = "by_time:";

/// What a partition key holds, for reports per key kind (the part of the partition key after the
/// brand id, without shard numbers or names; an index partition as `CLICK by_time`).
pub fn partition_kind(partition: &str) -> &'static str {
    let (index, partition) = match partition.strip_prefix(INDEX_MARK) {
        Some(rest) => (true, rest),
        None => (false, partition),
    };
    let rest = partition.split_once('#').map_or("", |(_, rest)| rest);
    const KINDS: [&str; 5] = ["CLICK", "ROLLUP", "ACTIVITY", "COUNTER", "SOURCE"];
    match KINDS.into_iter().find(|kind| rest.starts_with(kind)) {
        Some("CLICK") if index => "CLICK by_time",
        Some(kind) => kind,
        None => "DOCUMENTS",
    }
}

/// A document: `pk = <brand_id>`, `sk = <KIND>#<id>`.
pub fn document(brand_id: &BrandId, kind: DocumentKind, id: &str) -> ItemKey {
    ItemKey::new(brand_id.as_str(), format!("{}#{id}", kind.as_str()))
}

/// A unique claim: `pk = <brand_id>`, `sk = <KIND>CLAIM#<field>#<value>`.
pub fn claim(brand_id: &BrandId, kind: DocumentKind, claim: &UniqueClaim) -> ItemKey {
    ItemKey::new(
        brand_id.as_str(),
        format!("{}CLAIM#{}#{}", kind.as_str(), claim.field, claim.value),
    )
}

/// A click shard's partition, which is also its partition in the `by_time` index.
pub fn click_partition(brand_id: &BrandId, shard: u32) -> String {
    format!("{brand_id}#CLICK#{shard:02}")
}

/// A click: `pk = <brand_id>#CLICK#<shard>`, `sk = ID#<click id>`.
pub fn click(brand_id: &BrandId, shard: u32, click_id: &str) -> ItemKey {
    ItemKey::new(click_partition(brand_id, shard), format!("ID#{click_id}"))
}

/// A rollup shard's partition of one dimension.
pub fn rollup_partition(brand_id: &BrandId, dimension: RollupDimension, shard: u32) -> String {
    format!("{brand_id}#ROLLUP#{}#{shard:02}", dimension.as_str())
}

/// A rollup row: `sk = <YYYY-MM-DD>#<group>`.
pub fn rollup_row(
    brand_id: &BrandId,
    dimension: RollupDimension,
    shard: u32,
    day: &str,
    group: &str,
) -> ItemKey {
    ItemKey::new(
        rollup_partition(brand_id, dimension, shard),
        format!("{day}#{group}"),
    )
}

/// One shard of one surface's activity log: `pk = <brand_id>#ACTIVITY#<surface>#<shard 00-15>`.
pub fn activity_partition(brand_id: &BrandId, surface: Surface, shard: u32) -> String {
    format!("{brand_id}#ACTIVITY#{}#{shard:02}", surface.as_str())
}

/// An activity record: in its request id's shard, `sk = <ms, 13 digits>#<request id>`.
pub fn activity(record: &ActivityRecord) -> ItemKey {
    ItemKey::new(
        activity_partition(
            &record.brand_id,
            record.surface,
            record.surface.activity_shard(&record.request_id),
        ),
        super::activity_sort_key(record),
    )
}

/// A fixed-window counter: `pk = <brand_id>#COUNTER#<name>`, `sk = <window start ms>`.
pub fn counter(brand_id: &BrandId, name: &str, window_start: i64) -> ItemKey {
    ItemKey::new(
        format!("{brand_id}#COUNTER#{name}"),
        window_start.to_string(),
    )
}

/// A source's click counter: `pk = <brand_id>#SOURCE#<source>`, `sk = HITS`.
pub fn source(brand_id: &BrandId, source: &str) -> ItemKey {
    ItemKey::new(format!("{brand_id}#SOURCE#{source}"), "HITS")
}

/// DynamoDB's size of an item: the lengths of its attribute names and values in bytes (the
/// developer guide's rule; a number counts as its digits, about 10 bytes here).
pub fn item_size(key: &ItemKey, attributes: &[(&str, usize)]) -> usize {
    let keys = "pk".len() + key.partition.len() + "sk".len() + key.sort.len();
    keys + attributes
        .iter()
        .map(|(name, value)| name.len() + value)
        .sum::<usize>()
}

/// The size of a click item: its key, the JSON `record`, the `by_time` index attributes.
pub fn click_item_size(key: &ItemKey, click: &ClickRecord) -> usize {
    let record = serde_json::to_vec(click).map_or(0, |bytes| bytes.len());
    item_size(
        key,
        &[
            ("record", record),
            ("gsi1pk", key.partition.len()),
            ("gsi1sk", 14 + click.click_id.len()),
        ],
    )
}

/// The size of a click's `by_time` index entry: the item (the index projects every attribute,
/// keys included) plus the 100 bytes DynamoDB adds to every index entry.
pub fn click_index_entry_size(key: &ItemKey, click: &ClickRecord) -> usize {
    click_item_size(key, click) + 100
}

/// The size of an activity record item.
pub fn activity_item_size(key: &ItemKey, record: &ActivityRecord) -> usize {
    let body = serde_json::to_vec(record).map_or(0, |bytes| bytes.len());
    item_size(
        key,
        &[("record", body), ("expires_at", 10), ("attempts", 4)],
    )
}

/// Write units of one write of an item of `bytes`: 1 per KB started (2 in a transaction).
pub fn write_units(bytes: usize, transactional: bool) -> u64 {
    let units = bytes.div_ceil(1024).max(1) as u64;
    if transactional { 2 * units } else { units }
}

/// Read units of reading `bytes` (eventually consistent: half a unit per 4 KB started; strongly
/// consistent: one), in half units so the sum stays exact.
pub fn read_half_units(bytes: usize, consistent: bool) -> u64 {
    let units = bytes.div_ceil(4096).max(1) as u64;
    if consistent { 2 * units } else { units }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_kinds_name_the_item_family() {
        let brand = BrandId::parse("acme").unwrap();
        assert_eq!(partition_kind(&click_partition(&brand, 3)), "CLICK");
        assert_eq!(
            partition_kind(&index_partition(&click_partition(&brand, 3))),
            "CLICK by_time"
        );
        assert_eq!(
            partition_kind(&rollup_partition(&brand, RollupDimension::Total, 0)),
            "ROLLUP"
        );
        assert_eq!(
            partition_kind(&activity_partition(&brand, Surface::Capture, 7)),
            "ACTIVITY"
        );
        assert_eq!(
            partition_kind(&counter(&brand, "rate#k", 0).partition),
            "COUNTER"
        );
        assert_eq!(
            partition_kind(&source(&brand, "192.0.2.1").partition),
            "SOURCE"
        );
        assert_eq!(
            partition_kind(&document(&brand, DocumentKind::Offer, "off_1").partition),
            "DOCUMENTS"
        );
    }

    #[test]
    fn units_round_up_per_kilobyte_and_double_in_transactions() {
        assert_eq!(write_units(1, false), 1);
        assert_eq!(write_units(1024, false), 1);
        assert_eq!(write_units(1025, false), 2);
        assert_eq!(write_units(1025, true), 4);
        assert_eq!(read_half_units(4096, false), 1);
        assert_eq!(read_half_units(4097, true), 4);
    }
}
