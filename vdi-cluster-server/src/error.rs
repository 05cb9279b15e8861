//! [`ApiError`]: the one place that maps failures to HTTP statuses and the
//! Aetherium's error body `{"error", "message", "code"}` (plus `field` for bad
//! input).
//!
//! | failure | status |
//! |---|---|
//! | malformed JSON, wrong JSON type, missing or unknown field, bad query | 400 |
//! | missing, invalid or expired credential | 401 (`WWW-Authenticate: Bearer`) |
//! | valid credential without the role, a STUDENT acting for someone else, a worker moved to another host with the shared worker token | 403 |
//! | unknown worker, session or route | 404 |
//! | unsupported method | 405 |
//! | request took longer than the request timeout | 408 |
//! | illegal transition, disable refused while sessions remain (names the count), allocation in progress, concurrent update conflict | 409 (`Retry-After` when retrying helps) |
//! | a change the change freeze refuses (exams under way would fit worse) | 409 with `FreezeRefusedJson` (the exams, their shortfall, `safeFrom`) |
//! | body larger than the limit | 413 |
//! | a content type that cannot carry JSON (XML, multipart) | 415 |
//! | well-formed value that is invalid (negative capacity, zero VM, bad code, unknown status filter) | 422 |
//! | a worker node failed a call that had no fallback | 502 |
//! | storage backend unavailable, or no capacity (`NoCapacity`) | 503 with `Retry-After` |
//!
//! A 500 means a bug: it is logged with its source and answered without
//! details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::{Error as CoreError, ValidationError};

use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::maintenance::FreezeRefusedJson;

/// Seconds a client should wait before retrying after `NoCapacity`.
pub const NO_CAPACITY_RETRY_AFTER_SECS: u64 = 5;
/// Seconds a client should wait before retrying while the backend is down.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;
/// Seconds a client should wait before retrying a contended request.
pub const CONFLICT_RETRY_AFTER_SECS: u64 = 1;

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
    /// A change freeze's refusal, answered as its own body.
    frozen: Option<Box<FreezeRefusedJson>>,
}

impl ApiError {
    /// An error with `status` and a message for humans.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
            frozen: None,
        }
    }

    /// 400: the request is malformed; `field` names what is wrong.
    pub fn bad_request(field: impl Into<String>, message: impl AsRef<str>) -> Self {
        let field = field.into();
        Self {
            message: format!("{field}: {}", message.as_ref()),
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, String::new())
        }
    }

    /// 422: a well-formed value is invalid.
    pub fn invalid(error: ValidationError) -> Self {
        Self {
            message: error.to_string(),
            field: Some(error.field),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, String::new())
        }
    }

    /// 401: no valid credential.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: a valid credential that may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: a bug. The message is generic; log the cause before.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the request may be retried",
        )
    }

    /// Adds a `Retry-After` header of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field named, for bad input.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            message: self.message.clone(),
            code: self.status.as_u16(),
            field: self.field.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::invalid(error)
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Invalid(v) => Self::invalid(v),
            e @ (CoreError::WorkerNotFound(_)
            | CoreError::SessionNotFound(_)
            | CoreError::ExamNotFound(_)
            | CoreError::WebhookNotFound(_)
            | CoreError::ScheduledNotFound(_)
            | CoreError::VmNotFound(_)) => Self::not_found(e.to_string()),
            CoreError::Transition(t) => Self::conflict(t.to_string()),
            CoreError::ScheduledRefused(r) => Self::conflict(r.to_string()),
            e @ CoreError::ExamExists(_) => Self::conflict(e.to_string()),
            CoreError::Frozen(change) => {
                let body = FreezeRefusedJson::from(&*change);
                Self {
                    frozen: Some(Box::new(body.clone())),
                    ..Self::conflict(body.message)
                }
            }
            CoreError::Relocation(r) => Self {
                field: Some("apiBaseUrl".into()),
                ..Self::forbidden(r.to_string())
            },
            CoreError::Takeover(t) => Self::conflict(t.to_string()),
            e @ (CoreError::AllocationInProgress(_) | CoreError::Conflict { .. }) => {
                Self::conflict(e.to_string()).with_retry_after(CONFLICT_RETRY_AFTER_SECS)
            }
            CoreError::NoCapacity(reason) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, reason.to_string())
                    .with_retry_after(NO_CAPACITY_RETRY_AFTER_SECS)
            }
            e @ CoreError::Worker { .. } => {
                tracing::warn!(error = %e, "worker call failed");
                Self::new(StatusCode::BAD_GATEWAY, e.to_string())
            }
            CoreError::Unavailable { source } => {
                tracing::warn!(error = %source, "storage backend unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage backend unavailable; retry later",
                )
                .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
            }
            other => {
                tracing::error!(error = %other, "unexpected error");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(status = %self.status, message = %self.message, "request failed");
        }
        let mut response = match self.frozen {
            Some(body) => (self.status, axum::Json(body)).into_response(),
            None => (self.status, axum::Json(self.body())).into_response(),
        };
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use vdi_cluster_core::WorkerId;

    use super::*;

    #[test]
    fn aetherium_not_found_body() {
        let id = WorkerId::parse("code", "w-9").unwrap();
        let e = ApiError::from(CoreError::WorkerNotFound(id));
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "Not Found", "message": "Worker not found: w-9", "code": 404})
        );
    }

    #[test]
    fn core_errors_map_to_statuses() {
        use vdi_cluster_core::policy::TransitionError;
        use vdi_cluster_core::scheduler::Exclusions;
        use vdi_cluster_core::{ExamId, NoCapacity, SessionKey};

        let key = SessionKey::parse("e", "u").unwrap();
        let cases: Vec<(CoreError, u16, Option<u64>)> = vec![
            (
                CoreError::Transition(TransitionError::SessionsRemain { count: 3 }),
                409,
                None,
            ),
            (CoreError::AllocationInProgress(key.clone()), 409, Some(1)),
            (
                CoreError::Conflict {
                    what: "worker w".into(),
                },
                409,
                Some(1),
            ),
            (CoreError::SessionNotFound(key), 404, None),
            (
                NoCapacity {
                    exam_id: ExamId::parse("examId", "e").unwrap(),
                    workers: 0,
                    excluded: Exclusions::default(),
                    failed_calls: 0,
                }
                .into(),
                503,
                Some(NO_CAPACITY_RETRY_AFTER_SECS),
            ),
            (
                CoreError::unavailable(std::io::Error::other("down")),
                503,
                Some(UNAVAILABLE_RETRY_AFTER_SECS),
            ),
        ];
        for (error, status, retry) in cases {
            let text = error.to_string();
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{text}");
            assert_eq!(api.retry_after, retry, "{text}");
        }
        let api = ApiError::from(CoreError::Transition(TransitionError::SessionsRemain {
            count: 3,
        }));
        assert!(api.message().contains("3 session"));
    }

    #[test]
    fn validation_names_the_field() {
        let e = ApiError::from(ValidationError::new("vmCpuCores", "must be greater than 0"));
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field(), Some("vmCpuCores"));
        assert!(e.message().starts_with("vmCpuCores"));
    }
}
