//! The session's existing dispatch, when an allocate finds one: hand it
//! back (asking an adopted session's worker for its details), replace it
//! (its worker failed), wait for it (an allocation in flight) — or adopt
//! the session a worker reports running when there is no room for it.

use tokio::time::timeout;

use super::Placement;
use super::allocation::Allocation;
use crate::dispatch::{Dispatch, DispatchState, lost_to_restart};
use crate::error::Result;
use crate::events::EventKind;
use crate::ids::SessionKey;
use crate::ledger::{Interruption, interruption};
use crate::store::Adoption;
use crate::worker::WorkerView;

/// The warning of a dispatch handed back on a silent worker.
const SILENT_WORKER_WARNING: &str = "the session's worker is not heartbeating, and neither are many others: this looks like a control-plane or network fault, so the session is kept where it is";

/// Is the existing dispatch still good to hand back?
pub(crate) enum Existing {
    /// Yes (with a warning for a silent worker kept by the guard).
    Reuse(Dispatch, Option<String>),
    /// Its worker failed: place the session anew, superseding it.
    Replace(Dispatch),
    /// Another allocation of the session is in flight.
    InProgress,
    /// There is none.
    None,
}

impl Placement {
    /// Hands an existing dispatch back. One adopted without connection
    /// details (its worker's heartbeat did not carry them) gets them by
    /// asking the worker once — its allocate is idempotent for a running
    /// session; they are returned, not stored.
    pub(crate) async fn reuse(
        &self,
        mut dispatch: Dispatch,
        warning: Option<String>,
    ) -> Result<Allocation> {
        if dispatch.session.is_none()
            && dispatch.state == DispatchState::Active
            && warning.is_none()
            && let Some(snapshot) = self.shared.store.worker(&dispatch.worker).await?
        {
            let settings = self.desktop_settings(&dispatch.key.exam_id).await?;
            let call = timeout(
                self.shared.config.worker_call_timeout,
                self.shared
                    .client
                    .allocate(&snapshot.record, &dispatch.key, &settings),
            )
            .await;
            match call {
                Ok(Ok(session)) => dispatch.session = Some(session),
                Ok(Err(e)) => {
                    tracing::warn!(session = %dispatch.key, worker = %dispatch.worker, error = %e, "asking the worker for an adopted session's details failed");
                }
                Err(_) => {
                    tracing::warn!(session = %dispatch.key, worker = %dispatch.worker, "asking the worker for an adopted session's details timed out");
                }
            }
        }
        Ok(Allocation::existing(dispatch, warning))
    }

    /// Reads the session's dispatch and judges it ([`judge_existing`](Self::judge_existing)).
    pub(crate) async fn check_existing(&self, key: &SessionKey) -> Result<Existing> {
        match self.shared.store.dispatch(key).await? {
            Some(d) => self.judge_existing(d).await,
            None => Ok(Existing::None),
        }
    }

    /// What to do with the session's dispatch `d` (read, or answered by
    /// compare-and-reserve): a reservation whose allocator died is reclaimed
    /// here (then [`Existing::None`]); a live one is waited for; an active
    /// one is handed back unless its worker failed.
    pub(crate) async fn judge_existing(&self, d: Dispatch) -> Result<Existing> {
        let key = &d.key;
        let now = self.shared.clock.now();
        match d.state {
            DispatchState::Reserved => {
                if now.since(d.reserved_at) < self.shared.config.allocate_timeout {
                    return Ok(Existing::InProgress);
                }
                // A reservation whose allocator died: reclaim it now. The
                // worker may have started it: its slot stays held until
                // the worker reports.
                self.shared
                    .store
                    .undo(
                        key,
                        d.id,
                        None,
                        Some(&d.worker),
                        self.shared
                            .config
                            .pacing
                            .permit_return(&d.worker, None)
                            .as_ref(),
                    )
                    .await?;
                Ok(Existing::None)
            }
            DispatchState::Orphaned => Ok(Existing::Replace(d)),
            DispatchState::Active => {
                let Some(snapshot) = self.shared.store.worker(&d.worker).await? else {
                    return Ok(Existing::Replace(d));
                };
                let view = WorkerView::new(snapshot, now, &self.shared.health_config());
                if !view.record.policy.is_enabled() || lost_to_restart(&d, &view.record) {
                    return Ok(Existing::Replace(d));
                }
                if view.availability.is_reachable() {
                    return Ok(Existing::Reuse(d, None));
                }
                let views = self.shared.worker_views().await?;
                if self.shared.mass_failure_guard(&views).1 {
                    tracing::warn!(session = %key, worker = %d.worker, "mass-failure guard: keeping the session on its silent worker");
                    return Ok(Existing::Reuse(d, Some(SILENT_WORKER_WARNING.to_owned())));
                }
                Ok(Existing::Replace(d))
            }
        }
    }

    /// Why and since when the student has been without the desktop of
    /// `old`, the dispatch a re-dispatch replaces, as its worker's record
    /// says now ([`ledger::interruption`](crate::ledger::interruption)).
    pub(crate) async fn interruption_of(&self, old: &Dispatch) -> Result<Interruption> {
        let now = self.shared.clock.now();
        let snapshot = self.shared.store.worker(&old.worker).await?;
        let reachable = snapshot.as_ref().is_some_and(|s| {
            s.record
                .availability(now, &self.shared.health_config())
                .is_reachable()
        });
        Ok(interruption(
            old,
            snapshot.as_ref().map(|s| &s.record),
            reachable,
            now,
        ))
    }

    /// A session refused for want of a slot that a worker reports running
    /// with no record (its report was written, its adoption not yet): the
    /// slot it takes is counted as unrecorded there, so the full cluster is
    /// partly this student's own desktop. Adopt it on that worker and hand
    /// it back. Read from the latest ranking snapshot (fresh after a failed
    /// round), only on this refusal path.
    pub(crate) async fn adopt_reported(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        let snapshot = self.ranking_snapshot(false).await?;
        let Some(view) = snapshot.index.views().iter().find(|v| {
            v.availability.is_reachable()
                && v.record.policy.is_enabled()
                && v.record
                    .live_sessions
                    .as_ref()
                    .is_some_and(|live| live.contains(key))
        }) else {
            return Ok(None);
        };
        let adoption = Dispatch::adopted(key.clone(), &view.record, self.shared.clock.now(), None);
        match self
            .shared
            .store
            .adopt(&adoption, self.shared.config.sticky_ttl)
            .await?
        {
            Adoption::Adopted(d) => {
                tracing::info!(session = %key, worker = %d.worker, "adopted a session its worker reports, instead of refusing it");
                self.shared.emit(EventKind::SessionAdopted {
                    session: key.clone(),
                    worker: d.worker.clone(),
                });
                self.invalidate_snapshot();
                Ok(Some(d))
            }
            Adoption::Existing(d) if d.state == DispatchState::Active => Ok(Some(d)),
            Adoption::Existing(_) | Adoption::UnknownWorker => Ok(None),
        }
    }
}
