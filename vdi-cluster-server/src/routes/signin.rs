//! The operators' page signs in and out: an ADMIN or PROCTOR JWT (checked
//! by the gate like any bearer) opens a session stored in the backend,
//! whose random id is kept in an HttpOnly, `SameSite=Strict` cookie; the
//! answer carries the CSRF token of that session
//! ([`auth::session`](crate::auth::session),
//! [`page_session`](crate::page_session)). Signing out ends the stored
//! session on every replica; an ADMIN may end every session at once.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::signin::{OperatorSessionJson, SessionsEndedJson};

use crate::auth::jwt::unix_now;
use crate::auth::session::{PageSession, clear_cookie, over_https, set_cookie};
use crate::auth::{AuthConfig, Caller, Role, User};
use crate::error::ApiError;
use crate::page_session;
use crate::state::AppState;

/// The page's view of a session of `user`.
fn body(user: &User, csrf_token: String, expires_at: u64) -> OperatorSessionJson {
    OperatorSessionJson {
        sub: user.sub.clone(),
        roles: [Role::Admin, Role::Proctor]
            .into_iter()
            .filter(|r| user.roles.contains(r))
            .map(|r| r.name().to_owned())
            .collect(),
        csrf_token,
        expires_at,
    }
}

/// The operator `headers`' bearer JWT names, and the JWT's `exp`.
fn bearer_operator(state: &AppState, headers: &HeaderMap) -> Result<(User, u64), ApiError> {
    let token = AuthConfig::bearer_token(headers)?
        .ok_or_else(|| ApiError::unauthorized("this endpoint needs Authorization: Bearer <JWT>"))?;
    state.auth().operator_session(token)
}

/// Sign in: the bearer JWT (ADMIN or PROCTOR) opens a session stored in
/// the backend until the JWT expires; the cookie holds the session's
/// random id; the answer names the operator and the session's CSRF token.
#[utoipa::path(
    post, path = "/api/vdi/auth/session", tag = "operators' page",
    responses(
        (status = 200, description = "Signed in; Set-Cookie holds the session's id", body = OperatorSessionJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (user, exp) = bearer_operator(&state, &headers)?;
    let expires_at = Timestamp::from_millis(exp.saturating_mul(1000));
    let (id, session) = page_session::open(&state, &user, expires_at).await?;
    let max_age = exp.saturating_sub(unix_now());
    let cookie = set_cookie(&id, max_age, over_https(&headers));
    let body = body(&session.user, session.csrf_token, session.expires_at);
    Ok((
        [(SET_COOKIE, cookie), (CACHE_CONTROL, "no-store".to_owned())],
        Json(body),
    )
        .into_response())
}

/// The signed-in operator and the session's CSRF token (from the session
/// cookie), or the operator of a bearer JWT (with no CSRF token).
#[utoipa::path(
    get, path = "/api/vdi/auth/session", tag = "operators' page",
    responses(
        (status = 200, description = "The session", body = OperatorSessionJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn current(
    State(state): State<AppState>,
    page: Option<Extension<PageSession>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let body = match page {
        Some(Extension(s)) if AuthConfig::bearer_token(&headers)?.is_none() => {
            body(&s.user, s.csrf_token, s.expires_at)
        }
        _ => {
            let (user, exp) = bearer_operator(&state, &headers)?;
            body(&user, String::new(), exp.saturating_mul(1000))
        }
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Sign out: the stored session is ended (on every replica) and the cookie
/// cleared.
#[utoipa::path(
    delete, path = "/api/vdi/auth/session", tag = "operators' page",
    responses(
        (status = 204, description = "Signed out; Set-Cookie clears the session"),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    page: Option<Extension<PageSession>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(Extension(session)) = page {
        page_session::close(&state, &session.id_hash).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, clear_cookie(over_https(&headers)))],
    )
        .into_response())
}

/// Sign out everywhere: every operators' page session ends, on every
/// replica (the caller's too); written to the audit trail.
#[utoipa::path(
    delete, path = "/api/vdi/auth/sessions", tag = "operators' page",
    responses(
        (status = 200, description = "Every session ended", body = SessionsEndedJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn sign_out_everywhere(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<SessionsEndedJson>, ApiError> {
    let ended = page_session::close_all(&state, caller.actor()).await?;
    Ok(Json(SessionsEndedJson { ended }))
}
