//! The DynamoDB table definitions the store code expects. Test harnesses and local mode create
//! tables from these, and the infrastructure template must declare the same key schema.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use super::StoreError;
use super::dynamo::{PARTITION_KEY, SORT_KEY};

/// What a table looks like, independent of the name it is deployed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDefinition {
    /// The name used in docs and in the template's logical id.
    pub purpose: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// Attribute DynamoDB expires items by, if the table has one.
    pub ttl_attribute: Option<&'static str>,
}

/// Brands, their keys, and the key-hash lookups.
pub const KEYS_TABLE: TableDefinition = TableDefinition {
    purpose: "keys",
    partition_key: PARTITION_KEY,
    sort_key: SORT_KEY,
    ttl_attribute: None,
};

/// Partners, offers, the activity log and rate counters (activity and counters expire by TTL).
pub const DATA_TABLE: TableDefinition = TableDefinition {
    purpose: "data",
    partition_key: PARTITION_KEY,
    sort_key: SORT_KEY,
    ttl_attribute: Some(crate::brand_data::dynamo::TTL_ATTRIBUTE),
};

/// Creates `table_name` with `definition`'s key schema, on-demand billing.
pub async fn create_table(
    client: &Client,
    definition: &TableDefinition,
    table_name: &str,
) -> Result<(), StoreError> {
    let string_attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key_element = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let unavailable = |error: String| StoreError::Unavailable(error);
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            string_attribute(definition.partition_key).map_err(|e| unavailable(e.to_string()))?,
        )
        .attribute_definitions(
            string_attribute(definition.sort_key).map_err(|e| unavailable(e.to_string()))?,
        )
        .key_schema(
            key_element(definition.partition_key, KeyType::Hash)
                .map_err(|e| unavailable(e.to_string()))?,
        )
        .key_schema(
            key_element(definition.sort_key, KeyType::Range)
                .map_err(|e| unavailable(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|error| unavailable(DisplayErrorContext(&error).to_string()))?;
    if let Some(attribute) = definition.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| unavailable(e.to_string()))?;
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|error| unavailable(DisplayErrorContext(&error).to_string()))?;
    }
    Ok(())
}
