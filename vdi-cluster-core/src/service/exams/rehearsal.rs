//! An exam's rehearsal ([`crate::rehearsal`]): one test desktop on each
//! eligible worker, the record of what each did, and the go / no-go
//! report.
//!
//! A run checks every worker that could take one of the exam's sessions
//! now (schedulable, matching its constraints, a free slot), including
//! those an earlier run left out: that is their re-check. Each check first
//! takes a start permit of its worker when starts are paced (it shares the
//! worker's limit with placements and prewarm, invariant F), then calls
//! the worker's `check` within
//! [`RehearsalConfig::check_timeout`](crate::service::RehearsalConfig),
//! `prewarm_concurrency` workers at a time. A re-check of one worker does
//! the same for that worker alone.
//!
//! The record is written by compare-and-set on its version (re-read and
//! written again when another write came first: a run replaces every
//! worker's check, a re-check its own worker's), with
//! `exam.rehearsal_failed` in the same atomic step when a worker is
//! failing. The leader runs a booked exam's rehearsal by itself once,
//! [`RehearsalConfig::lead`](crate::service::RehearsalConfig) before its
//! prewarm lead ([`rehearsal_due`]).
//!
//! A cancelled exam's record is removed after the calendar's write
//! ([`Exams::cancel_exam`]), by compare-and-delete on its version. That is
//! a second step: if it fails (the store is down at that moment), or a
//! run that began before the cancel writes its record after it, the
//! record stays until the leader's next tick
//! ([`remove_cancelled_rehearsals`](Exams::remove_cancelled_rehearsals)),
//! which removes every record whose exam the calendar no longer holds.
//! Until then it matters only to an exam under the same id (booked again,
//! or prewarmed unbooked), which leaves its failing workers out; a
//! store's export leaves the record out.

use std::collections::HashSet;

use futures::StreamExt;

use super::Exams;
use crate::client::DesktopSettings;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::exam::Exam;
use crate::ids::{ExamId, WorkerId};
use crate::outbox::alerts;
use crate::rehearsal::{GoNoGo, Rehearsal, Verdict, WorkerCheck, go_no_go, judge, rehearsal_due};
use crate::scheduler::exclusion;
use crate::worker::{WorkerRecord, WorkerView};

/// An exam's rehearsal with its go / no-go report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehearsalReport {
    /// The record.
    pub rehearsal: Rehearsal,
    /// Its version in the store.
    pub version: u64,
    /// Go or no-go, now.
    pub report: GoNoGo,
}

impl Exams {
    /// Runs `exam`'s rehearsal for `actor` (see the module docs): every
    /// eligible worker checked, the record replaced.
    pub async fn rehearse(&self, exam: &ExamId, actor: &str) -> Result<RehearsalReport> {
        let booked = self.booked(exam).await?;
        let started_at = self.shared.clock.now();
        let views = self.shared.worker_views().await?;
        let none_tried = HashSet::new();
        let eligible: Vec<WorkerRecord> = views
            .iter()
            .filter(|v| exclusion(v, &booked.constraints, &none_tried).is_none())
            .map(|v| v.record.clone())
            .collect();
        let settings = DesktopSettings::of(&booked);
        let calls: Vec<_> = eligible
            .iter()
            .map(|record| self.check_worker(record, exam, &settings))
            .collect();
        let checks: Vec<WorkerCheck> = futures::stream::iter(calls)
            .buffer_unordered(self.shared.config.prewarm_concurrency.max(1))
            .collect()
            .await;
        let run = Change::Run {
            by: actor.to_owned(),
            started_at,
            checks,
            now: self.shared.clock.now(),
        };
        let written = self.write_rehearsal(exam, &run).await?;
        let detail = audit_detail(&written);
        self.shared
            .audit(actor, "rehearsal", exam.as_str(), detail)
            .await?;
        Ok(written)
    }

