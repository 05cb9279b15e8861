//! Allocation with failover, and release.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::ClusterService;
use crate::client::WorkerCallError;
use crate::dispatch::{Dispatch, DispatchState, lost_to_restart};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::scheduler::{
    Candidate, ChoiceReason, Constraints, ExamPlacement, Exclusions, NoCapacity, RankIndex,
    RankOptions,
};
use crate::store::{Reservation, ReserveRequest};
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// Ranking rounds (re-reading the worker list) before giving up on a
/// request whose candidates all turned out full.
const RANK_ROUNDS: usize = 3;

/// How an allocation was satisfied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum AllocateOutcome {
    /// The session already had a live dispatch; it is returned unchanged.
    Existing,
    /// A new dispatch was placed.
    Placed {
        /// Why this worker.
        reason: ChoiceReason,
    },
    /// The session's previous worker failed; it was placed anew and the old
    /// dispatch superseded.
    Redispatched {
        /// Why this worker.
        reason: ChoiceReason,
        /// The failed worker.
        from: WorkerId,
    },
}

/// The result of [`ClusterService::allocate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// The live dispatch.
    pub dispatch: Dispatch,
    /// How it came about.
    pub outcome: AllocateOutcome,
    /// Worker calls that failed before this one succeeded.
    pub failed_calls: u32,
    /// Reservations refused because the snapshot was stale (contention).
    pub contention_retries: u32,
}

/// Is the existing dispatch still good to hand back?
enum Existing {
    Reuse(Dispatch),
    Replace(Dispatch),
    None,
}

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
}

/// One placement in progress, across candidates and ranking rounds.
#[derive(Debug)]
struct Attempt {
    key: SessionKey,
    /// The failed worker of the dispatch being replaced.
    replaced_from: Option<WorkerId>,
    /// The dispatch to supersede, until a reservation has superseded it.
    supersede: Option<DispatchId>,
    tried: HashSet<WorkerId>,
    failed_calls: u32,
    contention_retries: u32,
    workers_seen: usize,
    exclusions: Exclusions,
}

impl Attempt {
    fn new(key: SessionKey, supersede: Option<&Dispatch>) -> Self {
        let replaced_from = supersede.map(|d| d.worker.clone());
        Self {
            key,
            tried: replaced_from.iter().cloned().collect(),
            replaced_from,
            supersede: supersede.map(|d| d.id),
            failed_calls: 0,
            contention_retries: 0,
            workers_seen: 0,
            exclusions: Exclusions::default(),
        }
    }

    /// The reservation of the session on `view`'s worker at `now`.
    fn request(&self, view: &WorkerView, now: Timestamp) -> ReserveRequest {
        ReserveRequest {
            dispatch: Dispatch::reserve(
                self.key.clone(),
                view.id().clone(),
                now,
                view.record.boot_id().map(str::to_owned),
                view.record.stamp.as_ref().and_then(|s| s.seq),
            ),
            supersede: self.supersede,
        }
    }

    fn allocation(&self, dispatch: Dispatch, outcome: AllocateOutcome) -> Allocation {
        Allocation {
            dispatch,
            outcome,
            failed_calls: self.failed_calls,
            contention_retries: self.contention_retries,
        }
    }
}

impl ClusterService {
    /// Places `key`'s session on a worker, or returns the one it already has.
    ///
    /// 1. A live dispatch on a reachable worker is returned, even if that
    ///    worker is draining (a reload goes back to the same desktop).
    /// 2. Otherwise candidates are ranked; each is reserved atomically, then
    ///    asked to start the session within the call timeout; on failure the
    ///    reservation is undone and the next candidate tried, up to
    ///    `retry_count` worker calls. A dispatch on a failed worker is
    ///    superseded in the same atomic step as the new reservation.
    /// 3. Nothing left: [`Error::NoCapacity`], explaining the exclusions.
    pub async fn allocate(&self, key: SessionKey, constraints: Constraints) -> Result<Allocation> {
        constraints.validate()?;
        let supersede = match self.check_existing(&key).await? {
            Existing::Reuse(dispatch) => {
                return Ok(Allocation {
                    dispatch,
                    outcome: AllocateOutcome::Existing,
                    failed_calls: 0,
                    contention_retries: 0,
                });
            }
            Existing::Replace(old) => Some(old),
            Existing::None => None,
        };
        self.place(key, &constraints, supersede).await
    }

