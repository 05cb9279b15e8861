//! The waiting room on the wire: a queued student's answer on the session
//! API, and the operators' view of an exam's waiting room.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/api/vdi/sessions` | 201 / 200 [`SessionJson`](crate::sessions::SessionJson), **202 [`QueuedJson`]**, 503 |
//! | `GET` | `/api/vdi/sessions/{examId}/{userId}` | 200 [`SessionJson`](crate::sessions::SessionJson) or **200 [`QueuedJson`]** |
//! | `DELETE` | `/api/vdi/sessions/{examId}/{userId}` | [`ReleaseJson`](crate::sessions::ReleaseJson) (`leftQueue`) |
//! | `GET` | `/api/vdi/exams/{examId}/queue` | [`ExamQueueJson`] |
//!
//! A client tells the two session answers apart by `state`: `queued`
//! here; a placed session's dispatch state (`reserved`, `active`,
//! `orphaned`) otherwise.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::{QueueStanding, QueueView};
use vdi_cluster_core::{Page, SessionKey};

use crate::page::PageJson;

/// The `state` of a queued student's answer.
pub const QUEUED: &str = "queued";

/// A student in an exam's waiting room: `{"state":"queued","position":N,
/// "estimatedWaitSec":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedJson {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// Always `queued`.
    #[schema(example = "queued")]
    pub state: String,
    /// 1 for the next to be placed.
    #[schema(minimum = 1)]
    pub position: u32,
    /// Expected wait in seconds, from the position and the rate at which
    /// the waiting room's students have been placed.
    pub estimated_wait_sec: u64,
    /// When the student entered the waiting room (ms since the epoch).
    pub enqueued_at: u64,
}

impl QueuedJson {
    /// `key`'s student at `standing`.
    pub fn new(key: &SessionKey, standing: &QueueStanding) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
            state: QUEUED.to_owned(),
            position: standing.position,
            estimated_wait_sec: standing.estimated_wait.as_secs(),
            enqueued_at: standing.enqueued_at.as_millis(),
        }
    }
}

/// One waiting student in [`ExamQueueJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitingStudentJson {
    /// 1 for the head.
    #[schema(minimum = 1)]
    pub position: u32,
    /// The student.
    pub user_id: String,
    /// When they joined (ms since the epoch).
    pub enqueued_at: u64,
    /// When they last asked (ms since the epoch).
    pub last_seen_at: u64,
    /// Seconds waited so far.
    pub waiting_sec: u64,
    /// Whether a replica is placing them right now.
    pub being_placed: bool,
}

/// `GET /api/vdi/exams/{examId}/queue`: who waits, in order (a page of
/// them), and the room's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamQueueJson {
    /// The exam.
    pub exam_id: String,
    /// Waiting now.
    pub queued: u32,
    /// Placed from the waiting room, in total.
    pub placed_total: u64,
    /// Left for not polling, in total.
    pub abandoned_total: u64,
    /// The page's waiting students, head first (by position).
    pub waiting: Vec<WaitingStudentJson>,
    /// `total` (every waiting student listed), `limit`, `offset`.
    #[serde(flatten)]
    pub page: PageJson,
}

impl ExamQueueJson {
    /// The room `v`, with `page` of its waiting students.
    pub fn new(v: &QueueView, page: Page) -> Self {
        let waiting = page.take(&v.waiting);
        Self {
            exam_id: v.exam.to_string(),
            queued: v.figures.queued,
            placed_total: v.figures.placed_total,
            abandoned_total: v.figures.abandoned_total,
            waiting: waiting
                .items
                .into_iter()
                .map(|w| WaitingStudentJson {
                    position: w.position,
                    user_id: w.entry.user.to_string(),
                    enqueued_at: w.entry.enqueued_at.as_millis(),
                    last_seen_at: w.entry.last_seen.as_millis(),
                    waiting_sec: w.waited.as_secs(),
                    being_placed: w.being_placed,
                })
                .collect(),
            page: PageJson::new(page, waiting.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use vdi_cluster_core::service::{QueueFigures, WaitingStudent};
    use vdi_cluster_core::waiting_room::QueueEntry;
    use vdi_cluster_core::{ExamId, Timestamp, UserId};

    use super::*;

    #[test]
    fn queued_field_names() {
        let key = SessionKey::parse("e1", "u1").unwrap();
        let standing = QueueStanding {
            position: 3,
            enqueued_at: Timestamp::from_millis(1000),
            estimated_wait: Duration::from_millis(90_500),
        };
        assert_eq!(
            serde_json::to_value(QueuedJson::new(&key, &standing)).unwrap(),
            json!({"examId": "e1", "userId": "u1", "state": "queued", "position": 3,
                   "estimatedWaitSec": 90, "enqueuedAt": 1000})
        );
    }

    #[test]
    fn queue_field_names() {
        let view = QueueView {
            exam: ExamId::parse("examId", "e1").unwrap(),
            waiting: vec![WaitingStudent {
                position: 1,
                entry: QueueEntry {
                    user: UserId::parse("userId", "u1").unwrap(),
                    enqueued_at: Timestamp::from_millis(1000),
                    last_seen: Timestamp::from_millis(5000),
                },
                waited: Duration::from_secs(7),
                being_placed: true,
            }],
            figures: QueueFigures {
                queued: 1,
                placed_total: 4,
                abandoned_total: 2,
            },
        };
        assert_eq!(
            serde_json::to_value(ExamQueueJson::new(&view, Page::ALL)).unwrap(),
            json!({"examId": "e1", "queued": 1, "placedTotal": 4, "abandonedTotal": 2,
                   "waiting": [{"position": 1, "userId": "u1", "enqueuedAt": 1000,
                                "lastSeenAt": 5000, "waitingSec": 7, "beingPlaced": true}],
                   "total": 1, "offset": 0})
        );
    }
}
