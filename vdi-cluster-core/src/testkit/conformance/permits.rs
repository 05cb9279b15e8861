//! Cases of [`StartPermits`](crate::pacing::StartPermits): the queue in
//! order, leases, the samples kept, and invariant F across replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::pacing::{PermitAnswer, StartSample};
use crate::testkit::wid;
use crate::time::Timestamp;

const LEASE: Duration = Duration::from_secs(60);

fn granted(answer: PermitAnswer) -> bool {
    matches!(answer, PermitAnswer::Granted { .. })
}

/// Permits go to the queue in order of asking, renewals keep them, a
/// release gives the next waiter its permit, the newest `keep` samples
/// are kept, and the view reads all of it at once.
pub async fn start_permits_queue_in_order_and_keep_samples(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let w = wid("w-permits");
    let t = now();
    let until = t.plus(LEASE);
    let ask = |store: &Arc<dyn crate::Store>, id: &'static str| {
        let (store, w) = (Arc::clone(store), w.clone());
        async move {
            store
                .acquire_start_permit(&w, id, 2, t, until)
                .await
                .expect("acquire")
        }
    };
    assert_eq!(ask(&a, "s1").await, PermitAnswer::Granted { in_flight: 1 });
    assert_eq!(ask(&b, "s2").await, PermitAnswer::Granted { in_flight: 2 });
    assert_eq!(
        ask(&a, "s3").await,
        PermitAnswer::Waiting {
            position: 0,
            in_flight: 2
        }
    );
    assert_eq!(
        ask(&b, "s4").await,
        PermitAnswer::Waiting {
            position: 1,
            in_flight: 2
        }
    );
    assert_eq!(
        ask(&b, "s3").await,
        PermitAnswer::Waiting {
            position: 0,
            in_flight: 2
        }
    );
    assert_eq!(
        ask(&a, "s1").await,
        PermitAnswer::Granted { in_flight: 2 },
        "renewal"
    );

    let view = b.start_queue(&w, t).await.expect("queue");
    let held: Vec<&str> = view.held.iter().map(|h| h.id.as_str()).collect();
    let mut sorted = held.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["s1", "s2"]);
    assert_eq!(view.waiting, ["s3", "s4"]);
    assert!(view.held.iter().all(|h| h.since == t));

    let sample = |millis| {
        Some(StartSample {
            millis,
            in_flight: 2,
        })
    };
    assert!(
        a.release_start_permit(&w, "s1", sample(100), 2)
            .await
            .expect("release")
    );
    assert!(
        !a.release_start_permit(&w, "s1", None, 2)
            .await
            .expect("again"),
        "harmless twice"
    );
    // s4 may not overtake s3, which still asks.
    assert_eq!(
        ask(&b, "s4").await,
        PermitAnswer::Waiting {
            position: 1,
            in_flight: 1
        }
    );
    assert_eq!(ask(&a, "s3").await, PermitAnswer::Granted { in_flight: 2 });
    assert_eq!(
        ask(&b, "s4").await,
        PermitAnswer::Waiting {
            position: 0,
            in_flight: 2
        }
    );
    // A waiter that leaves gives up its place.
    assert!(
        !b.release_start_permit(&w, "s4", None, 2)
            .await
            .expect("leave")
    );
    assert!(
        b.release_start_permit(&w, "s2", sample(200), 2)
            .await
            .expect("release")
    );
    assert!(
        b.release_start_permit(&w, "s3", sample(300), 2)
            .await
            .expect("release")
    );

    let view = a.start_queue(&w, t).await.expect("queue");
    assert!(view.held.is_empty() && view.waiting.is_empty(), "{view:?}");
    let kept: Vec<u32> = view.samples.iter().map(|s| s.millis).collect();
    assert_eq!(kept, [200, 300], "the newest two, oldest first");
    let other = a.start_queue(&wid("w-none"), t).await.expect("queue");
    assert_eq!(other, crate::pacing::StartQueue::default());
}

