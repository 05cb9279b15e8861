//! The waiting room: a student of a booked exam with `queue` on who cannot
//! be placed waits in the exam's queue, strictly first come, first served,
//! and is placed when a slot frees (invariant E).
//!
//! # Who is queued
//!
//! [`request_session`](ClusterService::request_session) is the session
//! API's allocate. For an exam that is not booked, or booked with `queue`
//! off, it is [`allocate`](ClusterService::allocate) unchanged. For a
//! booked exam with `queue` on:
//!
//! 1. a student already queued gets their position (and counts as seen:
//!    polling keeps the place);
//! 2. a session that has a dispatch is allocated as ever (its desktop is
//!    handed back: by compare-and-reserve when nobody waits, after a read
//!    of its dispatch when others do);
//! 3. while others wait, a new arrival joins the back — it is never placed
//!    ahead of them;
//! 4. otherwise the session is allocated, and a refusal for want of a slot
//!    ([`Error::NoCapacity`]) puts the student at the back of the queue
//!    instead.
//!
//! So a request for a queueing exam costs one store call more than an
//! allocation (the queue's answer) while nobody waits.
//!
//! # Promotion
//!
//! [`promote_queue`](ClusterService::promote_queue) claims the head of the
//! exam's queue in the store (one claim per exam, with a fenced token and a
//! deadline of [`ServiceConfig::queue_claim_ttl`](super::ServiceConfig::queue_claim_ttl)),
//! runs the normal allocation for that student with the exam's
//! constraints, then completes the claim — removing the entry and counting
//! it placed in one atomic step, only if the claim is still held. A refusal
//! for want of a slot gives the claim up and stops: the head stays the
//! head, so nobody behind it is placed first. A promoter that dies loses
//! its claim at the deadline; another promoter then claims the same head,
//! and its allocation returns the dispatch the first one made (invariant
//! B), so nobody is placed twice. A student who leaves while being placed
//! is told apart at completion ([`Completion::Left`](crate::store::Completion)),
//! and the promoter releases the session it just placed.
//!
//! Promotion runs on the replica that released a session
//! ([`promote_after_release`](ClusterService::promote_after_release)), and on the
//! background leader every tick ([`tend_queues`](ClusterService::tend_queues)),
//! which also catches workers that joined or recovered, prewarms that
//! finished, and removes students who stopped polling for
//! [`ServiceConfig::queue_abandon`](super::ServiceConfig::queue_abandon).

use std::time::Duration;

use super::ClusterService;
use super::allocate::Allocation;
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::{ExamId, SessionKey};
use crate::queue::{QueueEntry, QueuePosition, QueueTotals, estimate_wait};
use crate::scheduler::Constraints;
use crate::store::{Completion, Enqueued, Standing};
use crate::time::Timestamp;

/// Most students the background pass places from one exam's queue.
pub const PROMOTIONS_PER_TICK: u32 = 16;

/// The answer to a session request.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionRequest {
    /// Placed (or handed back).
    Placed(Box<Allocation>),
    /// Waiting in the exam's queue.
    Queued(QueueStanding),
}

/// A session as its student sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionState {
    /// It has a dispatch.
    Placed(Box<Dispatch>),
    /// The student waits in the queue.
    Queued(QueueStanding),
}

/// A waiting student's place and expected wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStanding {
    /// 1 for the head.
    pub position: u32,
    /// When they joined.
    pub enqueued_at: Timestamp,
    /// The estimate ([`estimate_wait`]).
    pub estimated_wait: Duration,
}

/// What ending a session did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Departure {
    /// The student was queued and left the queue.
    pub left_queue: bool,
    /// The dispatch released, if there was one.
    pub released: Option<Dispatch>,
}

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

impl ClusterService {
    /// Whether `exam` is booked with its queue on, and its constraints,
    /// from this replica's cached calendar (an exam that does not queue
    /// costs the session API no read of its own).
    async fn queueing(&self, exam: &ExamId) -> Result<Option<Constraints>> {
        let calendar = self.cached_calendar().await?;
        Ok(calendar
            .get(exam)
            .filter(|e| e.queue)
            .map(|e| e.constraints.clone()))
    }

    fn standing(&self, p: &QueuePosition) -> QueueStanding {
        QueueStanding {
            position: p.position,
            enqueued_at: p.entry.enqueued_at,
            estimated_wait: estimate_wait(
                p.position,
                &p.totals,
                self.clock.now(),
                self.config.queue_wait_per_position,
            ),
        }
    }

    /// The session API's allocate: places the session, or queues the
    /// student of a booked exam with `queue` on (see the module docs).
    pub async fn request_session(
        &self,
        key: SessionKey,
        constraints: Constraints,
    ) -> Result<SessionRequest> {
        constraints.validate()?;
        if self.queueing(&key.exam_id).await?.is_none() {
            let placed = self.allocate(key, constraints).await?;
            return Ok(SessionRequest::Placed(Box::new(placed)));
        }
        let now = self.clock.now();
        let waiting = match self
            .store
            .touch_queued(&key.exam_id, &key.user_id, now)
            .await?
        {
            Standing::Queued(p) => return Ok(SessionRequest::Queued(self.standing(&p))),
            Standing::NotQueued { waiting } => waiting,
        };
        // Nobody waits: place (compare-and-reserve hands back a session the
        // student already has). Others wait: a student with a session gets
        // it back, anyone else joins the back of the queue.
        if waiting == 0 || self.store.dispatch(&key).await?.is_some() {
            match self.allocate(key.clone(), constraints).await {
                Err(Error::NoCapacity(refusal)) if waiting == 0 => {
                    tracing::info!(session = %key, reason = %refusal, "no slot: queued");
                }
                other => return other.map(|a| SessionRequest::Placed(Box::new(a))),
            }
        }
        self.join_queue(&key).await
    }

