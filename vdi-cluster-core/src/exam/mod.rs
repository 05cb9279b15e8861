//! Exams as first-class objects: what is booked, and whether it fits.
//!
//! An [`Exam`] reserves capacity over its *window*
//! `[startsAt − prewarm.leadSec, endsAt + teardownSec)`: from the moment
//! its machines are prewarmed until they are torn down. [`admission`]
//! decides, purely, whether a set of booked exams fits the schedulable
//! capacity at every instant (invariant D), where the peak shortfall is,
//! and the earliest start at which a refused exam would fit.
//!
//! Everything here is pure; time arrives as an argument.

pub mod admission;
pub mod extension;
pub mod extra_time;
pub mod freeze;
mod iso_duration;
pub mod maintenance;
pub mod readiness;
mod rfc3339;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::ExamId;
use crate::network::NetworkPolicy;
use crate::scheduler::Constraints;
use crate::time::Timestamp;
use crate::validation::ValidationError;

pub use admission::{
    Capacity, ExamLoad, Fit, Pool, Refusal, Scalable, Shortfall, admit, decide, earliest_fit, fit,
    risk,
};
pub use extension::{ExtensionRefusal, decide_extension};
pub use extra_time::{ExtraSeats, MAX_EXTRA_SEC, StudentExtra};
pub use freeze::{Freeze, FrozenChange, FrozenExam, freeze};
pub use iso_duration::parse_iso_duration;
pub use maintenance::{MaintenanceWindow, maintenance_windows};
pub use readiness::{
    PoolSight, Readiness, TopUp, WorkerReadiness, plan_top_up, readiness, readiness_percent,
};
pub use rfc3339::{format_rfc3339, parse_rfc3339};

/// Prewarm lead by default: 15 minutes (the runbook's T−15).
pub const DEFAULT_LEAD_SEC: u32 = 900;
/// Teardown time after the end by default: 5 minutes.
pub const DEFAULT_TEARDOWN_SEC: u32 = 300;
/// Longest exam: 24 hours.
pub const MAX_EXAM_LENGTH: Duration = Duration::from_secs(86_400);
/// Largest lead and teardown: 24 hours each.
pub const MAX_LEAD_OR_TEARDOWN_SEC: u32 = 86_400;
/// Most students of one exam.
pub const MAX_STUDENTS: u32 = 100_000;
/// Longest exam name, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// How many machines to prewarm: a count, or a percentage of the students.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PrewarmTarget {
    /// This many machines.
    Count(u32),
    /// This percentage of `students`, rounded up.
    Percent(u32),
}

/// The exam's prewarm plan (carried out by a later version; booked now so
/// the window it occupies is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prewarm {
    /// How many machines.
    pub target: PrewarmTarget,
    /// Seconds before `startsAt` prewarm begins; the window opens then.
    pub lead_sec: u32,
}

impl Default for Prewarm {
    fn default() -> Self {
        Self {
            target: PrewarmTarget::Count(0),
            lead_sec: DEFAULT_LEAD_SEC,
        }
    }
}

impl Prewarm {
    /// Machines to prewarm for `students`: the count (at most `students`),
    /// or `ceil(percent × students / 100)`.
    pub fn machines(&self, students: u32) -> u32 {
        match self.target {
            PrewarmTarget::Count(n) => n.min(students),
            PrewarmTarget::Percent(p) => {
                let n = (u64::from(p.min(100)) * u64::from(students)).div_ceil(100);
                u32::try_from(n).unwrap_or(students)
            }
        }
    }
}

impl Exam {
    /// Machines its timed prewarm should start at `now`: its prewarm
    /// target, once the lead before `startsAt` has begun and until the
    /// start, if the prewarm has not started yet and the target is not zero.
    pub fn prewarm_due(&self, now: Timestamp) -> Option<u32> {
        let lead = std::time::Duration::from_secs(u64::from(self.prewarm.lead_sec));
        let opens = self.starts_at.minus(lead);
        let machines = self.prewarm.machines(self.students);
        (self.prewarm_started_at.is_none() && machines > 0 && opens <= now && now < self.starts_at)
            .then_some(machines)
    }
}

