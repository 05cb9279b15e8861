//! Paced starts on the wire: a student whose desktop starts after the
//! answer, a worker's start pacing, and an exam's starts.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/api/vdi/sessions` | **202 [`StartingJson`]** when the start waits for a permit |
//! | `GET` | `/api/vdi/sessions/{examId}/{userId}` | **200 [`StartingJson`]** until the desktop is up |
//! | `GET` | `/api/vdi/workers/{code}/starts` | [`WorkerStartsJson`] |
//! | `GET` | `/api/vdi/exams/{examId}/starts` | [`ExamStartsJson`] |
//!
//! A client tells the session answers apart by `state`: `starting` here,
//! `queued` in the waiting room, a placed session's dispatch state
//! otherwise.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::SessionKey;
use vdi_cluster_core::service::{ExamStarts, StartPacing, Starting};

/// The `state` of a starting student's answer.
pub const STARTING: &str = "starting";

/// A student whose desktop is being started, or waits for its worker's
/// start permit: `{"state":"starting","worker":…,"estimatedReadySec":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartingJson {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// Always `starting`.
    #[schema(example = "starting")]
    pub state: String,
    /// The worker the session is reserved on.
    pub worker: String,
    /// Seconds until the desktop should be ready, from the worker's
    /// measured start time and the student's place in its start queue.
    pub estimated_ready_sec: u64,
    /// Place in the worker's start queue, 1 for the next to start; left
    /// out once its start runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub start_position: Option<u32>,
    /// When the seat was reserved (ms since the epoch).
    pub reserved_at: u64,
}

impl StartingJson {
    /// `key`'s student, `starting`.
    pub fn new(key: &SessionKey, starting: &Starting) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
            state: STARTING.to_owned(),
            worker: starting.worker.to_string(),
            estimated_ready_sec: starting.estimated_ready.as_secs_f64().ceil() as u64,
            start_position: starting.position.map(|p| p.saturating_add(1)),
            reserved_at: starting.since.as_millis(),
        }
    }
}

/// The request header a client of an exam that is not booked sends to be
/// answered before its desktop is up (RFC 7240).
pub const PREFER: &str = "prefer";

/// Whether a `Prefer` header's value asks for the asynchronous answer
/// (`respond-async` among its preferences, any case, parameters ignored).
pub fn prefers_async(prefer: Option<&str>) -> bool {
    prefer.is_some_and(|v| {
        v.split(',').any(|p| {
            p.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("respond-async"))
        })
    })
}

/// A worker's start pacing: `GET /api/vdi/workers/{code}/starts`, and one
/// row of [`ExamStartsJson`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStartsJson {
    /// The worker's code.
    pub code: String,
    /// The configured start concurrency (its agent's
    /// `--max-concurrent-starts`, or derived from its slots).
    pub max_concurrent_starts: u32,
    /// The limit now, adapted from its measured start times.
    pub start_limit: u32,
    /// Starts holding a permit now.
    pub starts_in_flight: u32,
    /// Starts waiting for a permit.
    pub starts_waiting: u32,
    /// How many of its last starts the figures rest on.
    pub measured_starts: u32,
    /// Median start time of its last starts, milliseconds.
    pub start_p50_ms: u32,
    /// 95th percentile, milliseconds.
    pub start_p95_ms: u32,
    /// Starts per second at the limit.
    pub starts_per_sec: f64,
}

impl From<&StartPacing> for WorkerStartsJson {
    fn from(p: &StartPacing) -> Self {
        Self {
            code: p.worker.to_string(),
            max_concurrent_starts: p.configured,
            start_limit: p.limit,
            starts_in_flight: p.in_flight,
            starts_waiting: p.waiting,
            measured_starts: p.stats.count,
            start_p50_ms: p.stats.p50_ms,
            start_p95_ms: p.stats.p95_ms,
            starts_per_sec: (p.rate_per_sec * 1000.0).round() / 1000.0,
        }
    }
}

/// `GET /api/vdi/exams/{examId}/starts`: how the exam's desktops start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamStartsJson {
    /// The exam.
    pub exam_id: String,
    /// Students whose desktop is starting now.
    pub starting: u32,
    /// Students whose desktop is up.
    pub placed: u32,
    /// Median time from a seat's reservation to its running desktop,
    /// seconds.
    pub wait_p50_sec: f64,
    /// 95th percentile, seconds.
    pub wait_p95_sec: f64,
    /// Each worker holding the exam's sessions.
    pub workers: Vec<WorkerStartsJson>,
}

impl From<&ExamStarts> for ExamStartsJson {
    fn from(s: &ExamStarts) -> Self {
        let secs = |d: std::time::Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
        Self {
            exam_id: s.exam.to_string(),
            starting: s.starting,
            placed: s.placed,
            wait_p50_sec: secs(s.wait_p50),
            wait_p95_sec: secs(s.wait_p95),
            workers: s.workers.iter().map(WorkerStartsJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vdi_cluster_core::pacing::StartStats;
    use vdi_cluster_core::{ExamId, Timestamp, UserId, WorkerId};

    use super::*;
    use crate::test_support::sorted_keys;

    #[test]
    fn respond_async_is_found_among_the_preferences() {
        assert!(prefers_async(Some("respond-async")));
        assert!(prefers_async(Some("wait=10, Respond-Async; x=1")));
        assert!(!prefers_async(Some("return=minimal")));
        assert!(!prefers_async(None));
    }

    #[test]
    fn bodies_keep_their_field_names() {
        let key = SessionKey::new(
            ExamId::parse("examId", "math").unwrap(),
            UserId::parse("userId", "s1").unwrap(),
        );
        let starting = Starting {
            worker: WorkerId::parse("code", "w1").unwrap(),
            position: Some(0),
            estimated_ready: Duration::from_millis(4_200),
            since: Timestamp(7),
        };
        let json = serde_json::to_value(StartingJson::new(&key, &starting)).unwrap();
        assert_eq!(
            sorted_keys(&json),
            [
                "estimatedReadySec",
                "examId",
                "reservedAt",
                "startPosition",
                "state",
                "userId",
                "worker"
            ]
        );
        assert_eq!(json["state"], "starting");
        assert_eq!(json["estimatedReadySec"], 5);
        assert_eq!(json["startPosition"], 1);
        let pacing = StartPacing {
            worker: WorkerId::parse("code", "w1").unwrap(),
            configured: 4,
            limit: 3,
            in_flight: 3,
            waiting: 9,
            stats: StartStats {
                count: 20,
                p50_ms: 3_000,
                p95_ms: 5_000,
            },
            rate_per_sec: 1.0,
        };
        let exam = ExamStarts {
            exam: ExamId::parse("examId", "math").unwrap(),
            starting: 12,
            placed: 30,
            wait_p50: Duration::from_secs(4),
            wait_p95: Duration::from_secs(9),
            workers: vec![pacing],
        };
        let json = serde_json::to_value(ExamStartsJson::from(&exam)).unwrap();
        assert_eq!(
            sorted_keys(&json),
            [
                "examId",
                "placed",
                "starting",
                "waitP50Sec",
                "waitP95Sec",
                "workers"
            ]
        );
        assert_eq!(
            sorted_keys(&json["workers"][0]),
            [
                "code",
                "maxConcurrentStarts",
                "measuredStarts",
                "startLimit",
                "startP50Ms",
                "startP95Ms",
                "startsInFlight",
                "startsPerSec",
                "startsWaiting"
            ]
        );
    }
}
