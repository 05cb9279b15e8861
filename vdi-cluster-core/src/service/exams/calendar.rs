//! Exams: book, change and cancel with admission control (invariant D);
//! the calendar and one exam's figures (with its prewarm readiness); the
//! at-risk pass.
//!
//! Every write is read → decide → compare-and-set: the calendar and its
//! version are read, [`exam::admission`](crate::exam::admission) decides
//! against the schedulable capacity now, and the store writes only if the
//! version is unchanged. On a conflict the operation reads and decides
//! again, up to [`ServiceConfig::exam_write_attempts`] times.
//!
//! [`ServiceConfig::exam_write_attempts`]: crate::service::ServiceConfig::exam_write_attempts

use std::collections::{BTreeMap, BTreeSet};

use super::Exams;
use super::prewarm_target::exam_readiness;
use super::waiting_room::QueueFigures;
use crate::calendar::{CalendarWrite, ExamCalendar};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::exam::{Capacity, Exam, ExamPatch, Fit, Readiness, Refusal, Shortfall, decide, fit};
use crate::ids::{ExamId, WorkerId};
use crate::ledger::{ExamLost, LedgerOrder};
use crate::outbox::alerts;
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// The answer to a booking or a change.
#[derive(Debug, Clone, PartialEq)]
pub enum Booking {
    /// Written; the exam as booked now.
    Accepted(Box<ExamStatus>),
    /// Not written: it does not fit (HTTP 409).
    Refused(Box<Refusal>),
}

/// A booked exam with whether it still fits the capacity now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamStatus {
    /// The exam.
    pub exam: Exam,
    /// Its shortfall against the schedulable capacity now (`None`: it
    /// fits, or it is over, or it fits with the scale-up).
    pub at_risk: Option<Shortfall>,
    /// It fits only with the slots the scale hook may add, and its window
    /// has not begun (`--admission-counts-scalable`).
    pub with_scale_up: bool,
    /// Its prewarm target and readiness from the workers' latest reports.
    pub prewarm: Readiness,
}

/// One exam's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamFigures {
    /// The exam and its risk.
    pub status: ExamStatus,
    /// Students booked.
    pub booked_students: u32,
    /// Capacity held for it: its students, or fewer if the slots its
    /// constraints allow are fewer now.
    pub reserved_capacity: u32,
    /// Slots its constraints match now, headroom taken off.
    pub matching_slots: u32,
    /// Its sessions placed now (dispatch records), in total…
    pub sessions_in_use: u32,
    /// …and per worker.
    pub sessions_by_worker: BTreeMap<WorkerId, u32>,
    /// Its waiting room: queued now, placed from it and abandoned in total.
    pub queue: QueueFigures,
    /// Its students' lost time (the disruption ledger).
    pub lost: LostFigures,
}

/// An exam's lost time, from the disruption ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LostFigures {
    /// Students with lost time.
    pub students: u32,
    /// Their lost time added up, milliseconds.
    pub total_ms: u64,
    /// The median over them, milliseconds.
    pub median_ms: u64,
    /// The most one student lost, milliseconds.
    pub max_ms: u64,
}

impl From<&ExamLost> for LostFigures {
    fn from(l: &ExamLost) -> Self {
        Self {
            students: u32::try_from(l.students.len()).unwrap_or(u32::MAX),
            total_ms: l.total_ms,
            median_ms: l.median_ms,
            max_ms: l.max_ms,
        }
    }
}

impl Exams {
    pub(super) fn capacity_of(&self, views: &[WorkerView]) -> Capacity {
        Capacity::of_workers(views, self.shared.config.exam_headroom_percent)
    }

