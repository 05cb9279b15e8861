//! Operators: drains scheduled for a time.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/workers/{code}/scheduled-drains` | [`ScheduleDrainRequest`] | 201 [`ScheduledDrainJson`] |
//! | `GET` | `/api/vdi/workers/{code}/scheduled-drains` | | [`ScheduledDrainsJson`] |
//! | `GET` | `/api/vdi/scheduled-drains` | | [`ScheduledDrainsJson`] |
//! | `DELETE` | `/api/vdi/workers/{code}/scheduled-drains/{id}` | | [`ScheduledDrainJson`] (cancelled) |

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::ValidationError;
use vdi_cluster_core::exam::{format_rfc3339, parse_iso_duration, parse_rfc3339};
use vdi_cluster_core::scheduled::{ActionState, ScheduledAction};
use vdi_cluster_core::service::DrainAt;

/// Which maintenance window a drain is scheduled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum WindowChoice {
    /// The worker's next window of `duration`.
    Next,
}

/// `POST /api/vdi/workers/{code}/scheduled-drains`: when (`at`, or
/// `window: "next"` with `duration`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleDrainRequest {
    /// The instant to drain at (RFC 3339), in the future and at most 31
    /// days ahead. Give either `at` or `window`.
    #[schema(min_length = 1)]
    pub at: Option<String>,
    /// `next`: at the start of the worker's next maintenance window of
    /// `duration` (within seven days).
    pub window: Option<WindowChoice>,
    /// With `window`: how long the worker is to be out, an ISO 8601
    /// duration (`PT2H`), one minute to 31 days.
    #[schema(min_length = 1)]
    pub duration: Option<String>,
    /// Why (1 to 500 characters, no control characters, no white space
    /// at either end): audited, and the drain's reason when it fires.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$"
    )]
    pub reason: String,
}

impl ScheduleDrainRequest {
    /// When the drain happens; errors name `at`, `window` or `duration`.
    pub fn drain_at(&self) -> Result<DrainAt, ValidationError> {
        match (&self.at, self.window, &self.duration) {
            (Some(_), Some(_), _) => Err(ValidationError::new(
                "window",
                "give either at or window, not both",
            )),
            (Some(at), None, None) => Ok(DrainAt::At(parse_rfc3339("at", at)?)),
            (Some(_), None, Some(_)) => Err(ValidationError::new(
                "duration",
                "is valid only with window",
            )),
            (None, Some(WindowChoice::Next), Some(d)) => Ok(DrainAt::NextWindow {
                duration: parse_iso_duration("duration", d)?,
            }),
            (None, Some(_), None) => {
                Err(ValidationError::new("duration", "is required with window"))
            }
            (None, None, _) => Err(ValidationError::new(
                "at",
                "give at, or window: \"next\" with a duration",
            )),
        }
    }
}

/// A scheduled drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledDrainJson {
    /// Its id.
    pub id: String,
    /// The worker.
    pub worker: String,
    /// When it is due (RFC 3339).
    pub at: String,
    /// Who scheduled it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When it was scheduled (RFC 3339).
    pub created_at: String,
    /// `pending`, `firing` (being carried out), `done`, `cancelled` or
    /// `failed`.
    pub state: String,
    /// Why it failed (the change freeze's refusal, …), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl From<&ScheduledAction> for ScheduledDrainJson {
    fn from(a: &ScheduledAction) -> Self {
        Self {
            id: a.id.clone(),
            worker: a.worker.to_string(),
            at: format_rfc3339(a.at),
            actor: a.actor.clone(),
            reason: a.reason.clone(),
            created_at: format_rfc3339(a.created_at),
            state: a.state.name().to_owned(),
            failure: match &a.state {
                ActionState::Failed { reason, .. } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

/// The open scheduled drains (pending or being carried out), by time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledDrainsJson {
    /// The drains.
    pub drains: Vec<ScheduledDrainJson>,
}

impl ScheduledDrainsJson {
    /// The list of `actions`.
    pub fn new(actions: &[ScheduledAction]) -> Self {
        Self {
            drains: actions.iter().map(ScheduledDrainJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::scheduled::ActionKind;
    use vdi_cluster_core::{Timestamp, WorkerId};

    use super::*;

    fn request(body: serde_json::Value) -> ScheduleDrainRequest {
        serde_json::from_value(body).unwrap()
    }

    fn field(body: serde_json::Value) -> String {
        request(body).drain_at().unwrap_err().field
    }

    #[test]
    fn when_is_at_or_the_next_window_with_a_duration() {
        let at = request(json!({"at": "2030-06-01T10:00:00Z", "reason": "patch"}));
        assert!(matches!(at.drain_at(), Ok(DrainAt::At(_))));
        let next = request(json!({"window": "next", "duration": "PT2H", "reason": "patch"}));
        assert_eq!(
            next.drain_at().unwrap(),
            DrainAt::NextWindow {
                duration: std::time::Duration::from_secs(7200)
            }
        );
        assert_eq!(field(json!({"window": "next", "reason": "r"})), "duration");
        assert_eq!(field(json!({"reason": "r"})), "at");
        assert_eq!(
            field(json!({"at": "2030-06-01T10:00:00Z", "window": "next", "reason": "r"})),
            "window"
        );
        assert_eq!(field(json!({"at": "yesterday", "reason": "r"})), "at");
        assert_eq!(
            field(json!({"window": "next", "duration": "2h", "reason": "r"})),
            "duration"
        );
    }

    #[test]
    fn field_names() {
        let action = ScheduledAction::pending(
            "sa_1".into(),
            WorkerId::parse("code", "w1").unwrap(),
            ActionKind::Drain,
            Timestamp(0),
            "alice",
            "patch",
            Timestamp(0),
        );
        assert_eq!(
            serde_json::to_value(ScheduledDrainsJson::new(&[action])).unwrap(),
            json!({"drains": [{"id": "sa_1", "worker": "w1", "at": "1970-01-01T00:00:00Z",
                               "actor": "alice", "reason": "patch",
                               "createdAt": "1970-01-01T00:00:00Z", "state": "pending"}]})
        );
    }
}
