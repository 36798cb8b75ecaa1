//! The OpenAPI 3.1 document of the public API, generated from the handlers' `#[utoipa::path]`
//! attributes and the request and response types themselves, served at
//! `GET /api/public/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::responses::{ErrorDetail, ErrorResponse};

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tk_ + 40 alphanumerics")
                    .description(Some("The brand API key: `Authorization: Bearer tk_…`"))
                    .build(),
            ),
        );
    }
}

/// Every list's `limit` query parameter as the code enforces it: an integer from 1 to 100.
struct PageLimits;

impl Modify for PageLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.name == "limit" {
                        parameter.schema = Some(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(1))
                                .maximum(Some(trcker_shared::keys::MAX_PAGE_LIMIT))
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Trcker public API",
        description = "Brand-scoped access to a brand's affiliate program data with its API key: \
            partners, offers, pricing rules, clicks, conversions, fraud signals and the delivery \
            log. Every operation but `getHealth` needs `Authorization: Bearer tk_…` and sees only \
            that key's brand: another brand's id answers exactly like an id that does not exist. \
            Errors are `{\"error\":{\"code\":…,\"message\":…}}`; every authenticated answer \
            carries `RateLimit-*` headers, and `429` and `503` a `Retry-After`.",
        // No support address or site exists yet: the contact names the API, which Spectral's
        // `info-contact` asks for; add `url` or `email` once there is one.
        contact(name = "Trcker public API"),
        // Written out, not left to utoipa's default from CARGO_PKG_LICENSE, so the document says
        // it even if the crate's manifest stops inheriting it; a test holds it to the workspace
        // Cargo.toml's `license`.
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    // Relative: the paths already start with /api/public, so `/` resolves against wherever the
    // document was fetched from (trcker-local, the deployed API's own domain), with no host
    // baked in.
    servers((url = "/", description = "The host that serves this document")),
    tags(
        (name = "meta", description = "Liveness and the calling key's identity"),
        (name = "partners", description = "The affiliates a brand works with; slugs are unique per brand"),
        (name = "offers", description = "What partners promote, where the link lands, and the default payout; archived, never deleted"),
        (name = "pricing-rules", description = "Per-offer payouts, optionally per partner, with priority and validity window; and the payout they resolve to"),
        (name = "clicks", description = "Clicks as capture records them, with their fraud score; read-only"),
        (name = "conversions", description = "Conversions attributed through their click, priced by the pricing rules, deduplicated on txn_id"),
        (name = "fraud-signals", description = "Suspicious conversions and clicks, and the brand's review of each"),
        (name = "activity", description = "The delivery log: one record per authenticated request, and the revoked-key leak audit")
    ),
    paths(
        crate::health,
        crate::whoami,
        crate::partners::list,
        crate::partners::create,
        crate::partners::get,
        crate::partners::update,
        crate::partners::delete,
        crate::offers::list,
        crate::offers::create,
        crate::offers::get,
        crate::offers::update,
        crate::offers::archive,
        crate::pricing::resolve,
        crate::pricing::list,
        crate::pricing::create,
        crate::pricing::get,
        crate::pricing::update,
        crate::pricing::delete,
        crate::clicks::list,
        crate::clicks::get,
        crate::conversions::list,
        crate::conversions::create,
        crate::conversions::get,
        crate::conversions::update,
        crate::fraud::list,
        crate::fraud::get,
        crate::fraud::review,
        crate::activity::list,
    ),
    components(schemas(ErrorResponse, ErrorDetail)),
    modifiers(&BearerKey, &PageLimits)
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;

