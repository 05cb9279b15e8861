//! Extractors whose rejections are [`ApiError`]s naming the field.
//!
//! * [`JsonBody`]: a JSON body; malformed JSON, a wrong type, a missing or
//!   unknown field is a 400 naming the field (`totalMemoryMb: invalid
//!   value: integer -1, expected u64`); a body over the limit is a 413; a
//!   content type that cannot carry JSON (XML, multipart) is a 415.
//!   `application/x-www-form-urlencoded` and `text/plain` are read as JSON,
//!   since `curl -d '{…}'` sends the former.
//! * [`OptionalJsonBody`]: the same, but an empty body (or JSON `null`) is
//!   `None` (`POST …/drain` with no body).
//! * [`QueryParams`]: the query string; unknown parameters are a 400.
//! * [`PagedQuery`]: the same, with a paginated list's `limit` and
//!   `offset` read beside the list's own parameters.
//! * [`PathParams`]: path segments, percent-decoded.
//! * [`bounded`]: a count parameter (`limit`, `perWorker`) within its
//!   bounds.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use vdi_cluster_core::ValidationError;
use vdi_cluster_protocol::decode;
use vdi_cluster_protocol::page::{PageQuery, split_page_query};

use crate::error::ApiError;

/// A JSON body, parsed with field-accurate errors.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// A JSON body that may be absent (empty).
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub Option<T>);

/// Query parameters, parsed with field-accurate errors.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

/// Path parameters.
#[derive(Debug, Clone)]
pub struct PathParams<T>(pub T);

/// A paginated list's query: its own parameters `T` and the page's
/// ([`PageQuery`]), parsed with field-accurate errors.
#[derive(Debug, Clone)]
pub struct PagedQuery<T>(pub T, pub PageQuery);

fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    if value.to_str().is_ok_and(decode::is_json_content_type) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type: the body must be application/json",
        ))
    }
}

fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "body: larger than the request body limit")
    } else {
        ApiError::bad_request("body", rejection.body_text())
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    check_content_type(&req)?;
    Bytes::from_request(req, state)
        .await
        .map_err(bytes_rejection)
}

/// Parses `bytes` as JSON into `T`; errors are 400s naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    decode::parse_json(bytes).map_err(|e| ApiError::bad_request(e.field, e.message))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        // No bytes at all, or JSON `null`, is no body (the body is
        // optional); whitespace alone is a malformed body.
        if bytes.is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(Self(None));
        }
        parse_json(&bytes).map(|v| Self(Some(v)))
    }
}

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        decode::parse_query(parts.uri.query().unwrap_or(""))
            .map(Self)
            .map_err(|e| ApiError::bad_request(e.field, e.message))
    }
}

impl<S, T> FromRequestParts<S> for PagedQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        split_page_query(parts.uri.query().unwrap_or(""))
            .map(|(query, page)| Self(query, page))
            .map_err(|e| ApiError::bad_request(e.field, e.message))
    }
}

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|rejection: PathRejection| {
                ApiError::bad_request("path", rejection.body_text())
            })
    }
}

/// A count parameter: `default` when absent, else from 1 to `max` (a 422
/// naming `field` otherwise).
pub fn bounded(
    field: &str,
    value: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(ValidationError::new(
            field,
            format!("must be from 1 to {max}"),
        ))),
    }
}
