//! The webhook delivery step over the in-memory store, on a manual clock:
//! retries with backoff, the failing endpoint reported to the others, and
//! an admin transition's alert written with the change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::Page;
use vdi_cluster_core::outbox::{DeliveryState, OutboxEntry, RetryPolicy, WebhookEndpoint};
use vdi_cluster_core::service::{SendResult, WebhookSender};
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_for};
use vdi_cluster_core::{
    AdminAction, ClusterService, ManualClock, MemoryStore, ServiceConfig, Timestamp, WorkerId,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Answers 503 to `down`'s URL and 204 to the others; records every send.
#[derive(Debug, Default)]
struct Fake {
    down: Mutex<Option<String>>,
    sent: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl WebhookSender for Fake {
    async fn send(&self, e: &WebhookEndpoint, entry: &OutboxEntry, _: Duration) -> SendResult {
        self.sent
            .lock()
            .unwrap()
            .push((e.id.clone(), entry.event.kind.name().to_owned()));
        let down = self.down.lock().unwrap().as_deref() == Some(e.url.as_str());
        SendResult {
            status: Some(if down { 503 } else { 204 }),
            error: None,
        }
    }
}

#[tokio::test]
async fn failures_retry_and_a_failing_endpoint_is_reported_once() {
    let clock = ManualClock::new(Timestamp(1_000_000));
    let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let config = ServiceConfig {
        webhooks: RetryPolicy {
            failing_after: 2,
            ..RetryPolicy::default()
        },
        ..ServiceConfig::default()
    };
    let service = ClusterService::builder(store, Arc::new(SimulatedWorkers::new()))
        .clock(Arc::new(clock.clone()))
        .config(config)
        .build();
    service
        .fleet()
        .heartbeat(heartbeat_for("w-1", 8.0, 12288, 1))
        .await
        .unwrap();
    let failing = service
        .operations()
        .create_webhook("admin", "http://down.example/", vec![], None, SECRET.into())
        .await
        .unwrap();
    let healthy = service
        .operations()
        .create_webhook(
            "admin",
            "http://up.example/",
            vec!["worker.policy_changed".into(), "webhook.failing".into()],
            None,
            SECRET.into(),
        )
        .await
        .unwrap();
    let fake = Fake::default();
    *fake.down.lock().unwrap() = Some(failing.url.clone());

    // A worker with a session (registered before any endpoint existed) is
    // drained: its alert is written with the change, for both endpoints.
    let w1 = WorkerId::parse("code", "w-1").unwrap();
    service
        .fleet()
        .admin(&w1, AdminAction::Drain { deadline: None }, "admin")
        .await
        .unwrap();
    assert_eq!(
        service
            .operations()
            .webhook_deliveries(&healthy.id, Page::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let first = service.operations().deliver_due(&fake).await.unwrap();
    assert_eq!((first.delivered, first.retrying), (1, 1), "{first:?}");
    // Not due again before its backoff.
    assert_eq!(
        service
            .operations()
            .deliver_due(&fake)
            .await
            .unwrap()
            .leased,
        0
    );

    clock.advance(Duration::from_secs(3600));
    let second = service.operations().deliver_due(&fake).await.unwrap();
    assert_eq!(second.retrying, 1, "{second:?}");
    // Two failures in a row: `webhook.failing` is written for the other
    // endpoint (never for the failing one itself), once.
    let third = service.operations().deliver_due(&fake).await.unwrap();
    assert_eq!(third.delivered, 1, "{third:?}");
    let to_healthy: Vec<_> = fake
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(e, _)| *e == healthy.id)
        .map(|(_, kind)| kind.clone())
        .collect();
    assert_eq!(to_healthy, vec!["workerPolicy", "webhookFailing"]);

    // The failing endpoint's delivery keeps every attempt, and gives up
    // after the retry window; an admin retry makes it due again.
    for _ in 0..30 {
        clock.advance(Duration::from_secs(3600));
        service.operations().deliver_due(&fake).await.unwrap();
    }
    let history = service
        .operations()
        .webhook_deliveries(&failing.id, Page::first(10))
        .await
        .unwrap()
        .items;
    let policy = history
        .iter()
        .find(|d| d.entry.event.kind.name() == "workerPolicy")
        .unwrap();
    assert_eq!(policy.state, DeliveryState::Failed);
    assert!(policy.attempts.iter().all(|a| a.status == Some(503)));
    *fake.down.lock().unwrap() = None;
    service
        .operations()
        .retry_webhook_delivery("admin", &failing.id, &policy.entry.id)
        .await
        .unwrap();
    assert_eq!(
        service
            .operations()
            .deliver_due(&fake)
            .await
            .unwrap()
            .delivered,
        1
    );
    let again = service
        .operations()
        .webhook_deliveries(&failing.id, Page::first(10))
        .await
        .unwrap()
        .items;
    assert!(
        again
            .iter()
            .any(|d| d.entry.id == policy.entry.id && d.state == DeliveryState::Delivered)
    );
}
