//! Cases of [`Outbox`](crate::outbox::Outbox): events commit with their
//! cause, a delivery lease has one deliverer, and a lease that expires
//! without an acknowledgement leads to exactly one redelivery.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::error::Error;
use crate::events::{Event, EventKind};
use crate::outbox::{
    Attempt, DeliveryState, LeasedDelivery, Next, OutboxEntry, RetryPolicy, WebhookEndpoint,
};
use crate::store::{CasOutcome, Store};
use crate::testkit::{wid, worker_record};
use crate::time::Timestamp;

pub(super) fn endpoint(id: &str, at: Timestamp) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id.into(),
        url: "http://127.0.0.1:9/hook".into(),
        types: Vec::new(),
        description: Some("conformance".into()),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        created_at: at,
    }
}

pub(super) fn entry(id: &str, endpoint: &str, dedup: &str, at: Timestamp) -> OutboxEntry {
    OutboxEntry {
        id: id.into(),
        endpoint: endpoint.into(),
        dedup: dedup.into(),
        event: Event {
            at,
            kind: EventKind::WorkerRemoved {
                worker: wid("w-outbox"),
            },
        },
    }
}

fn attempt(at: Timestamp, status: Option<u16>) -> Attempt {
    Attempt {
        at,
        status,
        error: status.is_none().then(|| "connection refused".into()),
        latency_ms: 3,
    }
}

pub(super) async fn states(store: &Arc<dyn Store>, endpoint: &str) -> Vec<(String, DeliveryState)> {
    let mut all: Vec<_> = store
        .deliveries(endpoint, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.entry.id, d.state))
        .collect();
    all.sort();
    all
}

/// An event commits with its cause or not at all: a compare-and-set that
/// loses writes no event, a fenced write whose lease is gone writes
/// none, and one (endpoint, key) is written once.
pub async fn outbox_entries_commit_with_their_cause(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let t = now();
    assert!(a.put_webhook(&endpoint("wh_a", t)).await.unwrap());
    assert!(
        !b.put_webhook(&endpoint("wh_a", t)).await.unwrap(),
        "ids are unique"
    );

    let record = worker_record("w-outbox", 4, 0);
    let written = a
        .put_worker_with_outbox(&record, None, None, &[entry("msg_1", "wh_a", "k1", t)])
        .await
        .unwrap();
    let CasOutcome::Written { version } = written else {
        panic!("first write wins: {written:?}");
    };
    let lost = b
        .put_worker_with_outbox(&record, None, None, &[entry("msg_2", "wh_a", "k2", t)])
        .await
        .unwrap();
    assert_eq!(
        lost,
        CasOutcome::Conflict {
            current: Some(version)
        }
    );
    assert_eq!(
        states(&b, "wh_a").await,
        vec![("msg_1".into(), DeliveryState::Pending)],
        "the losing write wrote no event"
    );

    let ttl = Duration::from_secs(30);
    let lease = a
        .try_acquire("background", "replica-a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.append_outbox(&[entry("msg_3", "wh_a", "k3", t)], Some(&lease))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.append_outbox(&[entry("msg_4", "wh_a", "k3", t)], Some(&lease))
            .await
            .unwrap(),
        0,
        "a second leader's copy of one transition is skipped"
    );
    assert!(a.release_lease(&lease).await.unwrap());
    let taken = b
        .try_acquire("background", "replica-b", ttl)
        .await
        .unwrap()
        .unwrap();
    let refused = a
        .append_outbox(&[entry("msg_5", "wh_a", "k5", t)], Some(&lease))
        .await;
    assert!(matches!(refused, Err(Error::Fenced { .. })), "{refused:?}");
    assert_eq!(
        b.append_outbox(&[entry("msg_6", "wh_a", "k6", t)], Some(&taken))
            .await
            .unwrap(),
        1
    );
    let ids: Vec<String> = states(&a, "wh_a")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec!["msg_1", "msg_3", "msg_6"]);

    assert_eq!(a.webhooks().await.unwrap().len(), 1);
    assert!(a.delete_webhook("wh_a").await.unwrap());
    assert!(!a.delete_webhook("wh_a").await.unwrap());
    assert!(b.webhooks().await.unwrap().is_empty());
}

