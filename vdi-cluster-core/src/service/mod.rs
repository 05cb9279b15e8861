//! Orchestration: the [`ClusterService`], the one front door that ties the
//! domain, a [`Store`], a [`WorkerClient`], a [`Clock`] and an
//! [`EventSink`] together, and hands out its four wings.
//!
//! | wing | reached by | what it holds |
//! |---|---|---|
//! | [`Placement`] | [`placement()`](ClusterService::placement) | the session API: request (place or queue), allocate with failover, release, the waiting room's claim; the ranking snapshot and placement hints |
//! | [`Fleet`] | [`fleet()`](ClusterService::fleet) | heartbeats and registration, the fleet's report as truth (adoption, stops), assigned codes, workers' credentials, drain / activate / disable |
//! | [`Exams`] | [`exams()`](ClusterService::exams) | the calendar with admission, prewarm (on request, timed, kept to target), the waiting room's tending and views |
//! | [`Operations`] | [`operations()`](ClusterService::operations) | reconcile and the health monitor, the background loop, webhook endpoints and delivery, the cluster's statistics |
//!
//! Each wing owns only its own state and caches; all share one `Arc` of
//! the common parts (`shared`: store, client, clock, events, configuration,
//! and the writes that carry an outbox entry). Wings depend one way:
//! placement on nothing but the common parts, fleet and exams on
//! placement, operations on all three.
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
//! // A worker heartbeats: 8 vCPU / 12 GiB, VM 1.5 / 2048 → 4 slots (the
//! // runbook's example, docs/compat/exam-platform-runbook.md).
//! service.fleet().heartbeat(heartbeat_for("worker-1", 8.0, 12288, 0)).await?;
//!
//! // A student clicks "start".
//! let key = SessionKey::parse("exam-42", "student-7")?;
//! let placed = service.placement().allocate(key.clone(), Default::default()).await?;
//! assert_eq!(placed.dispatch.worker.as_str(), "worker-1");
//!
//! // Clicking again returns the same desktop.
//! let again = service.placement().allocate(key.clone(), Default::default()).await?;
//! assert_eq!(again.dispatch.id, placed.dispatch.id);
//!
//! // On submission the session is released; releasing twice is harmless.
//! service.placement().release(&key).await?;
//! assert!(service.placement().release(&key).await?.is_none());
//! # Ok(()) }
//! ```

mod config;
mod exams;
mod fleet;
mod operations;
mod placement;
mod shared;

use std::sync::Arc;

pub use crate::reconcile::{ExamMigration, FailurePolicy, PolicyChange, ReconcileReport};
pub use config::{PacingConfig, RehearsalConfig, ServiceConfig};
pub use exams::{
    Booking, EXPIRY_LOOKBACK, EndChange, EndChanged, ExamFigures, ExamStarts, ExamStatus, Exams,
    ExpiryTick, LostFigures, MAX_PREWARM_REQUEST, PROMOTIONS_PER_TICK, PrewarmFailure,
    PrewarmReport, QueueFigures, QueueTick, QueueView, RehearsalReport, SessionEnd, SessionLedger,
    WaitingStudent,
};
pub use fleet::{
    AdminOutcome, AssignedJoin, DEFAULT_MAINTENANCE_RANGE, DrainAt, DrainInfo, Fleet, FleetRepair,
    FreezeOverride, FrozenChange, HeartbeatAck, JoinOutcome, Joined, MAX_MAINTENANCE_GROUP,
    MAX_MAINTENANCE_RANGE, MAX_REASON_CHARS, MAX_REASON_LEN, MAX_SCHEDULED_LISTED, MIN_MAINTENANCE,
    MaintenancePlan, MaintenanceQuery, RotateOutcome,
};
pub use operations::{
    BACKGROUND_LEASE, BackgroundConfig, CapacityTick, ClusterStats, ClusterSummary, DEFAULT_ZONE,
    DeliveryReport, HealthMonitor, Operations, PURGED_PER_STEP, SendResult, WebhookSender,
    WorkerFilter, WorkerSessions, ZoneStats, run_background, validate_secret,
};
pub use placement::{
    AllocateOutcome, Allocation, Departure, Placement, QueueStanding, SessionRequest, SessionState,
    StartPacing, Starting,
};

use crate::client::WorkerClient;
use crate::error::Result;
use crate::events::{EventSink, LogSink};
use crate::scale::ScaleHook;
use crate::store::Store;
use crate::time::{Clock, SystemClock};
use shared::Shared;

/// Builds a [`ClusterService`].
#[derive(Debug)]
pub struct ClusterServiceBuilder {
    store: Arc<dyn Store>,
    client: Arc<dyn WorkerClient>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    config: ServiceConfig,
    webhook_sender: Option<Arc<dyn WebhookSender>>,
    scale_hook: Option<Arc<dyn ScaleHook>>,
}

impl ClusterServiceBuilder {
    /// Asks `hook` for workers when booked exams will be short, and gives
    /// them back after (default: none; see the `scale` module).
    pub fn scale_hook(mut self, hook: Arc<dyn ScaleHook>) -> Self {
        self.scale_hook = Some(hook);
        self
    }

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

    /// Builds the service and its wings. Its start instant is the origin
    /// of the restart grace period.
    pub fn build(self) -> ClusterService {
        let shared = Arc::new(Shared::new(
            self.store,
            self.client,
            self.clock,
            self.events,
            self.config,
        ));
        let placement = Arc::new(Placement::new(Arc::clone(&shared)));
        let fleet = Arc::new(Fleet::new(Arc::clone(&shared), Arc::clone(&placement)));
        let exams = Arc::new(Exams::new(Arc::clone(&shared), Arc::clone(&placement)));
        let operations = Arc::new(Operations::new(
            Arc::clone(&shared),
            Arc::clone(&placement),
            Arc::clone(&fleet),
            Arc::clone(&exams),
            self.webhook_sender,
            self.scale_hook,
        ));
        ClusterService {
            shared,
            placement,
            fleet,
            exams,
            operations,
        }
    }
}

/// The control plane's front door: hands out the wings that do the work
/// (see the [module docs](self)).
///
/// Cheap operations take `&self`; share it in an `Arc`. Several services on
/// several hosts may share one backend: correctness rests on the backend's
/// atomic steps, never on in-process locks.
#[derive(Debug)]
pub struct ClusterService {
    shared: Arc<Shared>,
    placement: Arc<Placement>,
    fleet: Arc<Fleet>,
    exams: Arc<Exams>,
    operations: Arc<Operations>,
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
            scale_hook: None,
        }
    }

    /// Where sessions go: the session API, allocation, release.
    pub fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// The workers: heartbeats, registration, credentials, drain.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// The calendar: exams, admission, prewarm, waiting rooms.
    pub fn exams(&self) -> &Arc<Exams> {
        &self.exams
    }

    /// Reconcile, the background loop, webhooks, statistics.
    pub fn operations(&self) -> &Arc<Operations> {
        &self.operations
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// Checks that the backend answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        self.shared.store.ping().await
    }
}
