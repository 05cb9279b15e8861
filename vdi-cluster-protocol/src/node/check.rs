//! A rehearsal's check on the worker-side API ([`WORKER_CHECK_PATH`]): the
//! control plane asks a worker to start one test desktop of an exam
//! through its provisioner, measure the start and stop it; the worker
//! answers [`CheckResponse`]. [`CheckAnswer`] is what the provisioning
//! program prints for `VDI_ACTION=check`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::rehearsal::{CheckReport, ProvisionerCheck};
use vdi_cluster_core::{DesktopSettings, ExamId};

use super::{NetworkPolicyJson, policy_json};

/// Worker node: a rehearsal's check of an exam.
pub const WORKER_CHECK_PATH: &str = "/api/vdi/cluster/check";

/// Control plane → worker: check `examId` with one test desktop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckRequest {
    /// The exam.
    pub exam_id: String,
    /// The exam's network policy, as its allocations carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyJson>,
}

impl CheckRequest {
    /// The check of `exam`, its desktop set up as `settings` ask.
    pub fn new(exam: &ExamId, settings: &DesktopSettings) -> Self {
        Self {
            exam_id: exam.to_string(),
            network_policy: policy_json(settings),
        }
    }
}

/// One check the provisioner ran besides the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionerCheckJson {
    /// Its name (`network-allow-list`, …).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&ProvisionerCheck> for ProvisionerCheckJson {
    fn from(c: &ProvisionerCheck) -> Self {
        Self {
            name: c.name.clone(),
            ok: c.ok,
            detail: c.detail.clone(),
        }
    }
}

impl From<ProvisionerCheckJson> for ProvisionerCheck {
    fn from(c: ProvisionerCheckJson) -> Self {
        Self {
            name: c.name,
            ok: c.ok,
            detail: c.detail,
        }
    }
}

/// What the provisioning program prints on standard output for
/// `VDI_ACTION=check`, after it started the test desktop and stopped it
/// (every field optional: `{}` is a check that passed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckAnswer {
    /// Whether the exam's image is on the worker.
    #[serde(default)]
    pub image_present: Option<bool>,
    /// The image's name.
    #[serde(default)]
    pub image: Option<String>,
    /// How long the start took, milliseconds, if the program measured it
    /// (otherwise the worker measures the program's run).
    #[serde(default)]
    pub start_ms: Option<u32>,
    /// Its own checks (the network allow-list, …).
    #[serde(default)]
    pub checks: Vec<ProvisionerCheckJson>,
}

/// Worker → control plane: what the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    /// The test desktop started (and was stopped).
    pub started: bool,
    /// How long the start took, milliseconds.
    pub start_ms: u32,
    /// Whether the exam's image is on the worker, if the provisioner says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_present: Option<bool>,
    /// The image's name, if the provisioner says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The provisioner's own checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ProvisionerCheckJson>,
    /// Why the desktop did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<CheckResponse> for CheckReport {
    fn from(r: CheckResponse) -> Self {
        Self {
            started: r.started,
            start_ms: r.start_ms,
            image_present: r.image_present,
            image: r.image,
            checks: r.checks.into_iter().map(ProvisionerCheck::from).collect(),
            error: r.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn check_field_names() {
        let exam = ExamId::parse("examId", "e1").unwrap();
        assert_eq!(
            serde_json::to_value(CheckRequest::new(&exam, &DesktopSettings::default())).unwrap(),
            json!({"examId": "e1"})
        );
        let answer: CheckAnswer = serde_json::from_value(json!({
            "imagePresent": false, "image": "sot-exam-linux",
            "checks": [{"name": "network-allow-list", "ok": false, "detail": "lms down"}]
        }))
        .unwrap();
        assert_eq!(answer.image_present, Some(false));
        assert_eq!(answer.checks[0].name, "network-allow-list");
        assert_eq!(
            serde_json::from_value::<CheckAnswer>(json!({})).unwrap(),
            CheckAnswer::default()
        );
        let response = CheckResponse {
            started: true,
            start_ms: 1200,
            image_present: Some(true),
            image: None,
            checks: Vec::new(),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"started": true, "startMs": 1200, "imagePresent": true})
        );
        let report = CheckReport::from(response);
        assert!(report.started);
        assert_eq!(report.image_present, Some(true));
    }
}
