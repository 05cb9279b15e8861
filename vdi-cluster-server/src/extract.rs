//! Extractors whose rejections are [`ApiError`]s naming the field.
//!
//! * [`JsonBody`]: a JSON body; malformed JSON, a wrong type, a missing or
//!   unknown field is a 400 naming the field (`totalMemoryMb: invalid
//!   value: integer -1, expected u64`); a body over the limit is a 413; a
//!   content type that cannot carry JSON (XML, multipart) is a 415.
//!   `application/x-www-form-urlencoded` and `text/plain` are read as JSON,
//!   since `curl -d '{…}'` sends the former.
//! * [`OptionalJsonBody`]: the same, but an empty body is `None` (`POST
//!   …/drain` with no body).
//! * [`QueryParams`]: the query string; unknown parameters are a 400.
//! * [`PathParams`]: path segments, percent-decoded.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

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

fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    // JSON, and the two types plain clients send a JSON body with by
    // default (`curl -d` sends form-urlencoded): the body is parsed as JSON
    // either way.
    let ok = value.to_str().is_ok_and(|v| {
        let essence = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || essence.ends_with("+json")
            || essence == "application/x-www-form-urlencoded"
            || essence == "text/plain"
    });
    if ok {
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

/// Pulls the field name out of serde's "missing field `x`" / "unknown
/// field `x`" messages.
fn quoted_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// The field an error is about: the error's path, completed with the
/// field quoted in "missing field" messages (whose path is the parent).
fn field_of(path: &str, message: &str, root: &str) -> String {
    match (quoted_field(message), path) {
        (Some(name), ".") => name.to_owned(),
        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        (Some(name), p) => format!("{p}.{name}"),
        (None, ".") => root.to_owned(),
        (None, p) => p.to_owned(),
    }
}

/// Parses `bytes` as JSON into `T`; errors name the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("body", "a JSON object is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request("body", format!("malformed JSON: {inner}"));
        }
        let text = inner.to_string();
        ApiError::bad_request(field_of(&path, &text, "body"), text)
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request("body", format!("malformed JSON: {e}")))?;
    Ok(value)
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
        if bytes.iter().all(u8::is_ascii_whitespace) {
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
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let path = e.path().to_string();
            let text = e.into_inner().to_string();
            ApiError::bad_request(field_of(&path, &text, "query"), text)
        })
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        is_draining: Option<bool>,
        count: u32,
        nested: Option<BTreeMap<String, u32>>,
    }

    fn field(json: &str) -> String {
        parse_json::<Body>(json.as_bytes())
            .unwrap_err()
            .field()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(r#"{"count": -1}"#), "count");
        assert_eq!(field(r#"{"count": "NaN"}"#), "count");
        assert_eq!(field(r#"{"count": 1e40}"#), "count");
        assert_eq!(field(r#"{"isDraining": true}"#), "count");
        assert_eq!(field(r#"{"count": 1, "isDrainig": true}"#), "isDrainig");
        assert_eq!(field(r#"{"count": 1, "nested": {"a": "x"}}"#), "nested.a");
        assert_eq!(field(r#"{"count": 1"#), "body");
        assert_eq!(field(r#"{"count": 1} x"#), "body");
        assert_eq!(field(""), "body");
    }
}
