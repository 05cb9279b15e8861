//! Join tokens (as SkyPanelV2 and minicloud): an admin creates a token — shown once,
//! stored as a SHA-256 hash, valid until an expiry for a number of uses —
//! and a worker started with it registers (`POST /api/vdi/workers/join`
//! with `x-join-token`), receiving its own credential, which it sends in
//! `x-worker-token` from then on. The control plane keeps only the
//! credential's hash.
//!
//! A join token only creates new workers, unless an admin bound it to one
//! code (`code` on creation): then it may join that worker, also after an
//! admin reset its credential. Joining never takes over a worker whose
//! credential is live.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use vdi_cluster_core::credential::{IssuedSecret, JoinRefusal};
use vdi_cluster_core::service::{AssignedJoin, JoinOutcome};
use vdi_cluster_core::store::{AuditEntry, JoinToken};
use vdi_cluster_core::{ValidationError, WorkerId};
use vdi_cluster_protocol::credentials::worker_credential;
use vdi_cluster_protocol::join::{CreateJoinToken, CreatedJoinToken, JoinTokenJson, JoinTokenList};
use vdi_cluster_protocol::{ErrorBody, JOIN_TOKEN_HEADER, JoinResponse, RegisterRequest};

use super::reserved::{check_not_reserved, is_reserved};
use crate::auth::{Caller, Principal, hash_hex, random_secret};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, PathParams};
use crate::peer_cert::{PeerCert, ensure_certificate};
use crate::state::AppState;

/// Default lifetime of a join token (1 hour).
pub(crate) const DEFAULT_JOIN_TOKEN_TTL_SEC: u64 = 3600;
/// Longest lifetime of a join token (30 days).
pub(crate) const MAX_JOIN_TOKEN_TTL_SEC: u64 = 30 * 24 * 3600;
/// Most registrations one join token may allow.
pub(crate) const MAX_JOIN_TOKEN_USES: u32 = 1000;
/// Prefix of join tokens (`vdij_<hex>`), so they are recognisable in logs
/// and secret scanners.
pub(crate) const JOIN_TOKEN_PREFIX: &str = "vdij_";

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
    let worker = match body.code {
        Some(code) => {
            let id = WorkerId::parse("code", code)?;
            check_not_reserved(&id)?;
            Some(id)
        }
        None => None,
    };
    let created = issue_join_token(&state, caller.actor(), ttl, max_uses, worker).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates and stores a join token (optionally bound to `worker`), audited
