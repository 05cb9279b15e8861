//! Paced starts per worker, read at each scrape from the store's start
//! queues (so every replica exports the same figures). Exported only when
//! starts are paced; the series are rebuilt at each scrape, so a removed
//! worker's go with it.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_worker_start_seconds` | gauge, read at scrape | `worker`, `quantile` (`0.5`, `0.95`) |
//! | `vdi_worker_start_limit` | gauge, read at scrape | `worker` |
//! | `vdi_worker_starts_in_flight` | gauge, read at scrape | `worker` |
//! | `vdi_worker_starts_waiting` | gauge, read at scrape | `worker` |

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vdi_cluster_core::WorkerView;
use vdi_cluster_core::service::ClusterService;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QuantileLabel {
    worker: String,
    quantile: &'static str,
}

/// The start series.
#[derive(Debug, Clone, Default)]
pub(super) struct StartSeries {
    seconds: Family<QuantileLabel, Gauge<f64, AtomicU64>>,
    limit: Family<WorkerLabel, Gauge>,
    in_flight: Family<WorkerLabel, Gauge>,
    waiting: Family<WorkerLabel, Gauge>,
}

impl StartSeries {
    /// Registers the series in `registry` (prefixed `vdi_`).
    pub(super) fn register(registry: &mut Registry) -> Self {
        let series = Self::default();
        registry.register(
            "worker_start_seconds",
            "Start time of a worker's last starts (paced starts), by quantile",
            series.seconds.clone(),
        );
        registry.register(
            "worker_start_limit",
            "Starts a worker may run at once now, adapted from its start times",
            series.limit.clone(),
        );
        registry.register(
            "worker_starts_in_flight",
            "Starts holding a worker's start permit",
            series.in_flight.clone(),
        );
        registry.register(
            "worker_starts_waiting",
            "Starts waiting for a worker's start permit",
            series.waiting.clone(),
        );
        series
    }

    /// Reads each worker's start pacing; nothing when starts are not
    /// paced. A worker whose figures cannot be read is left out.
    pub(super) async fn refresh(&self, service: &ClusterService, views: &[WorkerView]) {
        self.seconds.clear();
        self.limit.clear();
        self.in_flight.clear();
        self.waiting.clear();
        if !service.config().pacing.enabled {
            return;
        }
        for view in views {
            let pacing = match service.placement().start_pacing(&view.record).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(worker = %view.id(), error = %e, "metrics scrape could not read a worker's starts");
                    continue;
                }
            };
            let worker = view.id().to_string();
            for (quantile, ms) in [("0.5", pacing.stats.p50_ms), ("0.95", pacing.stats.p95_ms)] {
                let label = QuantileLabel {
                    worker: worker.clone(),
                    quantile,
                };
                self.seconds
                    .get_or_create(&label)
                    .set(f64::from(ms) / 1000.0);
            }
            let label = WorkerLabel { worker };
            self.limit
                .get_or_create(&label)
                .set(i64::from(pacing.limit));
            self.in_flight
                .get_or_create(&label)
                .set(i64::from(pacing.in_flight));
            self.waiting
                .get_or_create(&label)
                .set(i64::from(pacing.waiting));
        }
    }
}
