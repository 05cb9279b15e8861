//! Keeping a booked exam's prewarm target, and releasing its machines.
//!
//! After the timed prewarm has started and until the exam starts, the
//! leader compares what the workers report for the exam (ready and
//! starting machines on live workers) with the target and prewarms the
//! difference on other eligible workers
//! ([`plan_top_up`](crate::exam::plan_top_up)); each top-up is marked on
//! the calendar by compare-and-set first, and nothing is decided again
//! until every live worker has reported after it. Readiness reaching
//! 100 % emits `examPrewarmReady` once; readiness below 100 % at the start
//! emits `examPrewarmBehind` once. Each is written to the outbox ahead of
//! the calendar mark that records it, under a key naming the exam and its
//! prewarm run: a crash between the two is healed by the next pass, which
//! observes the same transition and writes the same key (skipped by the
//! store), so the event is never lost and never written twice.
//!
//! Unclaimed machines are released when the exam ends (and when it is
//! cancelled): every reachable worker whose report still lists the exam is
//! told to discard its machines, pass after pass until the reports are
//! empty or the exam's teardown is over.

use std::collections::HashSet;

use super::Exams;
use super::prewarm::PrewarmReport;
use crate::calendar::CalendarWrite;
use crate::client::DesktopSettings;
use crate::error::Result;
use crate::events::EventKind;
use crate::exam::{Exam, PoolSight, Readiness, TopUp, plan_top_up, readiness};
use crate::ids::{ExamId, WorkerId};
use crate::outbox::alerts;
use crate::scheduler::exclusion;
use crate::store::Lease;
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// What the workers report for `exam`, one sight per worker.
pub(crate) fn sights(exam: &Exam, views: &[WorkerView]) -> Vec<PoolSight> {
    let none_tried = HashSet::new();
    views
        .iter()
        .map(|v| {
            let live = v.availability.is_reachable() && v.record.accepting();
            PoolSight {
                worker: v.id().clone(),
                pool: v.record.prewarm_pool.of(&exam.id),
                live,
                room: (live && exclusion(v, &exam.constraints, &none_tried).is_none())
                    .then_some(v.available_sessions),
                reported_at: v.record.last_heartbeat_at,
            }
        })
        .collect()
}

/// `exam`'s readiness from the workers' reports.
pub(crate) fn exam_readiness(exam: &Exam, views: &[WorkerView]) -> Readiness {
    readiness(exam.prewarm.machines(exam.students), &sights(exam, views))
}

impl Exams {
    /// One pass of keeping every started prewarm's target (see the module
    /// docs): emits the readiness events, tops up exams whose ready and
    /// starting machines on live workers fall short. Returns what each
    /// top-up did. The readiness events are written to the outbox fenced
    /// by `fence` (the leader's lease) ahead of their calendar mark, under
    /// keys naming the exam and its prewarm run (see the module docs).
    pub async fn keep_prewarm_targets(
        &self,
        fence: Option<&Lease>,
    ) -> Result<Vec<(ExamId, PrewarmReport)>> {
        let now = self.shared.clock.now();
        let calendar = self.shared.store.exam_calendar().await?;
        // Exams whose prewarm has started and still has a step to take.
        let pending: Vec<(&Exam, _)> = calendar
            .exams
            .iter()
            .filter_map(|e| e.prewarm_started_at.map(|t| (e, t)))
            .filter(|(e, _)| now < e.starts_at || e.prewarm_marks.start_checked_at.is_none())
            .collect();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let views = self.shared.worker_views().await?;
        let mut topped = Vec::new();
        for (exam, started_at) in pending {
            let target = exam.prewarm.machines(exam.students);
            let ready = exam_readiness(exam, &views);
            if ready.live.ready >= target && exam.prewarm_marks.ready_at.is_none() {
                let kind = EventKind::ExamPrewarmReady {
                    exam: exam.id.clone(),
                    ready: ready.live.ready,
                    target,
                };
                self.write_ahead(&exam.id, kind, started_at, fence, |e| {
                    e.prewarm_marks.ready_at = Some(now);
                })
                .await?;
            }
            if now >= exam.starts_at {
                if exam.prewarm_marks.start_checked_at.is_none() {
                    let mark = |e: &mut Exam| e.prewarm_marks.start_checked_at = Some(now);
                    if ready.live.ready < target {
                        let kind = EventKind::ExamPrewarmBehind {
                            exam: exam.id.clone(),
                            ready: ready.live.ready,
                            target,
                        };
                        self.write_ahead(&exam.id, kind, started_at, fence, mark)
                            .await?;
                    } else {
                        self.mark(&exam.id, mark).await?;
                    }
                }
                continue;
            }
            let since = exam
                .prewarm_marks
                .topped_up_at
                .map_or(started_at, |t| t.max(started_at));
            // Machines on workers the rehearsal left out are not counted,
            // and none is started there.
            let left_out = self.left_out(&exam.id).await?;
            let kept: Vec<WorkerView> = views
                .iter()
                .filter(|v| !left_out.contains(v.id()))
                .cloned()
                .collect();
            let sights = sights(exam, &kept);
            match plan_top_up(target, &sights, since, self.shared.config.prewarm_max) {
                TopUp::Enough | TopUp::Wait { .. } => {}
                TopUp::NoRoom { missing } => {
                    tracing::warn!(exam = %exam.id, missing, "prewarm target not met and no eligible worker has room");
                }
                TopUp::Start { missing, shares } => {
                    if !self
                        .mark(&exam.id, |e| e.prewarm_marks.topped_up_at = Some(now))
                        .await?
                    {
                        continue;
                    }
                    tracing::info!(exam = %exam.id, missing, ?shares, "topping up the prewarm");
                    let settings = DesktopSettings::of(exam);
                    let (started, failures) = self
                        .call_prewarm(&exam.id, &shares, &views, &settings)
                        .await;
                    let report = PrewarmReport {
                        exam_id: exam.id.clone(),
                        requested: missing,
                        planned: shares.iter().map(|s| s.count).sum(),
                        started,
                        shares,
                        failures,
                    };
                    let detail = serde_json::to_value(&report).unwrap_or_default();
                    self.shared
                        .audit("system", "prewarm-top-up", exam.id.as_str(), detail)
                        .await?;
                    topped.push((exam.id.clone(), report));
                }
            }
        }
        Ok(topped)
    }

