//! Operators ↔ control plane: exams booked with admission control.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/exams` | [`BookExamRequest`] | 201 [`ExamJson`], 409 [`AdmissionRefusedJson`] |
//! | `GET` | `/api/vdi/exams?from=&to=` | — | [`ExamCalendarJson`] |
//! | `GET` | `/api/vdi/exams/{examId}` | — | [`ExamDetailJson`] |
//! | `PATCH` | `/api/vdi/exams/{examId}` | [`PatchExamRequest`] | 200 [`ExamJson`], 409 [`AdmissionRefusedJson`] |
//! | `DELETE` | `/api/vdi/exams/{examId}` | — | [`ExamJson`] (the cancelled exam) |
//!
//! Times are RFC 3339 date-times: any UTC offset is accepted, answers are
//! in UTC (`2026-06-01T08:00:00Z`). Request bodies refuse unknown fields.
//! An exam's `networkPolicy` has the shape of the worker's
//! [`NetworkPolicyJson`]; its errors name the entry
//! (`networkPolicy.allowedCidrs[2]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdi_cluster_core::exam::{
    DEFAULT_LEAD_SEC, DEFAULT_TEARDOWN_SEC, Prewarm, PrewarmTarget, Refusal, Shortfall,
    format_rfc3339, parse_rfc3339,
};
use vdi_cluster_core::network::NetworkPolicy;
use vdi_cluster_core::service::{ExamFigures, ExamStatus};
use vdi_cluster_core::{Constraints, Exam, ExamId, ExamPatch, Page, Timestamp, ValidationError};

use crate::extra_time::{ExtraSeatsJson, StudentExtraJson};
use crate::node::NetworkPolicyJson;
use crate::page::PageJson;
use crate::sessions::ConstraintsJson;

mod fits;
mod readiness;

pub use fits::{FitsJson, ScaleUpWord};
pub use readiness::{
    AllocationFiguresJson, PrewarmFiguresJson, ReadinessJson, WorkerReadinessJson,
};

/// An exam's prewarm plan: `count` or `percent` of the students (not
/// both), and `leadSec` (default 900) before `startsAt`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrewarmJson {
    /// Machines to prewarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Percentage of `students` to prewarm (0–100), rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// Seconds before `startsAt` prewarm begins (default 900, at most 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_sec: Option<u32>,
}

impl PrewarmJson {
    fn into_prewarm(self) -> Result<Prewarm, ValidationError> {
        let target = match (self.count, self.percent) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "prewarm",
                    "give count or percent, not both",
                ));
            }
            (_, Some(p)) => PrewarmTarget::Percent(p),
            (c, None) => PrewarmTarget::Count(c.unwrap_or(0)),
        };
        Ok(Prewarm {
            target,
            lead_sec: self.lead_sec.unwrap_or(DEFAULT_LEAD_SEC),
        })
    }

    fn of(p: &Prewarm) -> Self {
        let (count, percent) = match p.target {
            PrewarmTarget::Count(n) => (Some(n), None),
            PrewarmTarget::Percent(n) => (None, Some(n)),
        };
        Self {
            count,
            percent,
            lead_sec: Some(p.lead_sec),
        }
    }
}

/// `POST /api/vdi/exams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookExamRequest {
    /// The exam's id, as the session API uses it (1–128 printable bytes).
    pub exam_id: String,
    /// Display name (1–200 characters).
    pub name: String,
    /// RFC 3339 start, e.g. `2026-06-01T15:00:00+07:00`.
    pub starts_at: String,
    /// RFC 3339 end; after `startsAt`, at most 24 h later.
    pub ends_at: String,
    /// Expected students (1–100000): the capacity reserved.
    pub students: u32,
    /// Requirements on the workers (zone, labels, capabilities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<ConstraintsJson>,
    /// Prewarm plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<PrewarmJson>,
    /// Seconds after `endsAt` the capacity stays reserved (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_sec: Option<u32>,
    /// Queue students beyond capacity (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<bool>,
    /// Where its desktops may connect, sent to the worker with each
    /// allocation and prewarm; replaces the worker's own `EXAM_*` default
    /// (whose strict flag stays a floor). Absent: the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyJson>,
    /// Students known to have extra time: each keeps a seat (and their
    /// desktop) until `endsAt + extraSec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<StudentExtraJson>>,
    /// Extended seats for students not named yet: a count per extra
    /// duration (a student named later takes one of them first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_time: Option<Vec<ExtraSeatsJson>>,
}

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a
/// value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn policy(json: Option<NetworkPolicyJson>) -> Result<Option<NetworkPolicy>, ValidationError> {
    json.map(|p| p.into_policy("networkPolicy")).transpose()
}