    /// Checks `worker` again for `exam`'s rehearsal and replaces its check
    /// in the record: a worker left out that passes is back in the exam.
    /// The exam must have been rehearsed; the worker must exist.
    pub async fn recheck_worker(
        &self,
        exam: &ExamId,
        worker: &WorkerId,
        actor: &str,
    ) -> Result<RehearsalReport> {
        let booked = self.booked(exam).await?;
        if self.shared.store.rehearsal(exam).await?.is_none() {
            return Err(Error::invalid(
                "examId",
                format!("exam {exam} has no rehearsal yet; run one first"),
            ));
        }
        let record = self.shared.worker_view(worker).await?.record;
        let check = self
            .check_worker(&record, exam, &DesktopSettings::of(&booked))
            .await;
        let written = self
            .write_rehearsal(exam, &Change::Recheck(check.clone()))
            .await?;
        let detail = serde_json::json!({
            "worker": worker.as_str(),
            "outcome": check.outcome.name(),
            "reason": check.reason,
            "verdict": written.report.verdict,
        });
        self.shared
            .audit(actor, "rehearsal-recheck", exam.as_str(), detail)
            .await?;
        Ok(written)
    }

    /// `exam`'s rehearsal and its go / no-go report now; `None` when it
    /// was never rehearsed. The exam must be booked.
    pub async fn rehearsal(&self, exam: &ExamId) -> Result<Option<RehearsalReport>> {
        let booked = self.booked(exam).await?;
        let Some(stored) = self.shared.store.rehearsal(exam).await? else {
            return Ok(None);
        };
        let report = self.judge_exam(&booked, &stored.rehearsal).await?;
        Ok(Some(RehearsalReport {
            rehearsal: stored.rehearsal,
            version: stored.version,
            report,
        }))
    }

    /// The rehearsal and go / no-go report of every booked exam among
    /// `exams` that was rehearsed, in the order of `exams`: the records,
    /// the fleet and the calendar read once for all (the metrics' scrape).
    pub async fn rehearsal_reports(&self, exams: &[ExamId]) -> Result<Vec<RehearsalReport>> {
        let mut stored = self.shared.store.rehearsals().await?;
        stored.retain(|s| exams.contains(&s.rehearsal.exam_id));
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let views = self.shared.worker_views().await?;
        let calendar = self.shared.store.exam_calendar().await?;
        let mut reports = Vec::with_capacity(stored.len());
        for exam in exams {
            let Some(s) = stored.iter().find(|s| &s.rehearsal.exam_id == exam) else {
                continue;
            };
            let Some(booked) = calendar.get(exam) else {
                continue;
            };
            reports.push(RehearsalReport {
                report: self.judge_with(booked, &s.rehearsal, &views, &calendar.exams),
                rehearsal: s.rehearsal.clone(),
                version: s.version,
            });
        }
        Ok(reports)
    }

    /// The workers `exam`'s rehearsal leaves out, read now (prewarm's
    /// plans skip them).
    pub(crate) async fn left_out(&self, exam: &ExamId) -> Result<HashSet<WorkerId>> {
        Ok(self
            .shared
            .store
            .rehearsal(exam)
            .await?
            .map(|s| s.rehearsal.failing_workers())
            .unwrap_or_default())
    }

    /// Removes `exam`'s record (its exam was cancelled) at the version
    /// read, again when a write came between; whether one was removed.
    pub(super) async fn remove_rehearsal(&self, exam: &ExamId) -> Result<bool> {
        for _ in 0..self.shared.config.exam_write_attempts.max(1) {
            let Some(stored) = self.shared.store.rehearsal(exam).await? else {
                return Ok(false);
            };
            let removed = self
                .shared
                .store
                .remove_rehearsal(exam, stored.version)
                .await?;
            self.placement.forget_rehearsal(exam);
            if removed {
                return Ok(true);
            }
        }
        Err(Error::Conflict {
            what: format!("the rehearsal of exam {exam}"),
        })
    }

