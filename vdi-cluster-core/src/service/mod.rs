//! Orchestration: the [`ClusterService`] that ties the domain, a [`Store`],
//! a [`WorkerClient`], a [`Clock`] and an [`EventSink`] together.
//!
//! Split by operation: [`heartbeat`](ClusterService::heartbeat) and
//! registration in `registration`, allocation and release in `allocate`,
//! admin transitions in `admin`, reconcile and the health monitor in
//! `reconcile`, prewarm in `prewarm`, read-only views in `stats`, the
//! background loop in `background`.
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
mod background;
mod prewarm;
mod reconcile;
mod registration;
mod stats;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use crate::reconcile::{FailurePolicy, PolicyChange, ReconcileReport};
pub use admin::{AdminOutcome, DrainInfo};
pub use allocate::{AllocateOutcome, Allocation};
pub use background::{BACKGROUND_LEASE, BackgroundConfig, run_background};
pub use prewarm::{MAX_PREWARM_REQUEST, PrewarmFailure, PrewarmReport};
pub use reconcile::HealthMonitor;
pub use registration::HeartbeatAck;
pub use stats::{
    ClusterStats, ClusterSummary, DEFAULT_ZONE, WorkerFilter, WorkerSessions, ZoneStats,
};

use crate::client::WorkerClient;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind, EventSink, LogSink};
use crate::health::{HealthConfig, ResourceThresholds};
use crate::ids::WorkerId;
use crate::scheduler::{RankIndex, SchedulingPolicy};
use crate::store::{AuditEntry, Store};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::worker::WorkerView;

/// Every tunable of the service, with the seeds' defaults. Build it with
/// struct update syntax: `ServiceConfig { retry_count: 5, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// `WORKER_HEARTBEAT_TTL_SEC` (120 s).
    pub heartbeat_ttl: Duration,
    /// Hard timeout after which a silent worker is offline (600 s).
    pub offline_after: Duration,
    /// After a control-plane start, judge no worker as silent for longer
    /// than since the start (true).
    pub restart_grace: bool,
    /// Resource thresholds (seed 002).
    pub thresholds: ResourceThresholds,
    /// `WORKER_STICKY_EXAM_TTL_SEC` (21600 s).
    pub sticky_ttl: Duration,
    /// `WORKER_ALLOCATE_RETRY_COUNT` (3): worker calls per allocation.
    pub retry_count: u32,
    /// `CLUSTER_API_TIMEOUT_MS` (15000 ms): timeout of one worker call.
    pub worker_call_timeout: Duration,
    /// `VDI_ALLOCATE_TIMEOUT_SEC` (90 s): reservations older are reclaimed.
    pub allocate_timeout: Duration,
    /// `WORKER_DISPATCH_STALE_SEC` (21600 s): active dispatches older, with
    /// no live session reported, are removed.
    pub dispatch_stale: Duration,
    /// `WORKER_DISPATCH_SCAN_COUNT` (200): dispatches per scan page.
    pub scan_count: usize,
    /// Scan pages per reconcile pass (50).
    pub scan_pages_per_pass: usize,
    /// A session missing from a worker's live list is removed only if it was
    /// activated at least this long before that heartbeat (60 s).
    pub live_session_grace: Duration,
    /// What happens to sessions of failed workers.
    pub failure_policy: FailurePolicy,
    /// No migration when at least this percentage of enabled workers is
    /// silent at once (50).
    pub mass_failure_percent: u32,
    /// Spread or pack.
    pub scheduling: SchedulingPolicy,
    /// Prefer workers holding sessions of the exam (true).
    pub exam_affinity: bool,
    /// Herd damping width (3).
    pub herd_width: usize,
    /// `VDI_PREWARM_MAX` (80).
    pub prewarm_max: u32,
    /// `VDI_PREWARM_CONCURRENCY` (4).
    pub prewarm_concurrency: usize,
    /// Interval the heartbeat answer asks workers to use (20 s).
    pub heartbeat_interval: Duration,
    /// Jitter of that interval, percent either way (10).
    pub heartbeat_jitter_percent: u32,
    /// How long a snapshot of the worker list is reused for ranking
    /// (500 ms; zero: always read it fresh).
    pub snapshot_max_age: Duration,
    /// Seed of tie-breaking and herd damping (random by default).
    pub seed: u64,
    /// This replica's name, as lease holder.
    pub replica_id: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let replica = uuid::Uuid::new_v4();
        Self {
            heartbeat_ttl: Duration::from_secs(120),
            offline_after: Duration::from_secs(600),
            restart_grace: true,
            thresholds: ResourceThresholds::default(),
            sticky_ttl: Duration::from_secs(21_600),
            retry_count: 3,
            worker_call_timeout: Duration::from_millis(15_000),
            allocate_timeout: Duration::from_secs(90),
            dispatch_stale: Duration::from_secs(21_600),
            scan_count: 200,
            scan_pages_per_pass: 50,
            live_session_grace: Duration::from_secs(60),
            failure_policy: FailurePolicy::Automatic,
            mass_failure_percent: 50,
            scheduling: SchedulingPolicy::Spread,
            exam_affinity: true,
            herd_width: 3,
            prewarm_max: 80,
            prewarm_concurrency: 4,
            heartbeat_interval: Duration::from_secs(20),
            heartbeat_jitter_percent: 10,
            snapshot_max_age: Duration::from_millis(500),
            seed: replica.as_u64_pair().0,
            replica_id: format!("replica-{}", &replica.simple().to_string()[..8]),
        }
    }
}

