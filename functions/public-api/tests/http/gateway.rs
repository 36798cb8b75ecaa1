//! What reaches the router from outside: API Gateway sample events through the Lambda request
//! adapter, and the served OpenAPI document against the router.

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use trcker_shared::brand_data::ClickStoreExt;
use trcker_shared::brand_data::clicks::ClickRecord;
use trcker_shared::clock::{Clock, SystemClock};
use trcker_shared::ids::BrandId;
use trcker_shared::testing::{Backend, TestApp};

use crate::api;

fn event(name: &str, substitutions: &[(&str, &str)]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/public-api")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (placeholder, value) in substitutions {
        text = text.replace(placeholder, value);
    }
    text
}

#[tokio::test]
async fn api_gateway_events_pass_through_the_lambda_adapter() {
    let api = api(Backend::in_memory());
    let key = api.brand("acme").await;
    let brand_id = BrandId::parse("acme").unwrap();
    let revoked = api.keys.generate(&brand_id, None).await.unwrap();
    api.keys.revoke(&brand_id, &revoked.key_id).await.unwrap();

    let whoami =
        lambda_http::request::from_str(&event("whoami.json", &[("{{KEY}}", &key)])).unwrap();
    let response = api
        .send_request(whoami.map(|body| Body::from(body.to_vec())))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json());
    assert_eq!(response.json()["brand_id"], "acme");

    let create =
        lambda_http::request::from_str(&event("create-partner.json", &[("{{KEY}}", &key)]))
            .unwrap();
    let response = api
        .send_request(create.map(|body| Body::from(body.to_vec())))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.json());
    assert_eq!(response.json()["slug"], "fixture-partner");

    let leaked = lambda_http::request::from_str(&event(
        "list-partners-revoked-key.json",
        &[("{{REVOKED_KEY}}", revoked.key.expose_secret())],
    ))
    .unwrap();
    let response = api
        .send_request(leaked.map(|body| Body::from(body.to_vec())))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let page = api
        .data
        .list_activity(&brand_id, Default::default(), 10, None)
        .await
        .unwrap();
    let by_request: Vec<(&str, &str, &str, &str)> = page
        .items
        .iter()
        .map(|r| {
            (
                r.request_id.as_str(),
                r.source_ip.as_str(),
                r.user_agent.as_str(),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        by_request,
        [
            (
                "fixture-request-3",
                "203.0.113.99",
                "leaky-ci/2.3",
                "revoked_key"
            ),
            (
                "fixture-request-2",
                "198.51.100.23",
                "fixture-agent/1.0",
                "ok"
            ),
            (
                "fixture-request-1",
                "198.51.100.23",
                "fixture-agent/1.0",
                "ok"
            ),
        ],
        "the API Gateway context (request id, source IP, user agent) reaches the audit trail"
    );
}

/// The served OpenAPI document and the router agree: every documented operation is routed (not
/// "no such route", not 405) and answers with a status the document lists for it.
#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let api = api(Backend::in_memory());
    let key = api.brand("acme").await;
    let document = api.get("/api/public/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.json()["openapi"], "3.1.0");
    assert!(document.json()["components"]["securitySchemes"]["bearer"].is_object());
    let mut operations = 0;
    for (path, item) in document.json()["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let concrete = path.replace("{id}", "x");
            let response = api
                .request(method.clone(), &concrete)
                .bearer(&key)
                .json_opt(body)
                .await;
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_ne!(
                response.json()["error"]["message"],
                "no such route",
                "{method} {path}"
            );
            let documented: Vec<&String> =
                operation["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.contains(&&response.status.as_u16().to_string()),
                "{method} {path} answered {} which is not documented ({documented:?})",
                response.status
            );
        }
    }
    assert_eq!(operations, 28, "every route of the router is documented");
}

/// The served document's examples, played against the API: each request example (its ids
/// swapped for the fresh brand's) is sent as is, and each success example has the shape of the
/// real answer (the same fields, nested alike), so what a generated client's docs show is what
/// the API does.
struct ExamplePlayer<'a> {
    api: &'a TestApp,
    key: String,
    document: Value,
    /// The examples' ids and the real ones they stand for.
    ids: Vec<(String, String)>,
    played: BTreeSet<String>,
}

