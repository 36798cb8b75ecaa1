//! The tools as served (`tools/list` through the MCP router, behind the guard) describe themselves
//! in schemas any JSON Schema 2020-12 validator accepts, and in words a model can choose by.
//!
//! Every input and output schema is checked by the `jsonschema` crate, which shares no code with
//! schemars or rmcp: against the 2020-12 meta-schema, and compiled as a 2020-12 schema with
//! unknown formats refused. On top of what the meta-schema allows, the test asks what strict
//! clients warn about: no `format` outside the ones 2020-12 defines (schemars' `uint32`,
//! `int64`, `double`...), a `minimum` and `maximum` on every integer, no keyword of draft-07 or
//! older (`definitions`, `dependencies`, array `items`) or of OpenAPI (`nullable`). Real answers
//! of the tools are then validated against the output schemas, so the bounds added are bounds the
//! data keeps.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Map, Value, json};
use trcker_mcp::config::McpConfig;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::faulty_edge::{FaultyEdge, send};
use trcker_shared::ids::BrandId;
use trcker_shared::program::Program;
use trcker_shared::program::offers::{CreateOffer, create_offer};
use trcker_shared::program::partners::{CreatePartner, create_partner};

/// The `format` values JSON Schema 2020-12 defines (Validation, section 7.3), written out here
/// rather than taken from the server, so the test does not trust the list it checks.
const FORMATS_2020_12: [&str; 19] = [
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

/// Keywords 2020-12 dropped or renamed (`definitions` is `$defs`, `dependencies` split into
/// `dependentRequired`/`dependentSchemas`, array `items` is `prefixItems`, `$recursiveRef` is
/// `$dynamicRef`, draft-04's `id` is `$id`) and OpenAPI's additions, which are no JSON Schema.
const FOREIGN_KEYWORDS: [&str; 9] = [
    "definitions",
    "dependencies",
    "additionalItems",
    "$recursiveRef",
    "$recursiveAnchor",
    "id",
    "nullable",
    "example",
    "discriminator",
];

const SCHEMA_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// Long enough to say what a tool returns and when to pick it; short enough to stay a
/// description, not a manual, in every model's context.
const DESCRIPTION_CHARS: std::ops::RangeInclusive<usize> = 150..=600;

/// The MCP router over in-memory stores, a brand's key, and an offer and a partner of that brand.
struct Served {
    router: Router,
    key: String,
    offer_id: String,
    partner_id: String,
}

impl Served {
    async fn new() -> Self {
        let edge = FaultyEdge::memory();
        let limits = EdgeLimits::default();
        let router = trcker_mcp::router(
            edge.keys.clone(),
            edge.data.clone(),
            limits,
            McpConfig::default(),
        );
        let key = edge.brand_key("acme").await;
        let program = Program {
            keys: edge.keys.clone(),
            data: edge.data.clone(),
            min_click_to_conversion_ms: limits.min_click_to_conversion_ms,
            activity_retention_days: limits.activity_retention_days,
        };
        let brand = BrandId::parse("acme").unwrap();
        let offer: CreateOffer = serde_json::from_value(json!({
            "name": "Spring sale", "slug": "spring-sale",
            "destination_url": "https://shop.example/spring",
            "default_payout": {"type": "flat", "amount": 12.5, "currency": "USD"}
        }))
        .unwrap();
        let offer = create_offer(&program, &brand, offer).await.unwrap();
        let partner: CreatePartner = serde_json::from_value(json!({
            "name": "Deal blog", "slug": "deal-blog", "email": "team@deals.example"
        }))
        .unwrap();
        let partner = create_partner(&program, &brand, partner).await.unwrap();
        Self {
            router,
            key,
            offer_id: offer.id,
            partner_id: partner.id,
        }
    }

    async fn rpc(&self, message: Value) -> Value {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("authorization", format!("Bearer {}", self.key))
            .body(Body::from(message.to_string()))
            .unwrap();
        let response = send(&self.router, request, "192.0.2.45", "mcp-schemas/1.0").await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        assert!(response.body["error"].is_null(), "{}", response.body);
        response.body["result"].clone()
    }

    async fn tools(&self) -> Vec<Value> {
        let listed = self
            .rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .await;
        assert!(listed["nextCursor"].is_null(), "one page: {listed}");
        listed["tools"].as_array().unwrap().clone()
    }
}

/// A 2020-12 validator for `schema` that refuses formats it does not know, as a strict client's
/// does; building it fails on a schema such a client would not load.
fn strict_validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(schema)
        .map_err(|error| error.to_string())
}

