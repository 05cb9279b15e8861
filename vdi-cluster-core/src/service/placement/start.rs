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

use std::sync::Arc;

use tokio::time::timeout;

use super::Placement;
use super::pacing::PermitTimeout;
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
}

impl Placement {
    /// Asks the worker to start the reserved session; confirms it (a
    /// re-dispatch from a failed worker with its `session.migrated`, and
    /// with the ledger's entries of what the placement went through,
    /// `story`, and the `session.disrupted` they raise), or undoes the
    /// reservation.
    pub(crate) async fn start_on_worker(
        &self,
        view: &WorkerView,
        reserved: &Dispatch,
        story: &PlacementStory<'_>,
    ) -> Result<Started> {
        let key = &reserved.key;
        let mut entries = match story.replaced {
            Some(i) => self.shared.migrated_entries(&i.from, reserved).await?,
            None => Vec::new(),
        };
        let settings = self.desktop_settings(&key.exam_id).await?;
        let permit = match self
            .take_permit(&view.record, &reserved.id.to_string(), reserved.reserved_at)
            .await?
        {
            Ok(permit) => permit,
            Err(PermitTimeout) => {
                // The worker was never called: its slot is free at once.
                self.shared.store.undo(key, reserved.id, None, None).await?;
                return Ok(Started::Failed { may_run: false });
            }
        };
        let call = timeout(
            self.shared.config.worker_call_timeout,
            self.shared.client.allocate(&view.record, key, &settings),
        )
        .await;
        self.give_back(permit, matches!(call, Ok(Ok(_)))).await;
        let error = match call {
            Ok(Ok(session)) => {
                let disruptions = placement_entries(story, reserved, self.shared.clock.now());
                let disrupted = self.shared.disrupted_events(key, &disruptions).await?;
                entries.extend(self.shared.disrupted_entries(&disrupted).await?);
                let confirmed = self
                    .shared
                    .confirm_alerting(reserved, session.clone(), &entries, &disruptions)
                    .await?;
                if let Some(active) = confirmed {
                    self.shared.emit_all(disrupted);
                    return Ok(Started::Active(Box::new(active)));
                }
                // The worker's heartbeat confirmed it first (the call was
                // slow): it is this session, now active.
                if let Some(mut adopted) = self
                    .adopted_meanwhile(reserved, &entries, &disruptions)
                    .await?
                {
                    self.shared.emit_all(disrupted);
                    adopted.session.get_or_insert(session);
                    return Ok(Started::Active(Box::new(adopted)));
                }
                // The reservation was reclaimed while the worker worked:
                // give the worker its slot back and try elsewhere.
                let _ = timeout(
                    self.shared.config.worker_call_timeout,
                    self.shared.client.release(&view.record, key),
                )
                .await;
                WorkerCallError::BadAnswer("reservation expired before the worker answered".into())
            }
            Ok(Err(e)) => e,
            Err(_) => WorkerCallError::Timeout,
        };
        // A worker that may have acted on the call (no answer, or one we
        // could not read) may run the session: keep its slot held until
        // its next report says (a session it runs is then adopted).
        let hold = error.may_have_started().then_some(view.id());
        if !self.shared.store.undo(key, reserved.id, None, hold).await?
            && let Some(adopted) = self.adopted_meanwhile(reserved, &entries, &[]).await?
        {
            // The worker did start it, and its heartbeat said so first.
            return Ok(Started::Active(Box::new(adopted)));
        }
        tracing::warn!(worker = %view.id(), session = %key, error = %error, "worker allocate failed; trying the next worker");
        Ok(Started::Failed {
            may_run: hold.is_some(),
        })
    }

    /// The reservation `reserved`, if a heartbeat of its worker confirmed
    /// it while the allocator waited for the worker; then writes the
    /// `entries` and `disruptions` that confirmation could not carry.
    async fn adopted_meanwhile(
        &self,
        reserved: &Dispatch,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) -> Result<Option<Dispatch>> {
        let adopted = self
            .shared
            .store
            .dispatch(&reserved.key)
            .await?
            .filter(|d| d.id == reserved.id && d.state == DispatchState::Active);
        if adopted.is_some() {
            self.shared
                .append_confirmed_elsewhere(entries, disruptions)
                .await;
        }
        Ok(adopted)
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
