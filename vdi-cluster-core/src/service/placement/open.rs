//! The interruptions a placement ends: read when it begins (those stored
//! by a refusal or a restarted worker's release, and a wait in the
//! waiting room), written as the ledger's entries with its confirmation
//! (`ledger::placement_entries`), then closed.

use super::Placement;
use crate::error::Result;
use crate::ids::SessionKey;
use crate::ledger::{DisruptionKind, OpenInterruption};
use crate::time::Timestamp;

impl Placement {
    /// The interruptions `key`'s session is in at `now` (`waited`, and
    /// those stored, younger than
    /// [`OPEN_MAX_AGE`](crate::ledger::OPEN_MAX_AGE)), and the start of its
    /// booked exam: lost time counts from there at the earliest. Only a
    /// booked exam's session has interruptions stored (a refusal and a
    /// restart's release open them for those alone), so only its
    /// placement reads them: one store call, none for any other session.
    pub(super) async fn open_interruptions(
        &self,
        key: &SessionKey,
        now: Timestamp,
        waited: Option<&OpenInterruption>,
    ) -> Result<(Vec<OpenInterruption>, Option<Timestamp>)> {
        let mut open: Vec<OpenInterruption> = waited.into_iter().cloned().collect();
        let Some(starts_at) = self
            .cached_calendar()
            .await?
            .get(&key.exam_id)
            .map(|e| e.starts_at)
        else {
            return Ok((open, None));
        };
        open.extend(
            self.shared
                .store
                .open_interruptions(key)
                .await?
                .into_iter()
                .filter(|o| o.current(now)),
        );
        Ok((open, Some(starts_at)))
    }

    /// Closes the stored interruptions among `open` once the placement
    /// that ended them is confirmed. Their entries were written with the
    /// confirmation: a close that fails leaves one that the next placement
    /// writes again, under the same id, stored once.
    pub(super) async fn close_open(&self, key: &SessionKey, open: &[OpenInterruption]) {
        for o in open
            .iter()
            .filter(|o| o.kind != DisruptionKind::WaitingRoom)
        {
            if let Err(e) = self.shared.store.close_interruption(o).await {
                tracing::warn!(session = %key, error = %e, "could not close an interruption the placement ended");
            }
        }
    }

    /// Opens a `refused` interruption for a student of a booked exam
    /// refused for want of a slot (the first refusal is kept); closed
    /// into the ledger by the placement that seats them. Logged, never
    /// failing the refusal.
    pub(super) async fn note_refusal(&self, key: &SessionKey) {
        let booked = match self.cached_calendar().await {
            Ok(calendar) => calendar.get(&key.exam_id).is_some(),
            Err(e) => {
                tracing::warn!(session = %key, error = %e, "could not read the calendar to note a refusal");
                return;
            }
        };
        if !booked {
            return;
        }
        let open = OpenInterruption::refused(key.clone(), self.shared.clock.now());
        if let Err(e) = self.shared.store.open_interruption(&open).await {
            tracing::warn!(session = %key, error = %e, "could not note the refusal in the ledger");
        }
    }
}
