//! What the session routes answer when the answer is not (only) a placed
//! session: a place in the exam's waiting room ([`QueuedJson`]) or a
//! desktop still starting under paced starts ([`StartingJson`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pacing::StartingJson;
use crate::sessions::SessionJson;
use crate::waiting_room::QueuedJson;

/// What `POST /api/vdi/sessions` answers with 202: a place in the waiting
/// room, or (paced starts) a desktop starting after the answer. Untagged:
/// `state` tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AcceptedJson {
    /// In the exam's waiting room.
    Queued(QueuedJson),
    /// Its desktop starts after the answer.
    Starting(StartingJson),
}

/// What `GET /api/vdi/sessions/{examId}/{userId}` answers: the session,
/// the student's place in the waiting room, or (paced starts) a desktop
/// still starting. Untagged: `state` tells them
/// apart, and each has fields the other lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SessionAnswerJson {
    /// In the exam's waiting room.
    Queued(QueuedJson),
    /// Its desktop is starting (paced starts).
    Starting(StartingJson),
    /// Placed.
    Session(Box<SessionJson>),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn session_answers_are_told_apart() {
        let queued: SessionAnswerJson = serde_json::from_value(json!({
            "examId": "e1", "userId": "u1", "state": "queued", "position": 2,
            "estimatedWaitSec": 60, "enqueuedAt": 5
        }))
        .unwrap();
        assert!(matches!(queued, SessionAnswerJson::Queued(q) if q.position == 2));
        let placed: SessionAnswerJson = serde_json::from_value(json!({
            "examId": "e1", "userId": "u1", "dispatchId": "d", "workerCode": "w1",
            "state": "active", "reservedAt": 1, "activatedAt": 2, "session": null
        }))
        .unwrap();
        assert!(matches!(placed, SessionAnswerJson::Session(s) if s.worker_code == "w1"));
    }
}
