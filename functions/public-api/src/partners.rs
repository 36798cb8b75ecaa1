//! Partners: the affiliates a brand works with. Slugs are unique per brand (they are the `via`
//! of tracking links).

use crate::AppState;
use crate::extract::{IdPath, JsonBody, query_params};
use crate::responses::{PartnerList, ReadErrors, WriteErrors};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use trcker_shared::edge::auth::{Caller, RecordedInWrite};
use trcker_shared::edge::error::ApiError;
use trcker_shared::program;
use trcker_shared::program::documents::ListBody;
use trcker_shared::program::draft::ActivityDraft;
use trcker_shared::program::paging::Paging;
use trcker_shared::program::partners::{
    CreatePartner, LIST_PARAMETERS, Partner, UpdatePartner, create_partner, find,
};

#[utoipa::path(
    get,
    path = "/api/public/partners",
    tag = "partners",
    operation_id = "listPartners",
    summary = "List partners",
    description = "The brand's partners, a page at a time (`limit` 1-100, default 25), in id order. \
        Answers `{data, next_cursor}`; pass `next_cursor` back as `cursor` until it is `null`. \
        A cursor from another list or another brand is `400 invalid_cursor`; an unknown query \
        parameter is `400 invalid_request`.",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")
    ),
    responses(
        (status = 200, description = "One page of partners", body = PartnerList,
            example = crate::examples::partner_page),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ListBody<Partner>>, ApiError> {
    let pairs = query_params(uri.query(), LIST_PARAMETERS)?;
    let brand_id = &caller.principal.brand_id;
    let page = program::partners::listed_page(&app, brand_id, &Paging::from_pairs(&pairs)?).await?;
    Ok(Json(page.into_body(&app, brand_id)))
}

#[utoipa::path(
    post,
    path = "/api/public/partners",
    tag = "partners",
    operation_id = "createPartner",
    summary = "Create a partner",
    description = "Creates a partner of the calling key's brand: `name`, `email` and `slug` \
        are required, `status` defaults to `active`, `postback_url_template` is optional. \
        Answers `201` with the partner and its new `id`. A slug another partner of the brand \
        already has is `409 already_exists`; a malformed e-mail, slug or URL, a control or \
        invisible formatting character in free text, or an unknown field is \
        `400 invalid_request`.",
    request_body(content = CreatePartner, example = crate::examples::create_partner),
    responses(
        (status = 201, description = "The partner created", body = Partner,
            example = crate::examples::partner),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<CreatePartner>,
) -> Result<(StatusCode, Json<Partner>), ApiError> {
    let created = create_partner(&app, &caller.principal.brand_id, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/api/public/partners/{id}",
    tag = "partners",
    operation_id = "getPartner",
    summary = "Get a partner",
    description = "One partner of the calling key's brand, by id. An id that does not exist \
        and another brand's id both answer `404 not_found`.",
    params(
        ("id" = String, Path, description = "Partner id")
    ),
    responses(
        (status = 200, description = "The partner", body = Partner,
            example = crate::examples::partner),
        ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Partner>, ApiError> {
    Ok(Json(find(&app, &caller.principal.brand_id, &id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/public/partners/{id}",
    tag = "partners",
    operation_id = "updatePartner",
    summary = "Change a partner",
    description = "Changes the fields the body names and leaves the others as they are; \
        `postback_url_template: null` removes the template. Answers the partner as changed. \
        `404 not_found` for an unknown id, `409 already_exists` for a slug another partner \
        has, `409 conflict` if the partner changed concurrently, `400 invalid_request` for a \
        malformed value or an unknown field.",
    params(
        ("id" = String, Path, description = "Partner id")
    ),
    request_body(content = UpdatePartner, example = crate::examples::update_partner),
    responses(
        (status = 200, description = "The partner as changed", body = Partner,
            example = crate::examples::updated_partner),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<UpdatePartner>,
) -> Result<RecordedInWrite<Json<Partner>>, ApiError> {
    let draft = draft.answering(StatusCode::OK.as_u16());
    let brand_id = &caller.principal.brand_id;
    let updated = program::partners::update_partner(&app, brand_id, &id, input, Some(&draft));
    Ok(RecordedInWrite(Json(updated.await?)))
}

#[utoipa::path(
    delete,
    path = "/api/public/partners/{id}",
    tag = "partners",
    operation_id = "deletePartner",
    summary = "Delete a partner",
    description = "Deletes the partner and frees its slug; clicks and conversions already \
        attributed to it keep its id. Answers `204` with no body; `404 not_found` for an \
        unknown id (including one already deleted).",
    params(
        ("id" = String, Path, description = "Partner id")
    ),
    responses(
        (status = 204, description = "Deleted"),
        WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    draft: ActivityDraft,
    IdPath(id): IdPath,
) -> Result<RecordedInWrite<StatusCode>, ApiError> {
    let draft = draft.answering(StatusCode::NO_CONTENT.as_u16());
    program::partners::delete_partner(&app, &caller.principal.brand_id, &id, Some(&draft)).await?;
    Ok(RecordedInWrite(StatusCode::NO_CONTENT))
}
