//! The tools' input and output schemas in plain JSON Schema 2020-12, so that any client's
//! validator accepts them without a warning.
//!
//! rmcp generates the schemas with schemars' 2020-12 settings, but schemars also writes a `format`
//! named after the Rust type of every number (`uint32`, `int64`, `double`, ...). JSON Schema
//! defines no such formats, and strict validators (the TypeScript SDK's, for one) warn about each
//! of them on every call. [`StandardSchema`] drops every `format` 2020-12 does not define and
//! states an integer type's range with `minimum`/`maximum` instead, keeping any tighter bound the
//! field already declares (a `limit` stays 1-100). It runs once, over the built tool list.

use std::cmp::Ordering;

use rmcp::model::{JsonObject, Tool};
use schemars::Schema;
use schemars::transform::{Transform, transform_subschemas};
use serde_json::{Number, Value};

/// The `format` values JSON Schema 2020-12 defines (Validation, section 7.3); any other is left
/// to each validator's goodwill, so none is served.
pub const STANDARD_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Drops non-standard `format` values, turning an integer format into the range it stands for.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardSchema;

impl Transform for StandardSchema {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut()
            && let Some(format) = object.get("format").and_then(Value::as_str)
            && !STANDARD_FORMATS.contains(&format)
        {
            let range = integer_range(format);
            object.remove("format");
            if let Some((low, high)) = range {
                narrow(object, "minimum", low, Ordering::is_ge);
                narrow(object, "maximum", high, Ordering::is_le);
            }
        }
        transform_subschemas(self, schema);
    }
}

/// The range of the integer formats schemars writes for Rust's integer types. `int`/`uint`
/// (`isize`/`usize`) are taken at 64 bits, the width of every target the function is built for.
/// 128-bit formats get no range: their bounds are not JSON numbers serde_json can write, and the
/// tool-list test fails on an integer without one rather than let such a field through unbounded.
fn integer_range(format: &str) -> Option<(i128, i128)> {
    let range = match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "uint" => (0, u64::MAX.into()),
        _ => return None,
    };
    Some(range)
}

/// Sets `keyword` to `bound` unless the schema already declares one that `keeps` (one at least as
/// tight), so a field's own range (`#[schemars(range(...))]`) wins over its type's.
fn narrow(object: &mut JsonObject, keyword: &str, bound: i128, keeps: fn(Ordering) -> bool) {
    let existing = object.get(keyword).and_then(Value::as_number);
    let ordering = existing.and_then(|existing| match as_i128(existing) {
        // Integers compare exactly: f64 would blur the 64-bit bounds.
        Some(existing) => Some(existing.cmp(&bound)),
        None => existing.as_f64()?.partial_cmp(&(bound as f64)),
    });
    if !ordering.is_some_and(keeps)
        && let Some(number) = json_integer(bound)
    {
        object.insert(keyword.to_owned(), Value::Number(number));
    }
}

fn as_i128(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

fn json_integer(value: i128) -> Option<Number> {
    i64::try_from(value)
        .map(Number::from)
        .or_else(|_| u64::try_from(value).map(Number::from))
        .ok()
}

/// `schema` with [`StandardSchema`] applied throughout (`$defs` included).
pub fn standard(schema: &JsonObject) -> JsonObject {
    let mut schema = Schema::from(schema.clone());
    StandardSchema.transform(&mut schema);
    match schema.to_value() {
        Value::Object(object) => object,
        // `Schema::from` a map is an object schema, and transforms keep it one.
        _ => unreachable!("an object schema stays an object"),
    }
}

/// Rewrites a tool's input and output schemas with [`standard`].
pub fn standardize(tool: &mut Tool) {
    tool.input_schema = standard(&tool.input_schema).into();
    if let Some(output) = &tool.output_schema {
        tool.output_schema = Some(standard(output).into());
    }
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde_json::json;

    use super::*;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Sample {
        small: u8,
        count: i64,
        size: usize,
        #[schemars(range(min = 1, max = 100))]
        limit: Option<u32>,
        #[schemars(range(min = -5))]
        offset: i16,
        ratio: f64,
        nested: Vec<Inner>,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        depth: u16,
    }

    fn sample() -> Value {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<Sample>();
        let Value::Object(object) = schema.to_value() else {
            panic!("an object schema");
        };
        Value::Object(standard(&object))
    }

    #[test]
    fn integer_formats_become_their_range() {
        let schema = sample();
        let properties = &schema["properties"];
        assert_eq!(
            properties["small"],
            json!({"type": "integer", "minimum": 0, "maximum": 255})
        );
        assert_eq!(properties["count"]["minimum"], json!(i64::MIN));
        assert_eq!(properties["count"]["maximum"], json!(i64::MAX));
        assert_eq!(properties["size"]["maximum"], json!(u64::MAX));
        assert_eq!(
            schema["$defs"]["Inner"]["properties"]["depth"],
            json!({"type": "integer", "minimum": 0, "maximum": 65535})
        );
    }

    #[test]
    fn a_field_range_tighter_than_its_type_is_kept() {
        let schema = sample();
        let limit = &schema["properties"]["limit"];
        assert_eq!(limit["minimum"], 1);
        assert_eq!(limit["maximum"], 100);
        assert_eq!(limit["type"], json!(["integer", "null"]));
        let offset = &schema["properties"]["offset"];
        assert_eq!(offset["minimum"], -5);
        assert_eq!(offset["maximum"], i16::MAX);
    }

    #[test]
    fn invented_formats_go_and_standard_ones_stay() {
        let schema = sample();
        assert_eq!(schema["properties"]["ratio"], json!({"type": "number"}));
        let mut object = JsonObject::new();
        object.insert("type".into(), json!("object"));
        object.insert(
            "properties".into(),
            json!({"at": {"type": "string", "format": "date-time"},
                   "odd": {"type": "string", "format": "semver"}}),
        );
        let standard = standard(&object);
        assert_eq!(standard["properties"]["at"]["format"], "date-time");
        assert_eq!(standard["properties"]["odd"], json!({"type": "string"}));
    }

    #[test]
    fn a_looser_field_bound_gives_way_to_the_type() {
        let mut object = JsonObject::new();
        object.insert("type".into(), json!("integer"));
        object.insert("format".into(), json!("uint8"));
        object.insert("minimum".into(), json!(-1.5));
        object.insert("maximum".into(), json!(1000));
        assert_eq!(
            Value::Object(standard(&object)),
            json!({"type": "integer", "minimum": 0, "maximum": 255})
        );
    }
}