/// Retention: delivered and failed deliveries whose last attempt is older
/// than the cut-off are deleted, at most `limit` per call, with their
/// de-duplication keys; pending and leased ones never are.
pub async fn finished_deliveries_past_retention_are_purged(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t = now();
    let hour = Duration::from_secs(3600);
    store.put_webhook(&endpoint("wh_p", t)).await.unwrap();
    let entries: Vec<_> = (1..=5)
        .map(|i| entry(&format!("msg_p{i}"), "wh_p", &format!("kp{i}"), t))
        .collect();
    assert_eq!(store.append_outbox(&entries, None).await.unwrap(), 5);
    let leased = store.lease_deliveries(t, t.plus(hour), 10).await.unwrap();
    assert_eq!(leased.len(), 5);
    let by_id = |id: &str| leased.iter().find(|d| d.entry.id == id).unwrap();
    let finish = |id: &'static str, at: Timestamp, status: Option<u16>, next: Next| {
        let store = Arc::clone(&store);
        let d = by_id(id).clone();
        async move {
            store
                .finish_delivery(&d, &attempt(at, status), next, None)
                .await
                .unwrap()
                .expect("still leased");
        }
    };
    finish("msg_p1", t, Some(204), Next::Delivered).await;
    finish("msg_p2", t, None, Next::GiveUp).await;
    finish("msg_p3", t.plus(hour * 2), Some(204), Next::Delivered).await;
    finish("msg_p4", t, None, Next::RetryAt(t.plus(hour * 24))).await;
    // msg_p5 stays leased.

    let cutoff = t.plus(hour);
    assert_eq!(store.purge_deliveries(cutoff, 1).await.unwrap(), 1);
    assert_eq!(store.purge_deliveries(cutoff, 10).await.unwrap(), 1);
    assert_eq!(store.purge_deliveries(cutoff, 10).await.unwrap(), 0);
    assert_eq!(
        states(&store, "wh_p").await,
        vec![
            ("msg_p3".into(), DeliveryState::Delivered),
            ("msg_p4".into(), DeliveryState::Pending),
            ("msg_p5".into(), DeliveryState::Leased),
        ]
    );
    assert_eq!(
        store
            .append_outbox(&[entry("msg_p6", "wh_p", "kp1", t)], None)
            .await
            .unwrap(),
        1,
        "a purged delivery's key went with it"
    );
}

/// Deliverers on several replicas leasing at once never get one delivery
/// twice while it is leased, and together get every due one.
pub async fn concurrent_deliverers_never_share_a_lease(factory: &impl StoreFactory) {
    let setup = factory.replica().await;
    let t = now();
    setup.put_webhook(&endpoint("wh_c", t)).await.unwrap();
    let entries: Vec<OutboxEntry> = (0..40)
        .map(|i| entry(&format!("msg_{i:02}"), "wh_c", &format!("k{i}"), t))
        .collect();
    assert_eq!(setup.append_outbox(&entries, None).await.unwrap(), 40);

    let until = t.plus(Duration::from_secs(60));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let replica = factory.replica().await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..6 {
                got.extend(replica.lease_deliveries(t, until, 3).await.unwrap());
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for d in task.await.unwrap() {
            assert!(
                seen.insert(d.entry.id.clone()),
                "{} leased twice",
                d.entry.id
            );
        }
    }
    let rest = setup.lease_deliveries(t, until, 100).await.unwrap();
    for d in rest {
        assert!(
            seen.insert(d.entry.id.clone()),
            "{} leased twice",
            d.entry.id
        );
    }
    assert_eq!(seen.len(), 40, "every due delivery was leased once");
    assert!(
        setup
            .lease_deliveries(t.plus(Duration::from_secs(59)), until, 100)
            .await
            .unwrap()
            .is_empty(),
        "nothing is leased again before the leases end"
    );
}

