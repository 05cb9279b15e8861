//! The webhook delivery step over the in-memory store, on a manual clock:
//! retries with backoff, the failing endpoint reported to the others, an
//! admin transition's alert written with the change, and a student's
//! `session.disrupted` written to the outbox once per crossing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::Page;
use vdi_cluster_core::events::EventKind;
use vdi_cluster_core::outbox::{DeliveryState, OutboxEntry, RetryPolicy, WebhookEndpoint};
use vdi_cluster_core::service::{SendResult, WebhookSender};
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_for, key};
use vdi_cluster_core::{
    AdminAction, ClusterService, ManualClock, MemoryStore, ServiceConfig, Store, Timestamp,
    WorkerId,
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

/// The workers, by code: enough that two silent ones stay below the
/// mass-failure guard.
const CODES: [&str; 6] = ["w-1", "w-2", "w-3", "w-4", "w-5", "w-6"];

/// A heartbeat of every worker but `silent`.
async fn beat_all_but(svc: &ClusterService, silent: &[WorkerId]) {
    for code in CODES {
        let hb = heartbeat_for(code, 8.0, 12288, 0);
        if !silent.contains(&hb.worker) {
            svc.fleet().heartbeat(hb).await.unwrap();
        }
    }
}

/// The student's request: the worker it is placed on.
async fn place(svc: &ClusterService) -> WorkerId {
    svc.placement()
        .allocate(key("e-disrupted", "u1"), Default::default())
        .await
        .unwrap()
        .dispatch
        .worker
}

/// The endpoint's `session.disrupted` entries: crossing, lost time,
/// de-duplication key.
async fn disrupted(svc: &ClusterService, endpoint: &str) -> Vec<(u64, u64, String)> {
    let mut found: Vec<_> = svc
        .operations()
        .webhook_deliveries(endpoint, Page::first(50))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|d| match d.entry.event.kind {
            EventKind::SessionDisrupted {
                crossing, lost_ms, ..
            } => Some((crossing, lost_ms, d.entry.dedup.clone())),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// A student moved off two silent workers in turn: the first move's lost
/// time crosses the alert threshold, the second its double. Each crossing
/// is in the outbox exactly once, with the entry that crossed it; reloads
/// on either replica and a move that costs no time add none.
#[tokio::test]
async fn session_disrupted_is_in_the_outbox_once_per_crossing() {
    let clock = ManualClock::new(Timestamp(1_000_000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let workers = SimulatedWorkers::new();
    let replica = |seed: u64| {
        ClusterService::builder(Arc::clone(&store), Arc::new(workers.clone()))
            .clock(Arc::new(clock.clone()))
            .config(ServiceConfig {
                seed,
                disruption_alert: Duration::from_secs(100),
                ..ServiceConfig::default()
            })
            .build()
    };
    let (one, two) = (replica(1), replica(2));
    let endpoint = one
        .operations()
        .create_webhook(
            "admin",
            "http://exam-app.example/",
            vec!["session.disrupted".into()],
            None,
            SECRET.into(),
        )
        .await
        .unwrap()
        .id;
    beat_all_but(&one, &[]).await;
    let mut silent = vec![place(&one).await];

    // 130 s without a desktop: the threshold (100 s) is crossed once.
    clock.advance(Duration::from_secs(130));
    beat_all_but(&one, &silent).await;
    silent.push(place(&two).await);
    assert_ne!(silent[0], silent[1], "moved");
    place(&one).await;
    place(&two).await;
    let first = disrupted(&one, &endpoint).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!((first[0].0, first[0].1), (1, 130_000));

    // Another 130 s: 260 s in all, the double crossed, once.
    clock.advance(Duration::from_secs(130));
    beat_all_but(&one, &silent).await;
    silent.push(place(&one).await);
    place(&two).await;
    let both = disrupted(&two, &endpoint).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!((both[1].0, both[1].1), (2, 260_000));
    assert_ne!(both[0].2, both[1].2, "one de-duplication key per crossing");

    // A move off a worker an operator disabled costs no time: nothing
    // crossed, nothing written.
    let current = silent.pop().unwrap();
    one.fleet()
        .admin(&current, AdminAction::Disable { force: true }, "admin")
        .await
        .unwrap();
    assert_ne!(place(&two).await, current);
    assert_eq!(disrupted(&one, &endpoint).await.len(), 2);
}
