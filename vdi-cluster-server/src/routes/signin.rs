//! The operators' page signs in and out: an ADMIN or PROCTOR JWT (checked
//! by the gate like any bearer) is kept in an HttpOnly, `SameSite=Strict`
//! cookie, and the answer carries the CSRF token of that session
//! ([`auth::session`](crate::auth::session)).

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::signin::OperatorSessionJson;

use crate::auth::jwt::unix_now;
use crate::auth::session::{clear_cookie, over_https, set_cookie};
use crate::auth::{AuthConfig, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// The session `headers`' bearer token opens, and that token.
fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(OperatorSessionJson, String), ApiError> {
    let token = AuthConfig::bearer_token(headers)?
        .ok_or_else(|| ApiError::unauthorized("this endpoint needs Authorization: Bearer <JWT>"))?
        .to_owned();
    let auth = state.auth();
    let (user, exp) = auth.operator_session(&token)?;
    let key = auth
        .csrf_key()
        .ok_or_else(|| ApiError::unauthorized("no JWT secret is configured"))?;
    let body = OperatorSessionJson {
        sub: user.sub,
        roles: [Role::Admin, Role::Proctor]
            .into_iter()
            .filter(|r| user.roles.contains(r))
            .map(|r| r.name().to_owned())
            .collect(),
        csrf_token: key.csrf_token(&token),
        expires_at: exp.saturating_mul(1000),
    };
    Ok((body, token))
}

/// Sign in: the bearer JWT (ADMIN or PROCTOR) is kept in the session
/// cookie until it expires; the answer names the operator and the CSRF
/// token of the session.
#[utoipa::path(
    post, path = "/api/vdi/auth/session", tag = "operators' page",
    responses(
        (status = 200, description = "Signed in; Set-Cookie holds the session", body = OperatorSessionJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (body, token) = session(&state, &headers)?;
    let max_age = (body.expires_at / 1000).saturating_sub(unix_now());
    let cookie = set_cookie(&token, max_age, over_https(&headers));
    Ok((
        [(SET_COOKIE, cookie), (CACHE_CONTROL, "no-store".to_owned())],
        Json(body),
    )
        .into_response())
}

/// The signed-in operator (from the session cookie, or a bearer JWT) and
/// the session's CSRF token.
#[utoipa::path(
    get, path = "/api/vdi/auth/session", tag = "operators' page",
    responses(
        (status = 200, description = "The session", body = OperatorSessionJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (body, _) = session(&state, &headers)?;
    Ok(([(CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Sign out: the session cookie is cleared.
#[utoipa::path(
    delete, path = "/api/vdi/auth/session", tag = "operators' page",
    responses((status = 204, description = "Signed out; Set-Cookie clears the session"))
)]
pub(crate) async fn sign_out(headers: HeaderMap) -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, clear_cookie(over_https(&headers)))],
    )
}
