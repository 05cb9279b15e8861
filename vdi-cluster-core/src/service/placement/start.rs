//! Starting a reserved session on its worker: the start permit (when
//! starts are paced, `pacing`), the call, the confirmation, and what a
//! call that times out leaves behind.
//!
//! # A worker call that times out
//!
//! The reservation is undone and the next candidate is tried: the student
//! is never kept waiting on a worker that does not answer, and may be
//! placed elsewhere. The slow worker may still start the session; it is not
//! told to drop it blindly (the call's fate is unknown, and the worker may
//! be the only one with room). Once the same placement has started the
//! session on another worker, the copy is a duplicate for certain: the
//! slow worker is told to **release** it then, in the background, so its
//! slot comes back within a call rather than after the fleet grace (during
//! an exam's start, that slot is another student's seat). Whatever that
//! best-effort call misses, the worker's next heartbeat lists and the
//! fleet's report decides ([`crate::fleet`]):
//!
//! * no record exists for the session (the student got `NoCapacity`, or
//!   has not come back) → the session is **adopted** on that worker, so the
//!   student's next allocate returns it and the slot is accounted for;
//! * the session was placed on another worker → once that dispatch has
//!   been settled for the fleet grace, the slow worker is told to **stop**
//!   its copy in the heartbeat answer (`releaseSessions`).
//!
//! If a heartbeat confirms the reservation while the allocator still
//! waits (the call was only slow), the allocator returns that dispatch
//! instead of undoing it.
//!
//! Until then the undo **holds the slot** on the slow worker (the store's
//! `hold`): it may run the session, so its slot is not handed to another
//! student before its next report says what it runs. A student refused
//! for want of a slot whose session a worker already reports running gets
//! that session adopted instead of the refusal.
//!
//! # A confirmation that comes too late
//!
//! The worker answered, but the confirmation finds the reservation gone:
//! it waited longer than the allocate timeout (on a store failing over,
//! for a connection), and reconcile or another request of the session
//! reclaimed it. Meanwhile the worker's report may have had the session
//! it runs **adopted**, or the student's reload may have reserved and
//! confirmed the same worker, whose allocate answered the desktop already
//! running — in both cases a dispatch of the session on this worker that
//! *is* the desktop this placement started: the placement hands back that
//! active dispatch, or leaves the desktop to the reservation that holds
//! it. Releasing by the session's key there would stop the desktop of a
//! record that stays: a slot held for nobody, and a student answered with
//! a desktop that is gone, until the live-session grace. When nothing
//! holds the session yet, the desktop is kept as after a call that timed
//! out (released once the placement runs elsewhere, adopted otherwise):
//! a heartbeat the worker sent before a release, and processed after it
//! (a store slow to answer delays heartbeats), would adopt the session
//! it still lists. Only a dispatch on another worker makes the copy a
//! duplicate to release at once.

use std::sync::Arc;

use tokio::time::timeout;

use super::Placement;
use super::pacing::{Permit, PermitTimeout};
use crate::client::WorkerCallError;
use crate::dispatch::{Dispatch, DispatchState};
use crate::error::Result;
use crate::ids::{SessionKey, WorkerId};
use crate::ledger::{Disruption, PlacementStory, placement_entries};
use crate::outbox::OutboxEntry;
use crate::worker::WorkerView;

/// What asking a worker to start a reserved session came to.
#[derive(Debug)]
pub(crate) enum Started {
    /// Started, and its dispatch is active.
    Active(Box<Dispatch>),
    /// The call failed and the reservation is undone; `may_run`: the
    /// worker may have acted on the call and run the session anyway.
    Failed { may_run: bool },
    /// The reservation ended while its start waited for a permit (the
    /// student released the session): the worker was never called, and
    /// nothing is to be placed.
    Withdrawn,
}

