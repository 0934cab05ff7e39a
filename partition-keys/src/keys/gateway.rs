//! `POST /v1/keys/verify`: gateways and platform services (permission VerifyApiKeys) check a
//! presented key and learn what it grants.

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::error::{ApiError, ApiJson};
use shared_model::ids::{ApiKeyId, CustomerId, PartitionId};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify_key))
}

/// Body of `POST /v1/keys/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub key: String,
}

/// Answer of `POST /v1/keys/verify`: `{"valid": false}` alone for any key that does not work.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<ApiKeyId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_id: Option<PartitionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// Verify a key (gateways and platform services, permission VerifyApiKeys). Every key that
/// does not work gets the same answer, `{"valid": false}`.
#[utoipa::path(
    post, path = "/v1/keys/verify", tag = "keys",
    request_body = Verify,
    responses(
        (status = 200, body = Verification),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn verify_key(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Verify>,
) -> Result<Response, ApiError> {
    caller.require(Permission::VerifyApiKeys)?;
    let answer = if body.key.len() > 200 {
        None
    } else {
        state.state.verifier.verify(&body.key).await?
    };
    let body = match answer {
        Some(grant) => grant.answer(),
        None => axum::body::Bytes::from_static(INVALID),
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The answer for every key that does not work.
const INVALID: &[u8] = br#"{"valid":false}"#;
