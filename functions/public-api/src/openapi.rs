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
        description = "Brand-scoped access to a brand's affiliate program data with its API key."
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