/// An exam as booked and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exam {
    /// The id the session API uses for its students.
    pub id: ExamId,
    /// Display name.
    pub name: String,
    /// When students start.
    pub starts_at: Timestamp,
    /// When the exam ends.
    pub ends_at: Timestamp,
    /// Expected students: the capacity reserved.
    pub students: u32,
    /// Requirements on the workers its sessions may use.
    pub constraints: Constraints,
    /// Prewarm plan; its lead opens the window.
    pub prewarm: Prewarm,
    /// Seconds after `endsAt` the window stays reserved.
    pub teardown_sec: u32,
    /// Queue students beyond capacity (the waiting room, a later version).
    pub queue: bool,
    /// Who booked it.
    pub booked_by: String,
    /// When it was booked.
    pub booked_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When its timed prewarm started (marked before prewarming, so it
    /// runs once); cleared when the start time moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prewarm_started_at: Option<Timestamp>,
    /// What the leader did since the prewarm started (each mark written by
    /// compare-and-set on the calendar); cleared with `prewarm_started_at`.
    #[serde(default, skip_serializing_if = "PrewarmMarks::is_empty")]
    pub prewarm_marks: PrewarmMarks,
    /// Where its desktops may connect, sent to the worker with each
    /// allocation and prewarm; replaces the node's default
    /// ([`crate::network::precedence`]). Absent: the node's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicy>,
    /// Named students with their own end (`endsAt + extraSec`), by user
    /// id ([`extra_time`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<StudentExtra>,
    /// Extended seats booked without names: a count per extra duration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_time: Vec<ExtraSeats>,
    /// The latest end (a student's own) whose `session.expiring` warning
    /// the leader has written; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_warned_through: Option<Timestamp>,
}

/// Progress marks of an exam's timed prewarm, so that each step runs and
/// each event is emitted once across replicas and passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmMarks {
    /// The last top-up toward the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topped_up_at: Option<Timestamp>,
    /// When readiness first reached 100 % (`examPrewarmReady`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Timestamp>,
    /// When readiness was checked at the start (`examPrewarmBehind` if
    /// below 100 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_checked_at: Option<Timestamp>,
}

impl PrewarmMarks {
    /// Whether no mark is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The half-open interval of instants an exam occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First instant (`startsAt − leadSec`).
    pub start: Timestamp,
    /// First instant after it (`endsAt + teardownSec`).
    pub end: Timestamp,
}

impl Window {
    /// Whether `t` is inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

impl Exam {
    /// `[startsAt − leadSec, endsAt + longest extra time + teardownSec)`:
    /// every instant it holds a seat (all its students only in its
    /// [main window](Self::main_window)).
    pub fn window(&self) -> Window {
        Window {
            start: self
                .starts_at
                .minus(Duration::from_secs(self.prewarm.lead_sec.into())),
            end: self.ends_at.plus(Duration::from_secs(
                u64::from(self.teardown_sec) + u64::from(self.longest_extra_sec()),
            )),
        }
    }

    /// Length of the exam itself (`endsAt − startsAt`).
    pub fn length(&self) -> Duration {
        self.ends_at.since(self.starts_at)
    }

    /// The same exam moved to start at `starts_at`, same length.
    pub fn moved_to(&self, starts_at: Timestamp) -> Exam {
        Exam {
            starts_at,
            ends_at: starts_at.plus(self.length()),
            ..self.clone()
        }
    }

    /// Checks every field; errors name it in the API's spelling.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let name = self.name.trim();
        if name.is_empty()
            || self.name.chars().count() > MAX_NAME_LEN
            || self.name.chars().any(char::is_control)
        {
            return Err(ValidationError::new(
                "name",
                format!("must be 1 to {MAX_NAME_LEN} characters without control characters"),
            ));
        }
        if self.ends_at <= self.starts_at {
            return Err(ValidationError::new("endsAt", "must be after startsAt"));
        }
        if self.length() > MAX_EXAM_LENGTH {
            return Err(ValidationError::new(
                "endsAt",
                "an exam lasts at most 24 hours",
            ));
        }
        if !(1..=MAX_STUDENTS).contains(&self.students) {
            return Err(ValidationError::new(
                "students",
                format!("must be 1 to {MAX_STUDENTS}"),
            ));
        }
        self.constraints.validate()?;
        match self.prewarm.target {
            PrewarmTarget::Count(n) if n > self.students => {
                return Err(ValidationError::new(
                    "prewarm.count",
                    "must be at most students",
                ));
            }
            PrewarmTarget::Percent(p) if p > 100 => {
                return Err(ValidationError::new("prewarm.percent", "must be 0 to 100"));
            }
            _ => {}
        }
        if self.prewarm.lead_sec > MAX_LEAD_OR_TEARDOWN_SEC {
            return Err(ValidationError::new(
                "prewarm.leadSec",
                format!("must be at most {MAX_LEAD_OR_TEARDOWN_SEC}"),
            ));
        }
        if self.teardown_sec > MAX_LEAD_OR_TEARDOWN_SEC {
            return Err(ValidationError::new(
                "teardownSec",
                format!("must be at most {MAX_LEAD_OR_TEARDOWN_SEC}"),
            ));
        }
        if let Some(policy) = &self.network_policy {
            policy.validate("networkPolicy")?;
        }
        self.validate_extra_time()
    }