impl ExamplePlayer<'_> {
    fn operation(&self, operation_id: &str) -> (Method, String, Value) {
        for (path, item) in self.document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if operation["operationId"] == operation_id {
                    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    return (method, path.clone(), operation.clone());
                }
            }
        }
        panic!("no operation {operation_id}");
    }

    fn real_ids(&self, example: &Value) -> Value {
        let mut text = example.to_string();
        for (example_id, real_id) in &self.ids {
            text = text.replace(example_id.as_str(), real_id);
        }
        serde_json::from_str(&text).unwrap()
    }

    /// Plays `operation_id` on the resource `id` and returns the answer, which must have
    /// `status` and the shape of the document's example for it.
    async fn play(&mut self, operation_id: &str, id: Option<&str>, status: StatusCode) -> Value {
        let (method, template, operation) = self.operation(operation_id);
        let path = template.replace("{id}", id.unwrap_or_default());
        let body = operation["requestBody"]["content"]["application/json"]
            .get("example")
            .map(|example| self.real_ids(example));
        let mut request = self.api.request(method, &path).json_opt(body);
        if operation.get("security").is_some() {
            request = request.bearer(&self.key);
        }
        let response = request.await;
        assert_eq!(
            response.status,
            status,
            "{operation_id}: {}",
            response.text()
        );
        let answer = if status == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response.json().clone()
        };
        let documented = &operation["responses"][status.as_str()];
        assert!(
            documented.is_object(),
            "{operation_id}: {status} is not documented"
        );
        if let Some(example) = documented["content"]["application/json"].get("example") {
            assert_same_shape(operation_id, "$", example, &answer);
            if let (Some(example_id), Some(real_id)) =
                (example["id"].as_str(), answer["id"].as_str())
                && !self.ids.iter().any(|(known, _)| known == example_id)
            {
                self.ids.push((example_id.to_owned(), real_id.to_owned()));
            }
        }
        self.played.insert(operation_id.to_owned());
        answer
    }

    fn real(&self, example_id: &str) -> String {
        self.ids
            .iter()
            .find(|(known, _)| known == example_id)
            .map(|(_, real)| real.clone())
            .unwrap_or_else(|| panic!("no real id for {example_id} yet"))
    }
}

