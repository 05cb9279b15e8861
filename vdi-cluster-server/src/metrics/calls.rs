//! Latency of the control plane's calls to workers: a [`WorkerClient`]
//! that times the client it wraps into
//! `vdi_worker_call_duration_seconds{call, result}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use vdi_cluster_core::rehearsal::CheckReport;
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{DesktopSettings, ExamId, SessionKey, WorkerCallError, WorkerClient};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct CallLabels {
    call: &'static str,
    result: &'static str,
}

/// The histogram family the calls are timed into.
pub(super) type CallHistograms = Family<CallLabels, Histogram, fn() -> Histogram>;

/// A new, empty family.
pub(super) fn call_histograms() -> CallHistograms {
    Family::new_with_constructor(super::latency_histogram)
}

fn result_label(error: Option<&WorkerCallError>) -> &'static str {
    match error {
        None => "ok",
        Some(WorkerCallError::Timeout) => "timeout",
        Some(WorkerCallError::Unreachable(_)) => "unreachable",
        Some(WorkerCallError::Refused { .. }) => "refused",
        Some(_) => "bad_answer",
    }
}

/// Times every call of the wrapped client.
#[derive(Debug)]
pub struct TimedClient {
    inner: Arc<dyn WorkerClient>,
    histograms: CallHistograms,
}

impl TimedClient {
    pub(super) fn new(inner: Arc<dyn WorkerClient>, histograms: CallHistograms) -> Self {
        Self { inner, histograms }
    }

    async fn timed<T>(
        &self,
        call: &'static str,
        run: impl Future<Output = Result<T, WorkerCallError>>,
    ) -> Result<T, WorkerCallError> {
        let started = Instant::now();
        let result = run.await;
        self.histograms
            .get_or_create(&CallLabels {
                call,
                result: result_label(result.as_ref().err()),
            })
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl WorkerClient for TimedClient {
    async fn allocate(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
        settings: &DesktopSettings,
    ) -> Result<serde_json::Value, WorkerCallError> {
        self.timed("allocate", self.inner.allocate(worker, key, settings))
            .await
    }

    async fn release(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
    ) -> Result<(), WorkerCallError> {
        self.timed("release", self.inner.release(worker, key)).await
    }

    async fn prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        count: u32,
        settings: &DesktopSettings,
    ) -> Result<u32, WorkerCallError> {
        self.timed("prewarm", self.inner.prewarm(worker, exam, count, settings))
            .await
    }

    async fn discard_prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
    ) -> Result<u32, WorkerCallError> {
        self.timed("discard_prewarm", self.inner.discard_prewarm(worker, exam))
            .await
    }

    async fn check(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        settings: &DesktopSettings,
    ) -> Result<CheckReport, WorkerCallError> {
        self.timed("check", self.inner.check(worker, exam, settings))
            .await
    }
}