    /// With `--admission-counts-scalable`, the capacity admission may
    /// count: the fleet without the workers live capacity requests brought
    /// (the hook's slots hold them already), plus the scalable slots per
    /// zone of the fleet and of `exams`.
    async fn scalable_capacity(
        &self,
        views: &[WorkerView],
        exams: &[&Exam],
    ) -> Result<Option<Capacity>> {
        let slots = self.shared.config.admission_scalable_slots;
        if slots == 0 {
            return Ok(None);
        }
        let requests = self.shared.store.capacity_requests().await?;
        let scaled: BTreeSet<&WorkerId> = requests
            .iter()
            .filter(|s| s.request.state.is_live())
            .flat_map(|s| &s.request.workers)
            .collect();
        let own: Vec<WorkerView> = views
            .iter()
            .filter(|v| !scaled.contains(v.id()))
            .cloned()
            .collect();
        let constraints = exams.iter().map(|e| &e.constraints);
        Ok(Some(
            self.capacity_of(&own).with_scalable(constraints, slots),
        ))
    }

    fn status_of(
        &self,
        exam: &Exam,
        calendar: &ExamCalendar,
        capacity: &Capacity,
        scalable: Option<&Capacity>,
        views: &[WorkerView],
    ) -> ExamStatus {
        let now = self.shared.clock.now();
        let (at_risk, with_scale_up) = match fit(exam, &calendar.exams, capacity, scalable, now) {
            Fit::Fits => (None, false),
            Fit::WithScaleUp => (None, true),
            Fit::Short(s) => (Some(s), false),
        };
        ExamStatus {
            exam: exam.clone(),
            at_risk,
            with_scale_up,
            prewarm: exam_readiness(exam, views),
        }
    }

    /// Books `exam` (its `booked_by`, `booked_at` and `updated_at` are set
    /// here) if it fits beside every booked exam at every instant of its
    /// window (or, with `--admission-counts-scalable` and its window not
    /// begun, fits with the slots the scale hook may add); otherwise the
    /// refusal with the earliest start that fits the fleet.
    pub async fn book_exam(&self, mut exam: Exam, actor: &str) -> Result<Booking> {
        let now = self.shared.clock.now();
        exam.booked_by = actor.to_owned();
        exam.booked_at = now;
        exam.updated_at = now;
        exam.validate()?;
        if exam.ends_at <= now {
            return Err(Error::invalid("endsAt", "must be in the future"));
        }
        let booking = self
            .write_exam(|calendar| match calendar.get(&exam.id) {
                Some(_) => Err(Error::ExamExists(exam.id.clone())),
                None => Ok(Some(exam.clone())),
            })
            .await?;
        if let Booking::Accepted(status) = &booking {
            self.shared
                .audit(
                    actor,
                    "book-exam",
                    status.exam.id.as_str(),
                    exam_detail(&status.exam),
                )
                .await?;
        }
        Ok(booking)
    }

    /// Changes a booked exam; a change of its window, size or constraints
    /// is admitted again, exactly like a booking (the exam's own old
    /// booking does not count against it).
    pub async fn update_exam(
        &self,
        id: &ExamId,
        patch: &ExamPatch,
        actor: &str,
    ) -> Result<Booking> {
        let now = self.shared.clock.now();
        let booking = self
            .write_exam(|calendar| {
                let old = calendar
                    .get(id)
                    .ok_or_else(|| Error::ExamNotFound(id.clone()))?;
                let changed = patch.apply(old, now);
                changed.validate()?;
                if changed.ends_at <= now && changed.ends_at != old.ends_at {
                    return Err(Error::invalid("endsAt", "must be in the future"));
                }
                Ok(Some(changed))
            })
            .await?;
        if let Booking::Accepted(status) = &booking {
            self.shared
                .audit(actor, "update-exam", id.as_str(), exam_detail(&status.exam))
                .await?;
        }
        Ok(booking)
    }

