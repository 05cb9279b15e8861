//! What an allocation costs in store calls, counted by the testkit's
//! instrumented store, and that the caches behind those savings keep the
//! allocation's meaning: a fresh allocation is one compare-and-reserve and
//! one confirm (and, for a booked exam, the read of the student's open
//! interruptions for the disruption ledger); an existing session is still handed back, a dispatch on a
//! failed worker still superseded; the calendar this replica caches is
//! dropped by its own writes; a stale placement hint never over-allocates;
//! a release of an exam that does not queue asks no queue; a reservation
//! that takes a worker's last slot spares the replica's next request a
//! retry there; a paced start that finds a free permit costs no call
//! besides the reserve and the confirm that take and give back its permit,
//! its limit's inputs read once per replica.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::pacing::StartPermits;
use vdi_cluster_core::service::{AllocateOutcome, SessionRequest};
use vdi_cluster_core::testkit::instrument::{Breakdown, Instrumented};
use vdi_cluster_core::testkit::{SimulatedWorkers, exam, heartbeat_with_slots, key, wid};
use vdi_cluster_core::{
    Clock, ClusterService, Error, ManualClock, MemoryStore, Registry, ServiceConfig, Store,
    Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

/// Long enough that nothing a test caches expires while it runs.
const CACHED: Duration = Duration::from_secs(3600);

/// Replicas over one in-memory store, every store call counted.
struct Replicas {
    clock: ManualClock,
    store: MemoryStore,
    calls: Breakdown,
    services: Vec<ClusterService>,
    seq: AtomicU64,
}

fn replicas(n: usize, tweak: impl Fn(&mut ServiceConfig)) -> Replicas {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let calls = Breakdown::new();
    let workers = SimulatedWorkers::new();
    let services = (0..n)
        .map(|i| {
            let mut config = ServiceConfig {
                seed: 7 + i as u64,
                replica_id: format!("replica-{i}"),
                snapshot_max_age: CACHED,
                exam_headroom_percent: 0,
                ..ServiceConfig::default()
            };
            tweak(&mut config);
            let counted: Arc<dyn Store> =
                Arc::new(Instrumented::new(Arc::new(store.clone()), calls.clone()));
            ClusterService::builder(counted, Arc::new(workers.clone()))
                .config(config)
                .clock(Arc::new(clock.clone()))
                .build()
        })
        .collect();
    Replicas {
        clock,
        store,
        calls,
        services,
        seq: AtomicU64::new(0),
    }
}

impl Replicas {
    async fn beat(&self, code: &str, slots: u32) {
        self.beat_via(0, code, slots).await;
    }

    /// A heartbeat of `code` through replica `via`.
    async fn beat_via(&self, via: usize, code: &str, slots: u32) {
        let mut hb = heartbeat_with_slots(code, slots, 0);
        hb.stamp = HeartbeatStamp {
            boot_id: Some("boot-1".into()),
            seq: Some(self.seq.fetch_add(1, Ordering::SeqCst) + 1),
        };
        assert!(
            self.services[via]
                .fleet()
                .heartbeat(hb)
                .await
                .unwrap()
                .accepted
        );
    }

    /// Store calls since the last look, by method (and reserve's answer).
    fn take_calls(&self) -> BTreeMap<&'static str, u64> {
        let calls = self.calls.snapshot();
        self.calls.reset();
        calls.into_iter().map(|(m, s)| (m, s.calls)).collect()
    }

    async fn dispatched(&self, code: &str) -> u32 {
        self.store
            .worker(&wid(code))
            .await
            .unwrap()
            .unwrap()
            .dispatched
    }
}

fn calls(list: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    list.iter().copied().collect()
}

const RESERVE_AND_CONFIRM: &[(&str, u64)] = &[("confirm", 1), ("reserve → reserved", 1)];

#[tokio::test]
async fn a_fresh_allocation_is_one_reserve_and_one_confirm() {
    let r = replicas(1, |_| {});
    r.beat("w1", 4).await;
    r.beat("w2", 4).await;
    let svc = &r.services[0];
    // The first allocation of the exam reads the fleet and its hints.
    svc.placement()
        .allocate(key("exam", "s0"), Default::default())
        .await
        .unwrap();
    r.take_calls();
    for user in ["s1", "s2", "s3"] {
        let placed = svc
            .placement()
            .allocate(key("exam", user), Default::default())
            .await
            .unwrap();
        assert!(matches!(placed.outcome, AllocateOutcome::Placed { .. }));
        assert_eq!(r.take_calls(), calls(RESERVE_AND_CONFIRM), "{user}");
    }
}