impl BookExamRequest {
    /// The exam it asks for (core validates the values when booking;
    /// bookkeeping fields are set by the service).
    pub fn into_exam(self) -> Result<Exam, ValidationError> {
        Ok(Exam {
            id: ExamId::parse("examId", self.exam_id)?,
            name: self.name,
            starts_at: parse_rfc3339("startsAt", &self.starts_at)?,
            ends_at: parse_rfc3339("endsAt", &self.ends_at)?,
            students: self.students,
            constraints: Constraints::from(self.constraints.unwrap_or_default()),
            prewarm: self.prewarm.unwrap_or_default().into_prewarm()?,
            teardown_sec: self.teardown_sec.unwrap_or(DEFAULT_TEARDOWN_SEC),
            queue: self.queue.unwrap_or(true),
            booked_by: String::new(),
            booked_at: Timestamp(0),
            updated_at: Timestamp(0),
            prewarm_started_at: None,
            prewarm_marks: Default::default(),
            network_policy: policy(self.network_policy)?,
            extensions: self
                .extensions
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, s)| s.into_extra(i))
                .collect::<Result<_, _>>()?,
            extra_time: self
                .extra_time
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            expiry_warned_through: None,
        })
    }
}

/// `PATCH /api/vdi/exams/{examId}`: the fields to change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchExamRequest {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New RFC 3339 start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// New RFC 3339 end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// New size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub students: Option<u32>,
    /// New constraints (replace the old ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<ConstraintsJson>,
    /// New prewarm plan (replaces the old one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<PrewarmJson>,
    /// New teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_sec: Option<u32>,
    /// New queue setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<bool>,
    /// New network policy (replaces the old one); `null` removes it, so
    /// the worker's own default applies again.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<NetworkPolicyJson>, nullable)]
    pub network_policy: Option<Option<NetworkPolicyJson>>,
}

impl PatchExamRequest {
    /// The change it asks for.
    pub fn into_patch(self) -> Result<ExamPatch, ValidationError> {
        Ok(ExamPatch {
            name: self.name,
            starts_at: self
                .starts_at
                .map(|t| parse_rfc3339("startsAt", &t))
                .transpose()?,
            ends_at: self
                .ends_at
                .map(|t| parse_rfc3339("endsAt", &t))
                .transpose()?,
            students: self.students,
            constraints: self.constraints.map(Constraints::from),
            prewarm: self.prewarm.map(PrewarmJson::into_prewarm).transpose()?,
            teardown_sec: self.teardown_sec,
            queue: self.queue,
            network_policy: self.network_policy.map(policy).transpose()?,
        })
    }
}

/// `GET /api/vdi/exams` query: exams overlapping `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// RFC 3339 lower bound (exams ending after it).
    pub from: Option<String>,
    /// RFC 3339 upper bound (exams starting before it).
    pub to: Option<String>,
}

impl CalendarQuery {
    /// The bounds as instants.
    pub fn bounds(&self) -> Result<(Option<Timestamp>, Option<Timestamp>), ValidationError> {
        let parse = |field: &str, t: &Option<String>| {
            t.as_deref().map(|t| parse_rfc3339(field, t)).transpose()
        };
        Ok((parse("from", &self.from)?, parse("to", &self.to)?))
    }
}

/// An exam overlapping the peak of a shortfall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverlappingExamJson {
    /// The exam.
    pub exam_id: String,
    /// Its name.
    pub name: String,
    /// Its students.
    pub students: u32,
}

/// Where booked exams exceed the schedulable capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortfallJson {
    /// Students that cannot be placed at the peak.
    pub shortfall: u32,
    /// The peak instant (RFC 3339).
    pub peak_at: String,
    /// Students of every exam overlapping the peak.
    pub demand: u32,
    /// Those exams, the examined one first.
    pub overlapping: Vec<OverlappingExamJson>,
}

