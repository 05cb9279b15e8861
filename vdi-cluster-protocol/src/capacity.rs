//! Capacity on schedule: what the scale hook reads and prints, and
//! `GET /api/vdi/capacity-requests`.
//!
//! # The scale hook's contract
//!
//! The control plane's leader runs the program given by `--scale-command`
//! directly (no shell) with `VDI_ACTION` set to `scale_up` or `scale_down`
//! and one JSON object on standard input: a [`ScaleUpOrder`] or a
//! [`ScaleDownOrder`]. Exit status 0 confirms the action; `scale_up` must
//! then print one [`ScaleUpAnswer`] on standard output, naming the codes
//! the new workers will register under (that is how a worker is
//! attributed to its request). A non-zero exit, a run past the timeout or
//! an answer that does not parse fails the call, which is repeated later
//! with the same `requestId`: a hook answers a repeated `scale_up` with
//! the workers it already started for that id, and a repeated
//! `scale_down` succeeds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::scale::{CapacityRequest, ScaleDown, ScaleUp};
use vdi_cluster_core::{Constraints, ValidationError, WorkerId};

use crate::sessions::ConstraintsJson;

fn constraints_json(c: &Constraints) -> ConstraintsJson {
    ConstraintsJson {
        zone: c.zone.clone(),
        labels: c.labels.clone(),
        capabilities: c.capabilities.clone(),
    }
}

fn strings(ids: &[impl ToString]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// `VDI_ACTION=scale_up`: start workers offering `slots` slots that match
/// `constraints`, joined by `deadline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUpOrder {
    /// The request; the same on every retry.
    pub request_id: String,
    /// Slots missing.
    pub slots: u32,
    /// What the workers must offer (zone, labels, capabilities).
    pub constraints: ConstraintsJson,
    /// When they must have joined (RFC 3339).
    pub deadline: String,
    /// The exams that need them.
    pub exam_ids: Vec<String>,
}

impl From<&ScaleUp> for ScaleUpOrder {
    fn from(o: &ScaleUp) -> Self {
        Self {
            request_id: o.request.clone(),
            slots: o.slots,
            constraints: constraints_json(&o.constraints),
            deadline: format_rfc3339(o.deadline),
            exam_ids: strings(&o.exams),
        }
    }
}

/// `VDI_ACTION=scale_down`: stop these workers (drained, needed by no
/// booked exam).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDownOrder {
    /// The request that brought them.
    pub request_id: String,
    /// Their codes.
    pub workers: Vec<String>,
}

impl From<&ScaleDown> for ScaleDownOrder {
    fn from(o: &ScaleDown) -> Self {
        Self {
            request_id: o.request.clone(),
            workers: strings(&o.workers),
        }
    }
}

/// What `scale_up` prints: `{"workers": ["code", …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUpAnswer {
    /// The codes the workers it starts register under.
    pub workers: Vec<String>,
}

impl ScaleUpAnswer {
    /// The codes, checked (an error names `workers[i]`).
    pub fn codes(&self) -> Result<Vec<WorkerId>, ValidationError> {
        self.workers
            .iter()
            .enumerate()
            .map(|(i, c)| WorkerId::parse(&format!("workers[{i}]"), c.as_str()))
            .collect()
    }
}

/// One capacity request, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityRequestJson {
    /// `cap-{examId}-{startsAt ms}`.
    pub request_id: String,
    /// `pending` (the hook has not confirmed it yet), `requested`,
    /// `joined`, `missing`, `releasing` (its workers are draining) or
    /// `released`.
    #[schema(pattern = "^(pending|requested|joined|missing|releasing|released)$")]
    pub state: String,
    /// The exams short at the peak it covers.
    pub exam_ids: Vec<String>,
    /// Slots missing.
    pub slots: u32,
    /// What the workers must offer.
    pub constraints: ConstraintsJson,
    /// When the workers must have joined (RFC 3339).
    pub deadline: String,
    /// The last instant its exams need capacity (RFC 3339).
    pub needed_until: String,
    /// The workers the hook named.
    pub workers: Vec<String>,
    /// Calls of the hook for the current step.
    pub attempts: u32,
    /// The hook's last failure, until a call succeeds.
    pub last_error: Option<String>,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// When its state last changed (RFC 3339).
    pub updated_at: String,
}

impl From<&CapacityRequest> for CapacityRequestJson {
    fn from(r: &CapacityRequest) -> Self {
        Self {
            request_id: r.id.clone(),
            state: r.state.as_str().to_owned(),
            exam_ids: strings(&r.exams),
            slots: r.slots,
            constraints: constraints_json(&r.constraints),
            deadline: format_rfc3339(r.deadline),
            needed_until: format_rfc3339(r.needed_until),
            workers: strings(&r.workers),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            created_at: format_rfc3339(r.created_at),
            updated_at: format_rfc3339(r.updated_at),
        }
    }
}

/// `GET /api/vdi/capacity-requests`: every request, newest deadline first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityRequestList {
    /// The requests.
    pub requests: Vec<CapacityRequestJson>,
}

impl CapacityRequestList {
    /// The list of `requests`, newest deadline first (then by id).
    pub fn new(requests: &[CapacityRequest]) -> Self {
        let mut sorted: Vec<&CapacityRequest> = requests.iter().collect();
        sorted.sort_by(|a, b| (b.deadline, &a.id).cmp(&(a.deadline, &b.id)));
        Self {
            requests: sorted.into_iter().map(CapacityRequestJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::Timestamp;
    use vdi_cluster_core::scale::CapacityState;

    use super::*;

    #[test]
    fn the_hooks_bodies_and_the_list_pin_their_field_names() {
        let up = ScaleUp {
            request: "cap-math-0".into(),
            slots: 4,
            constraints: Constraints {
                zone: Some("hn".into()),
                ..Constraints::default()
            },
            deadline: Timestamp(0),
            exams: vec![vdi_cluster_core::ExamId::parse("examId", "math").unwrap()],
        };
        assert_eq!(
            serde_json::to_value(ScaleUpOrder::from(&up)).unwrap(),
            json!({"requestId": "cap-math-0", "slots": 4, "constraints": {"zone": "hn"},
                   "deadline": "1970-01-01T00:00:00Z", "examIds": ["math"]})
        );
        let answer: ScaleUpAnswer = serde_json::from_value(json!({"workers": ["w-1"]})).unwrap();
        assert_eq!(answer.codes().unwrap()[0].as_str(), "w-1");
        let bad = ScaleUpAnswer {
            workers: vec!["w-1".into(), "no spaces".into()],
        };
        assert_eq!(bad.codes().unwrap_err().field, "workers[1]");
        let request = CapacityRequest {
            id: "cap-math-0".into(),
            exams: up.exams.clone(),
            constraints: up.constraints.clone(),
            slots: 4,
            deadline: Timestamp(0),
            needed_until: Timestamp(0),
            state: CapacityState::Joined,
            workers: Vec::new(),
            attempts: 0,
            next_attempt_at: Timestamp(0),
            last_error: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let list = serde_json::to_value(CapacityRequestList::new(&[request])).unwrap();
        let keys = crate::test_support::sorted_keys(&list["requests"][0]);
        assert_eq!(
            keys,
            [
                "attempts",
                "constraints",
                "createdAt",
                "deadline",
                "examIds",
                "lastError",
                "neededUntil",
                "requestId",
                "slots",
                "state",
                "updatedAt",
                "workers"
            ]
        );
        assert_eq!(list["requests"][0]["state"], "joined");
    }
}
