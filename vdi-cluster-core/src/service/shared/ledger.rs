//! The disruption ledger's side of a write: the `session.disrupted`
//! alerts a placement's entries raise, computed before the write that
//! carries both (see [`crate::ledger`]).

use crate::error::Result;
use crate::events::EventKind;
use crate::ids::SessionKey;
use crate::ledger::{Disruption, crossings, session_lost_ms};
use crate::outbox::{OutboxEntry, alerts};
use crate::time::duration_millis;

use super::Shared;

impl Shared {
    /// The `session.disrupted` event `added` raises for `key`, if its lost
    /// time reaches a further multiple of
    /// [`disruption_alert`](crate::ServiceConfig::disruption_alert) with
    /// them: one, naming the highest multiple reached (reads the session's
    /// ledger; only a placement with entries calls this).
    pub(crate) async fn disrupted_events(
        &self,
        key: &SessionKey,
        added: &[Disruption],
    ) -> Result<Vec<EventKind>> {
        let threshold = self.config.disruption_alert;
        if added.is_empty() || threshold.is_zero() {
            return Ok(Vec::new());
        }
        let mut entries = self.store.disruptions(key).await?;
        let before = session_lost_ms(&entries);
        entries.extend(
            added
                .iter()
                .filter(|a| entries.iter().all(|e| e.id != a.id))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let after = session_lost_ms(&entries);
        // A step that reaches several multiples at once alerts once,
        // naming the highest.
        Ok(crossings(before, after, threshold)
            .last()
            .map(|&crossing| EventKind::SessionDisrupted {
                session: key.clone(),
                lost_ms: after,
                threshold_ms: duration_millis(threshold),
                crossing,
            })
            .into_iter()
            .collect())
    }

    /// The outbox entries of `events` (`session.disrupted`), each under a
    /// key naming its session and crossing, so a crossing is alerted once.
    pub(crate) async fn disrupted_entries(&self, events: &[EventKind]) -> Result<Vec<OutboxEntry>> {
        let keyed: Vec<_> = events
            .iter()
            .map(|kind| {
                let crossing = match kind {
                    EventKind::SessionDisrupted { crossing, .. } => *crossing,
                    _ => 0,
                };
                (kind, alerts::observed_key(kind, crossing))
            })
            .collect();
        self.outbox_entries(&keyed).await
    }
}