/// A deliverer that sent but died before acknowledging: its lease ends,
/// exactly one deliverer gets the delivery again, with the same id, and
/// the dead one's late acknowledgement is refused. Delivered entries are
/// never leased again; a retry schedule and an admin retry bring one back.
pub async fn expired_delivery_lease_redelivers_once(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let t = now();
    a.put_webhook(&endpoint("wh_r", t)).await.unwrap();
    a.append_outbox(&[entry("msg_r", "wh_r", "kr", t)], None)
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let first = a.lease_deliveries(t, t.plus(lease), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    // The deliverer sends and dies here: no acknowledgement.

    let later = t.plus(lease + Duration::from_secs(1));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let replica = factory.replica().await;
        tasks.push(tokio::spawn(async move {
            replica
                .lease_deliveries(later, later.plus(lease), 10)
                .await
                .unwrap()
        }));
    }
    let mut again: Vec<LeasedDelivery> = Vec::new();
    for task in tasks {
        again.extend(task.await.unwrap());
    }
    assert_eq!(again.len(), 1, "exactly one redelivery");
    let second = &again[0];
    assert_eq!(second.entry.id, first[0].entry.id, "same webhook-id");
    assert!(second.token > first[0].token);

    let stale = a
        .finish_delivery(&first[0], &attempt(t, Some(200)), Next::Delivered, None)
        .await
        .unwrap();
    assert_eq!(
        stale, None,
        "the dead deliverer's acknowledgement is refused"
    );

    let policy = RetryPolicy {
        failing_after: 1,
        ..RetryPolicy::default()
    };
    let failing_entry = [entry("msg_f", "wh_other", "failing", t)];
    let retry_at = later.plus(Duration::from_secs(5));
    let failures = a
        .finish_delivery(
            second,
            &attempt(later, None),
            Next::RetryAt(retry_at),
            Some(policy.failing(&failing_entry)),
        )
        .await
        .unwrap();
    assert_eq!(failures, Some(1));
    assert_eq!(
        states(&a, "wh_other").await,
        vec![("msg_f".into(), DeliveryState::Pending)],
        "reaching the threshold wrote the failing event with the acknowledgement"
    );
    assert!(
        a.lease_deliveries(later, retry_at, 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.entry.id != "msg_r")
    );
    let third = a
        .lease_deliveries(retry_at, retry_at.plus(lease), 10)
        .await
        .unwrap();
    let third: Vec<_> = third
        .into_iter()
        .filter(|d| d.entry.id == "msg_r")
        .collect();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].attempts, 1);
    assert!(
        !a.retry_delivery("wh_r", "msg_r", retry_at).await.unwrap(),
        "not failed"
    );
    let gave_up = a
        .finish_delivery(&third[0], &attempt(retry_at, Some(500)), Next::GiveUp, None)
        .await
        .unwrap();
    assert_eq!(gave_up, Some(2));
    let far = retry_at.plus(Duration::from_secs(3600));
    assert!(
        a.lease_deliveries(far, far.plus(lease), 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.entry.id != "msg_r")
    );
    assert!(
        !a.retry_delivery("wh_x", "msg_r", far).await.unwrap(),
        "another endpoint's"
    );
    assert!(a.retry_delivery("wh_r", "msg_r", far).await.unwrap());
    let fourth = a.lease_deliveries(far, far.plus(lease), 10).await.unwrap();
    let fourth: Vec<_> = fourth
        .into_iter()
        .filter(|d| d.entry.id == "msg_r")
        .collect();
    assert_eq!(fourth.len(), 1);
    assert_eq!(
        a.finish_delivery(&fourth[0], &attempt(far, Some(204)), Next::Delivered, None)
            .await
            .unwrap(),
        Some(0),
        "a success resets the endpoint's failures"
    );
    let history = a.deliveries("wh_r", 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, DeliveryState::Delivered);
    let statuses: Vec<_> = history[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![None, Some(500), Some(204)]);
    let end = far.plus(Duration::from_secs(7200));
    assert!(
        a.lease_deliveries(end, end.plus(lease), 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.entry.id != "msg_r")
    );
}