    /// The leader's step: removes the record of every exam the calendar
    /// no longer holds (a cancel whose removal failed, or a run that wrote
    /// after the cancel); how many. The records are read before the
    /// calendar and each is removed only at the version read, so an exam
    /// booked again and rehearsed meanwhile keeps its new record.
    pub async fn remove_cancelled_rehearsals(&self) -> Result<u32> {
        let stored = self.shared.store.rehearsals().await?;
        if stored.is_empty() {
            return Ok(0);
        }
        let calendar = self.shared.store.exam_calendar().await?;
        let mut removed = 0;
        for s in stored
            .iter()
            .filter(|s| calendar.get(&s.rehearsal.exam_id).is_none())
        {
            let exam = &s.rehearsal.exam_id;
            if self.shared.store.remove_rehearsal(exam, s.version).await? {
                tracing::info!(exam = %exam, "removed the rehearsal of an exam no longer booked");
                self.placement.forget_rehearsal(exam);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The leader's step: runs the rehearsal of every booked exam that is
    /// due ([`rehearsal_due`]) as `system`; how many ran.
    pub async fn start_due_rehearsals(&self) -> Result<u32> {
        let lead = self.shared.config.rehearsal.lead;
        if lead.is_none() {
            return Ok(0);
        }
        let now = self.shared.clock.now();
        let calendar = self.shared.store.exam_calendar().await?;
        let mut ran = 0;
        for exam in &calendar.exams {
            let last_run = self
                .shared
                .store
                .rehearsal(&exam.id)
                .await?
                .map(|s| s.rehearsal.started_at);
            if !rehearsal_due(exam, lead, last_run, now) {
                continue;
            }
            tracing::info!(exam = %exam.id, "running the exam's rehearsal");
            let done = self.rehearse(&exam.id, "system").await?;
            if done.report.verdict == Verdict::NoGo {
                tracing::warn!(exam = %exam.id, failing = done.report.failing.len(), "rehearsal: no-go");
            }
            ran += 1;
        }
        Ok(ran)
    }

    async fn booked(&self, exam: &ExamId) -> Result<Exam> {
        self.shared
            .store
            .exam_calendar()
            .await?
            .get(exam)
            .cloned()
            .ok_or_else(|| Error::ExamNotFound(exam.clone()))
    }

    /// One worker's check: its start permit when paced, the call within
    /// the check timeout, the verdict.
    async fn check_worker(
        &self,
        record: &WorkerRecord,
        exam: &ExamId,
        settings: &DesktopSettings,
    ) -> WorkerCheck {
        let config = &self.shared.config.rehearsal;
        let id = format!("rehearsal:{}", uuid::Uuid::new_v4());
        let now = self.shared.clock.now();
        let mut permit = match self.placement.take_permit(record, &id, now).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                let why = "no start permit in time: the worker is busy starting desktops";
                return judge(&record.id, Err(why.into()), config.slow_start, now);
            }
            Err(e) => {
                let why = format!("the store failed: {e}");
                return judge(&record.id, Err(why), config.slow_start, now);
            }
        };
        if let Some(p) = permit.as_mut() {
            p.calling(self.shared.clock.now());
        }
        let call = self.shared.client.check(record, exam, settings);
        let answer = match tokio::time::timeout(config.check_timeout, call).await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                config.check_timeout.as_secs()
            )),
        };
        let started = matches!(&answer, Ok(r) if r.started);
        self.placement.give_back(permit, started).await;
        judge(
            &record.id,
            answer,
            config.slow_start,
            self.shared.clock.now(),
        )
    }

    /// Writes the record `change` makes of the stored one, with
    /// `exam.rehearsal_failed` when a worker is failing, by
    /// compare-and-set, re-reading on a conflict.
    async fn write_rehearsal(&self, exam: &ExamId, change: &Change) -> Result<RehearsalReport> {
        for _ in 0..self.shared.config.exam_write_attempts.max(1) {
            let booked = self.booked(exam).await?;
            let stored = self.shared.store.rehearsal(exam).await?;
            let version = stored.as_ref().map_or(0, |s| s.version);
            let Some(rehearsal) = change.apply(exam, stored.as_ref().map(|s| &s.rehearsal)) else {
                return Err(Error::invalid(
                    "examId",
                    format!("exam {exam} has no rehearsal yet; run one first"),
                ));
            };
            let report = self.judge_exam(&booked, &rehearsal).await?;
            let event = (!report.failing.is_empty()).then(|| EventKind::ExamRehearsalFailed {
                exam: exam.clone(),
                run: rehearsal.run,
                go: report.verdict == Verdict::Go,
                failing: report.failing.clone(),
                missing: report.missing,
            });
            let episode = format!("{}:{}", rehearsal.run, rehearsal.updated_at.as_millis());
            let events: Vec<(&EventKind, Option<String>)> = event
                .iter()
                .map(|k| (k, alerts::observed_key(k, &episode)))
                .collect();
            let entries = self.shared.outbox_entries(&events).await?;
            let written = self
                .shared
                .store
                .put_rehearsal(&rehearsal, version, &entries)
                .await?;
            self.placement.forget_rehearsal(exam);
            if written {
                if let Some(kind) = event {
                    self.shared.emit(kind);
                }
                return Ok(RehearsalReport {
                    rehearsal,
                    version: version + 1,
                    report,
                });
            }
        }
        Err(Error::Conflict {
            what: format!("the rehearsal of exam {exam}"),
        })
    }

    /// The go / no-go report of `rehearsal` for `exam` against the fleet
    /// and the calendar now.
    async fn judge_exam(&self, exam: &Exam, rehearsal: &Rehearsal) -> Result<GoNoGo> {
        let views = self.shared.worker_views().await?;
        let calendar = self.shared.store.exam_calendar().await?;
        Ok(self.judge_with(exam, rehearsal, &views, &calendar.exams))
    }

    /// The go / no-go report of `rehearsal` for `exam` against `views`
    /// and the booked `exams`, now.
    fn judge_with(
        &self,
        exam: &Exam,
        rehearsal: &Rehearsal,
        views: &[WorkerView],
        exams: &[Exam],
    ) -> GoNoGo {
        let rest: Vec<WorkerView> = views
            .iter()
            .filter(|v| !rehearsal.excludes(v.id()))
            .cloned()
            .collect();
        let without = self.capacity_of(&rest);
        go_no_go(rehearsal, exam, exams, &without, self.shared.clock.now())
    }
}

