//! Webhooks: endpoints an admin configures, events into the outbox, and
//! the delivery step the leader runs.
//!
//! Events reach the outbox in the same atomic step as their cause; no
//! replica keeps one in memory for later:
//!
//! * a change written to a worker's record carries its entries in that
//!   write: registrations, policy changes (an operator's, or drained by
//!   observation) and deregistrations with
//!   [`Outbox::put_worker_with_outbox`](crate::outbox::Outbox::put_worker_with_outbox),
//!   removals with
//!   [`Outbox::delete_worker_with_outbox`](crate::outbox::Outbox::delete_worker_with_outbox);
//! * a re-dispatch's `session.migrated` is carried by the confirmation of
//!   the new dispatch
//!   ([`Outbox::confirm_with_outbox`](crate::outbox::Outbox::confirm_with_outbox)),
//!   under a key naming it. Only a re-dispatch computes entries (and reads
//!   the endpoints); an ordinary placement runs the plain confirmation,
//!   with nothing added. When the worker's heartbeat confirms the
//!   reservation before the allocator does (that confirmation knows
//!   nothing of a migration), the allocator writes the entries under the
//!   same key right after; this one case is not atomic, because the step
//!   that activated the dispatch was the heartbeat's;
//! * an exam's risk flag carries `exam.at_risk` / `exam.fits_again`
//!   ([`ExamStore::swap_exam_risk`](crate::calendar::ExamStore::swap_exam_risk)),
//!   written only by the swap that changes the flag;
//! * a leader's observation is written fenced by the background lease,
//!   under a key naming the occurrence ([`alerts::observed_key`]) that
//!   every leader derives from the stored state, so a second leader
//!   observing the same occurrence writes nothing, and one that observes
//!   it again after a crash writes the same key: availability
//!   transitions, failed migrations, suspensions, prewarm readiness
//!   (written *ahead* of the calendar mark that records it, keyed by the
//!   exam and its prewarm run: a crash between the two leaves the mark
//!   unset and the next pass writes the same key), reconcile's
//!   `migration.manual_required` (after its `mark_orphaned` steps, keyed
//!   by the worker and its smallest orphaned dispatch id; a leader that
//!   finds orphans it has not alerted about writes it again, skipped if
//!   present), a forming waiting room (the exams wing's `waiting_room_alerts`) and a store
//!   outage, once the store answers again (the background loop);
//! * reconcile's `migration.summary` is written at the end of its pass:
//!   it reports the pass, not one change, and is keyed by the pass's
//!   start.
//!
//! So an event is never lost and never written twice by us: either its
//! cause's own step writes it, or its key is a function of the stored
//! state that a later leader re-observes (a de-duplication key is kept
//! as long as its delivery, the retention).
//!
//! [`Operations::deliver_due`](crate::service::Operations::deliver_due) leases due deliveries, sends them
//! through a [`WebhookSender`], and records each attempt with the next
//! state that [`RetryPolicy`](crate::outbox::RetryPolicy) decides;
//! [`Operations::purge_old_deliveries`](crate::service::Operations::purge_old_deliveries) deletes finished ones past
//! the retention.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::Operations;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::outbox::{Attempt, Delivery, LeasedDelivery, Next, OutboxEntry, WebhookEndpoint};
use crate::page::{Page, Paged};
use crate::service::shared::new_id;
use crate::validation::ValidationError;

/// Deliveries sent at once by one step.
const SEND_CONCURRENCY: usize = 8;
/// Deliveries deleted by one clean-up step at most.
pub const PURGED_PER_STEP: usize = 500;

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

impl Operations {
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
            self.shared.clock.now(),
        )?;
        if !self.shared.store.put_webhook(&endpoint).await? {
            return Err(Error::Conflict {
                what: format!("webhook {}", endpoint.id),
            });
        }
        self.shared
            .audit(
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
            .shared
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
        self.shared.store.webhooks().await
    }

    /// Deletes an endpoint; its pending deliveries are given up. Audited.
    pub async fn delete_webhook(&self, actor: &str, id: &str) -> Result<()> {
        if !self.shared.store.delete_webhook(id).await? {
            return Err(webhook_not_found(id));
        }
        self.shared
            .audit(actor, "webhook.delete", id, serde_json::json!({}))
            .await
    }

    /// One page of an endpoint's deliveries, newest first, with their
    /// attempts, and how many it has.
    pub async fn webhook_deliveries(&self, id: &str, page: Page) -> Result<Paged<Delivery>> {
        self.webhook(id).await?;
        self.shared.store.delivery_page(id, page).await
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
            .shared
            .store
            .retry_delivery(id, delivery, self.shared.clock.now())
            .await?
        {
            return Err(Error::Conflict {
                what: format!(
                    "delivery {delivery} of webhook {id} (only a failed delivery can be retried)"
                ),
            });
        }
        self.shared
            .audit(
                actor,
                "webhook.retry",
                id,
                serde_json::json!({ "delivery": delivery }),
            )
            .await
    }

    async fn webhook(&self, id: &str) -> Result<WebhookEndpoint> {
        self.shared
            .store
            .webhooks()
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| webhook_not_found(id))
    }

    /// Deletes delivered and failed deliveries whose last attempt is older
    /// than the retention ([`RetryPolicy::retention`](crate::outbox::RetryPolicy::retention)),
    /// [`PURGED_PER_STEP`] at most; answers how many (the leader's tick).
    pub async fn purge_old_deliveries(&self) -> Result<u32> {
        let before = self
            .shared
            .clock
            .now()
            .minus(self.shared.config.webhooks.retention);
        self.shared
            .store
            .purge_deliveries(before, PURGED_PER_STEP)
            .await
    }

    /// One delivery step: leases due deliveries, sends them through
    /// `sender` (eight at once), and records each attempt.
    pub async fn deliver_due(&self, sender: &dyn WebhookSender) -> Result<DeliveryReport> {
        let policy = self.shared.config.webhooks;
        let now = self.shared.clock.now();
        let leased = self
            .shared
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
            .shared
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
        let policy = self.shared.config.webhooks;
        let started = self.shared.clock.now();
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
                self.shared.clock.now(),
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
            self.shared.outbox_entries(&[(&kind, Some(key))]).await?
        };
        let failing = policy.failing(&failing_entries);
        let count = self
            .shared
            .store
            .finish_delivery(&delivery, &attempt, next, Some(failing))
            .await?;
        match count {
            None => Ok(None),
            Some(n) => {
                if failing.reached(n) {
                    self.shared.events.emit(&Event {
                        at: self.shared.clock.now(),
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
