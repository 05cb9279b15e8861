//! Release (on submission) and reading a session's dispatch.

use tokio::time::timeout;

use super::Placement;
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::ids::SessionKey;

/// How many times a release reads the session again after a re-dispatch
/// replaced the dispatch it was removing (each look needs another move to
/// have landed in between; more means something keeps moving it).
const RELEASE_LOOKS: usize = 4;

impl Placement {
    /// The session's dispatch.
    pub async fn session(&self, key: &SessionKey) -> Result<Dispatch> {
        self.shared
            .store
            .dispatch(key)
            .await?
            .ok_or_else(|| Error::SessionNotFound(key.clone()))
    }

    /// Releases a session (on submission): the holding worker is told to
    /// stop it, then the dispatch and its counters are removed atomically.
    /// Releasing a session that has no dispatch is a no-op (`None`).
    ///
    /// The slot is free at once when the worker confirmed the stop. If the
    /// worker cannot be reached the record is removed anyway — the student
    /// is done — but the removal holds the slot
    /// ([`DispatchStore::release`](crate::store::DispatchStore::release)'s
    /// `hold`) until the worker's next report says what it still runs.
    ///
    /// The removal names the dispatch it read. If a re-dispatch replaced it
    /// in between (its worker failed), the release reads the session again
    /// and releases the new one, so a move racing the student's submission
    /// never leaves a desktop behind; a move planned before the release
    /// and reserved after it finds the session gone
    /// ([`Reservation::Ended`](crate::store::Reservation::Ended)).
    pub async fn release(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        for _ in 0..RELEASE_LOOKS {
            let Some(d) = self.shared.store.dispatch(key).await? else {
                return Ok(None);
            };
            let stopped = self.stop_on_worker(&d).await?;
            let hold = (!stopped).then_some(&d.worker);
            if let Some(released) = self
                .shared
                .store
                .release(key, Some(d.id), None, hold)
                .await?
            {
                return Ok(Some(released));
            }
        }
        Err(Error::AllocationInProgress(key.clone()))
    }

    /// Tells `d`'s worker to stop the session; whether it confirmed.
    async fn stop_on_worker(&self, d: &Dispatch) -> Result<bool> {
        let Some(snapshot) = self.shared.store.worker(&d.worker).await? else {
            return Ok(false);
        };
        let call = timeout(
            self.shared.config.worker_call_timeout,
            self.shared.client.release(&snapshot.record, &d.key),
        )
        .await;
        Ok(match call {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(worker = %d.worker, session = %d.key, error = %e, "worker release failed");
                false
            }
            Err(_) => {
                tracing::warn!(worker = %d.worker, session = %d.key, "worker release timed out");
                false
            }
        })
    }
}