    /// Tells every worker still holding machines of an exam that has ended
    /// (and whose teardown is not over) to discard them. Returns the idle
    /// machines the workers discarded.
    pub async fn release_ended_prewarms(&self) -> Result<u32> {
        let now = self.shared.clock.now();
        let calendar = self.shared.store.exam_calendar().await?;
        let ended: Vec<&Exam> = calendar
            .exams
            .iter()
            .filter(|e| e.ends_at <= now && now < e.window().end)
            .collect();
        if ended.is_empty() {
            return Ok(0);
        }
        let views = self.shared.worker_views().await?;
        let mut discarded = 0;
        for exam in ended {
            discarded += self.discard_prewarm(&exam.id, &views).await;
        }
        Ok(discarded)
    }

    /// Discards `exam`'s prewarmed machines on every reachable worker whose
    /// report lists the exam (machines, or failed starts to forget); failures are logged (the next pass, or the
    /// worker's own eviction, takes care of them). Returns the idle
    /// machines discarded.
    pub(crate) async fn discard_prewarm(&self, exam: &ExamId, views: &[WorkerView]) -> u32 {
        let holders: Vec<&WorkerView> = views
            .iter()
            .filter(|v| v.availability.is_reachable() && !v.record.prewarm_pool.of(exam).is_empty())
            .collect();
        let mut discarded = 0;
        for view in holders {
            let call = self.shared.client.discard_prewarm(&view.record, exam);
            match tokio::time::timeout(self.shared.config.worker_call_timeout, call).await {
                Ok(Ok(n)) => {
                    tracing::info!(exam = %exam, worker = %view.id(), discarded = n, "released prewarmed machines");
                    discarded += n;
                }
                Ok(Err(e)) => discard_failed(exam, view.id(), &e.to_string()),
                Err(_) => discard_failed(exam, view.id(), "timed out"),
            }
        }
        discarded
    }

    /// Writes `kind` (about `exam`) to the outbox ahead of the calendar
    /// mark that records it, fenced by `fence`, under a key naming the exam
    /// and its prewarm run (`started_at`), then marks the exam with
    /// `change`; emitted once the mark is written. A crash or a conflict
    /// between the two steps leaves the mark unset: the next pass observes
    /// the same transition and writes the same key, which the store skips,
    /// so the event is never lost and never written twice.
    async fn write_ahead(
        &self,
        exam: &ExamId,
        kind: EventKind,
        started_at: Timestamp,
        fence: Option<&Lease>,
        change: impl FnOnce(&mut Exam),
    ) -> Result<()> {
        let key = alerts::observed_key(&kind, started_at.as_millis());
        self.shared.append_observed(&kind, key, fence).await?;
        if self.mark(exam, change).await? {
            self.shared.emit(kind);
        }
        Ok(())
    }

    /// Applies `change` to exam `id` on the current calendar and writes it
    /// if the calendar did not change meanwhile. `false` on a conflict or
    /// when the exam is gone (another replica or pass got there first).
    pub(super) async fn mark(&self, id: &ExamId, change: impl FnOnce(&mut Exam)) -> Result<bool> {
        let calendar = self.shared.store.exam_calendar().await?;
        let Some(exam) = calendar.get(id) else {
            return Ok(false);
        };
        let mut marked = exam.clone();
        change(&mut marked);
        Ok(matches!(
            self.placement.put_exam(&marked, calendar.version).await?,
            CalendarWrite::Written { .. }
        ))
    }
}

fn discard_failed(exam: &ExamId, worker: &WorkerId, error: &str) {
    tracing::warn!(exam = %exam, worker = %worker, error, "discarding prewarmed machines failed");
}