    /// Whether going from `self` to `changed` needs admission again: a
    /// change of its window, its size, its constraints or its seats.
    pub fn needs_admission(&self, changed: &Exam) -> bool {
        self.window() != changed.window()
            || self.students != changed.students
            || self.constraints != changed.constraints
            || self.seats() != changed.seats()
    }
}

/// A change to a booked exam: `None` keeps the field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExamPatch {
    /// New name.
    pub name: Option<String>,
    /// New start.
    pub starts_at: Option<Timestamp>,
    /// New end.
    pub ends_at: Option<Timestamp>,
    /// New size.
    pub students: Option<u32>,
    /// New constraints.
    pub constraints: Option<Constraints>,
    /// New prewarm plan.
    pub prewarm: Option<Prewarm>,
    /// New teardown.
    pub teardown_sec: Option<u32>,
    /// New queue setting.
    pub queue: Option<bool>,
    /// New network policy: `Some(None)` removes it (the node's default
    /// applies again).
    pub network_policy: Option<Option<NetworkPolicy>>,
}

impl ExamPatch {
    /// `exam` with the patch applied, stamped `now`; not validated.
    pub fn apply(&self, exam: &Exam, now: Timestamp) -> Exam {
        let keeps_start = self.starts_at.is_none_or(|s| s == exam.starts_at);
        Exam {
            id: exam.id.clone(),
            name: self.name.clone().unwrap_or_else(|| exam.name.clone()),
            starts_at: self.starts_at.unwrap_or(exam.starts_at),
            ends_at: self.ends_at.unwrap_or(exam.ends_at),
            students: self.students.unwrap_or(exam.students),
            constraints: self
                .constraints
                .clone()
                .unwrap_or_else(|| exam.constraints.clone()),
            prewarm: self.prewarm.unwrap_or(exam.prewarm),
            teardown_sec: self.teardown_sec.unwrap_or(exam.teardown_sec),
            queue: self.queue.unwrap_or(exam.queue),
            booked_by: exam.booked_by.clone(),
            booked_at: exam.booked_at,
            updated_at: now,
            prewarm_started_at: exam.prewarm_started_at.filter(|_| keeps_start),
            prewarm_marks: if keeps_start {
                exam.prewarm_marks
            } else {
                PrewarmMarks::default()
            },
            network_policy: self
                .network_policy
                .clone()
                .unwrap_or_else(|| exam.network_policy.clone()),
            extensions: exam.extensions.clone(),
            extra_time: exam.extra_time.clone(),
            expiry_warned_through: exam
                .expiry_warned_through
                .filter(|_| self.ends_at.is_none_or(|e| e == exam.ends_at)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minute, in milliseconds.
    pub(crate) const MIN: u64 = 60_000;

    /// A fleet of `slots` interchangeable slots.
    pub(crate) fn cap(slots: u32) -> Capacity {
        Capacity::new([Pool {
            signature: crate::WorkerDescription::default(),
            slots,
        }])
    }

    pub(crate) fn exam(id: &str, start_min: u64, end_min: u64, students: u32) -> Exam {
        let m = |n: u64| Timestamp::from_millis(n * 60_000);
        Exam {
            id: ExamId::parse("examId", id).unwrap(),
            name: format!("Exam {id}"),
            starts_at: m(start_min),
            ends_at: m(end_min),
            students,
            constraints: Constraints::default(),
            prewarm: Prewarm::default(),
            teardown_sec: DEFAULT_TEARDOWN_SEC,
            queue: true,
            booked_by: "admin".into(),
            booked_at: m(0),
            updated_at: m(0),
            prewarm_started_at: None,
            prewarm_marks: PrewarmMarks::default(),
            network_policy: None,
            extensions: Vec::new(),
            extra_time: Vec::new(),
            expiry_warned_through: None,
        }
    }

    #[test]
    fn window_adds_lead_and_teardown() {
        let e = exam("a", 100, 160, 10);
        let w = e.window();
        assert_eq!(w.start.as_millis(), 85 * 60_000);
        assert_eq!(w.end.as_millis(), 165 * 60_000);
        assert!(w.contains(w.start) && !w.contains(w.end));
        assert_eq!(e.moved_to(Timestamp::from_millis(0)).length(), e.length());
    }

    #[test]
    fn validation_names_the_field() {
        let ok = exam("a", 100, 160, 10);
        ok.validate().unwrap();
        let field = |e: Exam| e.validate().unwrap_err().field;
        assert_eq!(
            field(Exam {
                name: " ".into(),
                ..ok.clone()
            }),
            "name"
        );
        assert_eq!(
            field(Exam {
                ends_at: ok.starts_at,
                ..ok.clone()
            }),
            "endsAt"
        );
        assert_eq!(field(exam("a", 0, 24 * 60 + 1, 1)), "endsAt");
        assert_eq!(
            field(Exam {
                students: 0,
                ..ok.clone()
            }),
            "students"
        );
        let prewarm = |target| Prewarm {
            target,
            lead_sec: 900,
        };
        assert_eq!(
            field(Exam {
                prewarm: prewarm(PrewarmTarget::Count(11)),
                ..ok.clone()
            }),
            "prewarm.count"
        );
        assert_eq!(
            field(Exam {
                prewarm: prewarm(PrewarmTarget::Percent(101)),
                ..ok.clone()
            }),
            "prewarm.percent"
        );
        assert_eq!(
            field(Exam {
                prewarm: Prewarm {
                    lead_sec: 86_401,
                    ..Prewarm::default()
                },
                ..ok.clone()
            }),
            "prewarm.leadSec"
        );
        assert_eq!(
            field(Exam {
                teardown_sec: 86_401,
                ..ok.clone()
            }),
            "teardownSec"
        );
        let c = Constraints {
            zone: Some(String::new()),
            ..Constraints::default()
        };
        assert_eq!(
            field(Exam {
                constraints: c,
                ..ok.clone()
            }),
            "constraints.zone"
        );
        let cidrs = ["103.90.220.0/22", "42.1.76.128/28", "1.55.145.7/24"];
        let policy = crate::network::NetworkPolicy {
            allowed_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            ..crate::network::NetworkPolicy::restricted()
        };
        assert_eq!(
            field(Exam {
                network_policy: Some(policy),
                ..ok
            }),
            "networkPolicy.allowedCidrs[2]"
        );
    }

    #[test]
    fn a_record_without_a_network_policy_still_reads() {
        let with = Exam {
            network_policy: Some(crate::network::NetworkPolicy {
                origin_ip: Some("203.210.213.198".parse().unwrap()),
                ..crate::network::NetworkPolicy::restricted()
            }),
            ..exam("a", 100, 160, 10)
        };
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["networkPolicy"]["originIp"], "203.210.213.198");
        assert_eq!(serde_json::from_value::<Exam>(json.clone()).unwrap(), with);
        let mut old = json;
        old.as_object_mut().unwrap().remove("networkPolicy");
        let read: Exam = serde_json::from_value(old).unwrap();
        assert_eq!(read.network_policy, None);
        let plain = serde_json::to_value(exam("a", 100, 160, 10)).unwrap();
        assert!(plain.get("networkPolicy").is_none());
    }

    #[test]
    fn prewarm_machines_round_up_and_cap() {
        let p = |target| Prewarm {
            target,
            lead_sec: 0,
        };
        assert_eq!(p(PrewarmTarget::Percent(10)).machines(45), 5);
        assert_eq!(p(PrewarmTarget::Percent(100)).machines(45), 45);
        assert_eq!(p(PrewarmTarget::Count(50)).machines(45), 45);
        assert_eq!(p(PrewarmTarget::Percent(0)).machines(45), 0);
    }

    #[test]
    fn patch_changes_only_what_it_names() {
        let e = exam("a", 100, 160, 10);
        let same = ExamPatch {
            name: Some("B".into()),
            ..Default::default()
        }
        .apply(&e, Timestamp::from_millis(9));
        assert!(!e.needs_admission(&same));
        assert_eq!(same.updated_at.as_millis(), 9);
        let bigger = ExamPatch {
            students: Some(11),
            ..Default::default()
        }
        .apply(&e, Timestamp::from_millis(9));
        assert!(e.needs_admission(&bigger));
        let later = ExamPatch {
            teardown_sec: Some(600),
            ..Default::default()
        }
        .apply(&e, Timestamp::from_millis(9));
        assert!(e.needs_admission(&later));
        let policy = crate::network::NetworkPolicy {
            allowed_ips: vec!["10.0.0.7".parse().unwrap()],
            ..crate::network::NetworkPolicy::restricted()
        };
        let restricted = ExamPatch {
            network_policy: Some(Some(policy.clone())),
            ..Default::default()
        }
        .apply(&e, Timestamp::from_millis(9));
        assert_eq!(restricted.network_policy, Some(policy));
        assert!(
            !e.needs_admission(&restricted),
            "a policy needs no capacity"
        );
        let renamed = ExamPatch {
            name: Some("C".into()),
            ..Default::default()
        }
        .apply(&restricted, Timestamp::from_millis(9));
        assert!(renamed.network_policy.is_some(), "kept when not named");
        let cleared = ExamPatch {
            network_policy: Some(None),
            ..Default::default()
        }
        .apply(&restricted, Timestamp::from_millis(9));
        assert_eq!(cleared.network_policy, None);
    }
}
