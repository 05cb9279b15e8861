//! An exam's rehearsal on the wire: its go / no-go report.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/api/vdi/exams/{examId}/rehearsal` | [`RehearsalJson`] (the run just done) |
//! | `GET` | `/api/vdi/exams/{examId}/rehearsal` | [`RehearsalJson`]; before the first run, `notRehearsed` ([`RehearsalJson::not_rehearsed`]) |
//! | `POST` | `/api/vdi/exams/{examId}/rehearsal/workers/{code}` | [`RehearsalJson`] (after the worker's re-check) |
//!
//! `exam.rehearsal_failed` carries the failing workers as
//! [`WorkerCheckJson`] too.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::rehearsal::{Verdict, WorkerCheck};
use vdi_cluster_core::service::RehearsalReport;

use crate::node::ProvisionerCheckJson;

/// One worker's last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCheckJson {
    /// The worker's code.
    pub worker: String,
    /// `ok`, `slow`, `imageMissing` or `failed`.
    #[schema(example = "failed")]
    pub outcome: String,
    /// Whether the exam leaves the worker out (`failed`, `imageMissing`).
    pub excluded: bool,
    /// Why, unless `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the test desktop took to start, when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u32>,
    /// The exam's image, as the provisioner names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The provisioner's own checks (the network allow-list, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ProvisionerCheckJson>,
    /// When the check ended (RFC 3339).
    pub checked_at: String,
}

impl From<&WorkerCheck> for WorkerCheckJson {
    fn from(c: &WorkerCheck) -> Self {
        Self {
            worker: c.worker.to_string(),
            outcome: c.outcome.name().to_owned(),
            excluded: c.outcome.failing(),
            reason: c.reason.clone(),
            start_ms: c.start_ms,
            image: c.image.clone(),
            checks: c.checks.iter().map(ProvisionerCheckJson::from).collect(),
            checked_at: format_rfc3339(c.checked_at),
        }
    }
}

/// An exam's rehearsal and its go / no-go report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalJson {
    /// The exam.
    pub exam_id: String,
    /// `go`: a worker passed and the exam fits without the failing ones;
    /// `noGo` otherwise; `notRehearsed` before the first run.
    #[schema(example = "noGo")]
    pub verdict: String,
    /// Whole runs so far (0: not rehearsed).
    pub run: u32,
    /// Who ran the last whole run (`system`: the leader, before the
    /// exam's prewarm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When the last whole run began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the last check ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Workers that passed (`ok` or `slow`).
    pub passed: u32,
    /// Whether the exam fits the schedulable capacity without the failing
    /// workers (admission recomputed).
    pub fits_without_failing: bool,
    /// Students the exam could not place at its peak without them.
    pub missing: u32,
    /// The failing workers, left out of the exam's placement and prewarm
    /// until a re-check passes.
    pub failing: Vec<WorkerCheckJson>,
    /// Codes of the workers that started slowly (they stay in).
    pub slow: Vec<String>,
    /// Every worker's last check, by code.
    pub workers: Vec<WorkerCheckJson>,
}

/// The `verdict` of an exam never rehearsed.
pub const NOT_REHEARSED: &str = "notRehearsed";

impl RehearsalJson {
    /// The answer for `exam` before its first run: no worker checked,
    /// none left out.
    pub fn not_rehearsed(exam: &vdi_cluster_core::ExamId) -> Self {
        Self {
            exam_id: exam.to_string(),
            verdict: NOT_REHEARSED.to_owned(),
            run: 0,
            by: None,
            started_at: None,
            updated_at: None,
            passed: 0,
            fits_without_failing: true,
            missing: 0,
            failing: Vec::new(),
            slow: Vec::new(),
            workers: Vec::new(),
        }
    }
}

/// `go` or `noGo`.
pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Go => "go",
        Verdict::NoGo => "noGo",
    }
}

impl From<&RehearsalReport> for RehearsalJson {
    fn from(r: &RehearsalReport) -> Self {
        let record = &r.rehearsal;
        Self {
            exam_id: record.exam_id.to_string(),
            verdict: verdict_name(r.report.verdict).to_owned(),
            run: record.run,
            by: Some(record.by.clone()),
            started_at: Some(format_rfc3339(record.started_at)),
            updated_at: Some(format_rfc3339(record.updated_at)),
            passed: r.report.passed,
            fits_without_failing: r.report.fits_without_failing,
            missing: r.report.missing,
            failing: r.report.failing.iter().map(WorkerCheckJson::from).collect(),
            slow: r.report.slow.iter().map(ToString::to_string).collect(),
            workers: record.workers.iter().map(WorkerCheckJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::rehearsal::{GoNoGo, Outcome, ProvisionerCheck, Rehearsal};
    use vdi_cluster_core::{ExamId, Timestamp, WorkerId};

    use super::*;

    #[test]
    fn field_names_are_pinned() {
        let failed = WorkerCheck {
            worker: WorkerId::parse("code", "w-2").unwrap(),
            outcome: Outcome::ImageMissing,
            reason: Some("sot-exam-linux is not on the worker".into()),
            start_ms: None,
            image: Some("sot-exam-linux".into()),
            checks: vec![ProvisionerCheck {
                name: "network-allow-list".into(),
                ok: true,
                detail: None,
            }],
            checked_at: Timestamp(0),
        };
        let rehearsal = Rehearsal::run(
            None,
            ExamId::parse("examId", "math").unwrap(),
            "admin",
            Timestamp(0),
            vec![failed.clone()],
            Timestamp(1_000),
        );
        let report = RehearsalReport {
            rehearsal,
            version: 1,
            report: GoNoGo {
                verdict: Verdict::NoGo,
                passed: 0,
                failing: vec![failed],
                slow: Vec::new(),
                fits_without_failing: false,
                missing: 4,
            },
        };
        let value = serde_json::to_value(RehearsalJson::from(&report)).unwrap();
        assert_eq!(
            crate::test_support::sorted_keys(&value),
            [
                "by",
                "examId",
                "failing",
                "fitsWithoutFailing",
                "missing",
                "passed",
                "run",
                "slow",
                "startedAt",
                "updatedAt",
                "verdict",
                "workers"
            ]
        );
        assert_eq!(value["verdict"], json!("noGo"));
        assert_eq!(value["updatedAt"], json!("1970-01-01T00:00:01Z"));
        assert_eq!(
            value["failing"][0],
            json!({
                "worker": "w-2",
                "outcome": "imageMissing",
                "excluded": true,
                "reason": "sot-exam-linux is not on the worker",
                "image": "sot-exam-linux",
                "checks": [{"name": "network-allow-list", "ok": true}],
                "checkedAt": "1970-01-01T00:00:00Z"
            })
        );
        let never = serde_json::to_value(RehearsalJson::not_rehearsed(
            &ExamId::parse("examId", "math").unwrap(),
        ))
        .unwrap();
        assert_eq!(never["verdict"], json!("notRehearsed"));
        assert!(never.get("startedAt").is_none());
    }
}