    /// Puts the student at the back of the queue; hands back a dispatch
    /// the session got meanwhile instead (from another request of the same
    /// student).
    async fn join_queue(&self, key: &SessionKey) -> Result<SessionRequest> {
        let joined = self
            .store
            .enqueue(&key.exam_id, &key.user_id, self.clock.now())
            .await?;
        if let Enqueued::Joined(_) = &joined
            && self.store.dispatch(key).await?.is_some()
        {
            self.store.leave_queue(&key.exam_id, &key.user_id).await?;
            let placed = self.allocate(key.clone(), Constraints::default()).await?;
            return Ok(SessionRequest::Placed(Box::new(placed)));
        }
        Ok(SessionRequest::Queued(self.standing(joined.position())))
    }

    /// The session's dispatch, or its student's place in the queue
    /// (polling keeps the place); [`Error::SessionNotFound`] if neither.
    pub async fn session_state(&self, key: &SessionKey) -> Result<SessionState> {
        if let Some(d) = self.store.dispatch(key).await? {
            return Ok(SessionState::Placed(Box::new(d)));
        }
        match self
            .store
            .touch_queued(&key.exam_id, &key.user_id, self.clock.now())
            .await?
        {
            Standing::Queued(p) => Ok(SessionState::Queued(self.standing(&p))),
            Standing::NotQueued { .. } => match self.store.dispatch(key).await? {
                // Promoted between the two reads.
                Some(d) => Ok(SessionState::Placed(Box::new(d))),
                None => Err(Error::SessionNotFound(key.clone())),
            },
        }
    }

    /// Ends a session: the student leaves the queue, and a dispatch is
    /// released ([`release`](Self::release)).
    pub async fn end_session(&self, key: &SessionKey) -> Result<Departure> {
        let left_queue = self.store.leave_queue(&key.exam_id, &key.user_id).await?;
        let released = self.release(key).await?;
        Ok(Departure {
            left_queue,
            released,
        })
    }

    /// Promotes `exam`'s queue after a slot freed on this replica (a
    /// release); a failure is logged, the leader's tick retries. An exam
    /// that does not queue, as this replica's cached calendar says, costs
    /// no store call: students left in its queue (its waiting room was
    /// turned off while they waited, or this replica's calendar is a
    /// moment old) are placed by the leader's tick
    /// ([`tend_queues`](Self::tend_queues)).
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
    async fn promote_up_to(&self, exam: &ExamId, limit: u32) -> Result<u32> {
        let constraints = self.queueing(exam).await?.unwrap_or_default();
        let mut placed = 0;
        while placed < limit {
            let now = self.clock.now();
            let until = now.plus(self.config.queue_claim_ttl());
            let Some(claim) = self.store.claim_queue_head(exam, now, until).await? else {
                return Ok(placed);
            };
            let key = SessionKey::new(exam.clone(), claim.user.clone());
            // A slot freed a moment ago must be seen: rank from a fresh read
            // of the fleet, not a cached snapshot that still shows it full.
            self.invalidate_snapshot();
            match self.allocate(key.clone(), constraints.clone()).await {
                Ok(allocation) => match self
                    .store
                    .complete_queue_claim(&claim, self.clock.now())
                    .await?
                {
                    Completion::Placed => {
                        placed += 1;
                        self.emit(EventKind::QueuedSessionPlaced {
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
                    self.store.release_queue_claim(&claim).await?;
                    return Ok(placed);
                }
                Err(e) => {
                    if let Err(release) = self.store.release_queue_claim(&claim).await {
                        tracing::warn!(exam = %exam, error = %release, "could not give a queue claim up");
                    }
                    return Err(e);
                }
            }
        }
        Ok(placed)
    }

    /// The background pass: removes students who stopped polling, then
    /// promotes every exam's queue, at most [`PROMOTIONS_PER_TICK`] each
    /// (so a pass stays well inside the background lease; the next tick
    /// goes on). A failure of one exam's promotion is logged and the next
    /// exam tended.
    pub async fn tend_queues(&self) -> Result<QueueTick> {
        let mut tick = QueueTick::default();
        for exam in self.store.queued_exams().await? {
            let now = self.clock.now();
            let queue = self.store.exam_queue(&exam).await?;
            let cutoff = now.minus(self.config.queue_abandon);
            for user in queue.abandoned(now, self.config.queue_abandon) {
                if self.store.abandon_queued(&exam, &user, cutoff, now).await? {
                    tick.abandoned += 1;
                    tracing::info!(exam = %exam, user = %user, "left the queue: stopped polling");
                }
            }
            match self.promote_up_to(&exam, PROMOTIONS_PER_TICK).await {
                Ok(n) => tick.placed += n,
                Err(e) => tracing::warn!(exam = %exam, error = %e, "queue promotion failed"),
            }
        }
        Ok(tick)
    }

    /// `exam`'s waiting room: who waits, in order, and its totals.
    pub async fn exam_queue(&self, exam: &ExamId) -> Result<QueueView> {
        let queue = self.store.exam_queue(exam).await?;
        let now = self.clock.now();
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
                position: crate::queue::position_from_index(i),
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
        let queue = self.store.exam_queue(exam).await?;
        Ok(QueueFigures::of(queue.entries.len(), &queue.totals))
    }
}
