//! Alerts by webhook: the outbox of deliveries and the decisions about them.
//!
//! An event that must reach people is written to the **outbox** in the
//! store, one [`OutboxEntry`] per subscribed [`WebhookEndpoint`], in the
//! same atomic step as what caused it: a store write and its events commit
//! together (a worker's record with [`Outbox::put_worker_with_outbox`] and
//! [`Outbox::delete_worker_with_outbox`], a re-dispatch's confirmation
//! with [`Outbox::confirm_with_outbox`], an exam's risk flag with
//! [`ExamStore::swap_exam_risk`](crate::calendar::ExamStore::swap_exam_risk)).
//! A leader's observation is written fenced by its lease with a
//! de-duplication key derived from the stored state it observed, so two
//! leaders observing one transition write it once, and where the
//! observation and the step that records it are two steps (prewarm
//! readiness and its calendar mark, orphan alerts and `mark_orphaned`) a
//! crash between them is healed by the next leader, which observes the
//! same transition and writes the same key: never lost, never written
//! twice by us. Which event goes which way is listed in the service's
//! `webhooks` module. A delivery loop on the leader replica leases due
//! entries, sends them, and records each attempt; a replica killed
//! mid-delivery loses nothing (its delivery lease expires and the next
//! deliverer sends the entry again, with the same `webhook-id`).
//!
//! What is decided here, as pure functions: which events become webhooks
//! and under which type name ([`alerts`]), the retry schedule and when an
//! endpoint is failing ([`retry`]), whether an endpoint's
//! configuration is valid ([`endpoint`]), and which addresses a delivery
//! may not reach ([`target`]). The wire shape of a delivery
//! (headers, signature, JSON body) is the protocol crate's and the
//! server's.

pub mod alerts;
pub mod endpoint;
pub mod retry;
mod store;
pub mod target;

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::time::Timestamp;

pub use alerts::{WEBHOOK_TYPES, webhook_type};
pub use endpoint::WebhookEndpoint;
pub use retry::{Next, RetryPolicy};
pub use store::{Failing, LostDispatch, LostRelease, Outbox};
pub use target::refused_target;

/// One event to deliver to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// The delivery's id, sent as `webhook-id`: the same on every attempt,
    /// so receivers de-duplicate by it.
    pub id: String,
    /// The endpoint's id.
    pub endpoint: String,
    /// De-duplication key: the store writes at most one entry per
    /// (endpoint, key).
    pub dedup: String,
    /// The event.
    pub event: Event,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    /// Waiting until its due time (first attempt or a retry).
    Pending,
    /// Leased by a deliverer until its due time; a lease that expires makes
    /// it due again.
    Leased,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after the retry window; an admin may retry it.
    Failed,
}

impl DeliveryState {
    /// The state as the API names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Leased => "leased",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses [`name`](Self::name) (storage).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "leased" => Self::Leased,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When it started.
    pub at: Timestamp,
    /// The HTTP status the endpoint answered, if it answered.
    pub status: Option<u16>,
    /// Why it failed without a status (connection refused, timeout, …).
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub latency_ms: u64,
}

impl Attempt {
    /// Whether the endpoint accepted the delivery (2xx).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A stored delivery with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The entry.
    pub entry: OutboxEntry,
    /// Where it stands.
    pub state: DeliveryState,
    /// When it is due (pending), or when its lease ends (leased).
    pub due_at: Timestamp,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
}

/// A delivery leased by [`Outbox::lease_deliveries`]: the deliverer owns it
/// until `until`, and acknowledges with its `token`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedDelivery {
    /// The entry to send.
    pub entry: OutboxEntry,
    /// The delivery lease's token; a later lease of the same entry gets a
    /// larger one, and an acknowledgement under an old token is refused.
    pub token: u64,
    /// Failed attempts before this one.
    pub attempts: u32,
}

/// Failed attempts in a history: the count the backoff grows with.
pub fn failed_attempts(attempts: &[Attempt]) -> u32 {
    u32::try_from(attempts.iter().filter(|a| !a.succeeded()).count()).unwrap_or(u32::MAX)
}
