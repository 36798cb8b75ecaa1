//! Typed access to a brand's stored documents: new ids, reading a document as its resource type,
//! and listing pages behind brand- and kind-bound cursors.

use super::ProgramError;
use crate::brand_data::merge::{MergePlan, merge_newest_first};
use crate::brand_data::{Document, DocumentKind, UniqueClaim};
use crate::error::ErrorCode;
use crate::ids::BrandId;
use crate::program::draft::ActivityDraft;
use crate::store::StoreError;
use crate::token::random_u64;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Program;
use crate::program::paging::Paging;

/// A fresh resource id: `<prefix>_` + 16 lowercase hex digits.
pub fn new_id(prefix: &str) -> Result<String, ProgramError> {
    let random = random_u64().map_err(|error| {
        tracing::error!(error = %error, "no randomness for an id");
        ProgramError::new(ErrorCode::Internal, "internal error")
    })?;
    Ok(format!("{prefix}_{random:016x}"))
}

/// A fresh id that sorts by creation time: `<prefix>_` + 11 hex digits of Unix milliseconds + 5
/// random hex digits (16 hex digits in all, so [`is_id`] accepts it).
pub fn new_time_id(prefix: &str, now_ms: i64) -> Result<String, ProgramError> {
    let random = random_u64().map_err(|error| {
        tracing::error!(error = %error, "no randomness for an id");
        ProgramError::new(ErrorCode::Internal, "internal error")
    })?;
    Ok(format!(
        "{prefix}_{:011x}{:05x}",
        now_ms.clamp(0, 0xfff_ffff_ffff),
        random & 0xf_ffff
    ))
}

/// Whether `id` has the shape of an id minted by [`new_id`]; anything else cannot exist.
pub fn is_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
}

/// A stored document decoded as its resource type, with the version to update it at.
pub struct Stored<T> {
    pub value: T,
    pub version: u64,
}

pub async fn load<T: DeserializeOwned>(
    program: &Program,
    brand_id: &BrandId,
    kind: DocumentKind,
    prefix: &str,
    id: &str,
    what: &str,
) -> Result<Stored<T>, ProgramError> {
    // An id that cannot exist answers exactly like a missing one (no store call, same response).
    if !is_id(prefix, id) {
        return Err(ProgramError::not_found(what));
    }
    let document = program
        .data
        .get_document(brand_id, kind, id)
        .await?
        .ok_or_else(|| ProgramError::not_found(what))?;
    decode(&document).map(|value| Stored {
        value,
        version: document.version,
    })
}

pub fn decode<T: DeserializeOwned>(document: &Document) -> Result<T, ProgramError> {
    T::deserialize(&document.body).map_err(|error| {
        tracing::error!(id = %document.id, error = %error, "stored document does not decode");
        ProgramError::new(ErrorCode::Internal, "internal error")
    })
}

pub fn encode<T: Serialize>(value: &T) -> Result<serde_json::Value, ProgramError> {
    serde_json::to_value(value).map_err(|error| {
        tracing::error!(error = %error, "document does not encode");
        ProgramError::new(ErrorCode::Internal, "internal error")
    })
}

/// One page of a listing as the API returns it: `{"data":[…],"next_cursor":…}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListBody<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// One page of a listing as the store returned it, before it is answered: the items, the store
/// position of each (where a page resuming right after that item starts), and the position of
/// the next page. [`Listed::truncate`] answers fewer items, with a cursor that continues right
/// after the last one kept, without reading again: the MCP server cuts pages of large items to
/// its result budget this way, so a call costs one listing read whatever the items hold.
#[derive(Debug)]
pub struct Listed<T> {
    listing: String,
    items: Vec<T>,
    /// `positions[i]` is the sort position of `items[i]`.
    positions: Vec<String>,
    next_position: Option<String>,
}

