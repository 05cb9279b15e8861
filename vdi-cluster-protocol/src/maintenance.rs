//! The calendar's guard of the fleet: the change freeze's refusal and
//! maintenance windows.
//!
//! | method | path | query / body | answer |
//! |---|---|---|---|
//! | `PATCH`, `POST`/`PUT …/drain` | a worker's drain or disable | `force` + `reason` in the body | 409 [`FreezeRefusedJson`] when frozen |
//! | `DELETE` | `/api/vdi/workers/{code}`, `…/credential` | [`ForceQuery`] | 409 [`FreezeRefusedJson`] when frozen |
//! | `POST` | `/api/vdi/workers/{code}/credential/reset` | [`ForceQuery`] | 409 [`FreezeRefusedJson`] when frozen |
//! | `GET` | `/api/vdi/workers/{code}/maintenance-windows` | [`WindowsQuery`] | [`MaintenanceWindowsJson`] |
//! | `GET` | `/api/vdi/maintenance-windows` | [`GroupWindowsQuery`] | [`MaintenanceWindowsJson`] |

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdi_cluster_core::exam::{format_rfc3339, parse_iso_duration, parse_rfc3339};
use vdi_cluster_core::service::{FrozenChange, MaintenancePlan, MaintenanceQuery};
use vdi_cluster_core::{ValidationError, WorkerId};

/// An exam under way that a change would make fit worse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrozenExamJson {
    /// The exam.
    pub exam_id: String,
    /// Its name.
    pub name: String,
    /// Its students.
    pub students: u32,
    /// Students it could not place at its peak without the workers.
    pub shortfall: u32,
    /// Students it could not place with them (usually 0).
    pub shortfall_before: u32,
    /// That peak (RFC 3339).
    pub peak_at: String,
}

/// The 409 of a change the change freeze refused: Aetherium's error
/// fields, the exams it would hurt and when it is safe. `force: true`
/// with a `reason` overrides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreezeRefusedJson {
    /// `Conflict`.
    pub error: String,
    /// What went wrong, for humans.
    pub message: String,
    /// 409.
    pub code: u16,
    /// The change: `drain`, `disable`, `remove`, `revoke-credential`,
    /// `reset-credential`.
    pub change: String,
    /// The workers it takes out.
    pub workers: Vec<String>,
    /// The exams under way it makes fit worse.
    pub exams: Vec<FrozenExamJson>,
    /// The earliest instant (RFC 3339) from which none of them is hurt.
    pub safe_from: String,
}

impl From<&FrozenChange> for FreezeRefusedJson {
    fn from(c: &FrozenChange) -> Self {
        let safe_from = format_rfc3339(c.freeze.safe_from);
        let names: Vec<&str> = c.freeze.exams.iter().map(|e| e.exam.id.as_str()).collect();
        Self {
            error: "Conflict".into(),
            message: format!(
                "change freeze: {} would leave exam(s) under way short ({}); safe from {safe_from}; \
                 force: true with a reason overrides",
                c.change,
                names.join(", ")
            ),
            code: 409,
            change: c.change.clone(),
            workers: c.workers.iter().map(ToString::to_string).collect(),
            exams: c
                .freeze
                .exams
                .iter()
                .map(|e| FrozenExamJson {
                    exam_id: e.exam.id.to_string(),
                    name: e.exam.name.clone(),
                    students: e.exam.students,
                    shortfall: e.missing,
                    shortfall_before: e.missing_before,
                    peak_at: format_rfc3339(e.at),
                })
                .collect(),
            safe_from,
        }
    }
}

/// Forcing a removal or a credential change past the change freeze.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForceQuery {
    /// `true`: go through even if the change freeze refuses (needs
    /// `reason`).
    pub force: Option<bool>,
    /// Why (1 to 500 characters, no control characters, no white space at
    /// either end): audited and sent with `worker.freeze_overridden`.
    #[param(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$"
    )]
    pub reason: Option<String>,
}

/// `GET /api/vdi/workers/{code}/maintenance-windows`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowsQuery {
    /// How long the worker is out: an ISO 8601 duration (`PT2H`,
    /// `P1DT4H`), one minute to 31 days.
    #[param(min_length = 1)]
    pub duration: String,
    /// RFC 3339 start of the search (now if absent or past).
    pub from: Option<String>,
    /// RFC 3339 end of the search (7 days after `from` if absent; at
    /// most 31).
    pub to: Option<String>,
}

impl WindowsQuery {
    /// The question about `workers`.
    pub fn into_query(self, workers: Vec<WorkerId>) -> Result<MaintenanceQuery, ValidationError> {
        let time = |field: &str, t: Option<String>| t.map(|t| parse_rfc3339(field, &t)).transpose();
        Ok(MaintenanceQuery {
            workers,
            duration: parse_iso_duration("duration", &self.duration)?,
            from: time("from", self.from)?,
            to: time("to", self.to)?,
        })
    }
}

/// `GET /api/vdi/maintenance-windows`: the same for a group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupWindowsQuery {
    /// Worker codes, comma-separated (a rack, a zone), taken out together.
    #[param(min_length = 1)]
    pub workers: String,
    /// As [`WindowsQuery::duration`].
    #[param(min_length = 1)]
    pub duration: String,
    /// As [`WindowsQuery::from`].
    pub from: Option<String>,
    /// As [`WindowsQuery::to`].
    pub to: Option<String>,
}

