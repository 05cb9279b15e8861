//! The waiting room's claim: placing the head of an exam's queue.
//!
//! # Promotion
//!
//! [`promote_queue`](ClusterService::promote_queue) claims the head of the
//! exam's queue in the store (one claim per exam, with a fenced token and a
//! deadline of [`ServiceConfig::queue_claim_ttl`](crate::service::ServiceConfig::queue_claim_ttl)),
//! runs the normal allocation for that student with the exam's
//! constraints, then completes the claim — removing the entry and counting
//! it placed in one atomic step, only if the claim is still held. Once
//! the exam has started, the student's wait (from joining the queue, or
//! the exam's start if later) is written to the disruption ledger as a
//! `waitingRoom` entry with the placement's confirmation. A refusal
//! for want of a slot gives the claim up and stops: the head stays the
//! head, so nobody behind it is placed first. A promoter that dies loses
//! its claim at the deadline; another promoter then claims the same head,
//! and its allocation returns the dispatch the first one made (invariant
//! B), so nobody is placed twice. A student who leaves while being placed
//! is told apart at completion ([`Completion::Left`](crate::store::Completion)),
//! and the promoter releases the session it just placed; should the
//! promoter stall or die first, the student's departure
//! ([`end_session`](Placement::end_session)) waits for the claim on them
//! to end and releases what it placed.
//!
//! Promotion runs on the replica that released a session
//! ([`promote_after_release`](ClusterService::promote_after_release)), and on the
//! background leader every tick ([`tend_queues`](ClusterService::tend_queues)),
//! which also catches workers that joined or recovered, prewarms that
//! finished, and removes students who stopped polling for
//! [`ServiceConfig::queue_abandon`](crate::service::ServiceConfig::queue_abandon).

use super::Placement;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::{ExamId, SessionKey};
use crate::ledger::OpenInterruption;
use crate::store::Completion;
use crate::waiting_room::QueueClaim;

impl Placement {
    /// Promotes `exam`'s queue after a slot freed on this replica (a
    /// release); a failure is logged, the leader's tick retries. An exam
    /// that does not queue, as this replica's cached calendar says, costs
    /// no store call: students left in its queue (its waiting room was
    /// turned off while they waited, or this replica's calendar is a
    /// moment old) are placed by the leader's tick
    /// (`Exams::tend_queues`).
    pub async fn promote_after_release(&self, exam: &ExamId) {
        match self.queueing(exam).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(exam = %exam, error = %e, "queue promotion failed");
                return;
            }
        }
        match self.promote_queue(exam).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(exam = %exam, placed = n, "queued students placed after a release")
            }
            Err(e) => tracing::warn!(exam = %exam, error = %e, "queue promotion failed"),
        }
    }

    /// Places the head of `exam`'s queue, again and again, until the queue
    /// is empty, a slot is missing, or another promoter holds the head.
    /// Returns how many were placed.
    pub async fn promote_queue(&self, exam: &ExamId) -> Result<u32> {
        self.promote_up_to(exam, u32::MAX).await
    }

    /// [`promote_queue`](Self::promote_queue), placing at most `limit`.
    pub(crate) async fn promote_up_to(&self, exam: &ExamId, limit: u32) -> Result<u32> {
        let constraints = self.queueing(exam).await?.unwrap_or_default();
        let mut placed = 0;
        while placed < limit {
            let now = self.shared.clock.now();
            let until = now.plus(self.shared.config.queue_claim_ttl());
            let Some(claim) = self.shared.store.claim_queue_head(exam, now, until).await? else {
                return Ok(placed);
            };
            let key = SessionKey::new(exam.clone(), claim.user.clone());
            // A slot freed a moment ago must be seen: rank from a fresh read
            // of the fleet, not a cached snapshot that still shows it full.
            self.invalidate_snapshot();
            let waited = self.waited(&key, &claim).await?;
            match self
                .allocate_after(key.clone(), constraints.clone(), waited)
                .await
            {
                Ok(allocation) => match self
                    .shared
                    .store
                    .complete_queue_claim(&claim, self.shared.clock.now())
                    .await?
                {
                    Completion::Placed => {
                        placed += 1;
                        self.shared.emit(EventKind::QueuedSessionPlaced {
                            session: key,
                            worker: allocation.dispatch.worker.clone(),
                        });
                    }
                    Completion::Left => {
                        // The student left while being placed: undo it.
                        tracing::info!(session = %key, "left the queue while being placed; released");
                        self.release(&key).await?;
                    }
                    Completion::Lost => {}
                },
                Err(Error::NoCapacity(_)) => {
                    self.shared.store.release_queue_claim(&claim).await?;
                    return Ok(placed);
                }
                Err(e) => {
                    if let Err(release) = self.shared.store.release_queue_claim(&claim).await {
                        tracing::warn!(exam = %exam, error = %release, "could not give a queue claim up");
                    }
                    return Err(e);
                }
            }
        }
        Ok(placed)
    }

    /// The wait of the student `claim` holds, from their entry's
    /// `enqueuedAt`, once their exam has started (a wait before its start
    /// costs no exam time, and the queue is not read for it).
    async fn waited(
        &self,
        key: &SessionKey,
        claim: &QueueClaim,
    ) -> Result<Option<OpenInterruption>> {
        let started = self
            .cached_calendar()
            .await?
            .get(&key.exam_id)
            .is_some_and(|e| e.starts_at <= self.shared.clock.now());
        if !started {
            return Ok(None);
        }
        let queue = self.shared.store.exam_queue(&key.exam_id).await?;
        Ok(queue
            .entries
            .iter()
            .find(|e| e.user == claim.user)
            .map(|e| OpenInterruption::queued(key.clone(), e.enqueued_at)))
    }
}