/// A write of an exam's rehearsal record.
#[derive(Debug)]
enum Change {
    /// A whole run: its checks replace every earlier one.
    Run {
        by: String,
        started_at: crate::time::Timestamp,
        checks: Vec<WorkerCheck>,
        now: crate::time::Timestamp,
    },
    /// One worker's re-check of a stored record.
    Recheck(WorkerCheck),
}

impl Change {
    /// The record this change makes of `previous`; `None` for a re-check
    /// of an exam never rehearsed.
    fn apply(&self, exam: &ExamId, previous: Option<&Rehearsal>) -> Option<Rehearsal> {
        match self {
            Self::Run {
                by,
                started_at,
                checks,
                now,
            } => Some(Rehearsal::run(
                previous,
                exam.clone(),
                by,
                *started_at,
                checks.clone(),
                *now,
            )),
            Self::Recheck(check) => previous.map(|p| p.rechecked(check.clone())),
        }
    }
}

/// What the audit trail keeps of a run.
fn audit_detail(written: &RehearsalReport) -> serde_json::Value {
    let failing: Vec<serde_json::Value> = written
        .report
        .failing
        .iter()
        .map(|c| {
            serde_json::json!({
                "worker": c.worker.as_str(),
                "outcome": c.outcome.name(),
                "reason": c.reason,
            })
        })
        .collect();
    serde_json::json!({
        "run": written.rehearsal.run,
        "workers": written.rehearsal.workers.len(),
        "verdict": written.report.verdict,
        "go": written.report.verdict == Verdict::Go,
        "failing": failing,
    })
}