impl From<&Shortfall> for ShortfallJson {
    fn from(s: &Shortfall) -> Self {
        Self {
            shortfall: s.missing,
            peak_at: format_rfc3339(s.at),
            demand: s.demand,
            overlapping: s
                .overlapping
                .iter()
                .map(|o| OverlappingExamJson {
                    exam_id: o.id.to_string(),
                    name: o.name.clone(),
                    students: o.students,
                })
                .collect(),
        }
    }
}

/// A booked exam, with whether it fits the capacity now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamJson {
    /// The exam's id.
    pub exam_id: String,
    /// Name.
    pub name: String,
    /// Start (RFC 3339, UTC).
    pub starts_at: String,
    /// End.
    pub ends_at: String,
    /// Expected students.
    pub students: u32,
    /// Requirements on workers.
    pub constraints: ConstraintsJson,
    /// Prewarm plan.
    pub prewarm: PrewarmJson,
    /// Machines the prewarm plan asks for.
    pub prewarm_machines: u32,
    /// Teardown seconds.
    pub teardown_sec: u32,
    /// Queue students beyond capacity.
    pub queue: bool,
    /// First instant of reserved capacity (`startsAt − leadSec`).
    pub reserved_from: String,
    /// End of reserved capacity (`endsAt + teardownSec`, plus the longest
    /// extra time of its extended students).
    pub reserved_until: String,
    /// Whether it fits the schedulable capacity now: `true`, `false`, or
    /// `"with scale-up"` (it fits only with the workers the scale hook is
    /// to start; `--admission-counts-scalable`).
    pub fits: FitsJson,
    /// Whether it no longer fits (`fits` is `false`), for the calendar's
    /// flag.
    pub at_risk: bool,
    /// The shortfall when at risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<ShortfallJson>,
    /// Who booked it.
    pub booked_by: String,
    /// When (RFC 3339).
    pub booked_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// When its timed prewarm started (RFC 3339); absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prewarm_started_at: Option<String>,
    /// Its prewarm readiness now.
    pub readiness: ReadinessJson,
    /// Where its desktops may connect; absent: the workers' own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyJson>,
    /// Students with their own end, by user id.
    pub extensions: Vec<StudentExtraJson>,
    /// Extended seats booked without names.
    pub extra_time: Vec<ExtraSeatsJson>,
}

impl From<&ExamStatus> for ExamJson {
    fn from(s: &ExamStatus) -> Self {
        let e = &s.exam;
        let w = e.window();
        Self {
            exam_id: e.id.to_string(),
            name: e.name.clone(),
            starts_at: format_rfc3339(e.starts_at),
            ends_at: format_rfc3339(e.ends_at),
            students: e.students,
            constraints: ConstraintsJson {
                zone: e.constraints.zone.clone(),
                labels: e.constraints.labels.clone(),
                capabilities: e.constraints.capabilities.clone(),
            },
            prewarm: PrewarmJson::of(&e.prewarm),
            prewarm_machines: e.prewarm.machines(e.students),
            teardown_sec: e.teardown_sec,
            queue: e.queue,
            reserved_from: format_rfc3339(w.start),
            reserved_until: format_rfc3339(w.end),
            fits: FitsJson::from(s),
            at_risk: s.at_risk.is_some(),
            shortfall: s.at_risk.as_ref().map(ShortfallJson::from),
            booked_by: e.booked_by.clone(),
            booked_at: format_rfc3339(e.booked_at),
            updated_at: format_rfc3339(e.updated_at),
            prewarm_started_at: e.prewarm_started_at.map(format_rfc3339),
            readiness: ReadinessJson::from(&s.prewarm),
            network_policy: e.network_policy.as_ref().map(NetworkPolicyJson::from),
            extensions: e.extensions.iter().map(StudentExtraJson::from).collect(),
            extra_time: e.extra_time.iter().map(ExtraSeatsJson::from).collect(),
        }
    }
}