#[tokio::test]
async fn a_paced_start_with_a_free_permit_costs_one_reserve_and_one_confirm() {
    let r = replicas(2, |c| {
        c.pacing.enabled = true;
        c.pacing.inputs_max_age = CACHED;
    });
    r.beat("w1", 8).await;
    let (first, other) = (&r.services[0], &r.services[1]);
    // The first start on the worker reads its last starts, the limit's
    // inputs, once for this replica.
    first
        .placement()
        .allocate(key("exam", "s0"), Default::default())
        .await
        .unwrap();
    assert_eq!(r.take_calls().get("start_queue"), Some(&1));
    // The permit comes with the reservation and goes with the
    // confirmation: what an unpaced allocation costs.
    let paced = calls(RESERVE_AND_CONFIRM);
    for user in ["s1", "s2", "s3"] {
        first
            .placement()
            .allocate(key("exam", user), Default::default())
            .await
            .unwrap();
        assert_eq!(r.take_calls(), paced, "{user}");
    }
    // Another replica reads them for itself, once.
    other
        .placement()
        .allocate(key("exam", "t0"), Default::default())
        .await
        .unwrap();
    assert_eq!(r.take_calls().get("start_queue"), Some(&1));
    other
        .placement()
        .allocate(key("exam", "t1"), Default::default())
        .await
        .unwrap();
    assert_eq!(r.take_calls(), paced);
    let queue = r
        .store
        .start_queue(&wid("w1"), r.clock.now())
        .await
        .unwrap();
    assert!(queue.held.is_empty(), "every permit given back");
    assert_eq!(queue.samples.len(), 6, "every start left its sample");
}