/// What holds a session whose reservation its placement found gone or
/// settled by someone else ([`Placement::held_meanwhile`]).
#[derive(Debug)]
enum Meanwhile {
    /// An active dispatch on the reservation's worker: the desktop the
    /// placement started.
    Active(Box<Dispatch>),
    /// Another dispatch on the same worker: a reservation of another
    /// request, whose call answers the same desktop, or an orphaned record
    /// that its own move handles.
    Here,
    /// No dispatch.
    Nobody,
    /// A dispatch on another worker.
    Elsewhere,
}

impl Placement {
    /// Asks the worker to start the reserved session; confirms it (a
    /// re-dispatch from a failed worker with its `session.migrated`, and
    /// with the ledger's entries of what the placement went through,
    /// `story`, and the `session.disrupted` they raise), or undoes the
    /// reservation. `granted`: the start permit compare-and-reserve took
    /// with the slot; without one (and starts paced) the start waits for
    /// it first. The confirmation or the undo gives the permit back.
    pub(crate) async fn start_on_worker(
        &self,
        view: &WorkerView,
        reserved: &Dispatch,
        granted: Option<Permit>,
        story: &PlacementStory<'_>,
    ) -> Result<Started> {
        let key = &reserved.key;
        let mut entries = match story.replaced {
            Some(i) => self.shared.migrated_entries(&i.from, reserved).await?,
            None => Vec::new(),
        };
        let settings = self.desktop_settings(&key.exam_id).await?;
        let mut permit = match granted {
            Some(permit) => Some(permit),
            None => match self
                .take_permit(&view.record, &reserved.id.to_string(), reserved.reserved_at)
                .await?
            {
                Ok(permit) => permit,
                Err(PermitTimeout) => {
                    // The worker was never called: its slot is free at once.
                    self.shared
                        .store
                        .undo(key, reserved.id, None, None, None)
                        .await?;
                    return Ok(Started::Failed { may_run: false });
                }
            },
        };
        // A start that waited may have outlived its reservation (the
        // student released the session meanwhile): starting a desktop for
        // nobody, then placing it elsewhere, would undo the release.
        if permit.as_ref().is_some_and(|p| p.waited) && !self.still_reserved(reserved).await? {
            self.give_back(permit, false).await;
            return Ok(Started::Withdrawn);
        }
        if let Some(p) = permit.as_mut() {
            p.calling(self.shared.clock.now());
        }
        let call = timeout(
            self.shared.config.worker_call_timeout,
            self.shared.client.allocate(&view.record, key, &settings),
        )
        .await;
        // Given back by the confirmation, or by the undo below.
        let mut given = permit
            .as_ref()
            .map(|p| self.return_of(p, matches!(call, Ok(Ok(_)))));
        let error = match call {
            Ok(Ok(session)) => {
                let disruptions = placement_entries(story, reserved, self.shared.clock.now());
                let disrupted = self.shared.disrupted_events(key, &disruptions).await?;
                entries.extend(self.shared.disrupted_entries(&disrupted).await?);
                let returned = given.take();
                let confirmed = self
                    .shared
                    .confirm_alerting(
                        reserved,
                        session.clone(),
                        returned.as_ref(),
                        &entries,
                        &disruptions,
                    )
                    .await?;
                if let Some(returned) = &returned {
                    self.returned(returned);
                }
                if let Some(active) = confirmed {
                    self.shared.emit_all(disrupted);
                    return Ok(Started::Active(Box::new(active)));
                }
                // The reservation is no longer there to confirm: see what
                // holds the session now before touching the desktop.
                match self
                    .held_meanwhile(reserved, &entries, &disruptions)
                    .await?
                {
                    // The worker's report made this very desktop the
                    // session's dispatch first (the call or the
                    // confirmation was slow): it is placed.
                    Meanwhile::Active(mut adopted) => {
                        self.shared.emit_all(disrupted);
                        adopted.session.get_or_insert(session);
                        return Ok(Started::Active(adopted));
                    }
                    // Another request of the session reserved this worker
                    // and will confirm the same desktop (or a move takes an
                    // orphaned record away from it): leave it running.
                    Meanwhile::Here => {
                        tracing::warn!(worker = %view.id(), session = %key, "reservation expired before the worker answered; another dispatch of the session holds the same worker");
                        return Ok(Started::Failed { may_run: false });
                    }
                    // Nothing holds the session (its reservation was
                    // reclaimed, or it was released): the worker keeps the
                    // desktop until this placement runs elsewhere. Told to
                    // release it now, it would stop a desktop that a report
                    // sent before the stop, and processed after it, still
                    // lists: that report would adopt a record of nothing.
                    Meanwhile::Nobody => {
                        tracing::warn!(worker = %view.id(), session = %key, "reservation expired before the worker answered; its desktop stays until the session runs elsewhere");
                        return Ok(Started::Failed { may_run: true });
                    }
                    // Another worker holds it: this copy is a duplicate
                    // for certain; give the worker its slot back.
                    Meanwhile::Elsewhere => {
                        let _ = timeout(
                            self.shared.config.worker_call_timeout,
                            self.shared.client.release(&view.record, key),
                        )
                        .await;
                    }
                }
                WorkerCallError::BadAnswer("reservation expired before the worker answered".into())
            }
            Ok(Err(e)) => e,
            Err(_) => WorkerCallError::Timeout,
        };
        // A worker that may have acted on the call (no answer, or one we
        // could not read) may run the session: keep its slot held until
        // its next report says (a session it runs is then adopted).
        let hold = error.may_have_started().then_some(view.id());
        if !self
            .shared
            .store
            .undo(key, reserved.id, None, hold, given.as_ref())
            .await?
            && let Meanwhile::Active(adopted) = self.held_meanwhile(reserved, &entries, &[]).await?
        {
            // The worker did start it, and its heartbeat said so first.
            return Ok(Started::Active(adopted));
        }
        tracing::warn!(worker = %view.id(), session = %key, error = %error, "worker allocate failed; trying the next worker");
        Ok(Started::Failed {
            may_run: hold.is_some(),
        })
    }