    async fn check_existing(&self, key: &SessionKey) -> Result<Existing> {
        let Some(d) = self.store.dispatch(key).await? else {
            return Ok(Existing::None);
        };
        let now = self.clock.now();
        match d.state {
            DispatchState::Reserved => {
                if now.since(d.reserved_at) < self.config.allocate_timeout {
                    return Err(Error::AllocationInProgress(key.clone()));
                }
                // A reservation whose allocator died: reclaim it now.
                self.store.undo(key, d.id).await?;
                Ok(Existing::None)
            }
            DispatchState::Orphaned => Ok(Existing::Replace(d)),
            DispatchState::Active => {
                let alive = match self.store.worker(&d.worker).await? {
                    None => false,
                    Some(snapshot) => {
                        let view = WorkerView::new(snapshot, now, &self.health_config());
                        view.availability.is_reachable()
                            && view.record.policy.is_enabled()
                            && !lost_to_restart(&d, &view.record)
                    }
                };
                Ok(if alive {
                    Existing::Reuse(d)
                } else {
                    Existing::Replace(d)
                })
            }
        }
    }

    /// Ranks, reserves, calls, confirms — with failover. `supersede` is the
    /// dispatch on a failed worker this placement replaces. Each ranking
    /// round reads the worker list again (fresh after the first) and tries
    /// its candidates in order, one [`try_candidate`](Self::try_candidate)
    /// step each.
    pub(super) async fn place(
        &self,
        key: SessionKey,
        constraints: &Constraints,
        supersede: Option<Dispatch>,
    ) -> Result<Allocation> {
        let placement = self.store.placement(&key.exam_id, self.clock.now()).await?;
        let mut attempt = Attempt::new(key, supersede.as_ref());
        for round in 0..RANK_ROUNDS {
            let (index, known_full) = self.ranking_snapshot(round > 0).await?;
            let candidates = self.rank_round(
                &index,
                known_full,
                constraints,
                &placement,
                round,
                &mut attempt,
            );
            if candidates.is_empty() {
                break;
            }
            for candidate in &candidates {
                match self.try_candidate(&index, candidate, &mut attempt).await? {
                    Step::Placed(allocation) => return Ok(*allocation),
                    Step::TryNext(why) => {
                        tracing::debug!(session = %attempt.key, worker = %candidate.worker, ?why, "trying the next worker");
                    }
                    Step::Stop(error) => return Err(error),
                }
            }
        }
        Err(self.no_capacity(&attempt))
    }

    /// Ranks one round's candidates, excluding the workers already tried
    /// and those found full since the snapshot was read.
    fn rank_round(
        &self,
        index: &RankIndex,
        known_full: HashSet<WorkerId>,
        constraints: &Constraints,
        placement: &ExamPlacement,
        round: usize,
        attempt: &mut Attempt,
    ) -> Vec<Candidate> {
        let mut excluded = attempt.tried.clone();
        excluded.extend(known_full);
        let options = RankOptions {
            policy: self.config.scheduling,
            exam_affinity: self.config.exam_affinity,
            herd_width: self.config.herd_width,
            seed: self.request_seed((&attempt.key, round)),
            limit: 16,
        };
        let ranking = index.rank(constraints, placement, &excluded, &options);
        attempt.workers_seen = index.views().len();
        attempt.exclusions = ranking.excluded;
        ranking.candidates
    }

    /// Reserves the session on `candidate` and asks the worker to start it.
    async fn try_candidate(
        &self,
        index: &RankIndex,
        candidate: &Candidate,
        attempt: &mut Attempt,
    ) -> Result<Step> {
        attempt.tried.insert(candidate.worker.clone());
        let Some(view) = index.get(&candidate.worker) else {
            return Ok(Step::TryNext(TryNext::NotInSnapshot));
        };
        let request = attempt.request(view, self.clock.now());
        let reserved = match self.store.reserve(&request).await? {
            Reservation::Existing(d) if d.state == DispatchState::Reserved => {
                return Ok(Step::Stop(Error::AllocationInProgress(attempt.key.clone())));
            }
            Reservation::Existing(d) => {
                let existing = attempt.allocation(d, AllocateOutcome::Existing);
                return Ok(Step::Placed(Box::new(existing)));
            }
            Reservation::Full | Reservation::NotAccepting => {
                attempt.contention_retries += 1;
                self.note_full(&candidate.worker);
                return Ok(Step::TryNext(TryNext::Full));
            }
            Reservation::Reserved {
                dispatch,
                superseded,
            } => {
                if superseded.is_some() {
                    attempt.supersede = None;
                }
                dispatch
            }
        };
        let Some(active) = self.start_on_worker(view, &reserved).await? else {
            attempt.failed_calls += 1;
            if attempt.failed_calls >= self.config.retry_count {
                return Ok(Step::Stop(self.no_capacity(attempt)));
            }
            return Ok(Step::TryNext(TryNext::WorkerFailed));
        };
        Ok(Step::Placed(Box::new(self.placed(
            active,
            candidate.reason,
            attempt,
        ))))
    }