impl<T> Listed<T> {
    /// A page of `listing` (the name its cursors are bound to): items with their positions.
    pub fn new(
        listing: impl Into<String>,
        items: Vec<(T, String)>,
        next_position: Option<String>,
    ) -> Self {
        let (items, positions) = items.into_iter().unzip();
        Self {
            listing: listing.into(),
            items,
            positions,
            next_position,
        }
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Keeps the first `len` items (at least one, so a page always moves the listing on). If that
    /// drops any, the next page starts right after the last item kept: nothing is skipped or
    /// repeated.
    pub fn truncate(&mut self, len: usize) {
        let len = len.max(1);
        if len < self.items.len() {
            self.items.truncate(len);
            self.positions.truncate(len);
            self.next_position = self.positions.last().cloned();
        }
    }

    /// `{"data":[…],"next_cursor":…}`, the cursor signed for the brand and bound to the listing.
    pub fn into_body(self, program: &Program, brand_id: &BrandId) -> ListBody<T> {
        ListBody {
            data: self.items,
            next_cursor: self
                .next_position
                .map(|position| encode_cursor(program, brand_id, &self.listing, &position)),
        }
    }
}

/// `{"data":[…],"next_cursor":…}` for one page of `kind`.
pub async fn list_page<T: DeserializeOwned + Serialize>(
    program: &Program,
    brand_id: &BrandId,
    kind: DocumentKind,
    paging: &Paging,
) -> Result<Listed<T>, ProgramError> {
    list_page_with_prefix(program, brand_id, kind, "", paging).await
}

/// One page of the documents of `kind` whose id starts with `id_prefix`. The cursor is bound to
/// the prefix too, so a page of one filter cannot continue another. A document's position is its
/// id.
pub async fn list_page_with_prefix<T: DeserializeOwned + Serialize>(
    program: &Program,
    brand_id: &BrandId,
    kind: DocumentKind,
    id_prefix: &str,
    paging: &Paging,
) -> Result<Listed<T>, ProgramError> {
    let listing = if id_prefix.is_empty() {
        kind.as_str().to_owned()
    } else {
        format!("{}/{id_prefix}", kind.as_str())
    };
    let after = paging
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(program, brand_id, &listing, cursor))
        .transpose()?;
    let page = program
        .data
        .list_documents_by_prefix(brand_id, kind, id_prefix, paging.limit, after.as_deref())
        .await?;
    let items = page
        .items
        .iter()
        .map(|document| decode::<T>(document).map(|item| (item, document.id.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Listed::new(listing, items, page.next_position))
}

/// Cursors carry the listing they belong to, so one listing's cursor cannot steer another.
pub fn encode_cursor(
    program: &Program,
    brand_id: &BrandId,
    listing: &str,
    position: &str,
) -> String {
    program
        .keys
        .cursors()
        .encode(brand_id, &format!("{listing}:{position}"))
}

pub fn decode_cursor(
    program: &Program,
    brand_id: &BrandId,
    listing: &str,
    cursor: &str,
) -> Result<String, ProgramError> {
    let decoded = program.keys.cursors().decode(brand_id, cursor)?;
    decoded
        .strip_prefix(listing)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(|| ProgramError::from(crate::cursor::InvalidCursor))
}

/// The claim that keeps a slug unique within a brand and kind.
pub fn slug_claim(slug: &str) -> UniqueClaim {
    UniqueClaim {
        field: "slug",
        value: slug.to_owned(),
    }
}

/// The claims to release and take when a slug changes from `before` to `after`.
pub fn slug_change(before: &str, after: &str) -> (Vec<UniqueClaim>, Vec<UniqueClaim>) {
    if before == after {
        (Vec::new(), Vec::new())
    } else {
        (vec![slug_claim(before)], vec![slug_claim(after)])
    }
}

/// Stores `value` as the next version of document `id`, swapping claims, all or nothing, with the
/// request's activity record when given (in the same write).
#[allow(clippy::too_many_arguments)]
pub async fn save<T: Serialize>(
    program: &Program,
    brand_id: &BrandId,
    kind: DocumentKind,
    id: &str,
    read_version: u64,
    value: &T,
    released: &[UniqueClaim],
    taken: &[UniqueClaim],
    activity: Option<&ActivityDraft>,
) -> Result<(), StoreError> {
    let body = serde_json::to_value(value)
        .map_err(|error| StoreError::Corrupt(format!("document does not encode: {error}")))?;
    let document = Document {
        brand_id: brand_id.clone(),
        kind,
        id: id.to_owned(),
        version: read_version + 1,
        body,
    };
    program
        .data
        .update_document(
            &document,
            released,
            taken,
            activity.map(ActivityDraft::completed).as_ref(),
        )
        .await
}

/// A newest-first page of documents with time-ordered ids (`new_time_id`) between the ids `lower`
/// and `upper`, keeping those `keep` accepts; a document's position is its id. One query per page.
#[allow(clippy::too_many_arguments)]
pub async fn newest_first_page<T: DeserializeOwned + Serialize>(
    program: &Program,
    brand_id: &BrandId,
    kind: DocumentKind,
    id_prefix: &str,
    listing: &str,
    (lower, upper): (String, String),
    paging: &Paging,
    id_of: impl Fn(&T) -> String,
    keep: impl Fn(&T) -> bool,
) -> Result<Listed<T>, ProgramError> {
    let after = paging
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(program, brand_id, listing, cursor))
        .transpose()?;
    if after
        .as_deref()
        .is_some_and(|position| !is_id(id_prefix, position))
    {
        return Err(crate::cursor::InvalidCursor.into());
    }
    let upper = match &after {
        Some(position) => upper.min(position.clone()),
        None => upper,
    };
    let plan = MergePlan {
        partitions: 1,
        upper: &upper,
        after_position: after.as_deref(),
        limit: paging.limit,
    };
    let lower = &lower;
    let page = merge_newest_first(plan, &id_of, keep, |_, upper, count| async move {
        let documents = program
            .data
            .query_documents(brand_id, kind, lower, &upper, count)
            .await?;
        documents
            .iter()
            .map(decode::<T>)
            .collect::<Result<Vec<T>, ProgramError>>()
    })
    .await?;
    let items = page
        .items
        .into_iter()
        .map(|item| {
            let position = id_of(&item);
            (item, position)
        })
        .collect();
    Ok(Listed::new(listing, items, page.next_position))
}

/// For PATCH fields where `null` means "remove": absent -> `None`, `null` -> `Some(None)`.
pub fn present_or_null<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <Option<String> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