/// Every subschema of `schema` with its JSON pointer, following the 2020-12 applicators (so a
/// property *named* `id` or `format` is never taken for a keyword).
fn subschemas<'a>(
    schema: &'a Value,
    pointer: String,
    found: &mut Vec<(String, &'a Map<String, Value>)>,
) {
    let Some(object) = schema.as_object() else {
        return; // `true`/`false` schemas have no keywords.
    };
    found.push((pointer.clone(), object));
    for (keyword, value) in object {
        let at = format!("{pointer}/{keyword}");
        match keyword.as_str() {
            "properties" | "patternProperties" | "$defs" | "dependentSchemas" | "definitions" => {
                for (name, subschema) in value.as_object().into_iter().flatten() {
                    subschemas(subschema, format!("{at}/{name}"), found);
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                for (index, subschema) in value.as_array().into_iter().flatten().enumerate() {
                    subschemas(subschema, format!("{at}/{index}"), found);
                }
            }
            "items" if value.is_array() => {
                for (index, subschema) in value.as_array().into_iter().flatten().enumerate() {
                    subschemas(subschema, format!("{at}/{index}"), found);
                }
            }
            "items"
            | "additionalProperties"
            | "unevaluatedProperties"
            | "unevaluatedItems"
            | "propertyNames"
            | "contains"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contentSchema" => {
                subschemas(value, at, found);
            }
            _ => {}
        }
    }
}

