//! The contract between `infra/template.yaml` and the code: the routes the template gives each
//! function are the routes the function declares, the local gateway serves and the Lambda
//! emulator's router uses (both ways); every
//! environment variable a function reads is set for it, and nothing else; every table's key
//! schema, indexes and TTL attribute are the ones the store code (and `--create-tables`) uses;
//! each function's policy has the least-privilege shape docs/ARCHITECTURE.md describes; the API's
//! access log carries no text a caller chose; the keys function is invoked through one
//! operator policy that allows nothing else, every invocation recorded by a CloudTrail trail that
//! is on by default; and the stream function reads the data table's stream one batch per shard at
//! a time, reporting the first failed record, with what it gives up on kept in a queue; and one
//! deploy with the parameters' defaults serves MCP (no second deploy to name the API's host).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_yaml::Value;
use tower::ServiceExt;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::BrandDataStore;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::store::schema::{DATA_TABLE, KEYS_TABLE, TableDefinition};

/// Variables no deployed function may have: the insecure development pepper.
const LOCAL_ONLY_VARS: [&str; 1] = [trcker_shared::config::INSECURE_DEV_PEPPER_VAR];
/// The log filter every function reads (`shared/src/telemetry.rs`).
const LOG_VAR: &str = "RUST_LOG";

/// What the code says about one function: the routes it declares (method, path) and the
/// environment variables it reads.
struct FunctionFacts {
    routes: Vec<(&'static str, &'static str)>,
    reads: BTreeSet<&'static str>,
}

/// Each binary and its facts.
fn functions() -> BTreeMap<&'static str, FunctionFacts> {
    let shared: Vec<&str> = trcker_shared::config::ALL_VARS
        .into_iter()
        .chain([LOG_VAR])
        .filter(|var| !LOCAL_ONLY_VARS.contains(var))
        .collect();
    let edge: Vec<&str> = shared
        .iter()
        .copied()
        .chain(trcker_shared::edge::config::ALL_VARS)
        .collect();
    let vars = |extra: &[&'static str], base: &[&'static str]| -> BTreeSet<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    let facts = |routes: &[(&'static str, &'static str)], reads| FunctionFacts {
        routes: routes.to_vec(),
        reads,
    };
    BTreeMap::from([
        ("keys", facts(&[], vars(&[], &shared))),
        (
            "public-api",
            facts(trcker_public_api::ROUTES, vars(&[], &edge)),
        ),
        (
            "capture",
            facts(
                trcker_capture::ROUTES,
                vars(&trcker_capture::config::ALL_VARS, &edge),
            ),
        ),
        (
            "mcp",
            facts(
                trcker_mcp::ROUTES,
                vars(&trcker_mcp::config::ALL_VARS, &edge),
            ),
        ),
        // No route (its event source mapping invokes it), no key service: the store's bounds
        // and the data table, and the fraud thresholds it scores with.
        (
            STREAM_BINARY,
            facts(&[], vars(&trcker_stream::config::ALL_VARS, &[LOG_VAR])),
        ),
    ])
}

/// Every declared route as (method, path, binary).
fn declared_routes() -> BTreeSet<(String, String, String)> {
    functions()
        .into_iter()
        .flat_map(|(binary, facts)| {
            facts
                .routes
                .into_iter()
                .map(move |(method, path)| (method.to_owned(), path.to_owned(), binary.to_owned()))
        })
        .collect()
}

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).expect("the template is valid YAML")
}

fn resources(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource.clone()))
        .collect()
}

/// The functions of the template, by binary name (`Metadata.BuildProperties.Binary`).
fn template_functions(template: &Value) -> BTreeMap<String, Value> {
    resources(template)
        .into_values()
        .filter(|resource| resource["Type"] == "AWS::Serverless::Function")
        .map(|resource| {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("every function names its binary")
                .to_owned();
            (binary, resource)
        })
        .collect()
}

/// What `value` holds under the intrinsic function `tag` (`!Ref`, `!Sub`, `!Equals`...).
fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == tag => Some(&tagged.value),
        _ => None,
    }
}

/// `!Ref X` in a parsed template.
fn reference(value: &Value) -> Option<&str> {
    tagged(value, "!Ref").and_then(Value::as_str)
}

/// The text of `!Sub text` in a parsed template.
fn substitution(value: &Value) -> Option<&str> {
    tagged(value, "!Sub").and_then(Value::as_str)
}

/// The logical id of the function whose binary is `binary`.
fn function_logical_id(template: &Value, binary: &str) -> String {
    resources(template)
        .into_iter()
        .find(|(_, resource)| {
            resource["Type"] == "AWS::Serverless::Function"
                && resource["Metadata"]["BuildProperties"]["Binary"] == binary
        })
        .map(|(name, _)| name)
        .unwrap_or_else(|| panic!("no function for the {binary} binary"))
}

#[test]
fn template_routes_are_the_routes_each_function_declares() {
    let template = template();
    let mut in_template: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (binary, function) in template_functions(&template) {
        let Some(events) = function["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            assert_eq!(event["Type"], "HttpApi", "{binary}: only HTTP API events");
            let properties = &event["Properties"];
            in_template.insert((
                properties["Method"].as_str().unwrap().to_ascii_uppercase(),
                properties["Path"].as_str().unwrap().to_owned(),
                binary.clone(),
            ));
        }
    }
    let declared = declared_routes();
    assert_eq!(
        in_template, declared,
        "template routes vs the functions' ROUTES"
    );
    assert!(
        !in_template.iter().any(|(_, _, binary)| binary == "keys"),
        "the keys function is never routed"
    );
}

