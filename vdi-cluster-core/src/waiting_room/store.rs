//! [`WaitingRoom`]: the per-exam queue of students who could not be placed
//! (the waiting room), held in the backend so every replica sees one order.
//!
//! The pure parts (entries, positions, the wait estimate, who abandoned)
//! are in [`crate::waiting_room`]; when to promote is decided in the
//! service's placement and exams wings. The store keeps the order and performs the atomic
//! steps.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles sharing one
//! storage:
//!
//! * **One entry per student, in arrival order.**
//!   [`enqueue`](WaitingRoom::enqueue) appends the student at the back of
//!   the exam's queue unless already queued, in which case it only records
//!   that the student was seen (`last_seen`) and answers the current
//!   position: a repeated request never makes a second entry and never
//!   moves anyone. Order is the order in which enqueues took effect.
//! * **Positions are 1-based ranks** in that order, counted at the instant
//!   of the read.
//! * **One claim per exam, only on the head.**
//!   [`claim_queue_head`](WaitingRoom::claim_queue_head) hands out the
//!   first entry with a fresh token (unique across the storage, increasing)
//!   and a deadline, as one atomic step, and only when the exam has no
//!   unexpired claim: two promoters never hold the same exam's head at
//!   once, and a promoter that dies loses its claim at the deadline.
//! * **Completion is fenced by the token.**
//!   [`complete_queue_claim`](WaitingRoom::complete_queue_claim) acts only
//!   if the claim it names is still the exam's claim (same user and token,
//!   whatever the deadline says), and clears it: the entry is removed and
//!   counted placed in the same atomic step ([`Completion::Placed`]), or,
//!   if the student left meanwhile, nothing else is written
//!   ([`Completion::Left`]: the promoter undoes its placement). A
//!   promotion is recorded at most once.
//!   [`release_queue_claim`](WaitingRoom::release_queue_claim) clears the
//!   claim under the same check and leaves the entry where it is.
//! * **Leaving and abandoning remove exactly one entry.**
//!   [`leave_queue`](WaitingRoom::leave_queue) removes the student at once
//!   (a claim on them stays, for its promoter to learn that they left);
//!   [`abandon_queued`](WaitingRoom::abandon_queued) removes them only if
//!   they were last seen before the cutoff and hold no unexpired claim, and
//!   counts the abandon, as one atomic step.
//! * **Figures change with the entries.** `placed` and `abandoned` totals
//!   move in the same step as the removal they count; they outlive the
//!   queue (an emptied queue keeps its totals).
//!
//! Together these give **invariant E** (see the crate docs): nobody is
//! promoted twice, nobody overtakes a student queued earlier for the same
//! exam, nobody is lost.

use std::fmt::Debug;

use async_trait::async_trait;

use super::{ExamQueue, QueueClaim, QueuePosition};
use crate::error::Result;
use crate::ids::{ExamId, UserId};
use crate::time::Timestamp;

/// Answer of [`WaitingRoom::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The student joined the back of the queue.
    Joined(QueuePosition),
    /// The student was already queued; `last_seen` was refreshed.
    Already(QueuePosition),
}

impl Enqueued {
    /// The position, either way.
    pub fn position(&self) -> &QueuePosition {
        match self {
            Self::Joined(p) | Self::Already(p) => p,
        }
    }
}

/// Answer of [`WaitingRoom::complete_queue_claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The claim was held: the student is out of the queue, counted placed.
    Placed,
    /// The claim was held but the student had left the queue; the claim is
    /// cleared and nothing counted.
    Left,
    /// The claim is no longer the exam's claim; nothing was written.
    Lost,
}

/// Answer of [`WaitingRoom::touch_queued`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The student is queued; `last_seen` was refreshed.
    Queued(QueuePosition),
    /// The student is not queued.
    NotQueued {
        /// How many are.
        waiting: u32,
    },
}

/// Storage of the exams' waiting rooms. See the module's contract.
#[async_trait]
pub trait WaitingRoom: Debug + Send + Sync + 'static {
    /// Appends `user` to `exam`'s queue at `now`, or, if already queued,
    /// records `now` as their `last_seen`; answers their position.
    async fn enqueue(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Enqueued>;

    /// `user`'s position in `exam`'s queue, recording `now` as their
    /// `last_seen`; if they are not queued, how many are.
    async fn touch_queued(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Standing>;

    /// The whole queue in order, its claim and its totals, as one view.
    async fn exam_queue(&self, exam: &ExamId) -> Result<ExamQueue>;

    /// Removes `user` from `exam`'s queue (a claim on them stays until its
    /// promoter completes it); `false` if they were not queued.
    async fn leave_queue(&self, exam: &ExamId, user: &UserId) -> Result<bool>;

    /// Claims the head of `exam`'s queue until `until`, if the queue is not
    /// empty and no claim expiring after `now` is held.
    async fn claim_queue_head(
        &self,
        exam: &ExamId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<QueueClaim>>;

    /// If `claim` is still the exam's claim, clears it and removes the
    /// claimed entry, counting it placed at `now`; see [`Completion`].
    async fn complete_queue_claim(&self, claim: &QueueClaim, now: Timestamp) -> Result<Completion>;

    /// Gives `claim` up, leaving the entry at the head; nothing if the
    /// claim is no longer held.
    async fn release_queue_claim(&self, claim: &QueueClaim) -> Result<()>;

    /// Removes `user` and counts an abandon if they were last seen before
    /// `seen_before` and hold no claim expiring after `now` (a lapsed claim
    /// stays, as for a leave).
    async fn abandon_queued(
        &self,
        exam: &ExamId,
        user: &UserId,
        seen_before: Timestamp,
        now: Timestamp,
    ) -> Result<bool>;

    /// Exams whose queue is not empty, in any order.
    async fn queued_exams(&self) -> Result<Vec<ExamId>>;
}
