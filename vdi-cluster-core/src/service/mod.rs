//! Orchestration: the [`ClusterService`] that ties the domain, a [`Store`],
//! a [`WorkerClient`], a [`Clock`] and an [`EventSink`] together.
//!
//! Split by operation: [`heartbeat`](ClusterService::heartbeat) and
//! registration in `registration`, allocation in `allocate`, release in
//! `release`, repairs from the fleet's reports in `fleet`, admin
//! transitions in `admin`, workers' credentials (join, rotate, revoke,
//! reset) in `credentials`, reconcile and the health monitor in
//! `reconcile`, prewarm in `prewarm`, read-only views in `stats`, the
//! background loop in `background`, exams with admission control in
//! `exams`, the waiting room in `queue`, codes the control plane assigns and deregistration with a
//! reason in `assignment`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use vdi_cluster_core::{ClusterService, MemoryStore, SessionKey};
//! use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_for};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let workers = SimulatedWorkers::new();
//! let service = ClusterService::builder(Arc::new(MemoryStore::new()), Arc::new(workers.clone())).build();
//!
//! // A worker heartbeats: 8 vCPU / 12 GiB, VM 1.5 / 2048 → 4 slots (seed 001).
//! service.heartbeat(heartbeat_for("worker-1", 8.0, 12288, 0)).await?;
//!
//! // A student clicks "start".
//! let key = SessionKey::parse("exam-42", "student-7")?;
//! let placed = service.allocate(key.clone(), Default::default()).await?;
//! assert_eq!(placed.dispatch.worker.as_str(), "worker-1");
//!
//! // Clicking again returns the same desktop.
//! let again = service.allocate(key.clone(), Default::default()).await?;
//! assert_eq!(again.dispatch.id, placed.dispatch.id);
//!
//! // On submission the session is released; releasing twice is harmless.
//! service.release(&key).await?;
//! assert!(service.release(&key).await?.is_none());
//! # Ok(()) }
//! ```

mod admin;
mod allocate;
mod assignment;
mod background;
mod config;
mod credentials;
mod exams;
mod existing;
mod fleet;
mod hints;
mod prewarm;
mod prewarm_target;
mod queue;
mod queue_alerts;
mod reconcile;
mod registration;
mod release;
mod snapshot;
mod start;
mod stats;
mod timed_prewarm;
mod webhooks;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use crate::reconcile::{ExamMigration, FailurePolicy, PolicyChange, ReconcileReport};
pub use admin::{AdminOutcome, DrainInfo, MAX_REASON_CHARS};
pub use allocate::{AllocateOutcome, Allocation};
pub use assignment::{AssignedJoin, MAX_REASON_LEN};
pub use background::{BACKGROUND_LEASE, BackgroundConfig, run_background};
pub use config::ServiceConfig;
pub use credentials::{JoinOutcome, Joined, RotateOutcome};
pub use exams::{Booking, ExamFigures, ExamStatus};
pub use fleet::FleetRepair;
pub use prewarm::{MAX_PREWARM_REQUEST, PrewarmFailure, PrewarmReport};
pub use queue::{
    Departure, PROMOTIONS_PER_TICK, QueueFigures, QueueStanding, QueueTick, QueueView,
    SessionRequest, SessionState, WaitingStudent,
};
pub use reconcile::HealthMonitor;
pub use registration::HeartbeatAck;
pub use stats::{
    ClusterStats, ClusterSummary, DEFAULT_ZONE, WorkerFilter, WorkerSessions, ZoneStats,
};
pub use webhooks::{
    DeliveryReport, MAX_DELIVERIES_LISTED, PURGED_PER_STEP, SendResult, WebhookSender,
    validate_secret,
};

use crate::client::WorkerClient;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind, EventSink, LogSink};
use crate::health::HealthConfig;
use crate::ids::WorkerId;
use crate::reconcile::{GuardHold, MassFailure};
use crate::store::{AuditEntry, Store};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::worker::WorkerView;
use snapshot::SnapshotCache;

/// Builds a [`ClusterService`].
#[derive(Debug)]
pub struct ClusterServiceBuilder {
    store: Arc<dyn Store>,
    client: Arc<dyn WorkerClient>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    config: ServiceConfig,
    webhook_sender: Option<Arc<dyn WebhookSender>>,
}