/// The same object fields at every level (a `null` on either side stands for any value: the
/// field is there); arrays by their first items.
fn assert_same_shape(operation_id: &str, at: &str, example: &Value, answer: &Value) {
    match (example, answer) {
        (Value::Object(example), Value::Object(answer)) => {
            let documented: BTreeSet<&String> = example.keys().collect();
            let answered: BTreeSet<&String> = answer.keys().collect();
            assert_eq!(documented, answered, "{operation_id}: the fields at {at}");
            for (field, value) in example {
                assert_same_shape(
                    operation_id,
                    &format!("{at}.{field}"),
                    value,
                    &answer[field],
                );
            }
        }
        (Value::Array(example), Value::Array(answer)) => {
            if let (Some(example), Some(answer)) = (example.first(), answer.first()) {
                assert_same_shape(operation_id, &format!("{at}[0]"), example, answer);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (example, answer) => assert_eq!(
            std::mem::discriminant(example),
            std::mem::discriminant(answer),
            "{operation_id}: {at} is {example} in the example but {answer} in the answer"
        ),
    }
}

#[tokio::test]
async fn the_documents_examples_are_requests_the_api_accepts_and_answers_it_gives() {
    let api = api(Backend::in_memory());
    let key = api.brand("acme").await;
    let document = api.get("/api/public/openapi.json").await.json().clone();
    let mut player = ExamplePlayer {
        api: &api,
        key,
        document,
        ids: Vec::new(),
        played: BTreeSet::new(),
    };
    let example = |operation_id: &str, status: &str| {
        player.operation(operation_id).2["responses"][status]["content"]["application/json"]
            ["example"]
            .clone()
    };
    let (partner, offer, rule) = (
        example("getPartner", "200")["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        example("getOffer", "200")["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        example("getPricingRule", "200")["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let click = example("getClick", "200");
    let (conversion, signal) = (
        example("getConversion", "200")["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        example("getFraudSignal", "200")["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    player.play("getHealth", None, StatusCode::OK).await;
    player.play("getWhoami", None, StatusCode::OK).await;

    player
        .play("createPartner", None, StatusCode::CREATED)
        .await;
    let partner = player.real(&partner);
    player.play("listPartners", None, StatusCode::OK).await;
    player
        .play("getPartner", Some(&partner), StatusCode::OK)
        .await;
    player
        .play("updatePartner", Some(&partner), StatusCode::OK)
        .await;

    player.play("createOffer", None, StatusCode::CREATED).await;
    let offer = player.real(&offer);
    player.play("listOffers", None, StatusCode::OK).await;
    player.play("getOffer", Some(&offer), StatusCode::OK).await;

    player
        .play("createPricingRule", None, StatusCode::CREATED)
        .await;
    let rule = player.real(&rule);
    player.play("listPricingRules", None, StatusCode::OK).await;
    player
        .play("getPricingRule", Some(&rule), StatusCode::OK)
        .await;
    player
        .play("updatePricingRule", Some(&rule), StatusCode::OK)
        .await;
    player
        .play("resolveOfferPayout", Some(&offer), StatusCode::OK)
        .await;

    // The example's click, 5 s old: the example conversion then also raises a fraud signal.
    let click_id = click["click_id"].as_str().unwrap();
    api.data
        .insert_click(&ClickRecord {
            brand_id: BrandId::parse("acme").unwrap(),
            click_id: click_id.to_owned(),
            at: SystemClock.now_ms() - 5_000,
            offer_id: Some(offer.clone()),
            partner_id: Some(partner.clone()),
            sub_ids: [Some("campaign-1".into()), None, None, None, None],
            landing_url: click["landing_url"].as_str().map(str::to_owned),
            referrer: click["referrer"].as_str().map(str::to_owned),
            source_ip: click["source_ip"].as_str().unwrap().to_owned(),
            user_agent: click["user_agent"].as_str().unwrap().to_owned(),
            fraud_score: 5,
            audit: None,
        })
        .await
        .unwrap();
    player.play("listClicks", None, StatusCode::OK).await;
    player
        .play("getClick", Some(click_id), StatusCode::OK)
        .await;

    let recorded = player
        .play("createConversion", None, StatusCode::CREATED)
        .await;
    assert_eq!(recorded["duplicate"], false);
    let repeated = player.play("createConversion", None, StatusCode::OK).await;
    assert_eq!(repeated["duplicate"], true, "the example's txn_id, again");
    let conversion = player.real(&conversion);
    player.play("listConversions", None, StatusCode::OK).await;
    player
        .play("getConversion", Some(&conversion), StatusCode::OK)
        .await;
    player
        .play("updateConversion", Some(&conversion), StatusCode::OK)
        .await;

    let signals = player.play("listFraudSignals", None, StatusCode::OK).await;
    let real_signal = signals["data"][0]["id"].as_str().unwrap().to_owned();
    player.ids.push((signal, real_signal.clone()));
    player
        .play("getFraudSignal", Some(&real_signal), StatusCode::OK)
        .await;
    player
        .play("reviewFraudSignal", Some(&real_signal), StatusCode::OK)
        .await;

    player.play("listActivity", None, StatusCode::OK).await;

    player
        .play("updateOffer", Some(&offer), StatusCode::OK)
        .await;
    player
        .play("archiveOffer", Some(&offer), StatusCode::OK)
        .await;
    player
        .play("deletePricingRule", Some(&rule), StatusCode::NO_CONTENT)
        .await;
    player
        .play("deletePartner", Some(&partner), StatusCode::NO_CONTENT)
        .await;

    let every: BTreeSet<String> = player.document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(player.played, every, "every operation played");
}
