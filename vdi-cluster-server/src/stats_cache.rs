//! The cluster statistics, cached per replica for
//! `serve --stats-cache-sec` (30 s, as SkyPanelV2 caches its
//! `getClusterStats()`): a wall of dashboards polling
//! `GET /api/vdi/cluster/stats` (or its minicloud name
//! `GET /api/vdi/workers/stats`) costs one read of the registry per
//! window, not one per request. The exam platform's summary
//! (`GET /api/vdi/workers/summary`, the operators' page's live figures) is
//! not cached.
//!
//! Each answer carries `Cache-Control: private, max-age=<seconds left in
//! the window>` (private: the answers need an operator's credential) and a
//! strong `ETag`, the SHA-256 of the body; a request whose `If-None-Match`
//! names it is answered 304 with no body. Within a window every request
//! gets the body of the window's first request, so the figures may be that
//! many seconds stale; a replica's cache is its own (two replicas may
//! answer different windows). With 0 nothing is kept: every request reads
//! the store, and the answer says `no-cache` (its `ETag` still spares the
//! body).
//!
//! The window runs on the service's clock. One request at a time fills an
//! empty or expired window; the others wait for its body instead of
//! reading the store too.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};
use vdi_cluster_core::Timestamp;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// One answer's body, when it was read, and its entity tag.
#[derive(Debug, Clone)]
struct Entry {
    at: Timestamp,
    body: Bytes,
    etag: HeaderValue,
}

impl Entry {
    fn new(at: Timestamp, body: Bytes) -> Self {
        let etag = format!("\"{:x}\"", Sha256::digest(&body));
        Self {
            at,
            body,
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        }
    }
}

/// The statistics of one replica, kept for the window.
#[derive(Debug)]
pub struct StatsCache {
    window: Duration,
    kept: Mutex<Option<Entry>>,
}

impl StatsCache {
    /// Keeps each answer for `window` (zero: not at all).
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            kept: Mutex::new(None),
        }
    }

    /// How long an answer is kept.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The answer at `now`: the window's body if it is fresh, else
    /// `read`'s (kept for the window); 304 when `request`'s
    /// `If-None-Match` names its tag. Counted in `metrics` as a hit or a
    /// miss.
    pub(crate) async fn answer<F>(
        &self,
        now: Timestamp,
        request: &HeaderMap,
        metrics: &Metrics,
        read: impl FnOnce() -> F,
    ) -> Result<Response, ApiError>
    where
        F: Future<Output = Result<Bytes, ApiError>>,
    {
        let mut slot = self.kept.lock().await;
        let fresh = slot.as_ref().filter(|e| now < e.at.plus(self.window));
        let entry = match fresh {
            Some(entry) => {
                metrics.count_stats_answer(true);
                entry.clone()
            }
            None => {
                let entry = Entry::new(now, read().await?);
                metrics.count_stats_answer(false);
                if !self.window.is_zero() {
                    *slot = Some(entry.clone());
                }
                entry
            }
        };
        drop(slot);
        let control = if self.window.is_zero() {
            HeaderValue::from_static("private, no-cache")
        } else {
            let left = entry.at.plus(self.window).since(now).as_secs();
            HeaderValue::from_str(&format!("private, max-age={left}"))
                .unwrap_or(HeaderValue::from_static("private, no-cache"))
        };
        let headers = [
            (header::ETAG, entry.etag.clone()),
            (header::CACHE_CONTROL, control),
        ];
        if names_tag(request, &entry.etag) {
            return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
        }
        let json = HeaderValue::from_static("application/json");
        Ok((headers, [(header::CONTENT_TYPE, json)], entry.body).into_response())
    }
}

/// The `If-None-Match` request header of a cached answer, as the OpenAPI
/// document states it.
pub(crate) struct IfNoneMatch;

impl IntoParams for IfNoneMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("If-None-Match")
                .parameter_in(ParameterIn::Header)
                .description(Some(
                    "The ETag of an earlier answer: 304 without a body while it is still current",
                ))
                .required(Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ]
    }
}

/// `body` as the JSON an answer carries.
pub(crate) fn json_body<T: serde::Serialize>(body: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(body).map(Bytes::from).map_err(|e| {
        tracing::error!(error = %e, "an answer could not be written as JSON");
        ApiError::internal()
    })
}

/// Whether `request`'s `If-None-Match` names `etag` (or is `*`): the
/// weak comparison RFC 9110 asks of it, so `W/"…"` matches too.
fn names_tag(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(if_none_match: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(if_none_match).unwrap(),
        );
        h
    }

    #[test]
    fn if_none_match_names_the_tag() {
        let etag = Entry::new(Timestamp(0), Bytes::from_static(b"{}")).etag;
        let tag = etag.to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 66);
        assert!(names_tag(&request(&tag), &etag));
        assert!(names_tag(&request(&format!("\"x\", W/{tag}")), &etag));
        assert!(names_tag(&request("*"), &etag));
        assert!(!names_tag(&request("\"x\""), &etag));
        assert!(!names_tag(&HeaderMap::new(), &etag));
    }

    #[tokio::test]
    async fn a_window_reads_once_and_expires() {
        let cache = StatsCache::new(Duration::from_secs(30));
        let metrics = Metrics::new();
        let mut reads = 0;
        for (at, body) in [(0, "a"), (29_999, "b"), (30_000, "c")] {
            let answer = cache
                .answer(Timestamp(at), &HeaderMap::new(), &metrics, || async {
                    reads += 1;
                    Ok(Bytes::from(body))
                })
                .await
                .unwrap();
            let control = answer.headers()[header::CACHE_CONTROL].to_str().unwrap();
            let left = if at == 29_999 { 0 } else { 30 };
            assert_eq!(control, format!("private, max-age={left}"));
        }
        assert_eq!(reads, 2, "the second request is the first one's");
    }
}
