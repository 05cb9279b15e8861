//! Allocation with failover, and coalescing of duplicate requests
//! (release is in `release`).
//!
//! Asking the chosen worker to start the session, and what a call that
//! times out leaves behind, is `start`.
//!
//! # Duplicate requests coalesce
//!
//! An allocate that finds the same session being placed right now (a
//! reservation younger than the allocate timeout, made by any replica)
//! polls the store with backoff, up to
//! [`ServiceConfig::coalesce_bound`](crate::service::ServiceConfig::coalesce_bound)
//! (by default the worker-call timeout × the retry count),
//! and returns the dispatch that allocation produced — or places the
//! session itself if that allocation failed. Before answering
//! [`Error::NoCapacity`], it looks for a dispatch of the same session
//! (the last slot may have gone to this very session's other request).
//! That look is conclusive because a refusal rests only on the store's
//! word (a refused reservation, a reservation that took the last slot, a
//! fleet read), never on this replica's count of its own reservations in
//! flight: whatever reservation filled the worker was committed before
//! the refusal, so the look sees it if it is this session's. A duplicate
//! refused on the count alone would look before the other request's
//! reservation commits, find nothing and answer 503 to a student being
//! given the slot.
//! [`Error::AllocationInProgress`] is answered only when the wait runs out.
//!
//! # Reloads during a mass failure
//!
//! While a large share of workers is silent at once (reconcile's
//! mass-failure guard), a student whose dispatch is on a silent worker gets
//! that dispatch back, with [`Allocation::warning`] set, rather than a new
//! desktop: the silence is more likely the control plane's or the
//! network's fault than the worker's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Placement;
use super::allocation::{AllocateOutcome, Allocation};
use super::attempt::Attempt;
use super::existing::Existing;
use super::pacing::Permit;
use super::snapshot::Snapshot;
use super::start::Started;
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::ids::{SessionKey, WorkerId};
use crate::ledger::OpenInterruption;
use crate::scheduler::{
    Candidate, ChoiceReason, Constraints, ExamPlacement, Excluded, Exclusions, NoCapacity,
    RankIndex, RankOptions, WorkerSet,
};
use crate::store::Reservation;

/// Ranking rounds (re-reading the worker list) before giving up on a
/// request whose candidates all turned out full.
const RANK_ROUNDS: usize = 3;

/// Candidates asked of one ranking round.
const RANK_LIMIT: usize = 16;

/// Reservations tried on one candidate while each answers a dispatch of
/// the session that is then replaced or reclaimed; past it, the session is
/// treated as being allocated elsewhere.
const EXISTING_LOOKS: u32 = 3;

/// First pause of an allocate waiting for the same session's allocation.
const COALESCE_FIRST_POLL: Duration = Duration::from_millis(10);

/// Longest pause between two looks at the store while waiting.
const COALESCE_MAX_POLL: Duration = Duration::from_millis(500);

/// What one candidate came to.
#[derive(Debug)]
enum Step {
    /// The session is placed (or already was): done.
    Placed(Box<Allocation>),
    /// This worker did not take it; try the next.
    TryNext(TryNext),
    /// Stop trying, with this answer.
    Stop(Error),
}

/// Why a candidate was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TryNext {
    /// The worker left the snapshot it was ranked from.
    NotInSnapshot,
    /// The backend refused the reservation: full or not accepting as it
    /// last recorded (the snapshot was stale).
    Full,
    /// The worker failed to start the session; the reservation is undone.
    WorkerFailed,
    /// Already tried in this placement (or the failed worker of the
    /// dispatch being replaced).
    AlreadyTried,
}

impl Placement {
    /// Places `key`'s session on a worker, or returns the one it already has.
    ///
    /// Candidates are ranked; each is reserved atomically, then asked to
    /// start the session within the call timeout; on failure the
    /// reservation is undone and the next candidate tried, up to
    /// `retry_count` worker calls. The session's existing dispatch is not
    /// read beforehand: compare-and-reserve answers it, and only then is
    /// it judged (`judge_existing`):
    ///
    /// 1. A live dispatch on a reachable worker is returned, even if that
    ///    worker is draining (a reload goes back to the same desktop); so
    ///    is one on a silent worker while the mass-failure guard holds.
    /// 2. A dispatch on a failed worker is superseded in the same atomic
    ///    step as the new reservation.
    /// 3. Nothing left: [`Error::NoCapacity`], explaining the exclusions —
    ///    unless the session got a dispatch meanwhile.
    ///
    /// An allocation of the same session in flight (on any replica) is
    /// waited for, up to [`ServiceConfig::coalesce_bound`](crate::service::ServiceConfig::coalesce_bound);
    /// see the module docs.
    pub async fn allocate(&self, key: SessionKey, constraints: Constraints) -> Result<Allocation> {
        self.allocate_after(key, constraints, None).await
    }