/// as `actor`'s; its secret is in the answer only.
pub(crate) async fn issue_join_token(
    state: &AppState,
    actor: String,
    ttl_sec: u64,
    max_uses: u32,
    worker: Option<WorkerId>,
) -> Result<CreatedJoinToken, ApiError> {
    let now = state.service().clock().now();
    let token = format!("{JOIN_TOKEN_PREFIX}{}", random_secret());
    let stored = JoinToken {
        id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        token_hash: hash_hex(&token),
        created_by: actor.clone(),
        created_at: now,
        expires_at: now.plus(Duration::from_secs(ttl_sec)),
        max_uses,
        uses: 0,
        worker,
    };
    let service = Arc::clone(state.service());
    let record = stored.clone();
    state
        .detached(async move {
            service.store().put_join_token(&record).await?;
            let detail = serde_json::json!({
                "expiresAt": record.expires_at.as_millis(),
                "maxUses": record.max_uses,
                "code": record.worker.as_ref().map(WorkerId::as_str),
            });
            service
                .store()
                .append_audit(&AuditEntry {
                    at: record.created_at,
                    actor,
                    action: "create-join-token".into(),
                    target: record.id.clone(),
                    detail,
                })
                .await
        })
        .await?;
    Ok(CreatedJoinToken {
        token,
        info: JoinTokenJson::new(&stored, now),
    })
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
    let tokens = state.service().store().join_tokens().await?;
    Ok(Json(JoinTokenList::new(&tokens, now)))
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
                    .append_audit(&AuditEntry {
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
/// (shown once, expiring after the configured TTL). The token may only
/// create a new worker, or the one worker it is bound to — which, if it
/// exists, an admin must have reset first. The token's use and the
/// credential are written in one atomic step: two joins for one code never
/// both succeed.
#[utoipa::path(
    post, path = "/api/vdi/workers/join", tag = "workers",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; the credential is shown once", body = JoinResponse),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Join token unknown, expired or used up", body = ErrorBody),
        (status = 403, description = "Join token bound to another worker, or not bound to this one", body = ErrorBody),
        (status = 409, description = "The code is taken: an admin must reset its credential", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn join(
    State(state): State<AppState>,
    headers: HeaderMap,
    cert: PeerCert,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<JoinResponse>), ApiError> {
    // A requested code keeps SkyPanelV2's contract: taken is a 409.
    let keep_requested = request.code.is_some();
    let answer = join_with(&state, &headers, &cert, request, keep_requested).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// A join with the join token in `headers`: the code requested or one
/// assigned (derived from the host name), and another one when it is taken
/// unless `keep_requested`. Answers the code and its credential. With a
/// client certificate (mutual TLS), the code must be one it names, and
/// is never exchanged for another.
pub(crate) async fn join_with(
    state: &AppState,
    headers: &HeaderMap,
    cert: &PeerCert,
    request: RegisterRequest,
    keep_requested: bool,
) -> Result<JoinResponse, ApiError> {
    // Validate before counting a use: bad input must not burn the token.
    let (requested, description, host) = request.into_parts()?;
    description.validate()?;
    host.validate()?;
    if let Some(id) = &requested {
        check_not_reserved(id)?;
    }
    ensure_certificate(state, &Principal::Joining, cert, requested.as_ref())?;
    let keep_requested = keep_requested || cert.0.is_some();
    let presented = headers
        .get(JOIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let service = Arc::clone(state.service());
    let secret = random_secret();
    let issued = secret.clone();
    let join = AssignedJoin {
        token_hash: hash_hex(&presented),
        requested: requested.clone(),
        description,
        host,
        keep_requested,
    };
    let outcome = state
        .detached(async move {
            service
                .fleet()
                .join_assigned(
                    join,
                    |id| hash_hex(&worker_credential(id, &issued)),
                    is_reserved,
                )
                .await
        })
        .await?;
    let joined = match outcome {
        JoinOutcome::Joined(joined) => joined,
        JoinOutcome::Refused(refusal) => {
            let label = requested.map_or_else(|| "(assigned)".to_owned(), |id| id.to_string());
            return Err(join_refused(&label, refusal));
        }
    };
    let id = joined.worker.id().clone();
    tracing::info!(code = %id, rejoined = joined.rejoined, "worker joined with a join token");
    let credential = worker_credential(&id, &secret);
    Ok(credential_answer(&id, credential, &joined.secret))
}

/// The answer carrying a credential just issued.
pub(crate) fn credential_answer(
    id: &WorkerId,
    credential: String,
    secret: &IssuedSecret,
) -> JoinResponse {
    JoinResponse {
        code: id.to_string(),
        credential,
        expires_at: Some(secret.expires_at.as_millis()),
        ttl_sec: Some(secret.expires_at.since(secret.issued_at).as_secs().max(1)),
    }
}

fn join_refused(id: &str, refusal: JoinRefusal) -> ApiError {
    match refusal {
        JoinRefusal::TokenInvalid => ApiError::unauthorized(
            "x-join-token: unknown, expired, revoked or used up; ask an admin for a new one",
        ),
        JoinRefusal::TokenBoundElsewhere { bound } => ApiError::forbidden(format!(
            "x-join-token: this join token is bound to worker {bound}, not {id}"
        )),
        JoinRefusal::TokenNotBound => ApiError::forbidden(format!(
            "x-join-token: worker {id} was reset; it may join again only with a join token bound to it"
        )),
        JoinRefusal::CodeTaken { .. } => ApiError::conflict(format!(
            "code: worker {id} is already registered; a join token cannot take it over \
             (an admin may reset its credential: POST /api/vdi/workers/{id}/credential/reset)"
        )),
    }
}
