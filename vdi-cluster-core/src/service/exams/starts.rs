//! An exam's starts as operators read them: how many of its students'
//! desktops are starting, how long their starts took (reservation to
//! active, the wait for a permit included), and the start rate of each
//! worker that holds its sessions.

use std::time::Duration;

use super::Exams;
use crate::dispatch::DispatchState;
use crate::error::Result;
use crate::ids::ExamId;
use crate::service::placement::StartPacing;

/// Dispatches read per worker for an exam's starts.
const READ_PER_WORKER: usize = 10_000;

/// An exam's starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ExamStarts {
    /// The exam.
    pub exam: ExamId,
    /// Students whose desktop is starting (reserved, not yet active).
    pub starting: u32,
    /// Students whose desktop is up.
    pub placed: u32,
    /// Median time from reservation to a running desktop.
    pub wait_p50: Duration,
    /// Its 95th percentile.
    pub wait_p95: Duration,
    /// Each worker holding the exam's sessions, by code.
    pub workers: Vec<StartPacing>,
}

/// The nearest-rank percentile `pct` of sorted `values`.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * pct).div_ceil(100).max(1) - 1]
}

impl Exams {
    /// `exam`'s starts now (read from its workers' dispatches and start
    /// queues; for the operators' page, not for the hot path).
    pub async fn exam_starts(&self, exam: &ExamId) -> Result<ExamStarts> {
        let now = self.shared.clock.now();
        let placement = self.shared.store.placement(exam, now).await?;
        let (mut starting, mut waits, mut workers) = (0, Vec::new(), Vec::new());
        for worker in placement.affinity.keys() {
            let dispatches = self
                .shared
                .store
                .worker_dispatches(worker, READ_PER_WORKER)
                .await?;
            for d in dispatches.iter().filter(|d| &d.key.exam_id == exam) {
                match (d.state, d.activated_at) {
                    (DispatchState::Reserved, _) => starting += 1,
                    (_, Some(active)) => waits.push(active.since(d.reserved_at)),
                    (_, None) => {}
                }
            }
            if let Some(snapshot) = self.shared.store.worker(worker).await? {
                workers.push(self.placement.start_pacing(&snapshot.record).await?);
            }
        }
        waits.sort_unstable();
        Ok(ExamStarts {
            exam: exam.clone(),
            starting,
            placed: u32::try_from(waits.len()).unwrap_or(u32::MAX),
            wait_p50: percentile(&waits, 50),
            wait_p95: percentile(&waits, 95),
            workers,
        })
    }
}