    /// Cancels a booked exam, releases its prewarmed machines (workers
    /// that cannot be reached keep them until their own eviction) and
    /// removes its rehearsal's record (a removal that fails is left to the
    /// leader's tick, see [`remove_cancelled_rehearsals`](Self::remove_cancelled_rehearsals));
    /// returns it.
    pub async fn cancel_exam(&self, id: &ExamId, actor: &str) -> Result<Exam> {
        for _ in 0..self.shared.config.exam_write_attempts.max(1) {
            let calendar = self.shared.store.exam_calendar().await?;
            let exam = calendar
                .get(id)
                .cloned()
                .ok_or_else(|| Error::ExamNotFound(id.clone()))?;
            match self.placement.delete_exam(id, calendar.version).await? {
                CalendarWrite::Written { .. } => {
                    self.shared
                        .audit(actor, "cancel-exam", id.as_str(), exam_detail(&exam))
                        .await?;
                    if let Err(e) = self.remove_rehearsal(id).await {
                        tracing::warn!(exam = %id, error = %e, "the cancelled exam's rehearsal stays until the leader's next tick");
                    }
                    let views = self.shared.worker_views().await?;
                    self.discard_prewarm(id, &views).await;
                    return Ok(exam);
                }
                CalendarWrite::Conflict { .. } => continue,
            }
        }
        Err(Error::Conflict {
            what: "the exam calendar".into(),
        })
    }

    /// Reads the calendar, lets `change` compute the exam to write (`None`:
    /// nothing), admits it against the others and writes it on the version
    /// read; again on a conflict.
    async fn write_exam(
        &self,
        change: impl Fn(&ExamCalendar) -> Result<Option<Exam>>,
    ) -> Result<Booking> {
        for _ in 0..self.shared.config.exam_write_attempts.max(1) {
            let calendar = self.shared.store.exam_calendar().await?;
            let Some(exam) = change(&calendar)? else {
                return Err(Error::Conflict {
                    what: "the exam calendar".into(),
                });
            };
            let views = self.shared.worker_views().await?;
            let capacity = self.capacity_of(&views);
            let every: Vec<&Exam> = calendar.exams.iter().chain([&exam]).collect();
            let scalable = self.scalable_capacity(&views, &every).await?;
            let now = self.shared.clock.now();
            let admit = match calendar.get(&exam.id) {
                Some(old) => old.needs_admission(&exam),
                None => true,
            };
            if admit
                && let Err(refusal) = decide(
                    &exam,
                    &calendar.exams,
                    &capacity,
                    now,
                    self.shared.config.exam_fit_horizon,
                )
                && fit(&exam, &calendar.exams, &capacity, scalable.as_ref(), now)
                    != Fit::WithScaleUp
            {
                return Ok(Booking::Refused(refusal));
            }
            match self.placement.put_exam(&exam, calendar.version).await? {
                CalendarWrite::Written { .. } => {
                    let mut after = calendar;
                    after.exams.retain(|e| e.id != exam.id);
                    let status =
                        self.status_of(&exam, &after, &capacity, scalable.as_ref(), &views);
                    return Ok(Booking::Accepted(Box::new(status)));
                }
                CalendarWrite::Conflict { .. } => {
                    tracing::debug!(exam = %exam.id, "exam calendar changed meanwhile; deciding again");
                }
            }
        }
        Err(Error::Conflict {
            what: "the exam calendar".into(),
        })
    }

