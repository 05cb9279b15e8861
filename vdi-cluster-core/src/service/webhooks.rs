//! Webhooks: endpoints an admin configures, events into the outbox, and
//! the delivery step the leader runs.
//!
//! Events reach the outbox three ways, each atomic with its cause:
//!
//! * a leader's observation (availability transitions) is written at once,
//!   fenced by the background lease, under a key naming the transition
//!   ([`alerts::observed_key`]): a second leader observing the same
//!   transition writes nothing;
//! * an admin policy change is written by
//!   [`Outbox::put_worker_with_outbox`] with the record;
//! * other events (reconcile's migrations, registrations, exam risk) are
//!   kept by the replica that emitted them and written by its next
//!   background tick ([`ClusterService::flush_outbox`]).
//!
//! [`ClusterService::deliver_due`] leases due deliveries, sends them
//! through a [`WebhookSender`], and records each attempt with the next
//! state that [`RetryPolicy`](crate::outbox::RetryPolicy) decides.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::ClusterService;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::outbox::{
    Attempt, Delivery, LeasedDelivery, Next, OutboxEntry, WebhookEndpoint, alerts,
};
use crate::store::Lease;
use crate::validation::ValidationError;

/// Deliveries sent at once by one step.
const SEND_CONCURRENCY: usize = 8;
/// Events kept for the next flush at most (the oldest are dropped beyond).
const PENDING_KEPT: usize = 10_000;
/// Deliveries listed at most.
pub const MAX_DELIVERIES_LISTED: usize = 200;

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// The HTTP status, if the endpoint answered.
    pub status: Option<u16>,
    /// Why it failed without an answer.
    pub error: Option<String>,
}

/// Sends one delivery (the server: an HTTP POST signed per Standard
/// Webhooks). Must return within `timeout`.
#[async_trait]
pub trait WebhookSender: Debug + Send + Sync + 'static {
    /// Posts `entry` to `endpoint`.
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        entry: &OutboxEntry,
        timeout: Duration,
    ) -> SendResult;
}

/// An event waiting for its replica's next flush.
#[derive(Debug, Clone)]
pub(super) struct PendingEvent {
    event: Event,
    /// Observed by the leader: written fenced, under this key.
    observed: Option<String>,
}

/// What one delivery step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Deliveries leased.
    pub leased: u32,
    /// Accepted by their endpoint.
    pub delivered: u32,
    /// Failed and scheduled again.
    pub retrying: u32,
    /// Failed for good (retry window over, or endpoint deleted).
    pub failed: u32,
    /// Whose acknowledgement was refused (the lease had passed on).
    pub lost_lease: u32,
}

