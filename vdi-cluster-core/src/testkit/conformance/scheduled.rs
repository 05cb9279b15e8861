//! Cases of [`ScheduledActions`](crate::scheduled::ScheduledActions):
//! compare-and-set and the time-ordered listing of open actions, a due
//! drain fired once by replicas racing to claim it, and a cancelled one
//! never fired.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::{add_worker, now};
use crate::events::RecordingSink;
use crate::ids::WorkerId;
use crate::policy::AdminPolicy;
use crate::scheduled::{ActionKind, ActionState, CLAIM_TTL, ScheduledAction};
use crate::service::{ClusterService, DrainAt, ServiceConfig};
use crate::store::{CasOutcome, Store};
use crate::testkit::SimulatedWorkers;
use crate::time::{Clock, ManualClock, Timestamp};

const HOUR: Duration = Duration::from_secs(3600);

fn action(id: &str, worker: &WorkerId, at: Timestamp) -> ScheduledAction {
    ScheduledAction::pending(
        id.to_owned(),
        worker.clone(),
        ActionKind::Drain,
        at,
        "alice",
        "kernel patch",
        now(),
    )
}

/// A service on `store` whose clock is `clock`.
fn service(store: Arc<dyn Store>, clock: &ManualClock, seed: u64) -> ClusterService {
    let config = ServiceConfig {
        seed,
        replica_id: format!("replica-{seed}"),
        ..ServiceConfig::default()
    };
    ClusterService::builder(store, Arc::new(SimulatedWorkers::new()))
        .config(config)
        .clock(Arc::new(clock.clone()))
        .events(Arc::new(RecordingSink::default()))
        .build()
}

async fn put(store: &Arc<dyn Store>, a: &ScheduledAction, expected: Option<u64>) -> CasOutcome {
    store
        .put_scheduled(a, expected)
        .await
        .expect("put_scheduled")
}

/// Writes apply only on the version read; open actions are listed by due
/// time then id, due ones only when asked; finished ones leave the list
/// and are still read by id.
pub async fn scheduled_actions_are_compare_and_set_and_listed_in_time_order(
    factory: &impl StoreFactory,
) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let w = WorkerId::parse("code", "w-sched.1").unwrap();
    let t = now();
    let late = action("sa_late", &w, t.plus(3 * HOUR));
    let first = action("sa_b", &w, t.plus(HOUR));
    let tie = action("sa_a", &w, t.plus(HOUR));
    assert_eq!(
        put(&a, &late, None).await,
        CasOutcome::Written { version: 1 }
    );
    assert_eq!(
        put(&b, &late, None).await,
        CasOutcome::Conflict { current: Some(1) },
        "an id is written once"
    );
    put(&b, &first, None).await;
    put(&a, &tie, None).await;
    let ids = |list: Vec<crate::scheduled::ScheduledSnapshot>| {
        list.into_iter().map(|s| s.action.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(b.open_scheduled(None, 10).await.unwrap()),
        ["sa_a", "sa_b", "sa_late"]
    );
    assert_eq!(
        ids(b.open_scheduled(None, 2).await.unwrap()),
        ["sa_a", "sa_b"]
    );
    assert_eq!(
        ids(a.open_scheduled(Some(t.plus(2 * HOUR)), 10).await.unwrap()),
        ["sa_a", "sa_b"]
    );
    assert!(a.open_scheduled(Some(t), 10).await.unwrap().is_empty());

    let cancelled = tie.cancel("bob", t).unwrap();
    assert_eq!(
        put(&a, &cancelled, Some(2)).await,
        CasOutcome::Conflict { current: Some(1) }
    );
    assert_eq!(
        put(&a, &cancelled, Some(1)).await,
        CasOutcome::Written { version: 2 }
    );
    let missing = action("sa_none", &w, t);
    assert_eq!(
        put(&a, &missing, Some(1)).await,
        CasOutcome::Conflict { current: None },
        "no update of an action never written"
    );
    assert_eq!(
        ids(b.open_scheduled(None, 10).await.unwrap()),
        ["sa_b", "sa_late"]
    );
    let read = b.scheduled("sa_a").await.unwrap().expect("kept");
    assert_eq!((read.action, read.version), (cancelled, 2));
    assert!(b.scheduled("sa_none").await.unwrap().is_none());
}

