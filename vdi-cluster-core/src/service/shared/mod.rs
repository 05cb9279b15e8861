//! The common parts every wing shares through one `Arc`: the store, the
//! worker client, the clock, the event sinks and the configuration, with
//! the few reads and writes every wing makes (views of the workers, the
//! audit trail, events, the mass-failure guard) and, in `outbox`, the
//! writes that carry an outbox entry.
//!
//! Owns no cache. Its one piece of state is the mass-failure guard's
//! hold-down, which placement (a reload on a silent worker) and reconcile
//! (migrations) must judge alike.

mod ledger;
mod outbox;
pub(crate) mod reason;

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) use outbox::new_id;

use crate::client::WorkerClient;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind, EventSink};
use crate::health::HealthConfig;
use crate::ids::WorkerId;
use crate::reconcile::{GuardHold, MassFailure};
use crate::store::{AuditEntry, Store};
use crate::time::{Clock, Timestamp};
use crate::worker::WorkerView;

use super::config::ServiceConfig;

/// What every wing shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: Arc<dyn WorkerClient>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) config: ServiceConfig,
    /// This replica's start, the origin of the restart grace period.
    pub(crate) started_at: Timestamp,
    /// This replica's memory of the mass-failure guard (its hold-down).
    guard: Mutex<GuardHold>,
}

impl Shared {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        client: Arc<dyn WorkerClient>,
        clock: Arc<dyn Clock>,
        events: Arc<dyn EventSink>,
        config: ServiceConfig,
    ) -> Self {
        let started_at = clock.now();
        Self {
            store,
            client,
            clock,
            events,
            config,
            started_at,
            guard: Mutex::default(),
        }
    }

    /// The share of silent workers among `views`, and whether the
    /// mass-failure guard is on: engaged by that share, or held for the
    /// hard timeout (`offline_after`) since it last was
    /// ([`GuardHold`]).
    pub(crate) fn mass_failure_guard(&self, views: &[WorkerView]) -> (MassFailure, bool) {
        let share = MassFailure::of(views);
        let engaged = share.guards(self.config.mass_failure_percent);
        let mut hold = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        let on = hold.observe(engaged, self.clock.now(), self.config.offline_after);
        (share, on)
    }

    /// Health timing in force, with the restart grace origin.
    pub(crate) fn health_config(&self) -> HealthConfig {
        HealthConfig {
            heartbeat_ttl: self.config.heartbeat_ttl,
            offline_after: self.config.offline_after,
            judge_from: self.config.restart_grace.then_some(self.started_at),
        }
    }

    /// Every worker as seen now, read fresh from the backend.
    pub(crate) async fn worker_views(&self) -> Result<Vec<WorkerView>> {
        let now = self.clock.now();
        let health = self.health_config();
        let snapshots = self.store.workers().await?;
        Ok(snapshots
            .into_iter()
            .map(|s| WorkerView::new(s, now, &health))
            .collect())
    }

    /// One worker as seen now.
    pub(crate) async fn worker_view(&self, id: &WorkerId) -> Result<WorkerView> {
        let snapshot = self
            .store
            .worker(id)
            .await?
            .ok_or_else(|| Error::WorkerNotFound(id.clone()))?;
        Ok(WorkerView::new(
            snapshot,
            self.clock.now(),
            &self.health_config(),
        ))
    }

    /// Emits each of `kinds`, in order ([`emit`](Self::emit)).
    pub(crate) fn emit_all(&self, kinds: Vec<EventKind>) {
        for kind in kinds {
            self.emit(kind);
        }
    }

    /// Emits an event to the sinks (log, events stream). An event for
    /// webhooks is written to the outbox with its cause first (`outbox`).
    pub(crate) fn emit(&self, kind: EventKind) {
        self.events.emit(&Event {
            at: self.clock.now(),
            kind,
        });
    }

    /// Appends to the audit trail.
    pub(crate) async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.store
            .append_audit(&AuditEntry {
                at: self.clock.now(),
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: target.to_owned(),
                detail,
            })
            .await
    }

    /// A per-request seed: the service seed mixed with `parts`.
    pub(crate) fn request_seed(&self, parts: impl Hash) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.config.seed.hash(&mut h);
        parts.hash(&mut h);
        h.finish()
    }
}
