//! What this replica remembers between allocations so an allocation costs
//! no reads besides its compare-and-reserve and its confirm: each exam's
//! placement hints, and the exam calendar the session API consults (for
//! an exam's queue and the [`DesktopSettings`] sent to its workers).
//!
//! The calendar is kept for at most
//! [`ServiceConfig::snapshot_max_age`](crate::service::ServiceConfig::snapshot_max_age),
//! like the ranking snapshot, placement hints for [`HINT_LIFETIMES`] times
//! that (zero: both always read fresh).
//!
//! * **Placement hints** (sticky worker, affinity counts) are read from the
//!   store once per exam and lifetime, then moved by this replica's own
//!   placements: the sticky worker becomes the worker it just placed on,
//!   whose affinity grows by one — and stays this replica's sticky worker
//!   when the hints are read again, so replicas spread over workers of
//!   their own rather than race for one. They only order candidates: a stale hint
//!   may cost placement quality or a contention retry, never correctness —
//!   compare-and-reserve has the last word (invariants A–C).
//! * **The calendar** is dropped by this replica's own calendar writes, so
//!   a booking made here is seen here at once; one made on another replica
//!   is seen within the lifetime.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::Placement;
use crate::calendar::{CalendarWrite, ExamCalendar};
use crate::client::DesktopSettings;
use crate::error::Result;
use crate::exam::Exam;
use crate::ids::{ExamId, WorkerId};
use crate::scheduler::ExamPlacement;

/// A value and when it was read from the store.
#[derive(Debug)]
struct Read<T> {
    fetched: Instant,
    value: Arc<T>,
}

impl<T> Read<T> {
    fn fresh(&self, max_age: Duration) -> Option<Arc<T>> {
        (self.fetched.elapsed() < max_age).then(|| Arc::clone(&self.value))
    }
}

/// An exam's hints: as read, moved by this replica's placements since.
#[derive(Debug)]
struct ExamHints {
    read: Read<ExamPlacement>,
    /// Where this replica last placed the exam: its sticky worker, kept
    /// over the store's when the hints are read again — replicas that each
    /// fill a worker of their own do not race for the last slots of one.
    own_sticky: Option<WorkerId>,
}

/// An exam's placement hints live this many snapshot lifetimes: this
/// replica moves them itself, the store's copy only adds the others'
/// placements, and an exam's surge on a slow backend would otherwise read
/// them again every half second per exam and replica.
pub(crate) const HINT_LIFETIMES: u32 = 10;

/// How many lifetimes an exam's entry (and this replica's sticky worker
/// for it) outlives its last read.
const KEEP_OWN_STICKY: u32 = 20;

/// This replica's cached hints (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Hints {
    placements: Mutex<HashMap<ExamId, ExamHints>>,
    calendar: Mutex<Option<Read<ExamCalendar>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hints {
    /// `exam`'s hints if read less than `max_age` ago, else read by `load`.
    async fn placement<F>(
        &self,
        exam: &ExamId,
        max_age: Duration,
        load: impl FnOnce() -> F,
    ) -> Result<Arc<ExamPlacement>>
    where
        F: Future<Output = Result<ExamPlacement>>,
    {
        if let Some(hit) = lock(&self.placements)
            .get(exam)
            .and_then(|h| h.read.fresh(max_age))
        {
            return Ok(hit);
        }
        let fetched = Instant::now();
        let mut read = load().await?;
        let mut placements = lock(&self.placements);
        // Entries of exams no longer placed here are dropped as they age.
        placements.retain(|_, h| h.read.fetched.elapsed() < max_age * KEEP_OWN_STICKY);
        let own = placements.get(exam).and_then(|h| h.own_sticky.clone());
        if let Some(worker) = &own {
            read.sticky = Some(worker.clone());
        }
        let value = Arc::new(read);
        placements.insert(
            exam.clone(),
            ExamHints {
                read: Read {
                    fetched,
                    value: Arc::clone(&value),
                },
                own_sticky: own,
            },
        );
        Ok(value)
    }

    /// Moves `exam`'s cached hints by a placement of this replica on
    /// `worker` (what the store's reserve and confirm wrote there).
    fn placed(&self, exam: &ExamId, worker: &WorkerId) {
        if let Some(h) = lock(&self.placements).get_mut(exam) {
            h.own_sticky = Some(worker.clone());
            Arc::make_mut(&mut h.read.value).placed(worker);
        }
    }

    /// The calendar if read less than `max_age` ago, else read by `load`.
    async fn calendar<F>(
        &self,
        max_age: Duration,
        load: impl FnOnce() -> F,
    ) -> Result<Arc<ExamCalendar>>
    where
        F: Future<Output = Result<ExamCalendar>>,
    {
        if let Some(hit) = lock(&self.calendar).as_ref().and_then(|r| r.fresh(max_age)) {
            return Ok(hit);
        }
        let fetched = Instant::now();
        let value = Arc::new(load().await?);
        *lock(&self.calendar) = Some(Read {
            fetched,
            value: Arc::clone(&value),
        });
        Ok(value)
    }

    fn forget_calendar(&self) {
        *lock(&self.calendar) = None;
    }
}

impl Placement {
    /// `exam`'s placement hints, cached (see the module docs).
    pub(crate) async fn placement_hints(&self, exam: &ExamId) -> Result<Arc<ExamPlacement>> {
        let load = || self.shared.store.placement(exam, self.shared.clock.now());
        let max_age = self.shared.config.snapshot_max_age * HINT_LIFETIMES;
        if max_age.is_zero() {
            return Ok(Arc::new(load().await?));
        }
        self.hints.placement(exam, max_age, load).await
    }

    /// Records a placement of this replica in its hints.
    pub(crate) fn note_placed(&self, exam: &ExamId, worker: &WorkerId) {
        self.hints.placed(exam, worker);
    }

    /// The exam calendar, cached for the session API's per-request look
    /// (see the module docs). Decisions that write the calendar read it
    /// fresh from the store instead.
    pub(crate) async fn cached_calendar(&self) -> Result<Arc<ExamCalendar>> {
        let load = || self.shared.store.exam_calendar();
        let max_age = self.shared.config.snapshot_max_age;
        if max_age.is_zero() {
            return Ok(Arc::new(load().await?));
        }
        self.hints.calendar(max_age, load).await
    }

    /// What `exam`, as booked on this replica's cached calendar, asks of
    /// the desktops started for it (nothing for an exam not booked).
    pub(crate) async fn desktop_settings(&self, exam: &ExamId) -> Result<DesktopSettings> {
        let calendar = self.cached_calendar().await?;
        Ok(calendar
            .get(exam)
            .map(DesktopSettings::of)
            .unwrap_or_default())
    }

    /// Writes `exam` if the calendar is at version `expected`; this
    /// replica's cached calendar is dropped either way.
    pub(crate) async fn put_exam(&self, exam: &Exam, expected: u64) -> Result<CalendarWrite> {
        let written = self.shared.store.put_exam_if_version(exam, expected).await;
        self.hints.forget_calendar();
        written
    }

    /// Removes exam `id` if the calendar is at version `expected`; this
    /// replica's cached calendar is dropped either way.
    pub(crate) async fn delete_exam(&self, id: &ExamId, expected: u64) -> Result<CalendarWrite> {
        let written = self.shared.store.delete_exam_if_version(id, expected).await;
        self.hints.forget_calendar();
        written
    }
}