    /// Every operation of the document: (method, path) -> operation.
    fn operations(document: &Value) -> BTreeMap<(String, String), Value> {
        let mut operations = BTreeMap::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations.insert((method.clone(), path.clone()), operation.clone());
            }
        }
        operations
    }

    /// A generated client names its methods after these: they are the API's contract as much
    /// as the paths are, so a rename must show up here (and in the clients' tests).
    #[test]
    fn the_operation_ids_are_the_published_ones() {
        let document = serde_json::to_value(document()).unwrap();
        let ids: BTreeMap<(String, String), String> = operations(&document)
            .into_iter()
            .map(|(key, operation)| (key, operation["operationId"].as_str().unwrap().to_owned()))
            .collect();
        let published = [
            ("get", "/api/public/health", "getHealth"),
            ("get", "/api/public/whoami", "getWhoami"),
            ("get", "/api/public/partners", "listPartners"),
            ("post", "/api/public/partners", "createPartner"),
            ("get", "/api/public/partners/{id}", "getPartner"),
            ("patch", "/api/public/partners/{id}", "updatePartner"),
            ("delete", "/api/public/partners/{id}", "deletePartner"),
            ("get", "/api/public/offers", "listOffers"),
            ("post", "/api/public/offers", "createOffer"),
            ("get", "/api/public/offers/{id}", "getOffer"),
            ("patch", "/api/public/offers/{id}", "updateOffer"),
            ("post", "/api/public/offers/{id}/archive", "archiveOffer"),
            (
                "get",
                "/api/public/offers/{id}/payout",
                "resolveOfferPayout",
            ),
            ("get", "/api/public/pricing-rules", "listPricingRules"),
            ("post", "/api/public/pricing-rules", "createPricingRule"),
            ("get", "/api/public/pricing-rules/{id}", "getPricingRule"),
            (
                "patch",
                "/api/public/pricing-rules/{id}",
                "updatePricingRule",
            ),
            (
                "delete",
                "/api/public/pricing-rules/{id}",
                "deletePricingRule",
            ),
            ("get", "/api/public/activity", "listActivity"),
            ("get", "/api/public/clicks", "listClicks"),
            ("get", "/api/public/clicks/{id}", "getClick"),
            ("get", "/api/public/conversions", "listConversions"),
            ("post", "/api/public/conversions", "createConversion"),
            ("get", "/api/public/conversions/{id}", "getConversion"),
            ("patch", "/api/public/conversions/{id}", "updateConversion"),
            ("get", "/api/public/fraud-signals", "listFraudSignals"),
            ("get", "/api/public/fraud-signals/{id}", "getFraudSignal"),
            (
                "patch",
                "/api/public/fraud-signals/{id}",
                "reviewFraudSignal",
            ),
        ]
        .map(|(method, path, id)| ((method.to_owned(), path.to_owned()), id.to_owned()));
        assert_eq!(ids, BTreeMap::from(published));
    }

    /// camelCase, a verb then the resource: `listClicks`, `resolveOfferPayout`.
    fn is_verb_and_resource(id: &str) -> bool {
        const VERBS: [&str; 8] = [
            "list", "get", "create", "update", "delete", "archive", "resolve", "review",
        ];
        let Some(rest) = VERBS.iter().find_map(|verb| id.strip_prefix(verb)) else {
            return false;
        };
        rest.starts_with(|c: char| c.is_ascii_uppercase())
            && rest.chars().all(|c| c.is_ascii_alphanumeric())
    }

    #[test]
    fn every_operation_has_a_unique_id_a_summary_a_description_and_a_defined_tag() {
        let document = serde_json::to_value(document()).unwrap();
        let defined: BTreeSet<&str> = document["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| {
                assert!(
                    tag["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "tag {tag} has no description"
                );
                tag["name"].as_str().unwrap()
            })
            .collect();
        let operations = operations(&document);
        assert_eq!(operations.len(), 28);
        let mut ids = BTreeSet::new();
        let mut used_tags = BTreeSet::new();
        for ((method, path), operation) in &operations {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                is_verb_and_resource(id),
                "{method} {path}: operationId {id:?}"
            );
            assert!(
                ids.insert(id.to_owned()),
                "{method} {path}: {id} is not unique"
            );
            for field in ["summary", "description"] {
                assert!(
                    operation[field]
                        .as_str()
                        .is_some_and(|text| text.len() > 10),
                    "{method} {path}: no {field}"
                );
            }
            let tags = operation["tags"].as_array().unwrap();
            assert!(!tags.is_empty(), "{method} {path}: no tag");
            for tag in tags {
                let tag = tag.as_str().unwrap();
                assert!(
                    defined.contains(tag),
                    "{method} {path}: tag {tag} is not defined"
                );
                used_tags.insert(tag);
            }
        }
        assert_eq!(used_tags, defined, "every defined tag is used");
    }

    /// The bearer scheme is declared once and applied per operation; only health goes without.
    #[test]
    fn every_operation_but_health_needs_the_bearer_key() {
        let document = serde_json::to_value(document()).unwrap();
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(
            document.get("security").is_none(),
            "no document-wide default: each operation says what it needs"
        );
        for ((method, path), operation) in operations(&document) {
            if path == "/api/public/health" {
                assert!(operation.get("security").is_none(), "health needs no key");
            } else {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{"bearer": []}]),
                    "{method} {path}"
                );
            }
        }
    }

    /// Every request body and every success answer with a body shows an example.
    #[test]
    fn request_bodies_and_success_answers_have_examples() {
        let document = serde_json::to_value(document()).unwrap();
        for ((method, path), operation) in operations(&document) {
            if let Some(body) = operation.get("requestBody") {
                assert!(
                    body["content"]["application/json"]["example"].is_object(),
                    "{method} {path}: request body without an example"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('2') && response.get("content").is_some() {
                    assert!(
                        response["content"]["application/json"]["example"].is_object(),
                        "{method} {path}: {status} without an example"
                    );
                }
            }
        }
    }

    /// One relative server (the paths carry the /api/public prefix): the document works on
    /// trcker-local and deployed alike.
    #[test]
    fn the_server_is_relative() {
        let document = serde_json::to_value(document()).unwrap();
        let servers = document["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0]["url"], "/");
        assert!(
            document["paths"]
                .as_object()
                .unwrap()
                .keys()
                .all(|path| path.starts_with(crate::ROUTE_PREFIX))
        );
    }

    /// The document's licence is the workspace's (`[workspace.package] license` in the root
    /// Cargo.toml), and it has a contact.
    #[test]
    fn the_licence_is_the_workspaces_and_there_is_a_contact() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
                .unwrap();
        let workspace_licence = manifest
            .lines()
            .skip_while(|line| line.trim() != "[workspace.package]")
            .skip(1)
            .take_while(|line| !line.starts_with('['))
            .find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "license").then(|| value.trim().trim_matches('"').to_owned())
            })
            .expect("the workspace declares a licence");
        let document = serde_json::to_value(document()).unwrap();
        assert_eq!(
            document["info"]["license"]["identifier"],
            workspace_licence.as_str()
        );
        assert_eq!(
            document["info"]["license"]["name"],
            workspace_licence.as_str()
        );
        assert!(document["info"]["contact"]["name"].is_string());
    }
}
