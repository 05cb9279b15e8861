//! Prometheus metrics (OpenMetrics text at `/metrics`).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_workers` | gauge, read at scrape | `status` (every status, zeros included) |
//! | `vdi_slots_max`, `vdi_slots_available` | gauge, read at scrape | |
//! | `vdi_sessions_active` | gauge, read at scrape | |
//! | `vdi_backend_up` | gauge: 1 when the scrape could read the backend | |
//! | `vdi_allocations_total` | counter | `outcome`: `placed`, `existing`, `redispatched`, `no_capacity`, `queued`, `in_progress`, `invalid`, `unavailable`, `error` |
//! | `vdi_allocate_duration_seconds` | histogram | |
//! | `vdi_heartbeats_total` | counter | `result`: `accepted`, `stale`, `rejected` |
//! | `vdi_reconcile_runs_total` | counter | |
//! | `vdi_reconcile_removed_total` | counter | `reason`: `reservation`, `gone`, `stale` |
//! | `vdi_reconcile_migrated_total` | counter | |
//! | `vdi_drift_repaired_total` | counter | |
//! | `vdi_events_total` | counter | `type` |
//!
//! Reconcile figures come from the `reconciled` events, so background and
//! manual passes are both counted.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vdi_cluster_core::service::{AllocateOutcome, ClusterSummary};
use vdi_cluster_core::{ClusterService, Event, EventKind, EventSink, WorkerStatus};