/// `GET /api/vdi/exams`: the calendar, by start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamCalendarJson {
    /// The page's exams, by start, then id.
    pub exams: Vec<ExamJson>,
    /// `total` (every exam in the window), `limit`, `offset`.
    #[serde(flatten)]
    pub page: PageJson,
}

impl ExamCalendarJson {
    /// `page` of the calendar `exams` (by start, then id).
    pub fn new(exams: &[ExamStatus], page: Page) -> Self {
        let paged = page.take(exams);
        Self {
            exams: paged.items.into_iter().map(ExamJson::from).collect(),
            page: PageJson::new(page, paged.total),
        }
    }
}

/// One exam's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamFiguresJson {
    /// Students booked.
    pub booked_students: u32,
    /// Capacity held for it now: its students, or the slots its
    /// constraints match if fewer.
    pub reserved_capacity: u32,
    /// Slots its constraints match now, less headroom.
    pub matching_slots: u32,
    /// Its sessions placed now.
    pub sessions_in_use: u32,
    /// Its sessions per worker.
    pub sessions_by_worker: BTreeMap<String, u32>,
    /// Its prewarm: target, ready, starting, failed, readiness, per worker.
    pub prewarm: PrewarmFiguresJson,
    /// Its allocations as this replica counted them.
    pub allocations: AllocationFiguresJson,
    /// Students waiting in its queue now.
    pub queued: u32,
    /// Students placed from its queue, in total.
    pub placed_from_queue: u64,
    /// Students who left its queue for not polling, in total.
    pub abandoned_from_queue: u64,
    /// Its students' lost time, from the disruption ledger.
    #[serde(flatten)]
    pub lost: crate::ledger::LostFiguresJson,
}

/// `GET /api/vdi/exams/{examId}`: the exam and its figures. The allocation
/// figures are the answering replica's; the server fills them in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamDetailJson {
    /// The exam.
    #[serde(flatten)]
    pub exam: ExamJson,
    /// Its figures.
    pub figures: ExamFiguresJson,
}

impl From<&ExamFigures> for ExamDetailJson {
    fn from(f: &ExamFigures) -> Self {
        Self {
            exam: ExamJson::from(&f.status),
            figures: ExamFiguresJson {
                booked_students: f.booked_students,
                reserved_capacity: f.reserved_capacity,
                matching_slots: f.matching_slots,
                sessions_in_use: f.sessions_in_use,
                sessions_by_worker: f
                    .sessions_by_worker
                    .iter()
                    .map(|(w, n)| (w.to_string(), *n))
                    .collect(),
                prewarm: PrewarmFiguresJson::from(&f.status.prewarm),
                allocations: AllocationFiguresJson::default(),
                queued: f.queue.queued,
                placed_from_queue: f.queue.placed_total,
                abandoned_from_queue: f.queue.abandoned_total,
                lost: crate::ledger::LostFiguresJson::from(&f.lost),
            },
        }
    }
}

/// The 409 of a booking or change that does not fit: Aetherium's error
/// fields plus what an organiser can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRefusedJson {
    /// `Conflict`.
    pub error: String,
    /// What went wrong, for humans.
    pub message: String,
    /// 409.
    pub code: u16,
    /// The peak shortfall of the requested time.
    #[serde(flatten)]
    pub shortfall: ShortfallJson,
    /// The earliest start (RFC 3339, same length) at which the exam fits;
    /// `null` if none up to `searchedUntil`.
    pub earliest_start: Option<String>,
    /// The last start the search tried.
    pub searched_until: String,
}

impl From<&Refusal> for AdmissionRefusedJson {
    fn from(r: &Refusal) -> Self {
        let s = &r.shortfall;
        let suggestion = r.earliest_start.map(format_rfc3339);
        Self {
            error: "Conflict".into(),
            message: format!(
                "the exam does not fit: {} student(s) missing at {}{}",
                s.missing,
                format_rfc3339(s.at),
                suggestion
                    .as_deref()
                    .map(|t| format!("; it fits from {t}"))
                    .unwrap_or_default()
            ),
            code: 409,
            shortfall: ShortfallJson::from(s),
            earliest_start: suggestion,
            searched_until: format_rfc3339(r.searched_until),
        }
    }
}

#[cfg(test)]
mod tests;
