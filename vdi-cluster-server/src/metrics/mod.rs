//! Prometheus metrics (OpenMetrics text at `/metrics`).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_workers` | gauge, read at scrape | `status` (every status, zeros included) |
//! | `vdi_slots_max`, `vdi_slots_available` | gauge, read at scrape | |
//! | `vdi_sessions_active` | gauge, read at scrape | |
//! | `vdi_backend_up` | gauge: 1 when the scrape could read the backend | |
//! | `vdi_allocations_total` | counter | `outcome`: `placed`, `existing`, `redispatched`, `no_capacity`, `queued`, `starting` (paced starts: answered before the desktop is up), `in_progress`, `invalid`, `unavailable`, `error` |
//! | `vdi_allocate_duration_seconds` | histogram | `outcome`, as `vdi_allocations_total` |
//! | `vdi_heartbeats_total` | counter | `result`: `accepted`, `stale`, `rejected` |
//! | `vdi_heartbeats_refused_total` | counter | `reason`: `body`, `credential`, `forbidden`, `too_large`, `invalid`, `throttled`, `backend`, `error` |
//! | `vdi_heartbeat_duration_seconds` | histogram: time to apply a heartbeat | |
//! | `vdi_worker_call_duration_seconds` | histogram | `call`: `allocate`, `release`, `prewarm`, `discard_prewarm`, `check` (a rehearsal's); `result`: `ok`, `timeout`, `unreachable`, `refused`, `bad_answer` |
//! | `vdi_reconcile_duration_seconds` | histogram: one reconcile step (of the leader's pass, or an operator's whole pass) | |
//! | `vdi_webhook_deliveries_total` | counter | `result`: `delivered` (2xx), `refused` (another status), `error` (no answer) |
//! | `vdi_webhook_delivery_duration_seconds` | histogram: one delivery attempt | |
//! | `vdi_worker_info` | gauge, 1 per worker | `worker`, `zone`, `status` |
//! | `vdi_worker_slots_max`, `vdi_worker_slots_used`, `vdi_worker_sessions` | gauge, read at scrape | `worker` |
//! | `vdi_worker_heartbeat_age_seconds` | gauge, read at scrape | `worker` |
//! | `vdi_worker_cpu_usage_ratio`, `vdi_worker_memory_usage_ratio`, `vdi_worker_disk_usage_ratio` | gauge (0–1), as last reported | `worker` |
//! | `vdi_worker_heartbeats_total` | counter | `worker`; `result`: `accepted`, `stale`, `refused` |
//! | `vdi_worker_start_seconds` (`quantile` `0.5`, `0.95`), `vdi_worker_start_limit`, `vdi_worker_starts_in_flight`, `vdi_worker_starts_waiting` | gauge, read at scrape with paced starts ([`starts`]) | `worker` |
//! | `vdi_reconcile_runs_total` | counter: reconcile steps | |
//! | `vdi_reconcile_passes_completed_total` | counter: steps that reached the end of the dispatch keyspace | |
//! | `vdi_reconcile_unchecked_age_seconds`, `vdi_reconcile_pass_dispatches_scanned`, `vdi_reconcile_last_pass_duration_seconds` | gauge, read at scrape ([`passes`]) | |
//! | `vdi_reconcile_removed_total` | counter | `reason`: `reservation`, `gone`, `stale`, `lost` (a restarted worker no longer runs it: by its heartbeats and the pass) |
//! | `vdi_reconcile_migrated_total` | counter | |
//! | `vdi_drift_repaired_total` | counter | |
//! | `vdi_events_total` | counter | `type` |
//! | `vdi_capacity_requests`, `vdi_capacity_request_slots` | gauge, read at scrape ([`capacity`]) | `state` |
//! | `vdi_exam_rehearsal_go`, `vdi_exam_rehearsal_workers`, `vdi_exam_rehearsal_missing_students` | gauge, read at scrape ([`rehearsals`]) | `exam`; `outcome` for the workers |
//! | `vdi_stats_cache_answers_total` | counter: cluster statistics answers (`--stats-cache-sec`) | `result`: `hit` (from this replica's window), `miss` (read from the store) |
//!
//! Reconcile figures come from the `reconciled` events, so background steps
//! and manual passes are both counted; how far the leader's pass got is
//! read from the checkpoint beside its lease ([`passes`]), the same on
//! every replica. Per-worker series ([`workers`]) exist
//! only for workers the registry holds at the scrape: a removed worker's
//! series disappear with it. Per-exam series: [`exams`].

