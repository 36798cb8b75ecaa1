//! The DynamoDB table definitions the store code expects. Test harnesses and local mode create
//! tables from these, and the infrastructure template must declare the same key schema.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use super::StoreError;
use super::dynamo::{PARTITION_KEY, SORT_KEY};

/// The `data` table's TTL attribute: activity records, rate counters and rollup rows carry their
/// expiry (Unix seconds) in it. Defined here, with the table, so that the table definitions need
/// nothing from the brand-data code that writes the items (`brand_data/dynamo.rs`).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// A global secondary index (string keys, all attributes projected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
}

/// What a table looks like, independent of the name it is deployed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDefinition {
    /// The name used in docs and in the template's logical id.
    pub purpose: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// Attribute DynamoDB expires items by, if the table has one.
    pub ttl_attribute: Option<&'static str>,
    pub indexes: &'static [IndexDefinition],
    /// The table's stream, if it has one: its `StreamViewType`, as the template declares it.
    pub stream_view_type: Option<&'static str>,
}

/// Brands, their keys, and the key-hash lookups.
pub const KEYS_TABLE: TableDefinition = TableDefinition {
    purpose: "keys",
    partition_key: PARTITION_KEY,
    sort_key: SORT_KEY,
    ttl_attribute: None,
    indexes: &[],
    stream_view_type: None,
};

/// Clicks by time: one index write per click, in the click's shard, with no transaction.
pub const CLICKS_BY_TIME: IndexDefinition = IndexDefinition {
    name: "by_time",
    partition_key: "gsi1pk",
    sort_key: "gsi1sk",
};

/// Program data: documents, claims, clicks, the activity log and rate counters (activity and
/// counters expire by TTL). Its stream carries both images of every change: the stream function
/// (and `trcker-local --store dynamodb`, polling it) derives source counts, rescoring, signals
/// and rollups from new clicks and documents (`INSERT`) and rescorings' before and after
/// (`MODIFY`).
pub const DATA_TABLE: TableDefinition = TableDefinition {
    purpose: "data",
    partition_key: PARTITION_KEY,
    sort_key: SORT_KEY,
    ttl_attribute: Some(TTL_ATTRIBUTE),
    indexes: &[CLICKS_BY_TIME],
    stream_view_type: Some("NEW_AND_OLD_IMAGES"),
};

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(unavailable)
}

fn key_schema(partition: &str, sort: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(partition, KeyType::Hash), (sort, KeyType::Range)]
        .into_iter()
        .map(|(name, key_type)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(unavailable)
        })
        .collect()
}

/// DynamoDB creates tables asynchronously; TTL can only be set on an ACTIVE table.
async fn wait_until_active(client: &Client, table_name: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let description = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|error| unavailable(DisplayErrorContext(&error)))?;
        let active = description
            .table()
            .and_then(|table| table.table_status())
            .is_some_and(|status| *status == aws_sdk_dynamodb::types::TableStatus::Active);
        if active {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {table_name} did not become ACTIVE within 60 s"
    )))
}

/// The index names a table already has, to tell a current table from an outdated one.
pub async fn index_names(client: &Client, table_name: &str) -> Result<Vec<String>, StoreError> {
    let description = client
        .describe_table()
        .table_name(table_name)
        .send()
        .await
        .map_err(|error| unavailable(DisplayErrorContext(&error)))?;
    Ok(description
        .table()
        .map(|table| {
            table
                .global_secondary_indexes()
                .iter()
                .filter_map(|index| index.index_name().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// The stream `definition` asks for, as `CreateTable` and `UpdateTable` take it.
pub fn stream_specification(definition: &TableDefinition) -> Option<StreamSpecification> {
    let view = definition.stream_view_type?;
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::from(view))
        .build()
        .ok()
}

/// Creates `table_name` with `definition`'s key schema, indexes, stream and TTL, on-demand billing.
pub async fn create_table(
    client: &Client,
    definition: &TableDefinition,
    table_name: &str,
) -> Result<(), StoreError> {
    let mut attributes = vec![
        string_attribute(definition.partition_key)?,
        string_attribute(definition.sort_key)?,
    ];
    let mut indexes = Vec::new();
    for index in definition.indexes {
        attributes.push(string_attribute(index.partition_key)?);
        attributes.push(string_attribute(index.sort_key)?);
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(unavailable)?,
        );
    }
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(
            definition.partition_key,
            definition.sort_key,
        )?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .set_stream_specification(stream_specification(definition))
        .send()
        .await
        .map_err(|error| unavailable(DisplayErrorContext(&error)))?;
    wait_until_active(client, table_name).await?;
    if let Some(attribute) = definition.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(unavailable)?;
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|error| unavailable(DisplayErrorContext(&error)))?;
    }
    Ok(())
}
