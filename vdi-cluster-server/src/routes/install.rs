//! SkyPanelV2's installation script and the agent it downloads
//! ([`install`](crate::install) renders the script).
//!
//! * `POST /api/vdi/workers/install-script` (ADMIN) — a POSIX shell script
//!   bound to a fresh single-use join token (shown in the script only).
//! * `GET /api/vdi/agent/vdi-cluster` (public: the binary holds no secret)
//!   — this control plane's own executable, which the script checks
//!   against the SHA-256 it carries.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::{ValidationError, WorkerId};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::join::InstallScriptRequest;

use super::join::{DEFAULT_JOIN_TOKEN_TTL_SEC, MAX_JOIN_TOKEN_TTL_SEC, issue_join_token};
use super::reserved::check_not_reserved;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::OptionalJsonBody;
use crate::install::{InstallConfig, ScriptValues, render};
use crate::state::AppState;

fn unavailable(what: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, what)
}

/// The installations this control plane serves, if started by `serve`.
fn config(state: &AppState) -> Result<&InstallConfig, ApiError> {
    state.install().ok_or_else(|| {
        unavailable("worker installation is served only by a control plane started with `vdi-cluster serve`")
    })
}

/// The URL workers reach this control plane at: the configured one
/// (`--public-url`, or the specific address `serve` listens on), never one
/// a request's `Host` header names — whoever can reach the control plane
/// could otherwise point new workers at a host of their choosing.
fn control_plane_url(install: &InstallConfig) -> Result<String, ApiError> {
    install.public_url().map(str::to_owned).ok_or_else(|| {
        unavailable(
            "this control plane does not know the URL workers reach it at: start it with --public-url (VDI_PUBLIC_URL), or listen on a specific address",
        )
    })
}

/// A worker installation script (SkyPanelV2's), bound to a fresh join token
/// valid once for `ttlSec`; with `code`, the token is bound to that code.
#[utoipa::path(
    post, path = "/api/vdi/workers/install-script", tag = "workers",
    request_body(content = Option<InstallScriptRequest>, description = "Optional token lifetime and worker code"),
    responses(
        (status = 201, description = "The script (POSIX sh); its join token is in it only", body = String, content_type = "text/x-shellscript"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn script(
    State(state): State<AppState>,
    Caller(caller): Caller,
    OptionalJsonBody(body): OptionalJsonBody<InstallScriptRequest>,
) -> Result<Response, ApiError> {
    let install = config(&state)?.clone();
    let body = body.unwrap_or_default();
    let ttl = body.ttl_sec.unwrap_or(DEFAULT_JOIN_TOKEN_TTL_SEC);
    if !(1..=MAX_JOIN_TOKEN_TTL_SEC).contains(&ttl) {
        return Err(ApiError::invalid(ValidationError::new(
            "ttlSec",
            format!("must be from 1 to {MAX_JOIN_TOKEN_TTL_SEC}"),
        )));
    }
    let code = body.code.map(|c| WorkerId::parse("code", c)).transpose()?;
    if let Some(id) = &code {
        check_not_reserved(id)?;
    }
    let control_plane = control_plane_url(&install)?;
    let digest_of = install.clone();
    let sha = tokio::task::spawn_blocking(move || digest_of.agent_sha256())
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read the agent binary");
            unavailable("the agent binary cannot be read")
        })?;
    let created = issue_join_token(&state, caller.actor(), ttl, 1, code.clone()).await?;
    let script = render(&ScriptValues {
        control_plane: &control_plane,
        join_token: &created.token,
        cluster_token: install.cluster_token(),
        agent_sha256: &sha,
        code: code.as_ref().map_or("", WorkerId::as_str),
        generated_at: &format_rfc3339(state.service().clock().now()),
        expires_at: &format_rfc3339(vdi_cluster_core::Timestamp(created.info.expires_at)),
    })
    .map_err(|e| ApiError::bad_request("publicUrl", e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        script,
    )
        .into_response())
}

/// The agent binary: this control plane's own executable, for the
/// platform the installation script checks.
#[utoipa::path(
    get, path = "/api/vdi/agent/vdi-cluster", tag = "workers",
    responses(
        (status = 200, description = "The `vdi-cluster` executable", content_type = "application/octet-stream"),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn agent(State(state): State<AppState>) -> Result<Response, ApiError> {
    let install = config(&state)?;
    let cannot = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot read the agent binary");
        unavailable("the agent binary cannot be read")
    };
    let file = tokio::fs::File::open(install.agent())
        .await
        .map_err(cannot)?;
    let length = file.metadata().await.map_err(cannot)?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response())
}