    /// Exams overlapping `[from, to)` (by `startsAt`/`endsAt`; either bound
    /// open), by start, each with its risk now.
    pub async fn exam_calendar(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<ExamStatus>> {
        let calendar = self.shared.store.exam_calendar().await?;
        let views = self.shared.worker_views().await?;
        let capacity = self.capacity_of(&views);
        let every: Vec<&Exam> = calendar.exams.iter().collect();
        let scalable = self.scalable_capacity(&views, &every).await?;
        let mut out: Vec<ExamStatus> = calendar
            .exams
            .iter()
            .filter(|e| from.is_none_or(|f| e.ends_at > f) && to.is_none_or(|t| e.starts_at < t))
            .map(|e| self.status_of(e, &calendar, &capacity, scalable.as_ref(), &views))
            .collect();
        out.sort_by(|a, b| (a.exam.starts_at, &a.exam.id).cmp(&(b.exam.starts_at, &b.exam.id)));
        Ok(out)
    }

    /// One exam, its risk and its figures.
    pub async fn exam_figures(&self, id: &ExamId) -> Result<ExamFigures> {
        let calendar = self.shared.store.exam_calendar().await?;
        let exam = calendar
            .get(id)
            .ok_or_else(|| Error::ExamNotFound(id.clone()))?;
        let views = self.shared.worker_views().await?;
        let capacity = self.capacity_of(&views);
        let every: Vec<&Exam> = calendar.exams.iter().collect();
        let scalable = self.scalable_capacity(&views, &every).await?;
        let placement = self
            .shared
            .store
            .placement(id, self.shared.clock.now())
            .await?;
        let matching_slots = capacity.slots_for(&exam.constraints);
        let sessions_by_worker: BTreeMap<WorkerId, u32> = placement
            .affinity
            .iter()
            .map(|(w, n)| (w.clone(), *n))
            .collect();
        Ok(ExamFigures {
            status: self.status_of(exam, &calendar, &capacity, scalable.as_ref(), &views),
            booked_students: exam.students,
            reserved_capacity: exam.students.min(matching_slots),
            matching_slots,
            sessions_in_use: sessions_by_worker.values().sum(),
            sessions_by_worker,
            queue: self.queue_figures(id).await?,
            lost: LostFigures::from(&self.exam_ledger(id, LedgerOrder::default()).await?),
        })
    }

    /// Flags every upcoming exam that no longer fits the schedulable
    /// capacity (and clears the flag of those that fit again), emitting
    /// one event per change of flag. Idempotent: the flags live in the
    /// store, swapped atomically, so a second pass (or a second replica)
    /// emits nothing new. Each event's outbox entries are carried by the
    /// swap and written in its atomic step only if it changes the flag, so
    /// the swap that observes a transition is the one that writes it, and
    /// a crash cannot separate the two (the endpoints are read once per
    /// pass for this). Returns the events emitted.
    pub async fn evaluate_exam_risks(&self) -> Result<Vec<EventKind>> {
        let calendar = self.shared.store.exam_calendar().await?;
        let views = self.shared.worker_views().await?;
        let capacity = self.capacity_of(&views);
        let every: Vec<&Exam> = calendar.exams.iter().collect();
        let scalable = self.scalable_capacity(&views, &every).await?;
        let endpoints = self.shared.store.webhooks().await?;
        let now = self.shared.clock.now();
        let mut events = Vec::new();
        for exam in calendar.exams.iter().filter(|e| e.window().end > now) {
            // An exam counting on the scale-up is watched: at risk once its
            // window begins without the promised workers.
            let at_risk = match fit(exam, &calendar.exams, &capacity, scalable.as_ref(), now) {
                Fit::Short(s) => Some(s),
                Fit::Fits | Fit::WithScaleUp => None,
            };
            let flag = at_risk.as_ref().map(|s| s.missing);
            let kind = match at_risk {
                Some(s) => EventKind::ExamAtRisk {
                    exam: exam.id.clone(),
                    shortfall: s.missing,
                    peak_at: s.at,
                },
                None => EventKind::ExamFitsAgain {
                    exam: exam.id.clone(),
                },
            };
            let key = alerts::observed_key(&kind, now.as_millis());
            let entries = self.shared.entries_for(&endpoints, &[(&kind, key)]);
            let before = self
                .shared
                .store
                .swap_exam_risk(&exam.id, flag, &entries)
                .await?;
            if before == flag {
                continue;
            }
            self.shared.emit(kind.clone());
            events.push(kind);
        }
        Ok(events)
    }
}

fn exam_detail(exam: &Exam) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "startsAt": exam.starts_at.as_millis(),
        "endsAt": exam.ends_at.as_millis(),
        "students": exam.students,
    });
    if let Some(policy) = &exam.network_policy {
        // Who opened or closed an exam's network is on record.
        detail["networkPolicy"] = serde_json::to_value(policy).unwrap_or_default();
    }
    detail
}
