//! The health monitor: availability changes as events, once per
//! transition, on the leader.

use std::collections::HashMap;

use crate::events::EventKind;
use crate::health::Availability;
use crate::ids::WorkerId;
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// Turns availability snapshots into events, once per transition (the
/// deltas of successive observations).
#[derive(Debug, Default)]
pub struct HealthMonitor {
    last: HashMap<WorkerId, Availability>,
}

impl HealthMonitor {
    /// Compares `views` with the previous observation and returns an event
    /// per worker whose availability changed. Workers seen for the first
    /// time are recorded silently.
    pub fn observe(&mut self, views: &[WorkerView], now: Timestamp) -> Vec<EventKind> {
        let mut events = Vec::new();
        let mut next = HashMap::with_capacity(views.len());
        for v in views {
            if let Some(&before) = self.last.get(v.id())
                && before != v.availability
            {
                events.push(EventKind::WorkerAvailability {
                    worker: v.id().clone(),
                    from: before,
                    to: v.availability,
                    reason: v.reason(now),
                });
            }
            next.insert(v.id().clone(), v.availability);
        }
        self.last = next;
        events
    }

    /// Forgets everything (after losing the lease).
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// Whether nothing was observed yet (since the start or a reset).
    pub fn is_fresh(&self) -> bool {
        self.last.is_empty()
    }

    /// On a new leader's first observation: the workers that went silent
    /// while no leader was watching (or whose alert the previous leader
    /// may not have written), as `worker.offline` transitions from
    /// `healthy`, their last known good state. Written to the outbox under
    /// the transition's key, they are skipped when the previous leader had
    /// written them.
    pub fn catch_up(views: &[WorkerView], now: Timestamp) -> Vec<EventKind> {
        views
            .iter()
            .filter(|v| !v.availability.is_reachable())
            .filter(|v| v.record.deregistered_at.is_none() && v.record.last_heartbeat_at.is_some())
            .map(|v| EventKind::WorkerAvailability {
                worker: v.id().clone(),
                from: Availability::Healthy,
                to: v.availability,
                reason: v.reason(now),
            })
            .collect()
    }
}