fn types(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// What a strict 2020-12 client would object to in one tool schema; empty when nothing.
fn problems(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(error) = jsonschema::draft202012::meta::validate(schema) {
        problems.push(format!(
            "not valid against the 2020-12 meta-schema: {error}"
        ));
    }
    if let Err(error) = strict_validator(schema) {
        problems.push(format!("refused by a strict 2020-12 validator: {error}"));
    }
    match schema.get("$schema") {
        None => {}
        Some(Value::String(uri)) if uri == SCHEMA_2020_12 => {}
        Some(other) => problems.push(format!("$schema is {other}, not {SCHEMA_2020_12}")),
    }
    if schema["type"] != "object" {
        problems.push(format!("root type is {}, not object", schema["type"]));
    }
    let mut found = Vec::new();
    subschemas(schema, "#".to_owned(), &mut found);
    for (pointer, subschema) in found {
        for keyword in FOREIGN_KEYWORDS {
            if subschema.contains_key(keyword) {
                problems.push(format!("{pointer}: `{keyword}` is not a 2020-12 keyword"));
            }
        }
        if subschema.get("items").is_some_and(Value::is_array) {
            problems.push(format!(
                "{pointer}: array `items` (2020-12 says prefixItems)"
            ));
        }
        for keyword in ["exclusiveMinimum", "exclusiveMaximum"] {
            if subschema
                .get(keyword)
                .is_some_and(|value| !value.is_number())
            {
                problems.push(format!("{pointer}: draft-04 boolean `{keyword}`"));
            }
        }
        match subschema.get("format") {
            None => {}
            Some(Value::String(format)) if FORMATS_2020_12.contains(&format.as_str()) => {}
            Some(other) => problems.push(format!("{pointer}: format {other} is not 2020-12's")),
        }
        if let Some(Value::String(reference)) = subschema.get("$ref") {
            let target = reference
                .strip_prefix('#')
                .filter(|target| target.starts_with("/$defs/"))
                .and_then(|target| schema.pointer(target));
            if target.is_none() {
                problems.push(format!("{pointer}: $ref {reference} names no $defs entry"));
            }
        }
        if types(subschema).contains(&"integer") {
            let bound = |keyword: &str| subschema.get(keyword).and_then(Value::as_f64);
            match (bound("minimum"), bound("maximum")) {
                (Some(minimum), Some(maximum)) if minimum <= maximum => {}
                (minimum, maximum) => problems.push(format!(
                    "{pointer}: integer without a range (minimum {minimum:?}, maximum {maximum:?})"
                )),
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_served_schema_is_plain_json_schema_2020_12() {
    let served = Served::new().await;
    let tools = served.tools().await;
    assert_eq!(tools.len(), 13, "every tool is listed");
    let mut report = Vec::new();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        for which in ["inputSchema", "outputSchema"] {
            let schema = &tool[which];
            assert!(schema.is_object(), "{name} has an {which}");
            for problem in problems(schema) {
                report.push(format!("{name} {which}: {problem}"));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[tokio::test]
async fn integer_ranges_are_the_ones_the_tools_enforce() {
    let tools = Served::new().await.tools().await;
    let tool = |name: &str| {
        tools
            .iter()
            .find(|tool| tool["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"))
    };
    // A page size keeps the 1-100 the tools check, not its u32 type's range.
    for name in [
        "list_offers",
        "list_clicks",
        "get_program_stats",
        "get_top_partners",
    ] {
        let limit = &tool(name)["inputSchema"]["properties"]["limit"];
        assert_eq!(limit["minimum"], 1, "{name}: {limit}");
        assert_eq!(limit["maximum"], 100, "{name}: {limit}");
        assert_eq!(limit.get("format"), None, "{name}: {limit}");
    }
    // Output integers get their Rust type's range: a status code is a u16, a count an i64.
    let activity = &tool("list_activity")["outputSchema"]["$defs"]["ActivityEntry"]["properties"];
    assert_eq!(
        activity["status"],
        json!({"type": "integer", "minimum": 0, "maximum": 65535})
    );
    let totals = &tool("get_program_stats")["outputSchema"]["$defs"]["Totals"]["properties"];
    assert_eq!(totals["clicks"]["minimum"], json!(i64::MIN));
    assert_eq!(totals["clicks"]["maximum"], json!(i64::MAX));
}

#[tokio::test]
async fn every_description_says_what_comes_back_and_when_to_use_it() {
    let tools = Served::new().await.tools().await;
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        names.insert(name);
        let description = tool["description"].as_str().unwrap_or_default();
        let length = description.chars().count();
        assert!(
            DESCRIPTION_CHARS.contains(&length),
            "{name}: {length} characters, not within {DESCRIPTION_CHARS:?}: {description}"
        );
        assert!(
            !description.contains('\n') && !description.contains("  "),
            "{name}: one paragraph, not the doc comment's line wrapping: {description:?}"
        );
    }
    // Each description names the output fields a model asks about, and the neighbour to call
    // instead when the question is another one.
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        let description = tool["description"].as_str().unwrap();
        let others: Vec<&str> = names
            .iter()
            .copied()
            .filter(|other| *other != name && description.contains(other))
            .collect();
        assert!(
            !others.is_empty(),
            "{name} names no other tool to prefer: {description}"
        );
        let output = &tool["outputSchema"];
        let mut shape = output;
        // A list's own fields are `data` and `next_cursor`: its items' fields are the ones to name.
        if let Some(item) = output["properties"]["data"]["items"]["$ref"].as_str() {
            shape = output.pointer(item.trim_start_matches('#')).unwrap();
        }
        let fields: Vec<&String> = shape["properties"].as_object().unwrap().keys().collect();
        let words: BTreeSet<&str> = description
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        let named = fields
            .iter()
            .filter(|field| words.contains(field.as_str()))
            .count();
        assert!(
            named * 2 >= fields.len(),
            "{name} names {named} of its {} result fields {fields:?}: {description}",
            fields.len()
        );
    }
}

#[tokio::test]
async fn real_answers_match_the_output_schemas() {
    let served = Served::new().await;
    let tools = served.tools().await;
    let calls = [
        ("whoami", json!({})),
        ("list_offers", json!({})),
        ("get_offer", json!({"id": served.offer_id})),
        ("list_partners", json!({"limit": 5})),
        ("get_partner", json!({"id": served.partner_id})),
        ("list_clicks", json!({})),
        ("list_conversions", json!({})),
        ("list_pricing_rules", json!({})),
        ("get_program_stats", json!({"group_by": "offer"})),
        ("get_top_partners", json!({})),
        ("get_fraud_summary", json!({})),
        // Last: by now the log holds the calls above, with their status codes and latencies.
        ("list_activity", json!({})),
    ];
    for (index, (name, arguments)) in calls.into_iter().enumerate() {
        let tool = tools.iter().find(|tool| tool["name"] == name).unwrap();
        let input = strict_validator(&tool["inputSchema"]).unwrap();
        assert!(input.is_valid(&arguments), "{name}: {arguments}");
        let result = served
            .rpc(
                json!({"jsonrpc": "2.0", "id": index + 2, "method": "tools/call",
                        "params": {"name": name, "arguments": arguments}}),
            )
            .await;
        assert_eq!(result["isError"], false, "{name}: {result}");
        let output = strict_validator(&tool["outputSchema"]).unwrap();
        let content = &result["structuredContent"];
        let errors: Vec<String> = output.iter_errors(content).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?} in {content}");
    }
    let activity = served
        .rpc(json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                    "params": {"name": "list_activity", "arguments": {}}}))
        .await;
    assert!(
        !activity["structuredContent"]["data"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the activity answer validated above held entries: {activity}"
    );
}