impl ClusterServiceBuilder {
    /// Sends webhooks through `sender` when this replica leads (default:
    /// none; events still reach the outbox).
    pub fn webhook_sender(mut self, sender: Arc<dyn WebhookSender>) -> Self {
        self.webhook_sender = Some(sender);
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces the clock (default: system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the event sink (default: [`LogSink`]).
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Builds the service. Its start instant is the origin of the restart
    /// grace period.
    pub fn build(self) -> ClusterService {
        let started_at = self.clock.now();
        ClusterService {
            store: self.store,
            client: self.client,
            clock: self.clock,
            events: self.events,
            config: self.config,
            started_at,
            snapshots: SnapshotCache::default(),
            hints: hints::Hints::default(),
            guard: std::sync::Mutex::default(),
            fleet_tally: fleet::FleetTally::default(),
            suspension: std::sync::Mutex::default(),
            queue_episodes: queue_alerts::QueueEpisodes::default(),
            orphan_alerts: std::sync::Mutex::default(),
            webhook_sender: self.webhook_sender,
        }
    }
}

/// The control plane's brain: registry, scheduler, drain, reconcile.
///
/// Cheap operations take `&self`; share it in an `Arc`. Several services on
/// several hosts may share one backend: correctness rests on the backend's
/// atomic steps, never on in-process locks.
#[derive(Debug)]
pub struct ClusterService {
    store: Arc<dyn Store>,
    client: Arc<dyn WorkerClient>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    config: ServiceConfig,
    started_at: Timestamp,
    snapshots: SnapshotCache,
    /// Placement hints and the calendar, as this replica last read them.
    hints: hints::Hints,
    /// This replica's memory of the mass-failure guard (its hold-down).
    guard: std::sync::Mutex<GuardHold>,
    /// Repairs made by heartbeats since this replica's previous pass.
    fleet_tally: fleet::FleetTally,
    /// When the migration suspension this replica reported began (its
    /// first pass holding migration back), while it lasts.
    suspension: std::sync::Mutex<Option<Timestamp>>,
    /// The exams whose forming waiting room this replica reported.
    queue_episodes: queue_alerts::QueueEpisodes,
    /// When this replica last alerted about each worker's orphaned
    /// sessions (the reminders' clock).
    orphan_alerts: std::sync::Mutex<HashMap<WorkerId, Timestamp>>,
    /// Sends the outbox's deliveries when this replica leads.
    webhook_sender: Option<Arc<dyn WebhookSender>>,
}

impl ClusterService {
    /// Starts building a service over `store`, calling workers through
    /// `client`.
    pub fn builder(store: Arc<dyn Store>, client: Arc<dyn WorkerClient>) -> ClusterServiceBuilder {
        ClusterServiceBuilder {
            store,
            client,
            clock: Arc::new(SystemClock),
            events: Arc::new(LogSink),
            config: ServiceConfig::default(),
            webhook_sender: None,
        }
    }

    /// The webhook sender, if deliveries are sent from this replica.
    pub fn webhook_sender(&self) -> Option<&Arc<dyn WebhookSender>> {
        self.webhook_sender.as_ref()
    }

    /// The share of silent workers among `views`, and whether the
    /// mass-failure guard is on: engaged by that share, or held for the
    /// hard timeout (`offline_after`) since it last was
    /// ([`GuardHold`]).
    pub(crate) fn mass_failure_guard(&self, views: &[WorkerView]) -> (MassFailure, bool) {
        let share = MassFailure::of(views);
        let engaged = share.guards(self.config.mass_failure_percent);
        let mut hold = self
            .guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let on = hold.observe(engaged, self.clock.now(), self.config.offline_after);
        (share, on)
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks that the backend answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        self.store.ping().await
    }

    /// Health timing in force, with the restart grace origin.
    pub fn health_config(&self) -> HealthConfig {
        HealthConfig {
            heartbeat_ttl: self.config.heartbeat_ttl,
            offline_after: self.config.offline_after,
            judge_from: self.config.restart_grace.then_some(self.started_at),
        }
    }

    /// Every worker as seen now, read fresh from the backend.
    pub async fn worker_views(&self) -> Result<Vec<WorkerView>> {
        let now = self.clock.now();
        let health = self.health_config();
        let snapshots = self.store.workers().await?;
        Ok(snapshots
            .into_iter()
            .map(|s| WorkerView::new(s, now, &health))
            .collect())
    }

    /// One worker as seen now.
    pub async fn worker_view(&self, id: &WorkerId) -> Result<WorkerView> {
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

    /// Emits an event to the sinks (log, events stream). An event for
    /// webhooks is written to the outbox with its cause first (see
    /// `webhooks`).
    fn emit(&self, kind: EventKind) {
        self.events.emit(&Event {
            at: self.clock.now(),
            kind,
        });
    }

    async fn audit(
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
    fn request_seed(&self, parts: impl Hash) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.config.seed.hash(&mut h);
        parts.hash(&mut h);
        h.finish()
    }
}