    /// The allocation of a session now active on a worker; a re-dispatch
    /// also emits its event and tells the failed worker to let go.
    fn placed(&self, active: Dispatch, reason: ChoiceReason, attempt: &Attempt) -> Allocation {
        let key = &attempt.key;
        let outcome = match &attempt.replaced_from {
            Some(from) => {
                self.emit(EventKind::SessionMigrated {
                    session: key.clone(),
                    from: from.clone(),
                    to: active.worker.clone(),
                });
                self.release_on_failed_worker(from, key);
                AllocateOutcome::Redispatched {
                    reason,
                    from: from.clone(),
                }
            }
            None => AllocateOutcome::Placed { reason },
        };
        tracing::debug!(session = %key, worker = %active.worker, %reason, "placed");
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

    /// Asks the worker to start the reserved session; confirms it, or undoes
    /// the reservation. `None` when the worker failed.
    async fn start_on_worker(
        &self,
        view: &WorkerView,
        reserved: &Dispatch,
    ) -> Result<Option<Dispatch>> {
        let key = &reserved.key;
        let call = timeout(
            self.config.worker_call_timeout,
            self.client.allocate(&view.record, key),
        )
        .await;
        let error = match call {
            Ok(Ok(session)) => {
                let now = self.clock.now();
                let confirmed = self
                    .store
                    .confirm(key, reserved.id, Some(session), now, self.config.sticky_ttl)
                    .await?;
                if confirmed.is_some() {
                    return Ok(confirmed);
                }
                // The reservation was reclaimed while the worker worked:
                // give the worker its slot back and try elsewhere.
                let _ = timeout(
                    self.config.worker_call_timeout,
                    self.client.release(&view.record, key),
                )
                .await;
                WorkerCallError::BadAnswer("reservation expired before the worker answered".into())
            }
            Ok(Err(e)) => e,
            Err(_) => WorkerCallError::Timeout,
        };
        tracing::warn!(worker = %view.id(), session = %key, error = %error, "worker allocate failed; trying the next worker");
        self.store.undo(key, reserved.id).await?;
        Ok(None)
    }

    /// Best effort: tell a failed worker to drop a superseded session, in
    /// the background (it is usually unreachable).
    fn release_on_failed_worker(&self, worker: &WorkerId, key: &SessionKey) {
        let store = Arc::clone(&self.store);
        let client = Arc::clone(&self.client);
        let limit = self.config.worker_call_timeout;
        let (worker, key) = (worker.clone(), key.clone());
        tokio::spawn(async move {
            if let Ok(Some(snapshot)) = store.worker(&worker).await {
                let _ = timeout(limit, client.release(&snapshot.record, &key)).await;
            }
        });
    }

    /// The session's dispatch.
    pub async fn session(&self, key: &SessionKey) -> Result<Dispatch> {
        self.store
            .dispatch(key)
            .await?
            .ok_or_else(|| Error::SessionNotFound(key.clone()))
    }

    /// Releases a session (on submission): the holding worker is told to
    /// stop it, then the dispatch and its counters are removed atomically.
    /// Releasing a session that has no dispatch is a no-op (`None`).
    ///
    /// If the worker cannot be reached the record is removed anyway — the
    /// student is done — and the worker's own count keeps its slot in use
    /// until it reports the session gone.
    pub async fn release(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        let Some(d) = self.store.dispatch(key).await? else {
            return Ok(None);
        };
        if let Some(snapshot) = self.store.worker(&d.worker).await? {
            let call = timeout(
                self.config.worker_call_timeout,
                self.client.release(&snapshot.record, key),
            )
            .await;
            match call {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(worker = %d.worker, session = %key, error = %e, "worker release failed")
                }
                Err(_) => {
                    tracing::warn!(worker = %d.worker, session = %key, "worker release timed out")
                }
            }
        }
        self.store.release(key, Some(d.id)).await
    }
}
