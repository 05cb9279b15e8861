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
use crate::scheduler::{ChoiceReason, Constraints, NoCapacity, RankOptions};
use crate::store::{Reservation, ReserveRequest};
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
    /// dispatch on a failed worker this placement replaces.
    pub(super) async fn place(
        &self,
        key: SessionKey,
        constraints: &Constraints,
        supersede: Option<Dispatch>,
    ) -> Result<Allocation> {
        let placement = self.store.placement(&key.exam_id, self.clock.now()).await?;
        let mut tried: HashSet<WorkerId> = HashSet::new();
        let mut supersede_id: Option<DispatchId> = supersede.as_ref().map(|d| d.id);
        let replaced_from = supersede.as_ref().map(|d| d.worker.clone());
        if let Some(old) = &replaced_from {
            tried.insert(old.clone());
        }
        let mut failed_calls = 0u32;
        let mut contention_retries = 0u32;
        let mut last_exclusions = Default::default();
        let mut workers_seen = 0;
        for round in 0..RANK_ROUNDS {
            let (index, known_full) = self.ranking_snapshot(round > 0).await?;
            let mut excluded_now = tried.clone();
            excluded_now.extend(known_full);
            let options = RankOptions {
                policy: self.config.scheduling,
                exam_affinity: self.config.exam_affinity,
                herd_width: self.config.herd_width,
                seed: self.request_seed((&key, round)),
                limit: 16,
            };
            let ranking = index.rank(constraints, &placement, &excluded_now, &options);
            workers_seen = index.views().len();
            last_exclusions = ranking.excluded.clone();
            if ranking.candidates.is_empty() {
                break;
            }
            for candidate in ranking.candidates {
                tried.insert(candidate.worker.clone());
                let Some(view) = index.get(&candidate.worker) else {
                    continue;
                };
                let dispatch = Dispatch::reserve(
                    key.clone(),
                    candidate.worker.clone(),
                    self.clock.now(),
                    view.record.boot_id().map(str::to_owned),
                    view.record.stamp.as_ref().and_then(|s| s.seq),
                );
                let request = ReserveRequest {
                    dispatch,
                    supersede: supersede_id,
                };
                let reserved = match self.store.reserve(&request).await? {
                    Reservation::Existing(d) if d.state == DispatchState::Reserved => {
                        return Err(Error::AllocationInProgress(key));
                    }
                    Reservation::Existing(d) => {
                        return Ok(Allocation {
                            dispatch: d,
                            outcome: AllocateOutcome::Existing,
                            failed_calls,
                            contention_retries,
                        });
                    }
                    Reservation::Full | Reservation::NotAccepting => {
                        contention_retries += 1;
                        self.note_full(&candidate.worker);
                        continue;
                    }
                    Reservation::Reserved {
                        dispatch,
                        superseded,
                    } => {
                        if superseded.is_some() {
                            supersede_id = None;
                        }
                        dispatch
                    }
                };
                match self.start_on_worker(view, &reserved).await? {
                    Some(active) => {
                        let outcome = match &replaced_from {
                            Some(from) => {
                                self.emit(EventKind::SessionMigrated {
                                    session: key.clone(),
                                    from: from.clone(),
                                    to: active.worker.clone(),
                                });
                                self.release_on_failed_worker(from, &key);
                                AllocateOutcome::Redispatched {
                                    reason: candidate.reason,
                                    from: from.clone(),
                                }
                            }
                            None => AllocateOutcome::Placed {
                                reason: candidate.reason,
                            },
                        };
                        tracing::debug!(session = %key, worker = %active.worker, reason = %candidate.reason, "placed");
                        return Ok(Allocation {
                            dispatch: active,
                            outcome,
                            failed_calls,
                            contention_retries,
                        });
                    }
                    None => {
                        failed_calls += 1;
                        if failed_calls >= self.config.retry_count {
                            return Err(self.no_capacity(
                                &key,
                                workers_seen,
                                last_exclusions,
                                failed_calls,
                            ));
                        }
                    }
                }
            }
        }
        Err(self.no_capacity(&key, workers_seen, last_exclusions, failed_calls))
    }

    fn no_capacity(
        &self,
        key: &SessionKey,
        workers: usize,
        excluded: crate::scheduler::Exclusions,
        failed_calls: u32,
    ) -> Error {
        let err = NoCapacity {
            exam_id: key.exam_id.clone(),
            workers,
            excluded,
            failed_calls,
        };
        tracing::warn!(session = %key, "{err}");
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
