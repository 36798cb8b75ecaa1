//! The key-management function. Operators invoke it directly with IAM (never through the API
//! gateway) to register brands and to generate, list and revoke their API keys.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use trcker_shared::clock::format_rfc3339;
use trcker_shared::error::{ErrorBody, ErrorCode};
use trcker_shared::ids::{BrandId, KeyId};
use trcker_shared::keys::{KeyError, KeyService};

/// Larger payloads are refused before parsing; real ones are a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// The actions, by the `action` field of the payload.
pub const ACTIONS: [&str; 4] = ["create_brand", "generate", "list", "revoke"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBrandRequest {
    brand_id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    brand_id: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRequest {
    brand_id: String,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    brand_id: String,
    key_id: String,
}

/// Handles a raw invocation payload (the local gateway and tests pass bytes; invalid JSON is a
/// typed error rather than a runtime failure).
pub async fn handle_payload_bytes(service: &KeyService, payload: &[u8]) -> Value {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return error_json(
            ErrorCode::InvalidRequest,
            format!("the payload is larger than {MAX_PAYLOAD_BYTES} bytes"),
        );
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(value) => handle_payload(service, value).await,
        Err(error) => error_json(
            ErrorCode::InvalidRequest,
            format!("the payload is not valid JSON: {error}"),
        ),
    }
}

/// Handles a parsed invocation payload and always answers with JSON: the result, or
/// `{"error":{"code","message"}}`.
pub async fn handle_payload(service: &KeyService, payload: Value) -> Value {
    let action = payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    // Only known action names reach the logs: the field is caller input.
    let logged_action = ACTIONS
        .iter()
        .find(|known| **known == action)
        .copied()
        .unwrap_or("unknown");
    let result = dispatch(service, &action, payload).await;
    match result {
        Ok(response) => {
            tracing::info!(
                action = logged_action,
                outcome = "ok",
                "key management request"
            );
            response
        }
        Err(failure) => {
            tracing::info!(
                action = logged_action,
                outcome = failure.error.code.as_str(),
                "key management request refused"
            );
            failure.to_json()
        }
    }
}

async fn dispatch(service: &KeyService, action: &str, payload: Value) -> Result<Value, ErrorBody> {
    let Value::Object(mut fields) = payload else {
        return Err(invalid(
            "the payload must be a JSON object with an \"action\" field",
        ));
    };
    match fields.remove("action") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(invalid("\"action\" must be a string")),
        None => {
            return Err(invalid(format!(
                "the payload needs an \"action\": one of {}",
                ACTIONS.join(", ")
            )));
        }
    }
    let fields = Value::Object(fields);
    match action {
        "create_brand" => {
            let request: CreateBrandRequest = parse_fields(fields)?;
            let brand_id = parse_brand(&request.brand_id)?;
            let brand = service
                .create_brand(&brand_id, &request.name)
                .await
                .map_err(|e| e.to_body())?;
            Ok(json!({ "brand": {
                "brand_id": brand.brand_id,
                "name": brand.name,
                "created_at": format_rfc3339(brand.created_at),
            } }))
        }
        "generate" => {
            let request: GenerateRequest = parse_fields(fields)?;
            let brand_id = parse_brand(&request.brand_id)?;
            let generated = service
                .generate(&brand_id, request.label.as_deref())
                .await
                .map_err(|e| e.to_body())?;
            Ok(generated.to_response_json())
        }
        "list" => {
            let request: ListRequest = parse_fields(fields)?;
            let brand_id = parse_brand(&request.brand_id)?;
            let listing = service
                .list(&brand_id, request.limit, request.cursor.as_deref())
                .await
                .map_err(|e| e.to_body())?;
            serde_json::to_value(listing).map_err(|e| KeyError::Internal(e.to_string()).to_body())
        }
        "revoke" => {
            let request: RevokeRequest = parse_fields(fields)?;
            let brand_id = parse_brand(&request.brand_id)?;
            let key_id = KeyId::parse(&request.key_id).map_err(|e| invalid(e.to_string()))?;
            let summary = service
                .revoke(&brand_id, &key_id)
                .await
                .map_err(|e| e.to_body())?;
            Ok(json!({ "key": summary }))
        }
        "" => Err(invalid("\"action\" must not be empty")),
        _ => Err(ErrorBody::new(
            ErrorCode::UnknownAction,
            format!("unknown action: use one of {}", ACTIONS.join(", ")),
        )),
    }
}

fn parse_fields<T: DeserializeOwned>(fields: Value) -> Result<T, ErrorBody> {
    serde_json::from_value(fields).map_err(|error| invalid(error.to_string()))
}

fn parse_brand(text: &str) -> Result<BrandId, ErrorBody> {
    BrandId::parse(text).map_err(|error| invalid(error.to_string()))
}

fn invalid(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidRequest, message)
}

fn error_json(code: ErrorCode, message: String) -> Value {
    ErrorBody::new(code, message).to_json()
}