mod calls;
mod capacity;
mod deliveries;
mod exams;
mod lost;
mod passes;
mod rehearsals;
mod starts;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vdi_cluster_core::service::{AllocateOutcome, ClusterSummary, WebhookSender};
use vdi_cluster_core::{
    ClusterService, Event, EventKind, EventSink, WorkerClient, WorkerId, WorkerStatus,
};

pub use calls::TimedClient;
pub use deliveries::CountedSender;
pub use workers::{HeartbeatResult, WorkerSeries};

pub use exams::{ExamMetrics, MAX_TRACKED_EXAMS};

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
    allocate_seconds: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
    heartbeats: Family<ResultLabel, Counter>,
    heartbeats_refused: Family<ReasonLabel, Counter>,
    heartbeat_seconds: Histogram,
    worker_calls: calls::CallHistograms,
    reconcile_seconds: Histogram,
    workers_series: Arc<WorkerSeries>,
    deliveries: deliveries::DeliverySeries,
    reconcile_runs: Counter,
    passes_completed: Counter,
    passes: passes::PassSeries,
    capacity: capacity::CapacitySeries,
    starts: starts::StartSeries,
    reconcile_removed: Family<ReasonLabel, Counter>,
    reconcile_migrated: Counter,
    drift_repaired: Counter,
    stats_cache: Family<ResultLabel, Counter>,
    events: Family<TypeLabel, Counter>,
    exams: ExamMetrics,
    lost: lost::LostMetrics,
    rehearsals: rehearsals::RehearsalSeries,
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
    /// Paced starts: the seat is held, the desktop starts after the answer.
    Starting,
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
            Self::Starting => "starting",
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
        let allocate_seconds: Family<OutcomeLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "allocate_duration_seconds",
            "Time to answer an allocation request, by outcome",
            allocate_seconds.clone(),
        );
        let heartbeats = Family::<ResultLabel, Counter>::default();
        registry.register("heartbeats", "Heartbeats by result", heartbeats.clone());
        let heartbeats_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "heartbeats_refused",
            "Heartbeats refused, by reason",
            heartbeats_refused.clone(),
        );
        let heartbeat_seconds = latency_histogram();
        registry.register(
            "heartbeat_duration_seconds",
            "Time to apply a heartbeat",
            heartbeat_seconds.clone(),
        );
        let worker_calls = calls::call_histograms();
        registry.register(
            "worker_call_duration_seconds",
            "Calls from the control plane to workers, by call and result",
            worker_calls.clone(),
        );
        let reconcile_seconds = latency_histogram();
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile step",
            reconcile_seconds.clone(),
        );
        let deliveries = deliveries::DeliverySeries::new(latency_histogram());
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by result",
            deliveries.results.clone(),
        );
        registry.register(
            "webhook_delivery_duration_seconds",
            "Time of one webhook delivery attempt",
            deliveries.seconds.clone(),
        );
        let workers_series = Arc::new(WorkerSeries::default());
        registry.register_collector(Box::new(Arc::clone(&workers_series)));
        let reconcile_runs = Counter::default();
        registry.register("reconcile_runs", "Reconcile steps", reconcile_runs.clone());
        let passes_completed = Counter::default();
        registry.register(
            "reconcile_passes_completed",
            "Reconcile steps that reached the end of the dispatch keyspace",
            passes_completed.clone(),
        );
        let passes = passes::PassSeries::register(&mut registry);
        let capacity = capacity::CapacitySeries::register(&mut registry);
        let starts = starts::StartSeries::register(&mut registry);
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
        let stats_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "stats_cache_answers",
            "Cluster statistics answers, from the cache (hit) or the store (miss)",
            stats_cache.clone(),
        );
        let events = Family::<TypeLabel, Counter>::default();
        registry.register("events", "Cluster events by type", events.clone());
        let exams = ExamMetrics::register(&mut registry);
        let lost = lost::LostMetrics::register(&mut registry);
        let rehearsals = rehearsals::RehearsalSeries::register(&mut registry);
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
        for result in ["hit", "miss"] {
            stats_cache.get_or_create(&ResultLabel { result }).inc_by(0);
        }
        for reason in REFUSAL_REASONS {
            heartbeats_refused
                .get_or_create(&ReasonLabel { reason })
                .inc_by(0);
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
            heartbeats_refused,
            heartbeat_seconds,
            worker_calls,
            reconcile_seconds,
            workers_series,
            reconcile_runs,
            passes_completed,
            passes,
            capacity,
            starts,
            reconcile_removed,
            reconcile_migrated,
            drift_repaired,
            stats_cache,
            events,
            exams,
            lost,
            rehearsals,
            deliveries,
        }
    }

    /// The per-exam series and this replica's allocation figures per exam.
    pub fn exams(&self) -> &ExamMetrics {
        &self.exams
    }

    /// Counts a cluster statistics answer: from the cache's window (`hit`)
    /// or read from the store.
    pub fn count_stats_answer(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.stats_cache
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Cluster statistics answers counted so far: `(hits, misses)`.
    pub fn stats_answers(&self) -> (u64, u64) {
        let count = |result| {
            self.stats_cache
                .get_or_create(&ResultLabel { result })
                .get()
        };
        (count("hit"), count("miss"))
    }

    /// Counts an allocation request and its latency.
    pub fn allocation(&self, result: AllocationResult<'_>, elapsed: Duration) {
        let label = OutcomeLabel {
            outcome: result.label(),
        };
        self.allocations.get_or_create(&label).inc();
        self.allocate_seconds
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a heartbeat: of `worker` when its body named one, refused
    /// with `outcome`'s status, applied in `elapsed` when it got that far.
    pub fn heartbeat(
        &self,
        worker: Option<&WorkerId>,
        outcome: HeartbeatOutcome,
        elapsed: Option<Duration>,
    ) {
        let (result, per_worker) = match outcome {
            HeartbeatOutcome::Accepted => ("accepted", HeartbeatResult::Accepted),
            HeartbeatOutcome::Stale => ("stale", HeartbeatResult::Stale),
            HeartbeatOutcome::Refused(status) => {
                self.heartbeats_refused
                    .get_or_create(&ReasonLabel {
                        reason: refusal_reason(status),
                    })
                    .inc();
                ("rejected", HeartbeatResult::Refused)
            }
        };
        self.heartbeats.get_or_create(&ResultLabel { result }).inc();
        if let Some(worker) = worker {
            self.workers_series.heartbeat(worker, per_worker);
        }
        if let Some(elapsed) = elapsed {
            self.heartbeat_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// `sender`, counted into `vdi_webhook_deliveries_total` and timed into
    /// `vdi_webhook_delivery_duration_seconds`.
    pub fn counted_sender(&self, sender: Arc<dyn WebhookSender>) -> Arc<dyn WebhookSender> {
        Arc::new(CountedSender::new(sender, self.deliveries.clone()))
    }

    /// `client`, timed into `vdi_worker_call_duration_seconds`.
    pub fn timed_client(&self, client: Arc<dyn WorkerClient>) -> Arc<dyn WorkerClient> {
        Arc::new(TimedClient::new(client, self.worker_calls.clone()))
    }

    fn observe_event(&self, event: &Event) {
        self.events
            .get_or_create(&TypeLabel {
                r#type: event.kind.name().to_owned(),
            })
            .inc();
        if let EventKind::Reconciled { report } = &event.kind {
            self.reconcile_runs.inc();
            if report.pass.complete {
                self.passes_completed.inc();
            }
            self.reconcile_seconds
                .observe(event.at.since(report.started_at).as_secs_f64());
            for (reason, n) in [
                ("reservation", report.reservations_reclaimed),
                ("gone", report.gone_removed),
                ("stale", report.stale_removed),
                ("lost", report.sessions_lost),
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
        match service.fleet().worker_views().await {
            Ok(views) => {
                self.workers_series.refresh(&views, service.clock().now());
                self.starts.refresh(service, &views).await;
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
        let booked = self.exams.refresh(service).await;
        self.lost.refresh(service, &booked).await;
        self.rehearsals.refresh(service, &booked).await;
        self.passes.refresh(service).await;
        self.capacity.refresh(service).await;
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// What became of a heartbeat, for [`Metrics::heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// Applied.
    Accepted,
    /// Older than one already applied: changed nothing.
    Stale,
    /// Refused with this status.
    Refused(StatusCode),
}

/// Every `reason` of `vdi_heartbeats_refused_total` (all present from the
/// start, at zero, so a rate is defined before the first refusal).
const REFUSAL_REASONS: [&str; 8] = [
    "body",
    "credential",
    "forbidden",
    "too_large",
    "invalid",
    "throttled",
    "backend",
    "error",
];

fn refusal_reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "body",
        StatusCode::UNAUTHORIZED => "credential",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "throttled",
        StatusCode::SERVICE_UNAVAILABLE => "backend",
        _ => "error",
    }
}

/// Buckets from 1 ms to about 65 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Feeds cluster events into [`Metrics`].
#[derive(Debug, Clone)]
pub struct MetricsSink(pub Arc<Metrics>);

impl EventSink for MetricsSink {
    fn emit(&self, event: &Event) {
        self.0.observe_event(event);
    }
}