/// Checks a signing secret: `whsec_` and base64 of 24 to 64 bytes.
pub fn validate_secret(secret: &str) -> std::result::Result<(), ValidationError> {
    let body = secret.strip_prefix("whsec_").ok_or_else(|| {
        ValidationError::new("secret", "must start with whsec_ (Standard Webhooks)")
    })?;
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if !(32..=88).contains(&body.len()) || !body.chars().all(base64) {
        return Err(ValidationError::new(
            "secret",
            "must be whsec_ followed by the base64 of 24 to 64 random bytes",
        ));
    }
    Ok(())
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

impl ClusterService {
    /// Creates an endpoint (validated, see [`WebhookEndpoint::new`]) with
    /// `secret` (see [`validate_secret`]). Audited with `actor`.
    pub async fn create_webhook(
        &self,
        actor: &str,
        url: &str,
        types: Vec<String>,
        description: Option<String>,
        secret: String,
    ) -> Result<WebhookEndpoint> {
        validate_secret(&secret)?;
        let endpoint = WebhookEndpoint::new(
            new_id("wh"),
            url,
            types,
            description,
            secret,
            self.clock.now(),
        )?;
        if !self.store.put_webhook(&endpoint).await? {
            return Err(Error::Conflict {
                what: format!("webhook {}", endpoint.id),
            });
        }
        self.audit(
            actor,
            "webhook.create",
            &endpoint.id,
            serde_json::json!({ "url": endpoint.url, "types": endpoint.types }),
        )
        .await?;
        Ok(endpoint)
    }

    /// Makes sure an endpoint with `url` exists (the `--webhook-url` of a
    /// simple setup), receiving every type; created with `secret` when it
    /// does not. Answers the endpoint and whether it was created.
    pub async fn ensure_webhook(
        &self,
        url: &str,
        secret: String,
    ) -> Result<(WebhookEndpoint, bool)> {
        if let Some(e) = self
            .store
            .webhooks()
            .await?
            .into_iter()
            .find(|e| e.url == url)
        {
            return Ok((e, false));
        }
        let e = self
            .create_webhook(
                "system",
                url,
                Vec::new(),
                Some("--webhook-url".into()),
                secret,
            )
            .await?;
        Ok((e, true))
    }

    /// Every endpoint.
    pub async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        self.store.webhooks().await
    }

    /// Deletes an endpoint; its pending deliveries are given up. Audited.
    pub async fn delete_webhook(&self, actor: &str, id: &str) -> Result<()> {
        if !self.store.delete_webhook(id).await? {
            return Err(webhook_not_found(id));
        }
        self.audit(actor, "webhook.delete", id, serde_json::json!({}))
            .await
    }

    /// An endpoint's deliveries, newest first, with their attempts.
    pub async fn webhook_deliveries(&self, id: &str, limit: usize) -> Result<Vec<Delivery>> {
        self.webhook(id).await?;
        self.store
            .deliveries(id, limit.min(MAX_DELIVERIES_LISTED))
            .await
    }

    /// Makes a failed delivery due now (one more attempt; failing again,
    /// it is failed again). Audited.
    pub async fn retry_webhook_delivery(
        &self,
        actor: &str,
        id: &str,
        delivery: &str,
    ) -> Result<()> {
        self.webhook(id).await?;
        if !self
            .store
            .retry_delivery(id, delivery, self.clock.now())
            .await?
        {
            return Err(Error::Conflict {
                what: format!(
                    "delivery {delivery} of webhook {id} (only a failed delivery can be retried)"
                ),
            });
        }
        self.audit(
            actor,
            "webhook.retry",
            id,
            serde_json::json!({ "delivery": delivery }),
        )
        .await
    }

    async fn webhook(&self, id: &str) -> Result<WebhookEndpoint> {
        self.store
            .webhooks()
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| webhook_not_found(id))
    }

    /// The outbox entries of `kind` happening now, for the endpoints that
    /// want it, under the de-duplication key `dedup` (a fresh one if
    /// `None`).
    pub(super) async fn outbox_entries(
        &self,
        kind: &EventKind,
        dedup: Option<String>,
    ) -> Result<Vec<OutboxEntry>> {
        if alerts::webhook_type(kind).is_none() {
            return Ok(Vec::new());
        }
        let event = Event {
            at: self.clock.now(),
            kind: kind.clone(),
        };
        let dedup = dedup.unwrap_or_else(|| new_id("evt"));
        let endpoints = self.store.webhooks().await?;
        Ok(alerts::route(&event, &dedup, &endpoints, || new_id("msg")))
    }

    /// Keeps a webhook-worthy event for the next flush.
    pub(super) fn keep_for_outbox(&self, event: &Event, observed: Option<String>) {
        if alerts::webhook_type(&event.kind).is_none() {
            return;
        }
        let mut pending = self
            .pending_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() >= PENDING_KEPT {
            pending.remove(0);
            tracing::warn!("too many events waiting for the outbox; dropped the oldest");
        }
        pending.push(PendingEvent {
            event: event.clone(),
            observed,
        });
    }

    /// Keeps an observation for the outbox only (a new leader's catch-up:
    /// the sinks may have had it from the previous leader).
    pub(super) fn keep_observed_for_outbox(&self, kind: EventKind, observed: Option<String>) {
        let event = Event {
            at: self.clock.now(),
            kind,
        };
        self.keep_for_outbox(&event, observed);
    }

    /// Emits an event the leader observed (an availability transition)
    /// and keeps it for the outbox under `observed`, its transition's key.
    pub(super) fn emit_observed(&self, kind: EventKind, observed: Option<String>) {
        let event = Event {
            at: self.clock.now(),
            kind,
        };
        self.events.emit(&event);
        self.keep_for_outbox(&event, observed);
    }

    /// Writes the events this replica emitted since its last flush to the
    /// outbox: the leader's observations fenced by `fence` (dropped when
    /// the fence no longer holds: the new leader observes them itself),
    /// the others unfenced. Kept for the next flush if the store fails.
    pub async fn flush_outbox(&self, fence: Option<&Lease>) -> Result<u32> {
        let batch = std::mem::take(
            &mut *self
                .pending_events
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if batch.is_empty() {
            return Ok(0);
        }
        let result = self.write_pending(&batch, fence).await;
        if let Err(e) = &result
            && !matches!(e, Error::Fenced { .. })
        {
            let mut pending = self
                .pending_events
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let later = std::mem::replace(&mut *pending, batch);
            pending.extend(later);
        }
        result
    }

    async fn write_pending(&self, batch: &[PendingEvent], fence: Option<&Lease>) -> Result<u32> {
        let endpoints = self.store.webhooks().await?;
        if endpoints.is_empty() {
            return Ok(0);
        }
        let (mut observed, mut other) = (Vec::new(), Vec::new());
        for p in batch {
            let (dedup, to) = match &p.observed {
                Some(key) => (key.clone(), &mut observed),
                None => (new_id("evt"), &mut other),
            };
            to.extend(alerts::route(&p.event, &dedup, &endpoints, || {
                new_id("msg")
            }));
        }
        let mut written = self.store.append_outbox(&other, None).await?;
        if !observed.is_empty() {
            written += self.store.append_outbox(&observed, fence).await?;
        }
        Ok(written)
    }

    /// One delivery step: leases due deliveries, sends them through
    /// `sender` ([`SEND_CONCURRENCY`] at once), and records each attempt.
    pub async fn deliver_due(&self, sender: &dyn WebhookSender) -> Result<DeliveryReport> {
        let policy = self.config.webhooks;
        let now = self.clock.now();
        let leased = self
            .store
            .lease_deliveries(now, now.plus(policy.lease), policy.batch)
            .await?;
        let mut report = DeliveryReport {
            leased: u32::try_from(leased.len()).unwrap_or(u32::MAX),
            ..DeliveryReport::default()
        };
        if leased.is_empty() {
            return Ok(report);
        }
        let endpoints: HashMap<String, WebhookEndpoint> = self
            .store
            .webhooks()
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        let endpoints = Arc::new(endpoints);
        let mut results = futures::stream::iter(leased)
            .map(|d| {
                let endpoints = Arc::clone(&endpoints);
                async move { self.deliver_one(sender, &endpoints, d).await }
            })
            .buffer_unordered(SEND_CONCURRENCY);
        while let Some(outcome) = results.next().await {
            match outcome? {
                None => report.lost_lease += 1,
                Some(Next::Delivered) => report.delivered += 1,
                Some(Next::RetryAt(_)) => report.retrying += 1,
                Some(Next::GiveUp) => report.failed += 1,
            }
        }
        Ok(report)
    }

    async fn deliver_one(
        &self,
        sender: &dyn WebhookSender,
        endpoints: &HashMap<String, WebhookEndpoint>,
        delivery: LeasedDelivery,
    ) -> Result<Option<Next>> {
        let policy = self.config.webhooks;
        let started = self.clock.now();
        let clock = std::time::Instant::now();
        let (result, endpoint) = match endpoints.get(&delivery.entry.endpoint) {
            Some(e) => (
                sender.send(e, &delivery.entry, policy.send_timeout).await,
                Some(e),
            ),
            None => (
                SendResult {
                    status: None,
                    error: Some("the endpoint was deleted".into()),
                },
                None,
            ),
        };
        let attempt = Attempt {
            at: started,
            status: result.status,
            error: result.error,
            latency_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let failures = delivery.attempts + u32::from(!attempt.succeeded());
        let next = match endpoint {
            None => Next::GiveUp,
            Some(_) => policy.next(
                attempt.succeeded(),
                delivery.entry.event.at,
                self.clock.now(),
                failures,
                jitter(),
            ),
        };
        let failing_entries = if attempt.succeeded() || endpoint.is_none() {
            Vec::new()
        } else {
            let kind = EventKind::WebhookFailing {
                endpoint: delivery.entry.endpoint.clone(),
                failures: policy.failing_after,
                last_error: describe(&attempt),
            };
            let key = format!(
                "webhook.failing:{}:{}",
                delivery.entry.endpoint, delivery.entry.id
            );
            self.outbox_entries(&kind, Some(key)).await?
        };
        let failing = policy.failing(&failing_entries);
        let count = self
            .store
            .finish_delivery(&delivery, &attempt, next, Some(failing))
            .await?;
        match count {
            None => Ok(None),
            Some(n) => {
                if failing.reached(n) {
                    self.events.emit(&Event {
                        at: self.clock.now(),
                        kind: EventKind::WebhookFailing {
                            endpoint: delivery.entry.endpoint.clone(),
                            failures: n,
                            last_error: describe(&attempt),
                        },
                    });
                }
                Ok(Some(next))
            }
        }
    }
}

/// A uniform number in `[0, 1)` for the backoff's jitter.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u64_pair().0 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

fn describe(attempt: &Attempt) -> String {
    match (&attempt.status, &attempt.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".into(),
    }
}

fn webhook_not_found(id: &str) -> Error {
    Error::WebhookNotFound(id.to_owned())
}
