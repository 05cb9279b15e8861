//! Alerts by webhook: the admin API's bodies, and what a delivery carries.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/webhooks` | [`CreateWebhook`] | [`CreatedWebhook`] (the secret, once) |
//! | `GET` | `/api/vdi/webhooks` | — | [`WebhookList`] |
//! | `DELETE` | `/api/vdi/webhooks/{id}` | — | — |
//! | `GET` | `/api/vdi/webhooks/{id}/deliveries` | — | [`DeliveryList`] |
//! | `POST` | `/api/vdi/webhooks/{id}/deliveries/{deliveryId}/retry` | — | — |
//!
//! A delivery is an HTTP `POST` of a [`WebhookPayload`] with the Standard
//! Webhooks headers ([`WEBHOOK_ID_HEADER`], [`WEBHOOK_TIMESTAMP_HEADER`],
//! [`WEBHOOK_SIGNATURE_HEADER`]): the signature is `v1,` and the base64 of
//! HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the
//! base64-decoded part of the endpoint's secret after `whsec_`. The id is
//! the same on every attempt: receivers de-duplicate by it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::outbox::{Attempt, Delivery, OutboxEntry, WebhookEndpoint, webhook_type};
use vdi_cluster_core::{Page, Paged};

use crate::events::EventKindJson;
use crate::page::PageJson;

/// The delivery's id, stable across retries.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// The attempt's time, seconds since the epoch.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// `v1,<base64 signature>`.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// What a delivery posts: `{"type": "worker.offline", "timestamp":
/// "2026-…Z", "data": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookPayload {
    /// The webhook type (`worker.offline`, `session.migrated`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened (RFC 3339, UTC).
    pub timestamp: String,
    /// The event, as the events stream shows it (its own `type` is the
    /// stream's name for it).
    pub data: EventKindJson,
}

impl WebhookPayload {
    /// The payload of `entry`; `None` for an event this version of the
    /// wire format cannot show.
    pub fn new(entry: &OutboxEntry) -> Option<Self> {
        Some(Self {
            kind: webhook_type(&entry.event.kind)?.to_owned(),
            timestamp: format_rfc3339(entry.event.at),
            data: EventKindJson::new(&entry.event.kind)?,
        })
    }
}

/// `POST /api/vdi/webhooks` body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to post: `http` or `https`, without credentials.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// Webhook types to receive (`worker.offline`, …); empty or absent:
    /// all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// An endpoint as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookJson {
    /// Its id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Types it receives; empty: all.
    pub event_types: Vec<String>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl From<&WebhookEndpoint> for WebhookJson {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            event_types: e.types.clone(),
            description: e.description.clone(),
            created_at: format_rfc3339(e.created_at),
        }
    }
}

/// `POST /api/vdi/webhooks` answer: the endpoint and its signing secret,
/// shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookJson,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks
    /// library).
    pub secret: String,
}

/// `GET /api/vdi/webhooks` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Every endpoint, oldest first.
    pub webhooks: Vec<WebhookJson>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptJson {
    /// When (RFC 3339).
    pub at: String,
    /// The endpoint's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why it failed without an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub latency_ms: u64,
}

impl From<&Attempt> for AttemptJson {
    fn from(a: &Attempt) -> Self {
        Self {
            at: format_rfc3339(a.at),
            status_code: a.status,
            error: a.error.clone(),
            latency_ms: a.latency_ms,
        }
    }
}

/// One delivery with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJson {
    /// The delivery's id: its `webhook-id`.
    pub id: String,
    /// The webhook type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `leased` (being sent), `delivered` or `failed`.
    pub state: String,
    /// When the event happened (RFC 3339).
    pub created_at: String,
    /// Next attempt (pending) or end of the current one (leased).
    pub due_at: String,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptJson>,
}

impl From<&Delivery> for DeliveryJson {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.entry.id.clone(),
            kind: webhook_type(&d.entry.event.kind)
                .unwrap_or_default()
                .to_owned(),
            state: d.state.name().to_owned(),
            created_at: format_rfc3339(d.entry.event.at),
            due_at: format_rfc3339(d.due_at),
            attempts: d.attempts.iter().map(AttemptJson::from).collect(),
        }
    }
}

/// `GET /api/vdi/webhooks/{id}/deliveries` answer: a page of an
/// endpoint's deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// The page's deliveries, newest first.
    pub deliveries: Vec<DeliveryJson>,
    /// `total` (every delivery of the endpoint), `limit`, `offset`.
    #[serde(flatten)]
    pub page: PageJson,
}

impl DeliveryList {
    /// `page` of an endpoint's deliveries, which are `paged`.
    pub fn new(paged: &Paged<Delivery>, page: Page) -> Self {
        Self {
            deliveries: paged.items.iter().map(DeliveryJson::from).collect(),
            page: PageJson::new(page, paged.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::events::{Event, EventKind};
    use vdi_cluster_core::{Availability, Timestamp, WorkerId};

    use super::*;

    #[test]
    fn payload_field_names() {
        let entry = OutboxEntry {
            id: "msg_1".into(),
            endpoint: "wh_1".into(),
            dedup: "k".into(),
            event: Event {
                at: Timestamp(0),
                kind: EventKind::WorkerAvailability {
                    worker: WorkerId::parse("code", "w1").unwrap(),
                    from: Availability::Healthy,
                    to: Availability::Unreachable,
                    reason: "unreachable: last heartbeat 130s ago".into(),
                },
            },
        };
        let body = serde_json::to_value(WebhookPayload::new(&entry).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "type": "worker.offline",
                "timestamp": "1970-01-01T00:00:00Z",
                "data": {
                    "type": "workerAvailability", "worker": "w1", "from": "healthy",
                    "to": "unreachable", "reason": "unreachable: last heartbeat 130s ago",
                },
            })
        );
    }

    #[test]
    fn created_webhook_shows_the_secret_beside_the_endpoint() {
        let e = WebhookEndpoint {
            id: "wh_1".into(),
            url: "http://h/".into(),
            types: vec!["worker.offline".into()],
            description: None,
            secret: "whsec_x".into(),
            created_at: Timestamp(0),
        };
        let listed = serde_json::to_value(WebhookJson::from(&e)).unwrap();
        assert!(listed.get("secret").is_none());
        let created = serde_json::to_value(CreatedWebhook {
            webhook: WebhookJson::from(&e),
            secret: e.secret.clone(),
        })
        .unwrap();
        assert_eq!(created["secret"], "whsec_x");
        assert_eq!(created["eventTypes"], json!(["worker.offline"]));
    }
}
