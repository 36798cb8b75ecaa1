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
    summary = "List partners",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-100 (default 25)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")
    ),
    responses(
        (status = 200, description = "List partners", body = PartnerList),
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
    summary = "Create a partner",
    request_body = CreatePartner,
    responses(
        (status = 201, description = "Create a partner", body = Partner),
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
    summary = "Get a partner",
    params(
        ("id" = String, Path, description = "Partner id")
    ),
    responses(
        (status = 200, description = "Get a partner", body = Partner),
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
    summary = "Change a partner",
    params(
        ("id" = String, Path, description = "Partner id")
    ),
    request_body = UpdatePartner,
    responses(
        (status = 200, description = "Change a partner", body = Partner),
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
    summary = "Delete a partner",
    params(
        ("id" = String, Path, description = "Partner id")
    ),
    responses(
        (status = 204, description = "Delete a partner"),
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
