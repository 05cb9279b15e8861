//! The node's HTTP plumbing: errors as Aetherium's body, and JSON bodies
//! decoded by the protocol crate's rules (the same 400s as the control
//! plane's).

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use vdi_cluster_core::ValidationError;
use vdi_cluster_protocol::{ErrorBody, decode};

/// An error answered by the worker-side API: a status and Aetherium's
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    body: ErrorBody,
}

impl HttpError {
    /// An error with `status` and a message for humans.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: status.canonical_reason().unwrap_or("Error").to_owned(),
                message: message.into(),
                code: status.as_u16(),
                field: None,
            },
        }
    }

    /// An error with `status` about the field `error` names.
    fn about_field(status: StatusCode, error: ValidationError) -> Self {
        let mut e = Self::new(status, error.to_string());
        e.body.field = Some(error.field);
        e
    }

    /// 400: the body is malformed; the error names the field.
    pub fn bad_request(error: ValidationError) -> Self {
        Self::about_field(StatusCode::BAD_REQUEST, error)
    }

    /// 422: a well-formed value is invalid.
    pub fn invalid(error: ValidationError) -> Self {
        Self::about_field(StatusCode::UNPROCESSABLE_ENTITY, error)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Aetherium's body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl From<ValidationError> for HttpError {
    fn from(error: ValidationError) -> Self {
        Self::invalid(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.body.message, "request failed");
        }
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A JSON body, decoded with field-accurate errors.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v.to_str().is_ok_and(decode::is_json_content_type));
        if !json {
            return Err(HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type: the body must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            HttpError::bad_request(ValidationError::new("body", rejection.body_text()))
        })?;
        decode::parse_json(&bytes)
            .map(Self)
            .map_err(HttpError::bad_request)
    }
}
