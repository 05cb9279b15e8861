//! The waiting room's tending and views: the leader's pass over every
//! exam's queue, and what operators see of one. Placing the head of a
//! queue is the placement wing's (`placement::promote`).

use std::time::Duration;

use super::Exams;
use crate::error::Result;
use crate::ids::ExamId;
use crate::waiting_room::{QueueEntry, QueueTotals};

/// Most students the background pass places from one exam's queue.
pub const PROMOTIONS_PER_TICK: u32 = 16;

/// One exam's waiting room as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    /// The exam.
    pub exam: ExamId,
    /// Who waits, head first, with their position and time waited.
    pub waiting: Vec<WaitingStudent>,
    /// The queue's totals.
    pub figures: QueueFigures,
}

/// A waiting student in [`QueueView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingStudent {
    /// 1 for the head.
    pub position: u32,
    /// Their entry.
    pub entry: QueueEntry,
    /// How long they have waited.
    pub waited: Duration,
    /// Whether a promoter is placing them right now.
    pub being_placed: bool,
}

/// One exam's queue figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueFigures {
    /// Waiting now.
    pub queued: u32,
    /// Placed from the queue, in total.
    pub placed_total: u64,
    /// Left for not polling, in total.
    pub abandoned_total: u64,
}

impl QueueFigures {
    fn of(queued: usize, totals: &QueueTotals) -> Self {
        Self {
            queued: u32::try_from(queued).unwrap_or(u32::MAX),
            placed_total: totals.placed,
            abandoned_total: totals.abandoned,
        }
    }
}

/// What one background pass over the queues did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueTick {
    /// Students placed.
    pub placed: u32,
    /// Students removed for not polling.
    pub abandoned: u32,
}

impl Exams {
    /// The background pass: removes students who stopped polling, then
    /// promotes every exam's queue, at most [`PROMOTIONS_PER_TICK`] each
    /// (so a pass stays well inside the background lease; the next tick
    /// goes on). A failure of one exam's promotion is logged and the next
    /// exam tended.
    pub async fn tend_queues(&self) -> Result<QueueTick> {
        let mut tick = QueueTick::default();
        for exam in self.shared.store.queued_exams().await? {
            let now = self.shared.clock.now();
            let queue = self.shared.store.exam_queue(&exam).await?;
            let cutoff = now.minus(self.shared.config.queue_abandon);
            for user in queue.abandoned(now, self.shared.config.queue_abandon) {
                if self
                    .shared
                    .store
                    .abandon_queued(&exam, &user, cutoff, now)
                    .await?
                {
                    tick.abandoned += 1;
                    tracing::info!(exam = %exam, user = %user, "left the queue: stopped polling");
                }
            }
            match self
                .placement
                .promote_up_to(&exam, PROMOTIONS_PER_TICK)
                .await
            {
                Ok(n) => tick.placed += n,
                Err(e) => tracing::warn!(exam = %exam, error = %e, "queue promotion failed"),
            }
        }
        Ok(tick)
    }

    /// `exam`'s waiting room: who waits, in order, and its totals.
    pub async fn exam_queue(&self, exam: &ExamId) -> Result<QueueView> {
        let queue = self.shared.store.exam_queue(exam).await?;
        let now = self.shared.clock.now();
        let claimed = queue
            .claim
            .as_ref()
            .filter(|c| c.until > now)
            .map(|c| c.user.clone());
        let waiting = queue
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| WaitingStudent {
                position: crate::waiting_room::position_from_index(i),
                waited: now.since(e.enqueued_at),
                being_placed: claimed.as_ref() == Some(&e.user),
                entry: e.clone(),
            })
            .collect::<Vec<_>>();
        Ok(QueueView {
            exam: exam.clone(),
            figures: QueueFigures::of(waiting.len(), &queue.totals),
            waiting,
        })
    }

    /// `exam`'s queue figures.
    pub async fn queue_figures(&self, exam: &ExamId) -> Result<QueueFigures> {
        let queue = self.shared.store.exam_queue(exam).await?;
        Ok(QueueFigures::of(queue.entries.len(), &queue.totals))
    }
}