    /// [`allocate`](Self::allocate) for a student who waited in the
    /// waiting room (`waited`, its promotion): a placement closes the wait
    /// into the ledger's entry with its confirmation.
    pub(crate) async fn allocate_after(
        &self,
        key: SessionKey,
        constraints: Constraints,
        waited: Option<OpenInterruption>,
    ) -> Result<Allocation> {
        constraints.validate()?;
        let deadline = Instant::now() + self.shared.config.coalesce_bound();
        let mut pause = COALESCE_FIRST_POLL;
        loop {
            match self
                .allocate_once(&key, &constraints, waited.as_ref())
                .await
            {
                Err(Error::AllocationInProgress(_)) => {}
                Err(Error::NoCapacity(refusal)) => match self.check_existing(&key).await? {
                    Existing::Reuse(d, warning) => return self.reuse(d, warning).await,
                    Existing::InProgress => {}
                    Existing::Replace(_) => return Err(Error::NoCapacity(refusal)),
                    Existing::None => match self.adopt_reported(&key).await? {
                        Some(d) => return self.reuse(d, None).await,
                        None => return Err(Error::NoCapacity(refusal)),
                    },
                },
                other => return other,
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::AllocationInProgress(key));
            }
            tracing::debug!(session = %key, "waiting for the same session's allocation in flight");
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(COALESCE_MAX_POLL);
        }
    }

    /// One placement, the session's existing dispatch judged only if a
    /// reservation answers it.
    async fn allocate_once(
        &self,
        key: &SessionKey,
        constraints: &Constraints,
        waited: Option<&OpenInterruption>,
    ) -> Result<Allocation> {
        self.place_closing(key.clone(), constraints, None, waited)
            .await
    }

    /// Ranks, reserves, calls, confirms — with failover. `supersede` is a
    /// dispatch on a failed worker this placement replaces, when known
    /// beforehand; one a reservation answers is judged then. Each ranking
    /// round reads the worker list again (fresh after the first) and tries
    /// its candidates in order, one [`try_candidate`](Self::try_candidate)
    /// step each. The exam's placement hints come from this replica's
    /// cache ([`placement_hints`](Self::placement_hints)), taken for each
    /// ranking and let go before the awaits that follow it, so that this
    /// replica's placements move them in place
    /// ([`note_placed`](Self::note_placed)) instead of copying them while
    /// other allocations hold them.
    ///
    /// A refusal rests only on what the store said. When the last round
    /// skipped workers that only this replica's own reservations were
    /// expected to fill (see `snapshot`), the placement waits for the
    /// answers of the reservations in flight, ranks once more skipping only
    /// the workers the store answered full, and tries what is left —
    /// compare-and-reserve answers full, the session's dispatch, or a slot.
    /// Only a refusal the store backs makes the read of the session's own
    /// dispatch that follows it (in [`allocate`](Self::allocate)) see a
    /// reservation of the session made by another request.
    pub(crate) async fn place(
        &self,
        key: SessionKey,
        constraints: &Constraints,
        supersede: Option<Dispatch>,
    ) -> Result<Allocation> {
        self.place_closing(key, constraints, supersede, None).await
    }

    /// [`place`](Self::place), closing the session's open interruptions
    /// (and `waited`) into the ledger with the confirmation.
    async fn place_closing(
        &self,
        key: SessionKey,
        constraints: &Constraints,
        supersede: Option<Dispatch>,
        waited: Option<&OpenInterruption>,
    ) -> Result<Allocation> {
        let exam = key.exam_id.clone();
        let left_out = self.excluded_by_rehearsal(&key.exam_id).await?;
        let mut attempt = Attempt::new(key, self.shared.clock.now());
        attempt.waited = waited.cloned();
        if let Some(old) = &supersede {
            attempt.replace(old, self.interruption_of(old).await?);
            attempt.moving = true;
        }
        // Whether the last round skipped workers on this replica's count.
        let mut estimated = false;
        for round in 0..RANK_ROUNDS {
            let snapshot = self.ranking_snapshot(round > 0).await?;
            let placement = self.placement_hints(&exam).await?;
            let candidates = self.rank_round(
                &snapshot.index,
                &[&snapshot.full, &snapshot.filling],
                left_out.as_ref(),
                constraints,
                &placement,
                round,
                &mut attempt,
            );
            drop(placement);
            // Only the index is kept across the worker calls: the sets are
            // shared with the cache, which copies one it changes while a
            // ranking holds it.
            let Snapshot {
                index,
                full,
                filling,
            } = snapshot;
            estimated = !filling.is_empty();
            drop((full, filling));
            if let Some(placed) = self
                .try_candidates(&index, &candidates, &mut attempt)
                .await?
            {
                return Ok(placed);
            }
            // The first round may rank a reused snapshot, full where slots
            // were freed since: read the fleet again before refusing.
            if candidates.is_empty() && round > 0 {
                break;
            }
        }
        if estimated {
            // The refusal would rest on this replica's own count: wait for
            // the answers of its reservations in flight, then rank on what
            // the store said (trying any worker it did not say is full).
            self.reservations_settled().await;
            let snapshot = self.ranking_snapshot(false).await?;
            let placement = self.placement_hints(&exam).await?;
            let candidates = self.rank_round(
                &snapshot.index,
                &[&snapshot.full],
                left_out.as_ref(),
                constraints,
                &placement,
                RANK_ROUNDS,
                &mut attempt,
            );
            drop(placement);
            if let Some(placed) = self
                .try_candidates(&snapshot.index, &candidates, &mut attempt)
                .await?
            {
                return Ok(placed);
            }
        }
        Err(self.no_capacity(&attempt))
    }

    /// Tries `candidates` in order: the allocation once one takes the
    /// session, `None` when none did, or the error that stops trying.
    async fn try_candidates(
        &self,
        index: &RankIndex,
        candidates: &[Candidate],
        attempt: &mut Attempt,
    ) -> Result<Option<Allocation>> {
        for candidate in candidates {
            match self.try_candidate(index, candidate, attempt).await? {
                Step::Placed(allocation) => return Ok(Some(*allocation)),
                Step::TryNext(why) => {
                    tracing::debug!(session = %attempt.key, worker = %candidate.worker, ?why, "trying the next worker");
                }
                Step::Stop(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// Ranks one round's candidates, excluding the workers already tried,
    /// those in `known_full` (found or expected full since the snapshot
    /// was read) and those `left_out` by the exam's rehearsal. The sets
    /// are read as they are; they are merged into one only to explain a
    /// round that runs short of candidates.
    #[allow(clippy::too_many_arguments)]
    fn rank_round(
        &self,
        index: &RankIndex,
        known_full: &[&Arc<WorkerSet>],
        left_out: &HashSet<WorkerId>,
        constraints: &Constraints,
        placement: &ExamPlacement,
        round: usize,
        attempt: &mut Attempt,
    ) -> Vec<Candidate> {
        let mut sets: Vec<&dyn Excluded> = Vec::with_capacity(known_full.len() + 2);
        sets.push(&attempt.tried);
        sets.extend(known_full.iter().map(|set| set.as_ref() as &dyn Excluded));
        sets.push(left_out);
        let options = RankOptions {
            policy: self.shared.config.scheduling,
            exam_affinity: self.shared.config.exam_affinity,
            herd_width: self.shared.config.herd_width,
            seed: self.shared.request_seed((&attempt.key, round)),
            limit: RANK_LIMIT,
        };
        let ranking = index.rank(constraints, placement, sets.as_slice(), &options);
        attempt.workers_seen = index.views().len();
        // Fewer candidates than asked for: the eligible workers may run out
        // in this round, so keep why the others are not candidates for the
        // refusal (a whole-fleet count, not paid on every decision).
        attempt.exclusions = if ranking.candidates.len() < RANK_LIMIT {
            let mut excluded = attempt.tried.clone();
            for set in known_full {
                excluded.extend(set.iter().cloned());
            }
            excluded.extend(left_out.iter().cloned());
            index.account(constraints, &excluded).excluded
        } else {
            Exclusions::default()
        };
        ranking.candidates
    }

    /// Reserves the session on `candidate` and asks the worker to start it.
    async fn try_candidate(
        &self,
        index: &RankIndex,
        candidate: &Candidate,
        attempt: &mut Attempt,
    ) -> Result<Step> {
        if !attempt.tried.insert(candidate.worker.clone()) {
            return Ok(Step::TryNext(TryNext::AlreadyTried));
        }
        let Some(view) = index.get(&candidate.worker) else {
            return Ok(Step::TryNext(TryNext::NotInSnapshot));
        };
        let mut looks = 0;
        let (reserved, granted) = loop {
            looks += 1;
            if looks > EXISTING_LOOKS {
                return Ok(Step::Stop(Error::AllocationInProgress(attempt.key.clone())));
            }
            let now = self.shared.clock.now();
            let mut request = attempt.request(view, now);
            request.permit = self.permit_request(&view.record, now).await?;
            let answer = {
                let _in_flight = self.note_reserving(&candidate.worker);
                let answer = self.shared.store.reserve(&request).await?;
                // Noted before the reservation counts as answered.
                match &answer {
                    Reservation::Full | Reservation::NotAccepting => {
                        self.note_full(&candidate.worker);
                    }
                    Reservation::Reserved { slots_left, .. } => {
                        self.note_slots_left(&candidate.worker, *slots_left);
                    }
                    Reservation::Existing(_) | Reservation::Ended => {}
                }
                answer
            };
            match answer {
                Reservation::Existing(d) => {
                    if let Some(step) = self.on_existing(d, &candidate.worker, attempt).await? {
                        return Ok(step);
                    }
                }
                Reservation::Full | Reservation::NotAccepting => {
                    attempt.contention_retries += 1;
                    return Ok(Step::TryNext(TryNext::Full));
                }
                // The dispatch to replace was released meanwhile: a move
                // stops there; the student's own request reserves afresh.
                Reservation::Ended if attempt.moving => {
                    return Ok(Step::Stop(Error::SessionNotFound(attempt.key.clone())));
                }
                Reservation::Ended => attempt.supersede = None,
                Reservation::Reserved {
                    dispatch,
                    superseded,
                    permit,
                    ..
                } => {
                    if superseded.is_some() {
                        attempt.supersede = None;
                    }
                    let granted = permit.map(|n| Permit::with_reservation(&dispatch, n));
                    break (dispatch, granted);
                }
            }
        };
        if attempt.open.is_none() {
            let (open, not_before) = self
                .open_interruptions(&attempt.key, attempt.began, attempt.waited.as_ref())
                .await?;
            (attempt.open, attempt.not_before) = (Some(open), not_before);
        }
        let story = attempt.story(self.shared.config.slow_start);
        let active = match self
            .start_on_worker(view, &reserved, granted, &story)
            .await?
        {
            Started::Active(active) => *active,
            Started::Failed { may_run } => {
                attempt.failed_calls += 1;
                attempt.failed.push(view.id().clone());
                if may_run {
                    attempt.may_run.push(view.id().clone());
                }
                if attempt.failed_calls >= self.shared.config.retry_count {
                    return Ok(Step::Stop(self.no_capacity(attempt)));
                }
                return Ok(Step::TryNext(TryNext::WorkerFailed));
            }
            Started::Withdrawn => {
                return Ok(Step::Stop(Error::SessionNotFound(attempt.key.clone())));
            }
        };
        Ok(Step::Placed(Box::new(
            self.placed(active, candidate.reason, attempt).await,
        )))
    }

    /// What a reservation on `worker` that answered the session's dispatch
    /// `d` comes to: a step, or `None` to reserve on `worker` again (the
    /// dispatch was a dead allocator's reservation, now reclaimed, or is
    /// on a failed worker and the next reservation supersedes it).
    async fn on_existing(
        &self,
        d: Dispatch,
        worker: &WorkerId,
        attempt: &mut Attempt,
    ) -> Result<Option<Step>> {
        Ok(match self.judge_existing(d).await? {
            Existing::Reuse(d, warning) => {
                Some(Step::Placed(Box::new(self.reuse(d, warning).await?)))
            }
            Existing::InProgress => {
                Some(Step::Stop(Error::AllocationInProgress(attempt.key.clone())))
            }
            Existing::Replace(old) => {
                attempt.replace(&old, self.interruption_of(&old).await?);
                (&old.worker == worker).then_some(Step::TryNext(TryNext::AlreadyTried))
            }
            Existing::None => None,
        })
    }

    /// The allocation of a session now active on a worker; a re-dispatch
    /// also emits its event (written with the confirmation, see
    /// `webhooks`) and tells the failed worker to let go, as are the
    /// workers of this placement whose call failed after they may have
    /// started it.
    async fn placed(
        &self,
        active: Dispatch,
        reason: ChoiceReason,
        attempt: &Attempt,
    ) -> Allocation {
        let key = &attempt.key;
        for worker in attempt.may_run.iter().filter(|w| **w != active.worker) {
            self.release_copy(worker, key);
        }
        let outcome = match attempt.replaced.as_ref().map(|i| &i.from) {
            Some(from) => {
                self.shared.migrated(key, from, &active);
                self.release_copy(from, key);
                AllocateOutcome::Redispatched {
                    reason,
                    from: from.clone(),
                }
            }
            None => AllocateOutcome::Placed { reason },
        };
        self.close_open(key, attempt.open.as_deref().unwrap_or_default())
            .await;
        tracing::debug!(session = %key, worker = %active.worker, %reason, "placed");
        self.note_placed(&key.exam_id, &active.worker);
        attempt.allocation(active, outcome)
    }

    fn no_capacity(&self, attempt: &Attempt) -> Error {
        let err = NoCapacity {
            exam_id: attempt.key.exam_id.clone(),
            workers: attempt.workers_seen,
            excluded: attempt.exclusions.clone(),
            failed_calls: attempt.failed_calls,
        };
        tracing::warn!(session = %attempt.key, "{err}");
        err.into()
    }
}