/// Builds a [`ClusterService`].
#[derive(Debug)]
pub struct ClusterServiceBuilder {
    store: Arc<dyn Store>,
    client: Arc<dyn WorkerClient>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    config: ServiceConfig,
}

impl ClusterServiceBuilder {
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
            cache: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

#[derive(Debug)]
struct CachedSnapshot {
    fetched: Instant,
    index: Arc<RankIndex>,
    known_full: HashSet<WorkerId>,
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
    cache: Mutex<Option<CachedSnapshot>>,
    refresh: tokio::sync::Mutex<()>,
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
        }
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

    /// The ranking snapshot, indexed: reused for up to `snapshot_max_age`,
    /// with the workers found full since it was read. `fresh` asks for one
    /// read after this call began. Concurrent refreshes are coalesced: one
    /// request reads the fleet, the others wait for its result instead of
    /// each reading the whole fleet again.
    async fn ranking_snapshot(&self, fresh: bool) -> Result<(Arc<RankIndex>, HashSet<WorkerId>)> {
        let max_age = self.config.snapshot_max_age;
        if max_age.is_zero() {
            return Ok((
                Arc::new(RankIndex::new(self.worker_views().await?)),
                HashSet::new(),
            ));
        }
        let asked = Instant::now();
        let usable = |c: &CachedSnapshot| {
            if fresh {
                c.fetched >= asked
            } else {
                c.fetched.elapsed() < max_age
            }
        };
        if let Some(hit) = self.cached(usable) {
            return Ok(hit);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(hit) = self.cached(usable) {
            return Ok(hit);
        }
        let fetched = Instant::now();
        let index = Arc::new(RankIndex::new(self.worker_views().await?));
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedSnapshot {
            fetched,
            index: Arc::clone(&index),
            known_full: HashSet::new(),
        });
        Ok((index, HashSet::new()))
    }

    fn cached(
        &self,
        usable: impl Fn(&CachedSnapshot) -> bool,
    ) -> Option<(Arc<RankIndex>, HashSet<WorkerId>)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .as_ref()
            .filter(|c| usable(c))
            .map(|c| (Arc::clone(&c.index), c.known_full.clone()))
    }

    fn note_full(&self, worker: &WorkerId) {
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            c.known_full.insert(worker.clone());
        }
    }

    fn invalidate_snapshot(&self) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

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
