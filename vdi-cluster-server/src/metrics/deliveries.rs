//! Webhook deliveries by result: a [`WebhookSender`] that counts what the
//! sender it wraps got back into `vdi_webhook_deliveries_total{result}`
//! and times it into `vdi_webhook_delivery_duration_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use vdi_cluster_core::outbox::{OutboxEntry, WebhookEndpoint};
use vdi_cluster_core::service::{SendResult, WebhookSender};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct DeliveryLabel {
    result: &'static str,
}

/// Every `result` of `vdi_webhook_deliveries_total`: answered 2xx, answered
/// otherwise, no answer (timeout, connection).
pub(super) const DELIVERY_RESULTS: [&str; 3] = ["delivered", "refused", "error"];

/// The series a [`CountedSender`] writes.
#[derive(Debug, Clone)]
pub(super) struct DeliverySeries {
    pub(super) results: Family<DeliveryLabel, Counter>,
    pub(super) seconds: Histogram,
}

impl DeliverySeries {
    pub(super) fn new(seconds: Histogram) -> Self {
        let results = Family::<DeliveryLabel, Counter>::default();
        for result in DELIVERY_RESULTS {
            results.get_or_create(&DeliveryLabel { result }).inc_by(0);
        }
        Self { results, seconds }
    }
}

fn result_label(r: &SendResult) -> &'static str {
    match r.status {
        Some(s) if (200..300).contains(&s) => "delivered",
        Some(_) => "refused",
        None => "error",
    }
}

/// Counts and times every delivery of the wrapped sender.
#[derive(Debug)]
pub struct CountedSender {
    inner: Arc<dyn WebhookSender>,
    series: DeliverySeries,
}

impl CountedSender {
    pub(super) fn new(inner: Arc<dyn WebhookSender>, series: DeliverySeries) -> Self {
        Self { inner, series }
    }
}

#[async_trait]
impl WebhookSender for CountedSender {
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        entry: &OutboxEntry,
        timeout: Duration,
    ) -> SendResult {
        let started = Instant::now();
        let result = self.inner.send(endpoint, entry, timeout).await;
        self.series
            .results
            .get_or_create(&DeliveryLabel {
                result: result_label(&result),
            })
            .inc();
        self.series.seconds.observe(started.elapsed().as_secs_f64());
        result
    }
}