/// Replicas that read one due action all try to claim it: one claim is
/// written. Services on several replicas firing due drains at once drain
/// the worker once, audited once under the scheduling operator.
pub async fn a_due_scheduled_drain_fires_once_across_replicas(factory: &impl StoreFactory) {
    const REPLICAS: u64 = 6;
    let store = factory.replica().await;
    let w = add_worker(&store, "w-sched-race", 4).await;
    let t = now();
    let racing = action("sa_race", &w, t);
    put(&store, &racing, None).await;
    let mut claims = Vec::new();
    for _ in 0..REPLICAS {
        let replica = factory.replica().await;
        let claimed = racing.claim(t, CLAIM_TTL).unwrap();
        claims.push(tokio::spawn(async move {
            replica.put_scheduled(&claimed, Some(1)).await.unwrap()
        }));
    }
    let mut written = 0;
    for c in claims {
        if let CasOutcome::Written { .. } = c.await.unwrap() {
            written += 1;
        }
    }
    assert_eq!(written, 1, "one claim of one version");
    let claimed = store.scheduled("sa_race").await.unwrap().unwrap();
    let finished = claimed.action.finish(t, None).unwrap();
    put(&store, &finished, Some(claimed.version)).await;

    let clock = ManualClock::new(t);
    let scheduler = service(Arc::clone(&store), &clock, 0);
    let drain = scheduler
        .fleet()
        .schedule_drain(&w, DrainAt::At(t.plus(HOUR)), "alice", "kernel patch")
        .await
        .unwrap();
    clock.advance(2 * HOUR);
    let mut fires = Vec::new();
    for seed in 1..=REPLICAS {
        let s = service(factory.replica().await, &clock, seed);
        fires.push(tokio::spawn(async move {
            s.fleet().fire_due_scheduled(None).await.unwrap()
        }));
    }
    let mut fired = 0;
    for f in fires {
        fired += f.await.unwrap();
    }
    assert_eq!(fired, 1, "fired by one replica");
    let view = scheduler.fleet().worker_view(&w).await.unwrap();
    assert!(matches!(
        view.record.policy,
        AdminPolicy::Draining { .. } | AdminPolicy::Drained
    ));
    let done = store.scheduled(&drain.id).await.unwrap().unwrap();
    assert!(
        matches!(done.action.state, ActionState::Done { .. }),
        "{done:?}"
    );
    let audit = store.recent_audit(100).await.unwrap();
    let drains: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "drain" && e.target == w.as_str())
        .collect();
    assert_eq!(drains.len(), 1, "{audit:?}");
    assert_eq!(drains[0].actor, "alice");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "scheduled-drain")
            .count(),
        1
    );
    assert!(
        scheduler
            .fleet()
            .scheduled_drains(Some(&w))
            .await
            .unwrap()
            .is_empty(),
        "no longer open"
    );
}

/// A drain cancelled before it is due never fires, whichever replica's
/// tick comes after; a cancellation racing a claim of the same version
/// has one winner.
pub async fn a_cancelled_scheduled_drain_never_fires(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let kept = add_worker(&store, "w-sched-kept", 4).await;
    let gone = add_worker(&store, "w-sched-cancelled", 4).await;
    let t = now();
    let clock = ManualClock::new(t);
    let a = service(Arc::clone(&store), &clock, 0);
    let b = service(factory.replica().await, &clock, 1);
    let at = DrainAt::At(t.plus(HOUR));
    let first = a
        .fleet()
        .schedule_drain(&kept, at, "alice", "patch")
        .await
        .unwrap();
    let second = a
        .fleet()
        .schedule_drain(&gone, at, "alice", "patch")
        .await
        .unwrap();
    let listed = b.fleet().scheduled_drains(None).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|x| x.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = [first.id.as_str(), second.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    b.fleet()
        .cancel_scheduled_drain(&gone, &second.id, "bob")
        .await
        .unwrap();
    assert!(
        a.fleet()
            .cancel_scheduled_drain(&gone, &second.id, "bob")
            .await
            .is_err(),
        "cancelled once"
    );
    clock.advance(2 * HOUR);
    assert_eq!(b.fleet().fire_due_scheduled(None).await.unwrap(), 1);
    assert_eq!(a.fleet().fire_due_scheduled(None).await.unwrap(), 0);
    let policy = |s: &ClusterService, id: &WorkerId| {
        let (fleet, id) = (Arc::clone(s.fleet()), id.clone());
        async move { fleet.worker_view(&id).await.unwrap().record.policy }
    };
    assert_eq!(policy(&a, &gone).await, AdminPolicy::Active);
    assert_ne!(policy(&a, &kept).await, AdminPolicy::Active);

    // A claim and a cancellation of one version: one is written.
    let due = action("sa_contest", &gone, t);
    put(&store, &due, None).await;
    let (x, y) = (factory.replica().await, factory.replica().await);
    let claim = due.claim(clock.now(), CLAIM_TTL).unwrap();
    let cancel = due.cancel("bob", t).unwrap();
    let (c1, c2) = tokio::join!(
        x.put_scheduled(&claim, Some(1)),
        y.put_scheduled(&cancel, Some(1))
    );
    let wins = [c1.unwrap(), c2.unwrap()]
        .iter()
        .filter(|o| matches!(o, CasOutcome::Written { .. }))
        .count();
    assert_eq!(wins, 1);
}
