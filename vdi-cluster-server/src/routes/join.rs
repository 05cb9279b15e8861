//! Join tokens (seeds 002/003): an admin creates a token — shown once,
//! stored as a SHA-256 hash, valid until an expiry for a number of uses —
//! and a worker started with it registers (`POST /api/vdi/workers/join`
//! with `x-join-token`), receiving its own credential, which it sends in
//! `x-worker-token` from then on. The control plane keeps only the
//! credential's hash.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::ValidationError;
use vdi_cluster_core::store::JoinToken;

use super::check_not_reserved;
use crate::auth::{Caller, hash_hex, new_worker_credential, random_secret};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, PathParams};
use crate::state::AppState;
use vdi_cluster_protocol::{ErrorBody, JOIN_TOKEN_HEADER, JoinResponse, RegisterRequest};

/// Default lifetime of a join token (1 hour).
pub(crate) const DEFAULT_JOIN_TOKEN_TTL_SEC: u64 = 3600;
/// Longest lifetime of a join token (30 days).
pub(crate) const MAX_JOIN_TOKEN_TTL_SEC: u64 = 30 * 24 * 3600;
/// Most registrations one join token may allow.
pub(crate) const MAX_JOIN_TOKEN_USES: u32 = 1000;
/// Prefix of join tokens (`vdij_<hex>`), so they are recognisable in logs
/// and secret scanners.
pub(crate) const JOIN_TOKEN_PREFIX: &str = "vdij_";

/// `POST /api/vdi/join-tokens` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateJoinToken {
    /// Lifetime, seconds (default 3600, at most 30 days).
    ttl_sec: Option<u64>,
    /// Registrations it allows (default 1, at most 1000).
    max_uses: Option<u32>,
}

/// A join token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JoinTokenJson {
    /// Public id, for revoking.
    pub(crate) id: String,
    /// The admin who created it.
    pub(crate) created_by: String,
    /// When (ms since the epoch).
    pub(crate) created_at: u64,
    /// Refused from this instant (ms since the epoch).
    pub(crate) expires_at: u64,
    /// Registrations it allows.
    pub(crate) max_uses: u32,
    /// Registrations made with it.
    pub(crate) uses: u32,
    /// Whether it can still be used now.
    pub(crate) usable: bool,
}

/// A join token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedJoinToken {
    /// The token, shown once: give it to `vdi-cluster worker --join-token`
    /// (or `WORKER_JOIN_TOKEN`).
    pub(crate) token: String,
    /// Its listing.
    #[serde(flatten)]
    pub(crate) info: JoinTokenJson,
}

/// The list of join tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JoinTokenList {
    /// Newest first.
    pub(crate) tokens: Vec<JoinTokenJson>,
    /// How many.
    pub(crate) total: usize,
}

fn json(t: &JoinToken, now: vdi_cluster_core::Timestamp) -> JoinTokenJson {
    JoinTokenJson {
        id: t.id.clone(),
        created_by: t.created_by.clone(),
        created_at: t.created_at.as_millis(),
        expires_at: t.expires_at.as_millis(),
        max_uses: t.max_uses,
        uses: t.uses,
        usable: t.expires_at > now && t.uses < t.max_uses,
    }
}