/// The Lambda emulator's router (`[workspace.metadata.lambda.watch.router]` in Cargo.toml, used
/// by `scripts/e2e-lambda`) routes exactly the declared routes to the same binaries.
#[test]
fn the_emulator_router_routes_what_the_functions_declare() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let router = metadata["metadata"]["lambda"]["watch"]["router"]
        .as_object()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut routed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (path, target) in router {
        // The emulator spells a greedy segment `{*proxy}`; API Gateway spells it `{proxy+}`.
        let path = path.replace("{*proxy}", "{proxy+}");
        match target {
            serde_json::Value::String(binary) => {
                routed.insert(("ANY".into(), path, binary.clone()));
            }
            serde_json::Value::Array(methods) => {
                for route in methods {
                    routed.insert((
                        route["method"].as_str().unwrap().to_owned(),
                        path.clone(),
                        route["function"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            other => panic!("unexpected router entry {other}"),
        }
    }
    let declared = declared_routes();
    assert_eq!(routed, declared, "emulator router vs the functions' ROUTES");
}

/// One request per declared route, and what only that function answers to it.
#[tokio::test]
async fn the_local_gateway_serves_every_declared_route_with_its_function() {
    let keys = Arc::new(KeyService::with_insecure_dev_pepper(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
    ));
    let data: Arc<dyn BrandDataStore> = Arc::new(MemoryBrandData::new());
    let brand = BrandId::parse("contract").unwrap();
    keys.create_brand(&brand, "Contract").await.unwrap();
    let key = keys.generate(&brand, None).await.unwrap().key;
    let key = key.expose_secret();
    let router = trcker_local::gateway(
        keys,
        data,
        EdgeLimits::default(),
        CaptureConfig::default(),
        McpConfig::default(),
    );
    let send = |method: Method, path: &str, headers: &[(&str, &str)], body: &str| {
        // The gateway fills the request context itself, from the socket and the headers.
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", "localhost")
            .header("user-agent", "contract")
            .extension(ConnectInfo(SocketAddr::from(([192, 0, 2, 9], 40_000))));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Body::from(body.to_owned())).unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                headers,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }
    };
    let bearer = format!("Bearer {key}");
    let json_rpc = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let mut probed = BTreeSet::new();
    for (binary, facts) in functions() {
        for (method, path) in facts.routes {
            let answer = match (binary, method) {
                ("public-api", "ANY") => {
                    let (status, _, body) = send(
                        Method::GET,
                        "/api/public/whoami",
                        &[("authorization", &bearer)],
                        "",
                    )
                    .await;
                    (status == StatusCode::OK && body.contains("\"brand_id\":\"contract\""))
                        .then_some(())
                }
                ("capture", "POST") => {
                    let (status, _, body) = send(
                        Method::POST,
                        path,
                        &[("x-api-key", key), ("content-type", "application/json")],
                        r#"{"click_id":"contract-1"}"#,
                    )
                    .await;
                    (status == StatusCode::CREATED && body.contains("recorded")).then_some(())
                }
                ("capture", "OPTIONS") => {
                    let (status, headers, _) = send(
                        Method::OPTIONS,
                        path,
                        &[
                            ("origin", "https://shop.example"),
                            ("access-control-request-method", "POST"),
                        ],
                        "",
                    )
                    .await;
                    // Capture's own preflight: refused for an origin it was not configured for.
                    (status == StatusCode::FORBIDDEN && headers.contains_key("vary")).then_some(())
                }
                ("mcp", "POST") => {
                    let (status, _, body) = send(
                        Method::POST,
                        path,
                        &json_rpc,
                        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#,
                    )
                    .await;
                    (status == StatusCode::OK && body.contains("structuredContent")).then_some(())
                }
                ("mcp", "GET" | "DELETE") => {
                    let method = Method::from_bytes(method.as_bytes()).unwrap();
                    let (status, headers, _) =
                        send(method, path, &[("authorization", &bearer)], "").await;
                    (status == StatusCode::METHOD_NOT_ALLOWED
                        && headers.get("allow").is_some_and(|allow| allow == "POST"))
                    .then_some(())
                }
                other => panic!("no probe for {other:?} {path}: add one"),
            };
            assert!(answer.is_some(), "{binary} does not answer {method} {path}");
            probed.insert((binary, method));
        }
    }
    assert_eq!(probed.len(), 6, "{probed:?}");

    // What no route takes, API Gateway answers itself, with a key or without: no function sees it.
    for (method, path) in [
        (Method::PUT, "/api/mcp"),
        (Method::GET, "/api/clicks/capture"),
        (Method::GET, "/"),
        (Method::GET, "/api/public"),
    ] {
        for headers in [&[("authorization", bearer.as_str())][..], &[]] {
            let (status, response_headers, body) = send(method.clone(), path, headers, "").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(
                body,
                trcker_local::api_gateway_routes::NOT_FOUND_BODY,
                "{method} {path}"
            );
            assert_eq!(response_headers["content-type"], "application/json");
        }
    }
}

#[test]
fn every_variable_a_function_reads_is_set_for_it_and_nothing_else() {
    let template = template();
    let globals: BTreeMap<String, Value> =
        template["Globals"]["Function"]["Environment"]["Variables"]
            .as_mapping()
            .map(|variables| {
                variables
                    .iter()
                    .map(|(name, value)| (name.as_str().unwrap().to_owned(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
    let deployed = template_functions(&template);
    let expected = functions();
    assert_eq!(
        deployed.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected.keys().copied().collect::<BTreeSet<_>>(),
        "the template deploys exactly these functions"
    );
    for (binary, FunctionFacts { reads, .. }) in expected {
        let function = &deployed[binary];
        let mut set: BTreeMap<String, Value> = globals.clone();
        if let Some(variables) = function["Properties"]["Environment"]["Variables"].as_mapping() {
            for (name, value) in variables {
                set.insert(name.as_str().unwrap().to_owned(), value.clone());
            }
        }
        let names: BTreeSet<&str> = set.keys().map(String::as_str).collect();
        assert_eq!(names, reads, "{binary}: variables set vs variables read");
        for local_only in LOCAL_ONLY_VARS {
            assert!(!names.contains(local_only), "{binary} sets {local_only}");
        }
        // The tables and the pepper are the stack's own.
        if let Some(table) = set.get(trcker_shared::config::KEYS_TABLE_VAR) {
            assert_eq!(reference(table), Some("KeysTable"), "{binary}");
        }
        if let Some(secret) = set.get(trcker_shared::config::PEPPER_SECRET_VAR) {
            assert_eq!(reference(secret), Some("PepperSecret"), "{binary}");
        }
        if let Some(table) = set.get("TRCKER_DATA_TABLE") {
            assert_eq!(reference(table), Some("DataTable"), "{binary}");
        }
    }
}

/// One `sam deploy --guided` serves MCP (issue 23): every parameter has a default, and the MCP
/// function's host list comes from `McpAllowedHosts`, whose default (empty) is one the Lambda's
/// configuration starts with and that adds no host: the function answers the host in API
/// Gateway's request context alone, which needs no second deploy to learn the API's host.
#[test]
fn one_deploy_with_the_defaults_serves_mcp() {
    use trcker_mcp::config::ALLOWED_HOSTS_VAR;

    let template = template();
    let parameters = template["Parameters"].as_mapping().expect("Parameters");
    for (name, parameter) in parameters {
        assert!(
            parameter.get("Default").is_some(),
            "{name:?} has no default: a first deploy would have to invent it"
        );
    }
    let mcp = &template_functions(&template)["mcp"];
    let hosts = &mcp["Properties"]["Environment"]["Variables"][ALLOWED_HOSTS_VAR];
    assert_eq!(reference(hosts), Some("McpAllowedHosts"));
    let default = template["Parameters"]["McpAllowedHosts"]["Default"]
        .as_str()
        .expect("a string default");
    let config = McpConfig::lambda_from_lookup(|name| {
        (name == ALLOWED_HOSTS_VAR).then(|| default.to_owned())
    })
    .unwrap_or_else(|error| panic!("the default McpAllowedHosts stops the function: {error}"));
    assert_eq!(config.allowed_hosts, Vec::<String>::new());
}

/// The template's table whose logical id is `<Purpose>Table`.
fn table<'a>(resources: &'a BTreeMap<String, Value>, definition: &TableDefinition) -> &'a Value {
    let mut purpose = definition.purpose.to_owned();
    purpose[..1].make_ascii_uppercase();
    let name = format!("{purpose}Table");
    let resource = resources
        .get(&name)
        .unwrap_or_else(|| panic!("the template has no {name}"));
    assert_eq!(resource["Type"], "AWS::DynamoDB::Table", "{name}");
    &resource["Properties"]
}

fn key_schema(value: &Value) -> Vec<(String, String)> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|element| {
            (
                element["AttributeName"].as_str().unwrap().to_owned(),
                element["KeyType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn hash_and_range(partition_key: &str, sort_key: &str) -> Vec<(String, String)> {
    vec![
        (partition_key.to_owned(), "HASH".to_owned()),
        (sort_key.to_owned(), "RANGE".to_owned()),
    ]
}

#[test]
fn every_table_matches_the_definition_the_store_code_uses() {
    let template = template();
    let resources = resources(&template);
    let tables = resources
        .values()
        .filter(|resource| resource["Type"] == "AWS::DynamoDB::Table")
        .count();
    assert_eq!(tables, 2, "the keys and data tables, no other");
    for definition in [&KEYS_TABLE, &DATA_TABLE] {
        let properties = table(&resources, definition);
        let what = definition.purpose;
        assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST", "{what}");
        assert_eq!(
            key_schema(&properties["KeySchema"]),
            hash_and_range(definition.partition_key, definition.sort_key),
            "{what}"
        );
        // Every key attribute is declared as a string, and only key attributes are declared.
        let mut key_attributes: BTreeSet<String> = [definition.partition_key, definition.sort_key]
            .into_iter()
            .map(str::to_owned)
            .collect();
        for index in definition.indexes {
            key_attributes.insert(index.partition_key.to_owned());
            key_attributes.insert(index.sort_key.to_owned());
        }
        let declared: BTreeSet<String> = properties["AttributeDefinitions"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|attribute| {
                assert_eq!(attribute["AttributeType"], "S", "{what}");
                attribute["AttributeName"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(declared, key_attributes, "{what}: attribute definitions");

        let indexes: BTreeMap<String, Value> = properties["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|indexes| {
                indexes
                    .iter()
                    .map(|index| {
                        (
                            index["IndexName"].as_str().unwrap().to_owned(),
                            index.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            indexes.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            definition.indexes.iter().map(|index| index.name).collect(),
            "{what}: indexes"
        );
        for index in definition.indexes {
            let declared = &indexes[index.name];
            assert_eq!(
                key_schema(&declared["KeySchema"]),
                hash_and_range(index.partition_key, index.sort_key),
                "{what}.{}",
                index.name
            );
            assert_eq!(declared["Projection"]["ProjectionType"], "ALL");
        }

        let ttl = &properties["TimeToLiveSpecification"];
        match definition.ttl_attribute {
            Some(attribute) => {
                assert_eq!(ttl["AttributeName"], attribute, "{what}: TTL attribute");
                assert_eq!(ttl["Enabled"], true, "{what}: TTL enabled");
            }
            None => assert!(ttl.is_null(), "{what}: no TTL"),
        }
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{what}"
        );
        assert_eq!(properties["SSESpecification"]["SSEEnabled"], true, "{what}");
        assert_eq!(
            reference(&properties["DeletionProtectionEnabled"]),
            Some("TableDeletionProtection"),
            "{what}"
        );
    }
}

/// What a policy statement's `Resource` names: a stack resource's logical id (with any suffix
/// such as `/index/by_time`), or the literal text.
fn resource_names(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().flat_map(resource_names).collect(),
        Value::Tagged(tagged) => {
            let text = tagged.value.as_str().unwrap_or_default();
            let name = match tagged.tag.to_string().as_str() {
                "!GetAtt" => text.trim_end_matches(".Arn").to_owned(),
                "!Sub" => text.replace("${", "").replacen(".Arn}", "", 1),
                _ => text.to_owned(),
            };
            vec![name]
        }
        other => vec![other.as_str().unwrap_or_default().to_owned()],
    }
}

/// A statement's actions, one string each.
fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::Sequence(items) => items
            .iter()
            .map(|action| action.as_str().unwrap().to_owned())
            .collect(),
        action => vec![action.as_str().unwrap().to_owned()],
    }
}

/// The `dynamodb:LeadingKeys` patterns of a statement under `operator`, if it has them.
fn leading_keys(statement: &Value, operator: &str) -> Option<Vec<String>> {
    statement["Condition"][operator]["dynamodb:LeadingKeys"]
        .as_sequence()
        .map(|patterns| {
            patterns
                .iter()
                .map(|pattern| pattern.as_str().unwrap().to_owned())
                .collect()
        })
}

/// The DynamoDB actions the store code calls (`shared/src/store/dynamo.rs`,
/// `shared/src/brand_data/dynamo.rs`; a `TransactWriteItems` is authorised per item as the
/// action inside it). Nothing else may be granted: no Scan, no batch writes, no table management.
const STORE_ACTIONS: [&str; 5] = [
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];
const WRITE_ACTIONS: [&str; 3] = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];
/// What reading a DynamoDB stream takes (the event source mapping reads with the function's
/// role): only the stream function's, only on the data table's stream.
const STREAM_READ_ACTIONS: [&str; 4] = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];
/// The binary of the function that reads the data table's stream.
const STREAM_BINARY: &str = "stream";

/// Least privilege as far as the template shows it (IAM itself is not evaluated by moto): each
/// function has exactly one inline policy of `Allow` statements; no wildcard action, no Scan, no
/// `Resource: "*"`; DynamoDB actions only on the stack's two tables, the pepper only by its own
/// `GetSecretValue`; key records written only by `keys` (the other functions' one write to the
/// keys table is the last-used update, held to the key-use items and the attributes it names:
/// docs/ARCHITECTURE.md, "IAM per function"); verification reads only the hash lookups; every
/// write to the data table is confined by `dynamodb:LeadingKeys` to the item kinds the function
/// writes; the pepper is read exactly by the functions that verify keys; and only the stream
/// function reads a stream (the data table's) and sends to a queue (its mapping's failure queue).
/// Only the functions' own policies are held here: the operators' managed policy is no
/// function's (a function's `Policies` entry naming it would fail "an inline policy"), and
/// `the_operator_policy_allows_only_invoking_the_keys_function` holds it.
#[test]
fn each_function_has_one_least_privilege_policy() {
    let template = template();
    let failure_queue = stream_failure_queue(&template);
    let facts = functions();
    for (binary, function) in template_functions(&template) {
        let policies = function["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{binary}: Policies"));
        assert_eq!(policies.len(), 1, "{binary}: one policy per function");
        let statements = policies[0]["Statement"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{binary}: an inline policy, not a managed one"));
        let mut reads_pepper = false;
        for statement in statements {
            let sid = statement["Sid"].as_str().unwrap_or("?");
            let what = format!("{binary}/{sid}");
            assert_eq!(statement["Effect"], "Allow", "{what}");
            let actions = actions(statement);
            let resources = resource_names(&statement["Resource"]);
            assert!(!resources.is_empty(), "{what}: a resource");
            for resource in &resources {
                assert!(!resource.contains('*'), "{what}: resource {resource}");
            }
            for action in &actions {
                assert!(!action.contains('*'), "{what}: wildcard action {action}");
                if action == "secretsmanager:GetSecretValue" {
                    assert_eq!(resources, ["PepperSecret"], "{what}");
                    reads_pepper = true;
                    continue;
                }
                if STREAM_READ_ACTIONS.contains(&action.as_str()) {
                    assert_eq!(binary, STREAM_BINARY, "{what}: {action}");
                    assert_eq!(resources, ["DataTable.StreamArn"], "{what}: {action}");
                    continue;
                }
                if action == "sqs:SendMessage" {
                    assert_eq!(binary, STREAM_BINARY, "{what}: {action}");
                    assert_eq!(
                        resources,
                        std::slice::from_ref(&failure_queue),
                        "{what}: only the mapping's failure queue"
                    );
                    continue;
                }
                assert!(
                    STORE_ACTIONS.contains(&action.as_str()),
                    "{what}: {action} is not an action the store code calls"
                );
                for resource in &resources {
                    assert!(
                        resource == "KeysTable"
                            || resource == "DataTable"
                            || resource.starts_with("DataTable/index/"),
                        "{what}: {action} on {resource}"
                    );
                }
            }
            let writes = actions
                .iter()
                .any(|action| WRITE_ACTIONS.contains(&action.as_str()));
            let on_keys = resources.iter().any(|resource| resource == "KeysTable");
            let on_data = resources
                .iter()
                .any(|resource| resource.starts_with("DataTable"));
            if on_keys && binary != "keys" {
                if writes {
                    assert_eq!(actions, ["dynamodb:UpdateItem"], "{what}: only keys writes");
                    assert_eq!(
                        leading_keys(statement, "ForAllValues:StringLike"),
                        Some(vec!["KEYUSE#*".to_owned()]),
                        "{what}: only key-use items, never a key record or a hash lookup"
                    );
                    let attributes: Vec<&str> = statement["Condition"]["ForAllValues:StringEquals"]
                        ["dynamodb:Attributes"]
                        .as_sequence()
                        .unwrap_or_else(|| panic!("{what}: attributes named"))
                        .iter()
                        .map(|attribute| attribute.as_str().unwrap())
                        .collect();
                    assert_eq!(
                        attributes,
                        ["pk", "sk", "last_used_at", "revoked_at"],
                        "{what}"
                    );
                } else {
                    assert_eq!(actions, ["dynamodb:GetItem"], "{what}: verify reads");
                    assert_eq!(
                        leading_keys(statement, "ForAllValues:StringLike"),
                        Some(vec!["KEYHASH#*".to_owned()]),
                        "{what}: only the hash lookups"
                    );
                }
            }
            if on_data && writes {
                let confined = leading_keys(statement, "ForAllValues:StringLike")
                    .or_else(|| leading_keys(statement, "ForAllValues:StringNotLike"));
                assert!(
                    confined.is_some_and(|patterns| !patterns.is_empty()),
                    "{what}: data writes confined by dynamodb:LeadingKeys"
                );
            }
        }
        let verifies_keys = facts[binary.as_str()]
            .reads
            .contains(trcker_shared::config::PEPPER_SECRET_VAR);
        assert_eq!(
            reads_pepper, verifies_keys,
            "{binary}: reads the pepper exactly if it verifies keys"
        );
    }
}

/// Every `$context` variable the API's access log may carry. None holds text the caller chose:
/// API Gateway writes the log whether or not a function runs, and cannot redact a key in it
/// (`infra/template.yaml` gives the reason field by field).
const ACCESS_LOG_VARIABLES: [&str; 15] = [
    "$context.requestId",
    "$context.requestTime",
    "$context.requestTimeEpoch",
    "$context.identity.sourceIp",
    "$context.httpMethod",
    "$context.routeKey",
    "$context.protocol",
    "$context.domainName",
    "$context.status",
    "$context.responseLength",
    "$context.responseLatency",
    "$context.integrationLatency",
    "$context.integrationStatus",
    "$context.integrationErrorMessage",
    "$context.error.message",
];

/// Variables that carry the caller's text verbatim: the User-Agent header and the raw request
/// path (a key pasted into a segment included). The route is logged as `$context.routeKey`, the
/// template's route, never the request's path.
const CALLER_TEXT_VARIABLES: [&str; 2] = ["$context.identity.userAgent", "$context.path"];

#[test]
fn the_access_log_carries_no_text_the_caller_chose() {
    let template = template();
    let api = resources(&template)
        .into_values()
        .filter(|resource| resource["Type"] == "AWS::Serverless::HttpApi")
        .collect::<Vec<_>>();
    assert_eq!(api.len(), 1, "one HTTP API");
    let format = api[0]["Properties"]["AccessLogSettings"]["Format"]
        .as_str()
        .expect("the HTTP API has an access log format");
    for variable in CALLER_TEXT_VARIABLES {
        assert!(
            !format.contains(variable),
            "the access log logs {variable} verbatim"
        );
    }
    // Nor a header, a query string or a request parameter under any spelling.
    let lower = format.to_ascii_lowercase();
    for caller_text in [
        "useragent",
        "querystring",
        "header",
        "$input",
        "$request",
        "$method",
    ] {
        assert!(
            !lower.contains(caller_text),
            "the access log logs {caller_text}"
        );
    }
    // One JSON object per request, each field exactly one of the allowed variables.
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(format).expect("the access log format is one JSON object");
    let mut logged = BTreeSet::new();
    for (field, value) in &fields {
        let variable = value.as_str().unwrap_or_default();
        assert!(
            ACCESS_LOG_VARIABLES.contains(&variable),
            "access log field {field}: {variable} is not an allowed variable"
        );
        assert!(logged.insert(variable), "{variable} logged twice");
    }
    assert_eq!(
        logged,
        ACCESS_LOG_VARIABLES.into_iter().collect::<BTreeSet<_>>(),
        "the access log format vs ACCESS_LOG_VARIABLES"
    );
}

/// The operators' one permission: `lambda:InvokeFunction` on the keys function, nothing else and
/// nowhere else, exported for operators to attach (the template attaches it to nobody).
#[test]
fn the_operator_policy_allows_only_invoking_the_keys_function() {
    let template = template();
    let resources = resources(&template);
    let keys_function = function_logical_id(&template, "keys");
    let iam: Vec<&str> = resources
        .iter()
        .filter(|(_, resource)| {
            resource["Type"]
                .as_str()
                .is_some_and(|kind| kind.starts_with("AWS::IAM::"))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        iam,
        ["KeysOperatorInvokePolicy"],
        "the stack's only IAM resource besides the function roles SAM makes"
    );
    let policy = &resources["KeysOperatorInvokePolicy"];
    assert_eq!(policy["Type"], "AWS::IAM::ManagedPolicy");
    assert!(policy["Condition"].is_null(), "the policy is always there");
    let properties = &policy["Properties"];
    for attachment in ["Roles", "Groups", "Users"] {
        assert!(
            properties[attachment].is_null(),
            "operators attach the policy, not the template ({attachment})"
        );
    }
    let statements = properties["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("the policy's statements");
    assert_eq!(statements.len(), 1, "one statement");
    let statement = &statements[0];
    assert_eq!(statement["Effect"], "Allow");
    for negation in ["NotAction", "NotResource", "Condition"] {
        assert!(statement[negation].is_null(), "no {negation}");
    }
    assert_eq!(actions(statement), ["lambda:InvokeFunction"]);
    // The unqualified ARN, `!GetAtt <keys>.Arn`: the template publishes no version or alias.
    assert_eq!(
        tagged(&statement["Resource"], "!GetAtt").and_then(Value::as_str),
        Some(format!("{keys_function}.Arn").as_str()),
        "only the keys function"
    );
    assert!(
        template_functions(&template)
            .values()
            .all(|function| function["Properties"]["AutoPublishAlias"].is_null()),
        "a published alias would need naming in the policy and the trail"
    );
    let output = &template["Outputs"]["KeysOperatorInvokePolicyArn"];
    assert_eq!(
        reference(&output["Value"]),
        Some("KeysOperatorInvokePolicy")
    );
    assert!(output["Condition"].is_null(), "always output");
    assert!(
        substitution(&output["Export"]["Name"]).is_some(),
        "exported for other stacks"
    );
}

/// Who invoked the keys function: a trail of the stack (parameter `KeysInvokeAuditTrail`, on by
/// default) records the function's Invoke data events, and only those, into a bucket of its own
/// that only that trail writes to, over TLS only, encrypted, versioned, never public, retained.
#[test]
fn a_trail_records_every_invocation_of_the_keys_function_by_default() {
    let template = template();
    let resources = resources(&template);
    let keys_function = function_logical_id(&template, "keys");

    let parameter = &template["Parameters"]["KeysInvokeAuditTrail"];
    assert_eq!(parameter["Default"], "true", "on by default");
    assert_eq!(
        parameter["AllowedValues"],
        serde_yaml::from_str::<Value>(r#"["true", "false"]"#).unwrap()
    );
    const CONDITION: &str = "KeysInvokeAuditTrailOn";
    let condition = tagged(&template["Conditions"][CONDITION], "!Equals")
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("Conditions.{CONDITION}: !Equals"));
    assert_eq!(condition.len(), 2);
    assert_eq!(reference(&condition[0]), Some("KeysInvokeAuditTrail"));
    assert_eq!(condition[1], "true");

    let of_type = |kind: &str| -> Vec<(&String, &Value)> {
        resources
            .iter()
            .filter(|(_, resource)| resource["Type"] == kind)
            .collect()
    };
    let trails = of_type("AWS::CloudTrail::Trail");
    assert_eq!(trails.len(), 1, "one trail");
    let (trail_name, trail) = trails[0];
    assert_eq!(trail["Condition"], CONDITION, "{trail_name}");
    let properties = &trail["Properties"];
    assert_eq!(properties["IsLogging"], true, "{trail_name}");
    assert_eq!(properties["EnableLogFileValidation"], true, "{trail_name}");
    assert!(
        properties["EventSelectors"].is_null(),
        "{trail_name}: advanced event selectors only"
    );

    // Every selector: Lambda data events of the keys function, by its ARN (and qualified ARNs,
    // `<ARN>:`), never another function's and never management events.
    let selectors = properties["AdvancedEventSelectors"]
        .as_sequence()
        .expect("AdvancedEventSelectors");
    let mut by_unqualified_arn = false;
    for selector in selectors {
        let what = selector["Name"].as_str().unwrap_or("?");
        let fields: BTreeMap<&str, &Value> = selector["FieldSelectors"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{what}: FieldSelectors"))
            .iter()
            .map(|field| (field["Field"].as_str().unwrap(), field))
            .collect();
        assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            ["eventCategory", "resources.ARN", "resources.type"],
            "{what}"
        );
        assert_eq!(fields["eventCategory"]["Equals"][0], "Data", "{what}");
        assert_eq!(
            fields["resources.type"]["Equals"][0], "AWS::Lambda::Function",
            "{what}"
        );
        let arn = fields["resources.ARN"];
        for field in [fields["eventCategory"], fields["resources.type"], arn] {
            let values = field["Equals"]
                .as_sequence()
                .or_else(|| field["StartsWith"].as_sequence())
                .unwrap_or_else(|| panic!("{what}: Equals or StartsWith"));
            assert_eq!(values.len(), 1, "{what}: one value per field");
        }
        if let Some(equals) = arn["Equals"].as_sequence() {
            assert_eq!(
                resource_names(&equals[0]),
                std::slice::from_ref(&keys_function),
                "{what}"
            );
            by_unqualified_arn = true;
        } else {
            assert_eq!(
                substitution(&arn["StartsWith"][0]),
                Some(format!("${{{keys_function}.Arn}}:").as_str()),
                "{what}: the keys function's qualified ARNs"
            );
        }
    }
    assert!(
        by_unqualified_arn,
        "a selector names the keys function's ARN"
    );

    // Its bucket: of this stack, under the same condition, retained, private, encrypted, versioned.
    let bucket_name =
        reference(&properties["S3BucketName"]).expect("the trail's bucket is the stack's");
    let bucket = &resources[bucket_name];
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    assert_eq!(bucket["Condition"], CONDITION, "{bucket_name}");
    assert_eq!(bucket["DeletionPolicy"], "Retain", "{bucket_name}");
    assert_eq!(bucket["UpdateReplacePolicy"], "Retain", "{bucket_name}");
    let bucket_properties = &bucket["Properties"];
    assert!(
        bucket_properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .is_string(),
        "{bucket_name}: encrypted"
    );
    for block in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            bucket_properties["PublicAccessBlockConfiguration"][block], true,
            "{bucket_name}: {block}"
        );
    }
    assert_eq!(
        bucket_properties["VersioningConfiguration"]["Status"], "Enabled",
        "{bucket_name}"
    );

    // Its bucket policy: CloudTrail, for this trail alone (aws:SourceArn), and TLS only.
    let policies = of_type("AWS::S3::BucketPolicy");
    assert_eq!(policies.len(), 1, "one bucket policy");
    let (policy_name, policy) = policies[0];
    assert_eq!(policy["Condition"], CONDITION, "{policy_name}");
    assert_eq!(
        reference(&policy["Properties"]["Bucket"]),
        Some(bucket_name)
    );
    assert_eq!(
        trail["DependsOn"].as_str(),
        Some(policy_name.as_str()),
        "{trail_name} waits for the policy that lets CloudTrail write"
    );
    let trail_arn = format!(
        "arn:${{AWS::Partition}}:cloudtrail:${{AWS::Region}}:${{AWS::AccountId}}:trail/{}",
        substitution(&properties["TrailName"]).expect("TrailName: !Sub")
    );
    let mut allows = 0;
    let mut tls_only = false;
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("the bucket policy's statements")
    {
        let sid = statement["Sid"].as_str().unwrap_or("?");
        match statement["Effect"].as_str() {
            Some("Allow") => {
                allows += 1;
                assert_eq!(
                    statement["Principal"]["Service"], "cloudtrail.amazonaws.com",
                    "{sid}"
                );
                assert!(
                    matches!(
                        actions(statement).as_slice(),
                        [action] if action == "s3:GetBucketAcl" || action == "s3:PutObject"
                    ),
                    "{sid}: CloudTrail's two calls only"
                );
                assert_eq!(
                    substitution(&statement["Condition"]["StringEquals"]["aws:SourceArn"]),
                    Some(trail_arn.as_str()),
                    "{sid}: for this trail alone"
                );
            }
            Some("Deny") => {
                assert_eq!(statement["Principal"], "*", "{sid}");
                assert_eq!(
                    statement["Condition"]["Bool"]["aws:SecureTransport"], "false",
                    "{sid}"
                );
                tls_only = true;
            }
            other => panic!("{sid}: Effect {other:?}"),
        }
    }
    assert_eq!(allows, 2, "CloudTrail's ACL check and its writes");
    assert!(tls_only, "TLS only");

    for output in ["KeysInvokeTrailName", "KeysInvokeTrailBucketName"] {
        assert_eq!(
            template["Outputs"][output]["Condition"], CONDITION,
            "{output}"
        );
    }
}

/// The logical id of the queue the data table's event source mapping sends what it gives up on.
fn stream_failure_queue(template: &Value) -> String {
    let (_, mapping) = stream_mapping(template);
    tagged(
        &mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"],
        "!GetAtt",
    )
    .and_then(Value::as_str)
    .and_then(|arn| arn.strip_suffix(".Arn"))
    .expect("the mapping's on-failure destination: !GetAtt <Queue>.Arn")
    .to_owned()
}

/// The template's one event source mapping, by logical id.
fn stream_mapping(template: &Value) -> (String, Value) {
    let mappings: Vec<(String, Value)> = resources(template)
        .into_iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Lambda::EventSourceMapping")
        .collect();
    assert_eq!(
        mappings.len(),
        1,
        "one event source mapping: the data table's stream"
    );
    mappings.into_iter().next().unwrap()
}

/// The data table streams both images of every change (the stream function decodes a new click's
/// and a rescoring's before and after) into the stream function, through one event source
/// mapping: from the oldest record, one batch per shard at a time (the derivation's per-partition
/// marks rely on each partition's changes applying in order), the first failed record reported
/// (`ReportBatchItemFailures`, which needs no tumbling window: a windowed invocation's answer
/// must carry a `state` the function does not write), bounded retries, and what it gives up on
/// sent to an encrypted queue that keeps it 14 days. The function has no route, no key-service
/// variable and no grant on the keys table or the pepper.
#[test]
fn the_stream_function_reads_the_data_tables_stream_in_order() {
    let template = template();
    let resources = resources(&template);
    let data_table = table(&resources, &DATA_TABLE);
    assert_eq!(
        data_table["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES",
        "the data table's stream carries both images"
    );
    let keys_table = table(&resources, &KEYS_TABLE);
    assert!(
        keys_table["StreamSpecification"].is_null(),
        "the keys table has no stream"
    );

    let function = function_logical_id(&template, STREAM_BINARY);
    let (name, mapping) = stream_mapping(&template);
    let properties = &mapping["Properties"];
    assert_eq!(
        reference(&properties["FunctionName"]),
        Some(function.as_str()),
        "{name}"
    );
    assert_eq!(
        tagged(&properties["EventSourceArn"], "!GetAtt").and_then(Value::as_str),
        Some("DataTable.StreamArn"),
        "{name}: the data table's stream"
    );
    for (property, expected) in [
        ("StartingPosition", Value::from("TRIM_HORIZON")),
        ("BatchSize", Value::from(1000)),
        ("MaximumBatchingWindowInSeconds", Value::from(1)),
        ("ParallelizationFactor", Value::from(1)),
        ("BisectBatchOnFunctionError", Value::from(true)),
    ] {
        assert_eq!(properties[property], expected, "{name}: {property}");
    }
    assert_eq!(
        properties["FunctionResponseTypes"],
        serde_yaml::from_str::<Value>("[ReportBatchItemFailures]").unwrap(),
        "{name}: the function reports the first failed record"
    );
    assert!(
        properties["TumblingWindowInSeconds"].is_null(),
        "{name}: no tumbling window (its answers would need a state)"
    );
    assert!(
        properties["FilterCriteria"].is_null(),
        "{name}: every record reaches the function (a filtered-out one would never be derived)"
    );
    // Retried until the records age out: a batch holds capture activity records, which a number
    // of retries would drop during a long enough outage.
    assert_eq!(
        properties["MaximumRetryAttempts"], -1,
        "{name}: retries bounded by record age, not a count"
    );
    let age = properties["MaximumRecordAgeInSeconds"]
        .as_i64()
        .expect("bounded record age");
    assert!(
        (60..=86_400).contains(&age),
        "{name}: a record age within the stream's 24 hours, not {age}"
    );

    let queue_name = stream_failure_queue(&template);
    let queue = &resources[&queue_name];
    assert_eq!(queue["Type"], "AWS::SQS::Queue", "{queue_name}");
    assert_eq!(
        queue["Properties"]["MessageRetentionPeriod"], 1_209_600,
        "{queue_name}: kept 14 days"
    );
    assert!(
        queue["Properties"]["SqsManagedSseEnabled"] == true
            || !queue["Properties"]["KmsMasterKeyId"].is_null(),
        "{queue_name}: encrypted"
    );
    assert_eq!(queue["DeletionPolicy"], "Retain", "{queue_name}");

    // No route, no key service; the pepper's resource policy does not name its role.
    let deployed = template_functions(&template);
    let stream = &deployed[STREAM_BINARY];
    assert!(
        stream["Properties"]["Events"].is_null(),
        "the stream function has no route: its mapping invokes it"
    );
    let readers = &resources["PepperSecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"][0]
        ["Condition"]["ArnNotEquals"]["aws:PrincipalArn"];
    let readers: Vec<String> = readers
        .as_sequence()
        .expect("the pepper's readers")
        .iter()
        .flat_map(resource_names)
        .collect();
    let expected_readers: BTreeSet<String> = functions()
        .into_iter()
        .filter(|(_, facts)| {
            facts
                .reads
                .contains(trcker_shared::config::PEPPER_SECRET_VAR)
        })
        .map(|(binary, _)| format!("{}Role", function_logical_id(&template, binary)))
        .collect();
    assert_eq!(
        readers.into_iter().collect::<BTreeSet<_>>(),
        expected_readers,
        "the pepper's readers are the functions that verify keys"
    );
}

/// The stream function's grants on the data table are the calls `derive_batch` makes, on the
/// item kinds it derives, and nothing else: `GetItem` of a click (rescoring after a redelivery)
/// and of a signal's claim; `PutItem` of fraud-signal documents and their claims (`<brand>`);
/// `UpdateItem` of source counters, clicks (rescoring) and rollup rows. No `Query`, no `DeleteItem`, nothing on the keys table.
#[test]
fn the_stream_function_writes_only_what_it_derives() {
    let template = template();
    let stream = &template_functions(&template)[STREAM_BINARY];
    let statements = stream["Properties"]["Policies"][0]["Statement"]
        .as_sequence()
        .expect("the stream function's statements");
    let mut grants: BTreeSet<(String, String, Vec<String>)> = BTreeSet::new();
    for statement in statements {
        let resources = resource_names(&statement["Resource"]);
        if resources != ["DataTable"] {
            continue;
        }
        for action in actions(statement) {
            for operator in ["ForAllValues:StringLike", "ForAllValues:StringNotLike"] {
                if let Some(patterns) = leading_keys(statement, operator) {
                    grants.insert((action.clone(), operator.to_owned(), patterns));
                }
            }
        }
    }
    let like = "ForAllValues:StringLike";
    let not_like = "ForAllValues:StringNotLike";
    let grant = |action: &str, operator: &str, patterns: &[&str]| {
        (
            format!("dynamodb:{action}"),
            operator.to_owned(),
            patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(),
        )
    };
    let expected: BTreeSet<_> = [
        grant("GetItem", like, &["*#CLICK#*"]),
        grant("GetItem", not_like, &["*#*"]),
        grant("PutItem", not_like, &["*#*"]),
        grant(
            "UpdateItem",
            like,
            &["*#SOURCE#*", "*#CLICK#*", "*#ROLLUP#*"],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(grants, expected, "the stream function's data-table grants");
    for statement in statements {
        let resources = resource_names(&statement["Resource"]);
        assert!(
            !resources.iter().any(|resource| resource == "KeysTable"),
            "the stream function touches no key"
        );
        if resources == ["DataTable"] {
            assert!(
                !statement["Condition"].is_null(),
                "every data-table grant is confined by dynamodb:LeadingKeys"
            );
        }
    }
}