impl GroupWindowsQuery {
    /// The question.
    pub fn into_query(self) -> Result<MaintenanceQuery, ValidationError> {
        let mut workers: Vec<WorkerId> = Vec::new();
        for code in self.workers.split(',').map(str::trim) {
            let id = WorkerId::parse("workers", code)?;
            if !workers.contains(&id) {
                workers.push(id);
            }
        }
        WindowsQuery {
            duration: self.duration,
            from: self.from,
            to: self.to,
        }
        .into_query(workers)
    }
}

/// A window in which the workers may be out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowJson {
    /// Its first instant (RFC 3339).
    pub start: String,
    /// The first instant after it.
    pub end: String,
    /// The latest start of a maintenance of the duration asked.
    pub latest_start: String,
}

/// The windows in which taking the workers out for `durationSec` keeps
/// every booked exam fitting as it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowsJson {
    /// The workers.
    pub workers: Vec<String>,
    /// How long they are out, in seconds.
    pub duration_sec: u64,
    /// The range searched (RFC 3339).
    pub from: String,
    /// Its end.
    pub to: String,
    /// The windows, in order (empty: none in the range).
    pub windows: Vec<MaintenanceWindowJson>,
}

impl From<&MaintenancePlan> for MaintenanceWindowsJson {
    fn from(p: &MaintenancePlan) -> Self {
        Self {
            workers: p.workers.iter().map(ToString::to_string).collect(),
            duration_sec: p.duration.as_secs(),
            from: format_rfc3339(p.from),
            to: format_rfc3339(p.to),
            windows: p
                .windows
                .iter()
                .map(|w| MaintenanceWindowJson {
                    start: format_rfc3339(w.start),
                    end: format_rfc3339(w.end),
                    latest_start: format_rfc3339(w.latest_start(p.duration)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use vdi_cluster_core::Timestamp;
    use vdi_cluster_core::exam::{ExamLoad, Freeze, FrozenExam, MaintenanceWindow};

    use super::*;

    fn w1() -> WorkerId {
        WorkerId::parse("code", "w1").unwrap()
    }

    #[test]
    fn refusal_field_names() {
        let change = FrozenChange {
            workers: vec![w1()],
            change: "drain".into(),
            freeze: Freeze {
                exams: vec![FrozenExam {
                    exam: ExamLoad {
                        id: vdi_cluster_core::ExamId::parse("examId", "math").unwrap(),
                        name: "Math".into(),
                        students: 8,
                    },
                    missing: 2,
                    missing_before: 0,
                    at: Timestamp(0),
                }],
                safe_from: Timestamp(3_600_000),
            },
        };
        let json = serde_json::to_value(FreezeRefusedJson::from(&change)).unwrap();
        assert_eq!(json["code"], 409);
        assert_eq!(json["change"], "drain");
        assert_eq!(json["workers"], json!(["w1"]));
        assert_eq!(
            json["exams"],
            json!([{"examId": "math", "name": "Math", "students": 8, "shortfall": 2,
                    "shortfallBefore": 0, "peakAt": "1970-01-01T00:00:00Z"}])
        );
        assert_eq!(json["safeFrom"], "1970-01-01T01:00:00Z");
    }

    #[test]
    fn windows_field_names_and_queries() {
        let plan = MaintenancePlan {
            workers: vec![w1()],
            duration: Duration::from_secs(3600),
            from: Timestamp(0),
            to: Timestamp(7_200_000),
            windows: vec![MaintenanceWindow {
                start: Timestamp(0),
                end: Timestamp(7_200_000),
            }],
        };
        let json = serde_json::to_value(MaintenanceWindowsJson::from(&plan)).unwrap();
        assert_eq!(
            json,
            json!({"workers": ["w1"], "durationSec": 3600, "from": "1970-01-01T00:00:00Z",
                   "to": "1970-01-01T02:00:00Z", "windows": [{"start": "1970-01-01T00:00:00Z",
                   "end": "1970-01-01T02:00:00Z", "latestStart": "1970-01-01T01:00:00Z"}]})
        );
        let q = GroupWindowsQuery {
            workers: "w1, w2,w1".into(),
            duration: "PT2H".into(),
            from: None,
            to: Some("2026-01-01T00:00:00Z".into()),
        }
        .into_query()
        .unwrap();
        assert_eq!(q.workers.len(), 2);
        assert_eq!(q.duration, Duration::from_secs(7200));
        let bad = GroupWindowsQuery {
            workers: "w1,,w2".into(),
            duration: "PT2H".into(),
            ..GroupWindowsQuery::default()
        };
        assert_eq!(bad.into_query().unwrap_err().field, "workers");
        let bad = WindowsQuery {
            duration: "2 hours".into(),
            ..WindowsQuery::default()
        };
        assert_eq!(bad.into_query(vec![w1()]).unwrap_err().field, "duration");
        let bad = WindowsQuery {
            duration: "PT2H".into(),
            from: Some("tomorrow".into()),
            ..WindowsQuery::default()
        };
        assert_eq!(bad.into_query(vec![w1()]).unwrap_err().field, "from");
    }
}
