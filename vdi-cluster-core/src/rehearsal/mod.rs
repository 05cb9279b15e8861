//! The rehearsal before an exam, pure: what one worker's check says
//! ([`judge`]), the exam's record of its workers' checks ([`Rehearsal`]),
//! and the go / no-go report ([`go_no_go`]).
//!
//! A rehearsal starts one test desktop of the exam on each eligible
//! worker through its provisioner (the node's provisioning action
//! `check`), which measures the start, stops the desktop and says whether
//! the exam's image is on the worker and how the provisioner's own checks
//! (the network allow-list, …) went. Each worker then is:
//!
//! | outcome | when | excluded from the exam |
//! |---|---|---|
//! | `imageMissing` | the provisioner reports the exam's image absent | yes |
//! | `failed` | the call failed, the desktop did not start, or a provisioner check failed | yes |
//! | `slow` | it started, in more than the slow threshold | no |
//! | `ok` | it started in time | no |
//!
//! A worker `failed` or `imageMissing` is *failing*: the exam's placement
//! and prewarm leave it out until a re-check (the whole rehearsal again,
//! or that worker alone) finds it passing.
//!
//! The report is **go** when at least one worker passed and the exam
//! still fits without the failing workers — admission
//! ([`exam::risk`](crate::exam::risk)) recomputed on the capacity left
//! once they are gone, for every exam overlapping it (an exam excludes
//! them only for itself, so this is the cautious answer) — and **no-go**
//! otherwise.

mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exam::{Capacity, Exam, risk};
use crate::ids::{ExamId, WorkerId};
use crate::time::Timestamp;

pub use store::{Rehearsals, StoredRehearsal};

/// The slow threshold by default: a test desktop that takes longer than
/// a minute to start is `slow`.
pub const DEFAULT_SLOW_START: Duration = Duration::from_secs(60);

/// Longest reason kept per worker, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// One check the provisioner ran besides the start (the network
/// allow-list, a mount, …), as its `check` answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionerCheck {
    /// Its name, as the provisioner gives it.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What it found, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a worker answered to a check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// The test desktop started (and was stopped again).
    pub started: bool,
    /// How long the start took, milliseconds.
    pub start_ms: u32,
    /// Whether the exam's image is on the worker; `None` when the
    /// provisioner does not say.
    pub image_present: Option<bool>,
    /// The image, as the provisioner names it.
    pub image: Option<String>,
    /// The provisioner's own checks.
    pub checks: Vec<ProvisionerCheck>,
    /// Why the desktop did not start.
    pub error: Option<String>,
}

/// A worker's outcome in a rehearsal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Started in time.
    Ok,
    /// Started, in more than the slow threshold.
    Slow,
    /// The exam's image is not on the worker.
    ImageMissing,
    /// The call failed, the desktop did not start, or a provisioner check
    /// failed.
    Failed,
}

impl Outcome {
    /// Whether the worker is left out of the exam until a re-check.
    pub fn failing(self) -> bool {
        matches!(self, Self::ImageMissing | Self::Failed)
    }

    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Slow => "slow",
            Self::ImageMissing => "imageMissing",
            Self::Failed => "failed",
        }
    }
}

/// One worker's check, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCheck {
    /// The worker.
    pub worker: WorkerId,
    /// Its outcome.
    pub outcome: Outcome,
    /// Why, unless `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the test desktop took to start, when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u32>,
    /// The exam's image, as the provisioner names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The provisioner's own checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ProvisionerCheck>,
    /// When the check ended.
    pub checked_at: Timestamp,
}

fn clip(text: &str) -> String {
    text.trim().chars().take(MAX_REASON_CHARS).collect()
}

/// The outcome of `worker`'s check: its answer, or why the call failed;
/// `slow` is the threshold above which a start is slow. The first that
/// applies: the call failed, the image is missing, the desktop did not
/// start, a provisioner check failed, the start was slow; else ok.
pub fn judge(
    worker: &WorkerId,
    answer: Result<CheckReport, String>,
    slow: Duration,
    now: Timestamp,
) -> WorkerCheck {
    let mut check = WorkerCheck {
        worker: worker.clone(),
        outcome: Outcome::Ok,
        reason: None,
        start_ms: None,
        image: None,
        checks: Vec::new(),
        checked_at: now,
    };
    let report = match answer {
        Ok(report) => report,
        Err(e) => {
            check.outcome = Outcome::Failed;
            check.reason = Some(clip(&format!("the check call failed: {e}")));
            return check;
        }
    };
    check.image = report.image.clone();
    check.checks = report.checks.clone();
    check.start_ms = report.started.then_some(report.start_ms);
    let failed_check = report.checks.iter().find(|c| !c.ok);
    let (outcome, reason) = if report.image_present == Some(false) {
        let image = report.image.as_deref().unwrap_or("the exam's image");
        (
            Outcome::ImageMissing,
            format!("{image} is not on the worker"),
        )
    } else if !report.started {
        let why = report.error.as_deref().unwrap_or("no reason given");
        (
            Outcome::Failed,
            format!("the test desktop did not start: {why}"),
        )
    } else if let Some(c) = failed_check {
        let detail = c
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        (Outcome::Failed, format!("check {} failed{detail}", c.name))
    } else if u128::from(report.start_ms) > slow.as_millis() {
        (
            Outcome::Slow,
            format!(
                "started in {} ms, above the {} ms threshold",
                report.start_ms,
                slow.as_millis()
            ),
        )
    } else {
        return check;
    };
    check.outcome = outcome;
    check.reason = Some(clip(&reason));
    check
}