#[tokio::test]
async fn the_session_api_pays_nothing_more_for_an_exam_that_does_not_queue() {
    let r = replicas(1, |_| {});
    r.beat("w1", 4).await;
    let svc = &r.services[0];
    svc.placement()
        .request_session(key("exam", "s0"), Default::default())
        .await
        .unwrap();
    r.take_calls();
    let answer = svc
        .placement()
        .request_session(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert!(matches!(answer, SessionRequest::Placed(_)));
    assert_eq!(r.take_calls(), calls(RESERVE_AND_CONFIRM));
}

#[tokio::test]
async fn a_release_of_an_exam_that_does_not_queue_tries_no_queue() {
    let r = replicas(1, |_| {});
    r.beat("w1", 4).await;
    let svc = &r.services[0];
    let k = key("exam", "s0");
    svc.placement()
        .request_session(k.clone(), Default::default())
        .await
        .unwrap();
    svc.placement().end_session(&k).await.unwrap();
    r.take_calls();
    svc.placement().promote_after_release(&k.exam_id).await;
    assert_eq!(r.take_calls(), calls(&[]), "the calendar is cached");
}

#[tokio::test]
async fn a_queueing_exam_costs_the_queues_answer_more_while_nobody_waits() {
    let r = replicas(1, |_| {});
    r.beat("w1", 4).await;
    let svc = &r.services[0];
    let booked = exam("exam", START, 60, 4);
    svc.exams().book_exam(booked, "admin").await.unwrap();
    svc.placement()
        .request_session(key("exam", "s0"), Default::default())
        .await
        .unwrap();
    r.take_calls();
    let answer = svc
        .placement()
        .request_session(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert!(matches!(answer, SessionRequest::Placed(_)), "{answer:?}");
    let mut expected = calls(RESERVE_AND_CONFIRM);
    expected.insert("touch_queued", 1);
    // A booked exam's new desktop reads the interruptions the student is
    // in (a refusal, a restart's release) for the disruption ledger.
    expected.insert("open_interruptions", 1);
    assert_eq!(r.take_calls(), expected);
    // A student who already has a session gets it back, not a place in
    // the queue.
    let again = svc
        .placement()
        .request_session(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    let SessionRequest::Placed(again) = again else {
        panic!("{again:?}")
    };
    assert_eq!(again.outcome, AllocateOutcome::Existing);
}

#[tokio::test]
async fn an_existing_session_is_handed_back_without_a_read_before_reserving() {
    let r = replicas(1, |_| {});
    r.beat("w1", 4).await;
    let svc = &r.services[0];
    let first = svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    r.take_calls();
    let again = svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(again.outcome, AllocateOutcome::Existing);
    assert_eq!(again.dispatch.id, first.dispatch.id);
    // Reserve answers the dispatch; its worker is read to judge it.
    assert_eq!(
        r.take_calls(),
        calls(&[("reserve → existing", 1), ("worker", 1)])
    );
    assert_eq!(r.dispatched("w1").await, 1);
}

#[tokio::test]
async fn a_dispatch_on_a_failed_worker_is_superseded_by_the_new_reservation() {
    // One silent worker of two is no mass failure here.
    let r = replicas(1, |c| c.mass_failure_percent = 100);
    r.beat("w1", 4).await;
    r.beat("w2", 4).await;
    let svc = &r.services[0];
    let on = svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap()
        .dispatch
        .worker;
    let other = if on.as_str() == "w1" { "w2" } else { "w1" };
    r.clock.advance(Duration::from_secs(100));
    r.beat(other, 4).await;
    r.clock.advance(Duration::from_secs(30)); // `on` is now unreachable.
    let again = svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(again.dispatch.worker.as_str(), other);
    assert!(
        matches!(&again.outcome, AllocateOutcome::Redispatched { from, .. } if *from == on),
        "{:?}",
        again.outcome
    );
    assert_eq!(
        r.dispatched(on.as_str()).await,
        0,
        "old dispatch superseded"
    );
    assert_eq!(r.dispatched(other).await, 1);
}

#[tokio::test]
async fn the_cached_calendar_is_dropped_by_this_replicas_own_booking() {
    let r = replicas(1, |_| {});
    r.beat("w1", 1).await;
    let svc = &r.services[0];
    // The calendar is read (no booking: `exam` does not queue) and cached.
    svc.placement()
        .request_session(key("exam", "s0"), Default::default())
        .await
        .unwrap();
    let booked = exam("exam", START.plus(Duration::from_secs(3600)), 60, 1);
    svc.exams().book_exam(booked, "admin").await.unwrap();
    // The worker is full: the booked exam's queue takes the student, where
    // a stale calendar would have refused them.
    let answer = svc
        .placement()
        .request_session(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert!(matches!(answer, SessionRequest::Queued(_)), "{answer:?}");
}

#[tokio::test]
async fn a_stale_placement_hint_costs_a_retry_never_a_slot() {
    let r = replicas(2, |_| {});
    r.beat("w1", 2).await;
    r.beat("w2", 2).await;
    let (a, b) = (&r.services[0], &r.services[1]);
    let sticky = a
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap()
        .dispatch
        .worker;
    let other = if sticky.as_str() == "w1" { "w2" } else { "w1" };
    // Replica `b` fills the sticky worker; `a` still has one slot of it in
    // its snapshot.
    let by_b = b
        .placement()
        .allocate(key("exam", "s2"), Default::default())
        .await
        .unwrap();
    assert_eq!(by_b.dispatch.worker, sticky);
    let by_a = a
        .placement()
        .allocate(key("exam", "s3"), Default::default())
        .await
        .unwrap();
    assert_eq!(by_a.dispatch.worker.as_str(), other);
    assert_eq!(by_a.contention_retries, 1);
    b.placement()
        .allocate(key("exam", "s4"), Default::default())
        .await
        .unwrap();
    let refused = a
        .placement()
        .allocate(key("exam", "s5"), Default::default())
        .await;
    assert!(matches!(refused, Err(Error::NoCapacity(_))), "{refused:?}");
    for code in ["w1", "w2"] {
        assert_eq!(r.dispatched(code).await, 2, "{code}");
    }
}

#[tokio::test]
async fn a_reservation_that_fills_a_worker_says_so_and_spares_a_retry() {
    let r = replicas(2, |_| {});
    r.beat("w1", 3).await;
    let (a, b) = (&r.services[0], &r.services[1]);
    assert_eq!(place(a, "s0").await.dispatch.worker, wid("w1"));
    // Another replica takes a slot this replica's snapshot still shows free.
    assert_eq!(place(b, "s1").await.dispatch.worker, wid("w1"));
    // The last slot: the store answers that none is left.
    assert_eq!(place(a, "s2").await.dispatch.worker, wid("w1"));
    r.beat_via(1, "w2", 3).await;
    let next = place(a, "s3").await;
    assert_eq!(next.dispatch.worker, wid("w2"));
    assert_eq!(next.contention_retries, 0, "w1 was known full");
}

async fn place(svc: &ClusterService, user: &str) -> vdi_cluster_core::service::Allocation {
    svc.placement()
        .allocate(key("exam", user), Default::default())
        .await
        .unwrap()
}
