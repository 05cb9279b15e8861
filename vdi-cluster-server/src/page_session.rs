//! The operators' page sessions in the store: the layer in front of every
//! route that finds the live session a proven cookie names
//! ([`auth::session`](crate::auth::session) says when a cookie is proven),
//! and the steps of signing in and out. A session lives in the backend, so
//! a sign-out on one replica holds on all of them, from the next request.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::operator_session::OperatorSession;
use vdi_cluster_core::store::AuditEntry;

use crate::auth::session::{PageSession, cookie_proof, session_key};
use crate::auth::{Role, User, random_secret};
use crate::error::ApiError;
use crate::state::AppState;

/// The operator roles among `roles`: a page session carries no other.
fn operator_roles(roles: impl Iterator<Item = Role>) -> BTreeSet<Role> {
    roles
        .filter(|r| matches!(r, Role::Admin | Role::Proctor))
        .collect()
}

/// The stored session under `id` as the gate sees it, if it is live.
async fn find(state: &AppState, id: &str) -> Result<Option<PageSession>, ApiError> {
    let Some(key) = state.auth().csrf_key() else {
        return Ok(None);
    };
    let id_hash = session_key(id);
    let now = state.service().clock().now();
    let Some(stored) = state
        .service()
        .store()
        .operator_session(&id_hash, now)
        .await?
    else {
        return Ok(None);
    };
    let user = User {
        sub: stored.sub,
        roles: operator_roles(stored.roles.iter().filter_map(|r| Role::parse(r))),
    };
    Ok(Some(PageSession {
        id_hash,
        csrf_token: key.csrf_token(id),
        user,
        expires_at: stored.expires_at.as_millis(),
    }))
}

/// The layer in front of every route: a proven session cookie whose
/// session is live puts its [`PageSession`] in the request's extensions,
/// where the gate takes its operator for a bearer's (see
/// [`auth::session`](crate::auth::session)).
pub async fn cookie_credential(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = match cookie_proof(state.auth(), req.method(), req.uri().query(), req.headers()) {
        Ok(Some(id)) => id.to_owned(),
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    match find(&state, &id).await {
        Ok(Some(session)) => {
            req.extensions_mut().insert(session);
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Stores a new session for `user` until `expires_at` and returns its id
/// (for the cookie) and the session as the gate will see it.
pub(crate) async fn open(
    state: &AppState,
    user: &User,
    expires_at: Timestamp,
) -> Result<(String, PageSession), ApiError> {
    let key = state
        .auth()
        .csrf_key()
        .ok_or_else(|| ApiError::unauthorized("no JWT secret is configured"))?;
    let id = random_secret();
    let id_hash = session_key(&id);
    let user = User {
        sub: user.sub.clone(),
        roles: operator_roles(user.roles.iter().copied()),
    };
    let stored = OperatorSession {
        sub: user.sub.clone(),
        roles: user.roles.iter().map(|r| r.name().to_owned()).collect(),
        created_at: state.service().clock().now(),
        expires_at,
    };
    let service = Arc::clone(state.service());
    let hash = id_hash.clone();
    state
        .detached(async move { service.store().put_operator_session(&hash, &stored).await })
        .await?;
    let session = PageSession {
        id_hash,
        csrf_token: key.csrf_token(&id),
        user,
        expires_at: expires_at.as_millis(),
    };
    Ok((id, session))
}

/// Ends the session stored under `id_hash`.
pub(crate) async fn close(state: &AppState, id_hash: &str) -> Result<(), ApiError> {
    let service = Arc::clone(state.service());
    let hash = id_hash.to_owned();
    state
        .detached(async move { service.store().end_operator_session(&hash).await })
        .await?;
    Ok(())
}

/// Ends every operators' page session (an ADMIN's "sign out
/// everywhere") and writes it to the audit trail under `actor`; how many
/// sessions there were.
pub(crate) async fn close_all(state: &AppState, actor: String) -> Result<u64, ApiError> {
    let service = Arc::clone(state.service());
    let at = service.clock().now();
    state
        .detached(async move {
            let ended = service.store().end_operator_sessions().await?;
            service
                .store()
                .append_audit(&AuditEntry {
                    at,
                    actor,
                    action: "sign-out-everywhere".into(),
                    target: "operators' page".into(),
                    detail: serde_json::json!({ "ended": ended }),
                })
                .await?;
            Ok(ended)
        })
        .await
}