/// An exam's rehearsal as stored: its workers' last checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rehearsal {
    /// The exam.
    pub exam_id: ExamId,
    /// Whole runs so far (1 after the first); a worker's re-check keeps it.
    pub run: u32,
    /// Who ran the last whole run (`system` for the leader's).
    pub by: String,
    /// When the last whole run began.
    pub started_at: Timestamp,
    /// When the last check (of a run or a re-check) ended.
    pub updated_at: Timestamp,
    /// Each worker's last check, by worker.
    pub workers: Vec<WorkerCheck>,
}

impl Rehearsal {
    /// A whole run's record: its checks replace every earlier one.
    pub fn run(
        previous: Option<&Rehearsal>,
        exam_id: ExamId,
        by: &str,
        started_at: Timestamp,
        mut workers: Vec<WorkerCheck>,
        now: Timestamp,
    ) -> Self {
        workers.sort_by(|a, b| a.worker.cmp(&b.worker));
        Self {
            exam_id,
            run: previous.map_or(0, |p| p.run).saturating_add(1),
            by: by.to_owned(),
            started_at,
            updated_at: now,
            workers,
        }
    }

    /// This record with `check` replacing its worker's (or added).
    pub fn rechecked(&self, check: WorkerCheck) -> Self {
        let mut next = self.clone();
        next.updated_at = check.checked_at;
        next.workers.retain(|c| c.worker != check.worker);
        next.workers.push(check);
        next.workers.sort_by(|a, b| a.worker.cmp(&b.worker));
        next
    }

    /// The workers the exam leaves out: failing at their last check.
    pub fn failing(&self) -> Vec<&WorkerCheck> {
        self.workers
            .iter()
            .filter(|c| c.outcome.failing())
            .collect()
    }

    /// The codes of the workers the exam leaves out ([`failing`](Self::failing)).
    pub fn failing_workers(&self) -> std::collections::HashSet<WorkerId> {
        self.failing()
            .into_iter()
            .map(|c| c.worker.clone())
            .collect()
    }

    /// Whether `worker` is left out of the exam.
    pub fn excludes(&self, worker: &WorkerId) -> bool {
        self.workers
            .iter()
            .any(|c| &c.worker == worker && c.outcome.failing())
    }
}

/// Go or no-go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// A worker passed, and the exam fits without the failing ones.
    Go,
    /// No worker passed, or the exam does not fit without the failing
    /// ones.
    NoGo,
}

/// The go / no-go report of a rehearsal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoNoGo {
    /// Go or no-go.
    pub verdict: Verdict,
    /// Workers that passed (`ok` or `slow`).
    pub passed: u32,
    /// The failing workers, by worker.
    pub failing: Vec<WorkerCheck>,
    /// The slow workers (they stay in).
    pub slow: Vec<WorkerId>,
    /// Whether the exam fits without the failing workers.
    pub fits_without_failing: bool,
    /// Students it could not place at its peak without them.
    pub missing: u32,
}

/// The go / no-go report of `rehearsal` for `exam`, booked beside
/// `exams`, against `without`: the schedulable capacity once the failing
/// workers are gone (see the module docs), at `now`.
pub fn go_no_go(
    rehearsal: &Rehearsal,
    exam: &Exam,
    exams: &[Exam],
    without: &Capacity,
    now: Timestamp,
) -> GoNoGo {
    let failing: Vec<WorkerCheck> = rehearsal.failing().into_iter().cloned().collect();
    let slow = rehearsal
        .workers
        .iter()
        .filter(|c| c.outcome == Outcome::Slow)
        .map(|c| c.worker.clone())
        .collect();
    let passed = rehearsal
        .workers
        .iter()
        .filter(|c| !c.outcome.failing())
        .count();
    let missing = risk(exam, exams, without, now).map_or(0, |s| s.missing);
    let passed = u32::try_from(passed).unwrap_or(u32::MAX);
    GoNoGo {
        verdict: if passed > 0 && missing == 0 {
            Verdict::Go
        } else {
            Verdict::NoGo
        },
        passed,
        failing,
        slow,
        fits_without_failing: missing == 0,
        missing,
    }
}

/// Whether the leader runs `exam`'s rehearsal by itself at `now`: from
/// `lead` before its prewarm lead begins (`None`: never) until the exam
/// starts, once — unless a run (`last_run`, when the last whole run
/// began) already began in that span.
pub fn rehearsal_due(
    exam: &Exam,
    lead: Option<Duration>,
    last_run: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    let Some(lead) = lead else { return false };
    let prewarm = Duration::from_secs(u64::from(exam.prewarm.lead_sec));
    let opens = exam.starts_at.minus(prewarm).minus(lead);
    let ran = last_run.is_some_and(|t| t >= opens);
    !ran && opens <= now && now < exam.starts_at
}

#[cfg(test)]
mod tests;
