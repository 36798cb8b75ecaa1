//! Tool arguments that never fail the JSON-RPC call: arguments that do not match a tool's schema
//! become an `isError` tool result with a helpful message, as MCP asks of tool failures, instead of
//! a protocol error. The type is named `Parameters` because rmcp's `#[tool]` macro takes a tool's
//! input schema from the argument of that name.

use std::borrow::Cow;

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// The tool's arguments, or why they could not be read.
pub struct Parameters<T>(pub Result<T, String>);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        Ok(Self(
            serde_json::from_value(serde_json::Value::Object(arguments))
                .map_err(|error| format!("invalid_request: invalid arguments: {error}")),
        ))
    }
}
