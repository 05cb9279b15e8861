//! How far the leader's reconcile passes got, read at each scrape from the
//! checkpoint the leader saves beside the background lease — so every
//! replica exports the same figures, whichever one leads.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_reconcile_unchecked_age_seconds` | gauge, read at scrape | |
//! | `vdi_reconcile_pass_dispatches_scanned` | gauge, read at scrape | |
//! | `vdi_reconcile_last_pass_duration_seconds` | gauge, read at scrape | |
//!
//! `vdi_reconcile_unchecked_age_seconds` is the age of the oldest
//! unchecked dispatch, at most: the time since the last pass that reached
//! the end of the dispatch keyspace began (every dispatch was checked
//! since, or created after); before any pass completed, the time since the
//! pass under way began; 0 before the leader's first step. It grows while
//! no pass completes — no leader, reconcile disabled, or a pass that keeps
//! failing — and falls back to the last pass's duration when one does.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vdi_cluster_core::ClusterService;

/// The pass series.
#[derive(Debug, Clone, Default)]
pub(super) struct PassSeries {
    unchecked_age: Gauge<f64, AtomicU64>,
    scanned: Gauge,
    last_duration: Gauge<f64, AtomicU64>,
}

impl PassSeries {
    /// Registers the series in `registry` (prefixed `vdi_`).
    pub(super) fn register(registry: &mut Registry) -> Self {
        let series = Self::default();
        registry.register(
            "reconcile_unchecked_age_seconds",
            "Age of the oldest unchecked dispatch, at most: time since the last complete reconcile pass began",
            series.unchecked_age.clone(),
        );
        registry.register(
            "reconcile_pass_dispatches_scanned",
            "Dispatches the reconcile pass under way has read (the last pass's total between passes)",
            series.scanned.clone(),
        );
        registry.register(
            "reconcile_last_pass_duration_seconds",
            "Time from the first step to the last of the last complete reconcile pass",
            series.last_duration.clone(),
        );
        series
    }

    /// Reads the leader's checkpoint; leaves the figures as they were when
    /// the backend cannot be read (`vdi_backend_up` says so).
    pub(super) async fn refresh(&self, service: &ClusterService) {
        let checkpoint = match service.operations().pass_checkpoint().await {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape could not read the reconcile checkpoint");
                return;
            }
        };
        let now = service.clock().now();
        let age = checkpoint.unchecked_age(now).unwrap_or_default();
        self.unchecked_age.set(age.as_secs_f64());
        let scanned = match (&checkpoint.current, &checkpoint.last_complete) {
            (Some(p), _) => p.scanned,
            (None, Some(c)) => c.scanned,
            (None, None) => 0,
        };
        self.scanned.set(i64::try_from(scanned).unwrap_or(i64::MAX));
        let last = checkpoint
            .last_complete
            .map(|c| c.duration().as_secs_f64())
            .unwrap_or_default();
        self.last_duration.set(last);
    }
}
