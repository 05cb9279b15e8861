//! The waiting room: a student of a booked exam with `queue` on who cannot
//! be placed waits in the exam's queue, strictly first come, first served,
//! and is placed when a slot frees (invariant E).
//!
//! # Who is queued
//!
//! [`request_session`](crate::service::Placement::request_session) is the session
//! API's allocate. For an exam that is not booked, or booked with `queue`
//! off, it is [`allocate`](crate::service::Placement::allocate) unchanged. For a
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
//! A student of a booked exam without a waiting room who is refused for
//! want of a slot has a `refused` interruption opened (the first refusal
//! kept), which the placement that seats them writes to the ledger.
//!
//! Promotion (placing the head when a slot frees) is `promote`; the
//! waiting room's tending and views are the exams wing's.

use std::time::Duration;

use super::Placement;
use super::allocation::Allocation;
use crate::dispatch::{Dispatch, DispatchState};
use crate::error::{Error, Result};
use crate::ids::{ExamId, SessionKey, WorkerId};
use crate::scheduler::Constraints;
use crate::store::{Enqueued, Standing};
use crate::time::Timestamp;
use crate::waiting_room::{QueuePosition, estimate_wait};

/// The answer to a session request.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionRequest {
    /// Placed (or handed back).
    Placed(Box<Allocation>),
    /// Waiting in the exam's queue.
    Queued(QueueStanding),
    /// Reserved on a worker whose start permits are all taken: the desktop
    /// starts after the answer (paced starts).
    Starting(Starting),
}

/// A session as its student sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionState {
    /// It has a dispatch.
    Placed(Box<Dispatch>),
    /// The student waits in the queue.
    Queued(QueueStanding),
    /// Its desktop is being started (paced starts: a reservation not yet
    /// confirmed).
    Starting(Starting),
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

impl Placement {
    /// Whether `exam` is booked with its queue on, and its constraints,
    /// from this replica's cached calendar (an exam that does not queue
    /// costs the session API no read of its own).
    pub(crate) async fn queueing(&self, exam: &ExamId) -> Result<Option<Constraints>> {
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
                self.shared.clock.now(),
                self.shared.config.queue_wait_per_position,
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
            let placed = self.allocate(key.clone(), constraints).await;
            if let Err(Error::NoCapacity(_)) = &placed {
                self.note_refusal(&key).await;
            }
            return Ok(SessionRequest::Placed(Box::new(placed?)));
        }
        let now = self.shared.clock.now();
        let waiting = match self
            .shared
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
        if waiting == 0 || self.shared.store.dispatch(&key).await?.is_some() {
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
            .shared
            .store
            .enqueue(&key.exam_id, &key.user_id, self.shared.clock.now())
            .await?;
        if let Enqueued::Joined(_) = &joined
            && self.shared.store.dispatch(key).await?.is_some()
        {
            self.shared
                .store
                .leave_queue(&key.exam_id, &key.user_id)
                .await?;
            let placed = self.allocate(key.clone(), Constraints::default()).await?;
            return Ok(SessionRequest::Placed(Box::new(placed)));
        }
        Ok(SessionRequest::Queued(self.standing(joined.position())))
    }

    /// The session's dispatch (with paced starts, a reservation as
    /// [`SessionState::Starting`]), or its student's place in the queue
    /// (polling keeps the place); [`Error::SessionNotFound`] if neither.
    pub async fn session_state(&self, key: &SessionKey) -> Result<SessionState> {
        if let Some(d) = self.shared.store.dispatch(key).await? {
            if self.shared.config.pacing.enabled && d.state == DispatchState::Reserved {
                return Ok(SessionState::Starting(self.starting(&d).await?));
            }
            return Ok(SessionState::Placed(Box::new(d)));
        }
        match self
            .shared
            .store
            .touch_queued(&key.exam_id, &key.user_id, self.shared.clock.now())
            .await?
        {
            Standing::Queued(p) => Ok(SessionState::Queued(self.standing(&p))),
            Standing::NotQueued { .. } => match self.shared.store.dispatch(key).await? {
                // Promoted between the two reads.
                Some(d) => Ok(SessionState::Placed(Box::new(d))),
                None => Err(Error::SessionNotFound(key.clone())),
            },
        }
    }

    /// Ends a session: the student leaves the queue, and a dispatch is
    /// released ([`release`](Self::release)).
    ///
    /// A student who leaves the queue while a promoter holds the claim on
    /// them may be placed after this release looked: the promoter learns
    /// that they left and undoes it, unless it died or lost its claim
    /// first. So the departure waits until no claim names the student (at
    /// most the claim's deadline) and releases what the promotion placed.
    pub async fn end_session(&self, key: &SessionKey) -> Result<Departure> {
        let left_queue = self
            .shared
            .store
            .leave_queue(&key.exam_id, &key.user_id)
            .await?;
        let mut released = self.release(key).await?;
        if left_queue && self.claim_outlived(key).await? {
            released = self.release(key).await?.or(released);
        }
        Ok(Departure {
            left_queue,
            released,
        })
    }

    /// Waits while an unexpired claim on the head of `key`'s exam names its
    /// student; whether a claim named them. Bounded by the claim's deadline, and by
    /// [`queue_claim_ttl`](crate::service::ServiceConfig::queue_claim_ttl)
    /// of wall time whatever the clock says.
    async fn claim_outlived(&self, key: &SessionKey) -> Result<bool> {
        let bound = tokio::time::Instant::now() + self.shared.config.queue_claim_ttl();
        let mut claimed = false;
        loop {
            let queue = self.shared.store.exam_queue(&key.exam_id).await?;
            let Some(claim) = queue.claim.filter(|c| c.user == key.user_id) else {
                return Ok(claimed);
            };
            claimed = true;
            // A lapsed claim's promoter is gone (or no longer writes).
            if self.shared.clock.now() > claim.until || tokio::time::Instant::now() >= bound {
                return Ok(true);
            }
            tokio::time::sleep(CLAIM_POLL).await;
        }
    }
}

/// How often a departing student's end looks whether the promoter placing
/// them is done.
const CLAIM_POLL: Duration = Duration::from_millis(50);

/// A session whose desktop is being started (or waits to start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starting {
    /// The worker it is reserved on.
    pub worker: WorkerId,
    /// Its place in the worker's start queue (0 = next); `None` once it
    /// holds a permit (or between the reservation and asking for one).
    pub position: Option<u32>,
    /// When the desktop should be ready, from now.
    pub estimated_ready: Duration,
    /// When it was reserved.
    pub since: Timestamp,
}