    /// What holds the session of `reserved`, a reservation this
    /// placement can no longer confirm or undo. An active dispatch on the
    /// same worker is the desktop this placement started, whatever its id:
    /// the worker's heartbeat confirmed the reservation while the allocator
    /// waited, or — once the reservation was reclaimed — adopted the
    /// session the worker reports, or another request of the session
    /// placed it there (a worker runs one desktop per session, and its
    /// allocate answers the running one). Then writes the `entries` and
    /// `disruptions` that confirmation could not carry.
    async fn held_meanwhile(
        &self,
        reserved: &Dispatch,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) -> Result<Meanwhile> {
        let Some(d) = self.shared.store.dispatch(&reserved.key).await? else {
            return Ok(Meanwhile::Nobody);
        };
        if d.worker != reserved.worker {
            return Ok(Meanwhile::Elsewhere);
        }
        match d.state {
            DispatchState::Active => {
                self.shared
                    .append_confirmed_elsewhere(entries, disruptions)
                    .await;
                Ok(Meanwhile::Active(Box::new(d)))
            }
            DispatchState::Reserved | DispatchState::Orphaned => Ok(Meanwhile::Here),
        }
    }

    /// Whether `reserved` is still the session's dispatch.
    async fn still_reserved(&self, reserved: &Dispatch) -> Result<bool> {
        let now = self.shared.store.dispatch(&reserved.key).await?;
        Ok(now.is_some_and(|d| d.id == reserved.id))
    }

    /// Best effort: tell a worker to drop a copy of a session that runs
    /// elsewhere now, in the background (a failed worker is usually
    /// unreachable, a slow one slow).
    pub(crate) fn release_copy(&self, worker: &WorkerId, key: &SessionKey) {
        let store = Arc::clone(&self.shared.store);
        let client = Arc::clone(&self.shared.client);
        let limit = self.shared.config.worker_call_timeout;
        let (worker, key) = (worker.clone(), key.clone());
        tokio::spawn(async move {
            if let Ok(Some(snapshot)) = store.worker(&worker).await {
                let _ = timeout(limit, client.release(&snapshot.record, &key)).await;
            }
        });
    }
}
