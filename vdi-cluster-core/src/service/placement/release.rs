//! Release (on submission) and reading a session's dispatch.

use tokio::time::timeout;

use super::Placement;
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::ids::SessionKey;

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
    pub async fn release(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        let Some(d) = self.shared.store.dispatch(key).await? else {
            return Ok(None);
        };
        let mut stopped = false;
        if let Some(snapshot) = self.shared.store.worker(&d.worker).await? {
            let call = timeout(
                self.shared.config.worker_call_timeout,
                self.shared.client.release(&snapshot.record, key),
            )
            .await;
            match call {
                Ok(Ok(())) => stopped = true,
                Ok(Err(e)) => {
                    tracing::warn!(worker = %d.worker, session = %key, error = %e, "worker release failed")
                }
                Err(_) => {
                    tracing::warn!(worker = %d.worker, session = %key, "worker release timed out")
                }
            }
        }
        let hold = (!stopped).then_some(&d.worker);
        self.shared.store.release(key, Some(d.id), None, hold).await
    }
}