/// Creates a join token; its secret is in this answer only.
#[utoipa::path(
    post, path = "/api/vdi/join-tokens", tag = "workers",
    request_body(content = Option<CreateJoinToken>, description = "Optional lifetime and uses"),
    responses(
        (status = 201, description = "Created; the token is shown once", body = CreatedJoinToken),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    OptionalJsonBody(body): OptionalJsonBody<CreateJoinToken>,
) -> Result<(StatusCode, Json<CreatedJoinToken>), ApiError> {
    let body = body.unwrap_or_default();
    let ttl = body.ttl_sec.unwrap_or(DEFAULT_JOIN_TOKEN_TTL_SEC);
    if !(1..=MAX_JOIN_TOKEN_TTL_SEC).contains(&ttl) {
        return Err(ApiError::invalid(ValidationError::new(
            "ttlSec",
            format!("must be from 1 to {MAX_JOIN_TOKEN_TTL_SEC}"),
        )));
    }
    let max_uses = body.max_uses.unwrap_or(1);
    if !(1..=MAX_JOIN_TOKEN_USES).contains(&max_uses) {
        return Err(ApiError::invalid(ValidationError::new(
            "maxUses",
            format!("must be from 1 to {MAX_JOIN_TOKEN_USES}"),
        )));
    }
    let now = state.service().clock().now();
    let token = format!("{JOIN_TOKEN_PREFIX}{}", random_secret());
    let stored = JoinToken {
        id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        token_hash: hash_hex(&token),
        created_by: caller.actor(),
        created_at: now,
        expires_at: now.plus(Duration::from_secs(ttl)),
        max_uses,
        uses: 0,
    };
    let service = Arc::clone(state.service());
    let record = stored.clone();
    let actor = caller.actor();
    state
        .detached(async move {
            service.store().put_join_token(&record).await?;
            let detail = serde_json::json!({"expiresAt": record.expires_at.as_millis(), "maxUses": record.max_uses});
            service
                .store()
                .append_audit(&vdi_cluster_core::store::AuditEntry {
                    at: record.created_at,
                    actor,
                    action: "create-join-token".into(),
                    target: record.id.clone(),
                    detail,
                })
                .await
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedJoinToken {
            token,
            info: json(&stored, now),
        }),
    ))
}

/// Join tokens, newest first (never their secrets).
#[utoipa::path(
    get, path = "/api/vdi/join-tokens", tag = "workers",
    responses(
        (status = 200, description = "Join tokens", body = JoinTokenList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<JoinTokenList>, ApiError> {
    let now = state.service().clock().now();
    let tokens: Vec<JoinTokenJson> = state
        .service()
        .store()
        .join_tokens()
        .await?
        .iter()
        .map(|t| json(t, now))
        .collect();
    Ok(Json(JoinTokenList {
        total: tokens.len(),
        tokens,
    }))
}

/// Revokes a join token (workers that joined with it keep their
/// credentials).
#[utoipa::path(
    delete, path = "/api/vdi/join-tokens/{id}", tag = "workers",
    params(("id" = String, Path, description = "Join token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let target = id.clone();
    let revoked = state
        .detached(async move {
            let revoked = service.store().revoke_join_token(&target).await?;
            if revoked {
                service
                    .store()
                    .append_audit(&vdi_cluster_core::store::AuditEntry {
                        at: service.clock().now(),
                        actor,
                        action: "revoke-join-token".into(),
                        target,
                        detail: serde_json::Value::Null,
                    })
                    .await?;
            }
            Ok(revoked)
        })
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("Join token not found: {id}")))
    }
}

/// A worker registers with a join token and receives its own credential
/// (shown once). The body is the registration's; each success counts one
/// use of the token.
#[utoipa::path(
    post, path = "/api/vdi/workers/join", tag = "workers",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; the credential is shown once", body = JoinResponse),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Join token unknown, expired or used up", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn join(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<JoinResponse>), ApiError> {
    // Validate before counting a use: bad input must not burn the token.
    let (id, description) = request.into_parts()?;
    check_not_reserved(&id)?;
    let presented = headers
        .get(JOIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let service = Arc::clone(state.service());
    let credential = new_worker_credential(&id);
    let credential_hash = hash_hex(&credential);
    let code = id.clone();
    let joined = state
        .detached(async move {
            let now = service.clock().now();
            let Some(token) = service
                .store()
                .redeem_join_token(&hash_hex(&presented), now)
                .await?
            else {
                return Ok(None);
            };
            service.register(code.clone(), description).await?;
            service
                .store()
                .put_worker_credential(&code, &credential_hash)
                .await?;
            service
                .store()
                .append_audit(&vdi_cluster_core::store::AuditEntry {
                    at: now,
                    actor: format!("join-token:{}", token.id),
                    action: "join".into(),
                    target: code.to_string(),
                    detail: serde_json::json!({"uses": token.uses, "maxUses": token.max_uses}),
                })
                .await?;
            Ok(Some(token))
        })
        .await?;
    if joined.is_none() {
        return Err(ApiError::unauthorized(
            "x-join-token: unknown, expired, revoked or used up; ask an admin for a new one",
        ));
    }
    tracing::info!(code = %id, "worker joined with a join token");
    Ok((
        StatusCode::CREATED,
        Json(JoinResponse {
            code: id.to_string(),
            credential,
        }),
    ))
}