/// Content type of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const STATUSES: [WorkerStatus; 8] = [
    WorkerStatus::Active,
    WorkerStatus::Pending,
    WorkerStatus::Draining,
    WorkerStatus::Drained,
    WorkerStatus::Unhealthy,
    WorkerStatus::Unreachable,
    WorkerStatus::Offline,
    WorkerStatus::Disabled,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    workers: Family<StatusLabel, Gauge>,
    slots_max: Gauge,
    slots_available: Gauge,
    sessions_active: Gauge,
    backend_up: Gauge,
    allocations: Family<OutcomeLabel, Counter>,
    allocate_seconds: Histogram,
    heartbeats: Family<ResultLabel, Counter>,
    reconcile_runs: Counter,
    reconcile_removed: Family<ReasonLabel, Counter>,
    reconcile_migrated: Counter,
    drift_repaired: Counter,
    events: Family<TypeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How an allocation request ended, for `vdi_allocations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationResult<'a> {
    /// Succeeded.
    Done(&'a AllocateOutcome),
    /// `NoCapacity`.
    NoCapacity,
    /// No slot: the student waits in the exam's queue.
    Queued,
    /// Another request is placing the same session.
    InProgress,
    /// Bad input.
    Invalid,
    /// The backend is down.
    Unavailable,
    /// Anything else.
    Error,
}

impl AllocationResult<'_> {
    fn label(self) -> &'static str {
        match self {
            Self::Done(AllocateOutcome::Existing) => "existing",
            Self::Done(AllocateOutcome::Placed { .. }) => "placed",
            Self::Done(AllocateOutcome::Redispatched { .. }) => "redispatched",
            Self::NoCapacity => "no_capacity",
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Invalid => "invalid",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vdi");
        let workers = Family::<StatusLabel, Gauge>::default();
        registry.register("workers", "Workers by status", workers.clone());
        let slots_max = Gauge::default();
        registry.register(
            "slots_max",
            "Slots of healthy, active workers",
            slots_max.clone(),
        );
        let slots_available = Gauge::default();
        registry.register(
            "slots_available",
            "Free slots of healthy, active workers",
            slots_available.clone(),
        );
        let sessions_active = Gauge::default();
        registry.register(
            "sessions_active",
            "Sessions in use across all workers",
            sessions_active.clone(),
        );
        let backend_up = Gauge::default();
        registry.register(
            "backend_up",
            "1 when the last scrape could read the storage backend",
            backend_up.clone(),
        );
        let allocations = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "allocations",
            "Allocation requests by outcome",
            allocations.clone(),
        );
        let allocate_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "allocate_duration_seconds",
            "Time to answer an allocation request",
            allocate_seconds.clone(),
        );
        let heartbeats = Family::<ResultLabel, Counter>::default();
        registry.register("heartbeats", "Heartbeats by result", heartbeats.clone());
        let reconcile_runs = Counter::default();
        registry.register("reconcile_runs", "Reconcile passes", reconcile_runs.clone());
        let reconcile_removed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "reconcile_removed",
            "Dispatches and reservations removed by reconcile",
            reconcile_removed.clone(),
        );
        let reconcile_migrated = Counter::default();
        registry.register(
            "reconcile_migrated",
            "Sessions re-dispatched off failed workers by reconcile",
            reconcile_migrated.clone(),
        );
        let drift_repaired = Counter::default();
        registry.register(
            "drift_repaired",
            "Counters found wrong and repaired by reconcile",
            drift_repaired.clone(),
        );
        let events = Family::<TypeLabel, Counter>::default();
        registry.register("events", "Cluster events by type", events.clone());
        for status in STATUSES {
            workers
                .get_or_create(&StatusLabel {
                    status: status.name(),
                })
                .set(0);
        }
        for result in ["accepted", "stale", "rejected"] {
            heartbeats.get_or_create(&ResultLabel { result }).inc_by(0);
        }
        Self {
            registry,
            workers,
            slots_max,
            slots_available,
            sessions_active,
            backend_up,
            allocations,
            allocate_seconds,
            heartbeats,
            reconcile_runs,
            reconcile_removed,
            reconcile_migrated,
            drift_repaired,
            events,
        }
    }

    /// Counts an allocation request and its latency.
    pub fn allocation(&self, result: AllocationResult<'_>, elapsed: Duration) {
        self.allocations
            .get_or_create(&OutcomeLabel {
                outcome: result.label(),
            })
            .inc();
        self.allocate_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts an applied heartbeat.
    pub fn heartbeat_accepted(&self) {
        self.heartbeats
            .get_or_create(&ResultLabel { result: "accepted" })
            .inc();
    }

    /// Counts a heartbeat older than one already applied.
    pub fn heartbeat_stale(&self) {
        self.heartbeats
            .get_or_create(&ResultLabel { result: "stale" })
            .inc();
    }

    /// Counts a refused heartbeat (credential, body, backend).
    pub fn heartbeat_rejected(&self) {
        self.heartbeats
            .get_or_create(&ResultLabel { result: "rejected" })
            .inc();
    }

    fn observe_event(&self, event: &Event) {
        self.events
            .get_or_create(&TypeLabel {
                r#type: event.kind.name().to_owned(),
            })
            .inc();
        if let EventKind::Reconciled { report } = &event.kind {
            self.reconcile_runs.inc();
            for (reason, n) in [
                ("reservation", report.reservations_reclaimed),
                ("gone", report.gone_removed),
                ("stale", report.stale_removed),
            ] {
                self.reconcile_removed
                    .get_or_create(&ReasonLabel { reason })
                    .inc_by(u64::from(n));
            }
            self.reconcile_migrated.inc_by(u64::from(report.migrated));
            self.drift_repaired.inc_by(report.drift.len() as u64);
        }
    }

    /// Reads the cluster's gauges from `service`, then renders every metric.
    pub async fn render(&self, service: &ClusterService) -> String {
        match service.worker_views().await {
            Ok(views) => {
                for status in STATUSES {
                    let n = views.iter().filter(|v| v.status == status).count();
                    self.workers
                        .get_or_create(&StatusLabel {
                            status: status.name(),
                        })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                let summary = ClusterSummary::of(&views);
                self.slots_max.set(i64::from(summary.total_max_sessions));
                self.slots_available
                    .set(i64::from(summary.total_available_sessions));
                self.sessions_active
                    .set(i64::from(summary.total_active_sessions));
                self.backend_up.set(1);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape could not read the backend");
                self.backend_up.set(0);
            }
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Feeds cluster events into [`Metrics`].
#[derive(Debug, Clone)]
pub struct MetricsSink(pub Arc<Metrics>);

impl EventSink for MetricsSink {
    fn emit(&self, event: &Event) {
        self.0.observe_event(event);
    }
}