/// A replica that took permits and died gives them back when their lease
/// ends: other replicas wait until then, and get them after.
pub async fn a_dead_replicas_permits_come_back_after_their_lease(factory: &impl StoreFactory) {
    let w = wid("w-lease");
    let t = now();
    {
        let dead = factory.replica().await;
        for id in ["d1", "d2", "d3"] {
            let answer = dead
                .acquire_start_permit(&w, id, 3, t, t.plus(Duration::from_secs(30)))
                .await
                .expect("acquire");
            assert!(granted(answer));
        }
        let waiter = dead
            .acquire_start_permit(&w, "d4", 3, t, t.plus(Duration::from_secs(30)))
            .await
            .expect("acquire");
        assert!(!granted(waiter));
    }
    let live = factory.replica().await;
    let later = t.plus(Duration::from_secs(20));
    let answer = live
        .acquire_start_permit(&w, "l1", 3, later, later.plus(LEASE))
        .await
        .expect("acquire");
    assert_eq!(
        answer,
        PermitAnswer::Waiting {
            position: 1,
            in_flight: 3
        }
    );

    let after = t.plus(Duration::from_secs(31));
    let view = live.start_queue(&w, after).await.expect("queue");
    assert!(
        view.held.is_empty(),
        "expired permits are not read: {view:?}"
    );
    assert_eq!(view.waiting, ["l1"], "an expired waiter is not read");
    for (i, id) in ["l1", "l2", "l3"].into_iter().enumerate() {
        let answer = live
            .acquire_start_permit(&w, id, 3, after, after.plus(LEASE))
            .await
            .expect("acquire");
        assert_eq!(
            answer,
            PermitAnswer::Granted {
                in_flight: i as u32 + 1
            }
        );
    }
    let full = live
        .acquire_start_permit(&w, "l4", 3, after, after.plus(LEASE))
        .await
        .expect("acquire");
    assert_eq!(
        full,
        PermitAnswer::Waiting {
            position: 0,
            in_flight: 3
        }
    );
}

/// Invariant F: many starts on several replicas ask, hold and give back
/// permits of one worker at once; at no moment are more than the limit
/// held, each answer says so, and every start gets its permit.
pub async fn start_permits_never_exceed_the_limit_across_replicas(factory: &impl StoreFactory) {
    const LIMIT: u32 = 3;
    const STARTS: u32 = 24;
    let w = wid("w-storm");
    let holding = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for r in 0..4u32 {
        let store = factory.replica().await;
        for i in 0..STARTS / 4 {
            let (store, w, holding, most) = (
                Arc::clone(&store),
                w.clone(),
                Arc::clone(&holding),
                Arc::clone(&most),
            );
            tasks.push(tokio::spawn(async move {
                let id = format!("start-{r}-{i}");
                loop {
                    let t: Timestamp = now();
                    match store
                        .acquire_start_permit(&w, &id, LIMIT, t, t.plus(LEASE))
                        .await
                        .expect("acquire")
                    {
                        PermitAnswer::Granted { in_flight } => {
                            assert!(in_flight <= LIMIT, "{in_flight} permits held");
                            break;
                        }
                        PermitAnswer::Waiting { in_flight, .. } => {
                            assert!(in_flight <= LIMIT, "{in_flight} permits held");
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                }
                let n = holding.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
                holding.fetch_sub(1, Ordering::SeqCst);
                let sample = StartSample {
                    millis: 3,
                    in_flight: n,
                };
                assert!(
                    store
                        .release_start_permit(&w, &id, Some(sample), 50)
                        .await
                        .expect("release")
                );
            }));
        }
    }
    let all = async {
        for t in tasks {
            t.await.expect("start task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every start gets its permit");
    let most = most.load(Ordering::SeqCst);
    assert!(most <= LIMIT, "{most} starts held permits at once");
    let view = factory
        .replica()
        .await
        .start_queue(&w, now())
        .await
        .expect("queue");
    assert!(view.held.is_empty() && view.waiting.is_empty());
    assert_eq!(view.samples.len(), STARTS as usize);
}
