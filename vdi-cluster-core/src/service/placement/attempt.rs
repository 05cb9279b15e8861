//! One placement in progress: what it tried, what it went through for
//! the ledger, and the reservation it asks for next.

use std::time::Duration;

use super::allocation::{AllocateOutcome, Allocation};
use crate::dispatch::Dispatch;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::ledger::{Interruption, OpenInterruption, PlacementStory};
use crate::scheduler::{Exclusions, WorkerSet};
use crate::store::ReserveRequest;
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// One placement in progress, across candidates and ranking rounds.
#[derive(Debug)]
pub(super) struct Attempt {
    pub(super) key: SessionKey,
    /// The desktop being replaced: its failed worker, why and since when
    /// the student has been without it (the ledger's entry).
    pub(super) replaced: Option<Interruption>,
    /// When the placement began, for the ledger.
    pub(super) began: Timestamp,
    /// Workers whose start call failed, in order, for the ledger.
    pub(super) failed: Vec<WorkerId>,
    /// A wait in the waiting room this placement ends (its promotion).
    pub(super) waited: Option<OpenInterruption>,
    /// The interruptions the student is in, read once the placement has
    /// a reservation, closed by its confirmation (the ledger's entries).
    pub(super) open: Option<Vec<OpenInterruption>>,
    /// The start of the session's booked exam, if any, for the ledger.
    pub(super) not_before: Option<Timestamp>,
    /// The dispatch to supersede, until a reservation has superseded it.
    pub(super) supersede: Option<DispatchId>,
    /// A move planned from a read of the session's dispatch (a re-dispatch
    /// by reconcile), not a student's own request: if the session ends
    /// meanwhile, the move stops instead of placing it again.
    pub(super) moving: bool,
    pub(super) tried: WorkerSet,
    /// Workers whose call failed after it may have started the session:
    /// told to release their copy once it runs elsewhere.
    pub(super) may_run: Vec<WorkerId>,
    pub(super) failed_calls: u32,
    pub(super) contention_retries: u32,
    pub(super) workers_seen: usize,
    pub(super) exclusions: Exclusions,
}

impl Attempt {
    pub(super) fn new(key: SessionKey, began: Timestamp) -> Self {
        Self {
            key,
            tried: WorkerSet::default(),
            may_run: Vec::new(),
            replaced: None,
            began,
            failed: Vec::new(),
            waited: None,
            open: None,
            not_before: None,
            supersede: None,
            moving: false,
            failed_calls: 0,
            contention_retries: 0,
            workers_seen: 0,
            exclusions: Exclusions::default(),
        }
    }

    /// From now on the placement replaces `old`, whose worker failed: its
    /// worker is no candidate, and the next reservation supersedes it.
    pub(super) fn replace(&mut self, old: &Dispatch, interruption: Interruption) {
        self.tried.insert(old.worker.clone());
        self.replaced = Some(interruption);
        self.supersede = Some(old.id);
    }

    /// What the placement went through so far, for the ledger.
    pub(super) fn story(&self, slow_start: Duration) -> PlacementStory<'_> {
        PlacementStory {
            replaced: self.replaced.as_ref(),
            began: self.began,
            failed: &self.failed,
            slow_start,
            open: self.open.as_deref().unwrap_or_default(),
            not_before: self.not_before,
        }
    }

    /// The reservation of the session on `view`'s worker at `now` (no
    /// start permit asked for with it).
    pub(super) fn request(&self, view: &WorkerView, now: Timestamp) -> ReserveRequest {
        ReserveRequest {
            dispatch: Dispatch::reserve(
                self.key.clone(),
                view.id().clone(),
                now,
                view.record.boot_id().map(str::to_owned),
                view.record.stamp.as_ref().and_then(|s| s.seq),
            ),
            supersede: self.supersede,
            permit: None,
        }
    }

    pub(super) fn allocation(&self, dispatch: Dispatch, outcome: AllocateOutcome) -> Allocation {
        Allocation {
            dispatch,
            outcome,
            failed_calls: self.failed_calls,
            contention_retries: self.contention_retries,
            warning: None,
        }
    }
}
