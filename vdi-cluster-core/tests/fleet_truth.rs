//! The fleet's report is the truth about what runs: adoption of sessions
//! nobody holds, of stale reservations, stopping duplicates, worker calls
//! that time out, coalesced duplicate allocations and reloads during a
//! mass failure. In-memory backend, manual clock, simulated workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vdi_cluster_core::client::WorkerClient;
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::service::{AllocateOutcome, HeartbeatAck};
use vdi_cluster_core::testkit::{
    Behaviour, SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key, request, wid,
};
use vdi_cluster_core::{
    ClusterService, DispatchState, DispatchStore, Error, ManualClock, MemoryStore, Registry,
    ServiceConfig, SessionKey, Timestamp, WorkerId,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

struct Harness {
    clock: ManualClock,
    store: MemoryStore,
    workers: SimulatedWorkers,
    events: RecordingSink,
    svc: Arc<ClusterService>,
    seq: Arc<AtomicU64>,
}

fn config(tweak: impl FnOnce(&mut ServiceConfig)) -> ServiceConfig {
    let mut config = ServiceConfig {
        seed: 7,
        snapshot_max_age: Duration::ZERO,
        ..ServiceConfig::default()
    };
    tweak(&mut config);
    config
}

fn harness(tweak: impl FnOnce(&mut ServiceConfig)) -> Harness {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    on_store(store, clock, SimulatedWorkers::new(), config(tweak))
}

/// A control plane over `store`, calling `workers`.
fn on_store(
    store: MemoryStore,
    clock: ManualClock,
    workers: SimulatedWorkers,
    config: ServiceConfig,
) -> Harness {
    let events = RecordingSink::default();
    let svc = ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
        .config(config)
        .clock(Arc::new(clock.clone()))
        .events(Arc::new(events.clone()))
        .build();
    Harness {
        clock,
        store,
        workers,
        events,
        svc: Arc::new(svc),
        seq: Arc::new(AtomicU64::new(0)),
    }
}

impl Harness {
    /// A heartbeat of `code` (`slots` slots) listing what the simulated
    /// worker runs, with `details` for each when asked.
    async fn report(&self, code: &str, slots: u32, details: bool) -> HeartbeatAck {
        let live = self.workers.sessions(&wid(code));
        self.report_live(code, slots, live, details).await
    }

    async fn report_live(
        &self,
        code: &str,
        slots: u32,
        live: Vec<SessionKey>,
        details: bool,
    ) -> HeartbeatAck {
        let mut hb = heartbeat_with_slots(code, slots, live.len() as u32);
        hb.stamp = HeartbeatStamp {
            boot_id: Some(format!("{code}-boot")),
            seq: Some(self.seq.fetch_add(1, Ordering::SeqCst) + 1),
        };
        if details {
            hb.live_details = live
                .iter()
                .map(|k| {
                    (
                        k.clone(),
                        serde_json::json!({"connection": format!("rdp://{code}/{k}")}),
                    )
                })
                .collect();
        }
        hb.live_sessions = Some(live);
        let ack = self.svc.heartbeat(hb).await.expect("heartbeat");
        assert!(ack.accepted);
        ack
    }

    /// Starts `key` on `code` behind the control plane's back.
    async fn run_on(&self, code: &str, key: &SessionKey) {
        let record = self.store.worker(&wid(code)).await.unwrap().unwrap().record;
        self.workers.allocate(&record, key).await.unwrap();
    }

    fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    fn count(&self, pred: impl Fn(&EventKind) -> bool) -> usize {
        self.events
            .events()
            .iter()
            .filter(|e| pred(&e.kind))
            .count()
    }
}

#[tokio::test]
async fn a_session_without_a_record_is_adopted_with_its_details() {
    let h = harness(|_| {});
    h.report("w1", 4, false).await;
    let k = key("exam", "s1");
    h.run_on("w1", &k).await;

    let ack = h.report("w1", 4, true).await;
    assert_eq!(ack.adopted_sessions, 1);
    assert!(ack.release_sessions.is_empty());
    let d = h.svc.session(&k).await.unwrap();
    assert_eq!((d.worker.as_str(), d.state), ("w1", DispatchState::Active));
    assert_eq!(d.session.unwrap()["connection"], "rdp://w1/exam/s1");
    assert_eq!(
        h.count(|e| matches!(e, EventKind::SessionAdopted { session, .. } if *session == k)),
        1
    );

    // The student's next allocate returns it; a second report adopts nothing.
    let again = h.svc.allocate(k.clone(), Default::default()).await.unwrap();
    assert_eq!(
        (again.dispatch.id, again.outcome),
        (d.id, AllocateOutcome::Existing)
    );
    assert_eq!(h.report("w1", 4, true).await.adopted_sessions, 0);
    assert_eq!(
        h.store
            .worker(&wid("w1"))
            .await
            .unwrap()
            .unwrap()
            .dispatched,
        1
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn after_a_data_loss_a_returning_student_gets_the_same_worker() {
    let h = harness(|_| {});
    for w in ["w1", "w2", "w3"] {
        h.report(w, 4, false).await;
    }
    let students: Vec<SessionKey> = (0..6).map(|i| key("exam", &format!("s{i}"))).collect();
    let mut placed = Vec::new();
    for k in &students {
        let a = h.svc.allocate(k.clone(), Default::default()).await.unwrap();
        placed.push(a.dispatch.worker);
    }

    // The backend comes back empty; the workers keep running. Agents that
    // send no details still get their sessions adopted.
    let fresh = MemoryStore::with_clock(Arc::new(h.clock.clone()));
    let after = on_store(fresh, h.clock.clone(), h.workers.clone(), config(|_| {}));
    let mut adopted = 0;
    for w in ["w1", "w2", "w3"] {
        adopted += after.report(w, 4, false).await.adopted_sessions;
    }
    assert_eq!(adopted as usize, students.len());
    let calls = after.workers.allocate_calls();
    for (k, worker) in students.iter().zip(&placed) {
        let back = after
            .svc
            .allocate(k.clone(), Default::default())
            .await
            .unwrap();
        assert_eq!(&back.dispatch.worker, worker, "{k} is back on its desktop");
        assert_eq!(back.outcome, AllocateOutcome::Existing);
        assert!(
            back.dispatch.session.is_some(),
            "details asked of the worker"
        );
    }
    assert_eq!(
        after.workers.allocate_calls() - calls,
        students.len() as u64
    );
    assert_no_drift(&after.store).await;
}

#[tokio::test]
async fn a_stale_reservation_is_adopted_by_the_report() {
    let h = harness(|_| {});
    h.report("w1", 4, false).await;
    let k = key("exam", "s1");
    // An allocator reserved, the worker started the session, the allocator died.
    let req = request(&k, &wid("w1"), START);
    h.store.reserve(&req).await.unwrap();
    h.run_on("w1", &k).await;

    let young = h.report("w1", 4, true).await;
    assert_eq!(
        young.adopted_reservations, 0,
        "its allocator may still confirm it"
    );
    h.advance(h.svc.config().fleet_grace());
    let ack = h.report("w1", 4, true).await;
    assert_eq!((ack.adopted_sessions, ack.adopted_reservations), (0, 1));
    let d = h.svc.session(&k).await.unwrap();
    assert_eq!((d.id, d.state), (req.dispatch.id, DispatchState::Active));
    assert!(d.session.is_some());
    assert_eq!(
        h.count(|e| matches!(e, EventKind::ReservationAdopted { .. })),
        1
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn a_duplicate_on_another_worker_is_stopped_after_the_grace() {
    let h = harness(|_| {});
    h.report("w1", 4, false).await;
    h.report("w2", 4, false).await;
    let k = key("exam", "s1");
    let holder = h
        .svc
        .allocate(k.clone(), Default::default())
        .await
        .unwrap()
        .dispatch
        .worker;
    let copy = if holder.as_str() == "w1" { "w2" } else { "w1" };
    h.run_on(copy, &k).await;

    assert!(
        h.report(copy, 4, false).await.release_sessions.is_empty(),
        "within the grace"
    );
    h.advance(h.svc.config().fleet_grace());
    let ack = h.report(copy, 4, false).await;
    assert_eq!(ack.release_sessions, vec![k.clone()]);
    assert_eq!(ack.adopted_sessions, 0);
    assert_eq!(
        h.count(|e| matches!(e, EventKind::SessionStopped { holder: hd, .. } if *hd == holder)),
        1
    );
    // The holder reporting it is told nothing; the record never moved.
    assert!(
        h.report(holder.as_str(), 4, false)
            .await
            .release_sessions
            .is_empty()
    );
    assert_eq!(h.svc.session(&k).await.unwrap().worker, holder);
}

#[tokio::test]
async fn a_timed_out_worker_call_is_adopted_or_stopped() {
    let h = harness(|c| {
        c.worker_call_timeout = Duration::from_millis(30);
        c.retry_count = 3;
    });
    h.report("w1", 4, false).await;
    let (alone, elsewhere) = (key("exam", "alone"), key("exam", "elsewhere"));
    h.workers.set_behaviour(&wid("w1"), Behaviour::Hanging);
    let err = h
        .svc
        .allocate(alone.clone(), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoCapacity(_)), "{err:?}");
    assert!(
        h.store.dispatch(&alone).await.unwrap().is_none(),
        "reservation undone"
    );

    // The worker started it anyway: its next report has it adopted.
    h.workers.set_behaviour(&wid("w1"), Behaviour::Healthy);
    h.run_on("w1", &alone).await;
    assert_eq!(h.report("w1", 4, true).await.adopted_sessions, 1);
    let back = h
        .svc
        .allocate(alone.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        (back.dispatch.worker.as_str(), back.outcome),
        ("w1", AllocateOutcome::Existing)
    );

    // With a second worker the student is placed there; the slow worker's
    // copy is stopped once that dispatch has settled.
    h.report("w2", 4, false).await;
    h.workers.set_behaviour(&wid("w1"), Behaviour::Hanging);
    let mut placed = None;
    for _ in 0..8 {
        let a = h
            .svc
            .allocate(elsewhere.clone(), Default::default())
            .await
            .unwrap();
        if a.dispatch.worker.as_str() == "w2" {
            placed = Some(a);
            break;
        }
        h.svc.release(&elsewhere).await.unwrap();
    }
    assert!(placed.is_some(), "placed on w2");
    h.workers.set_behaviour(&wid("w1"), Behaviour::Healthy);
    h.run_on("w1", &elsewhere).await;
    h.advance(h.svc.config().fleet_grace());
    h.report("w2", 4, false).await;
    let ack = h.report("w1", 4, false).await;
    assert_eq!(ack.release_sessions, vec![elsewhere.clone()]);
    assert_eq!(
        h.svc.session(&elsewhere).await.unwrap().worker.as_str(),
        "w2"
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn a_report_confirming_a_slow_call_hands_the_allocator_that_dispatch() {
    // Generous delays: the report only has to come before the worker's
    // answer (or the call's timeout); nothing measures them.
    for behaviour in [Behaviour::Slow(Duration::from_secs(3)), Behaviour::Hanging] {
        let h = harness(|c| c.worker_call_timeout = Duration::from_secs(6));
        h.report("w1", 4, false).await;
        h.workers.set_behaviour(&wid("w1"), behaviour);
        let k = key("exam", "slow");
        let svc = Arc::clone(&h.svc);
        let call = tokio::spawn({
            let k = k.clone();
            async move { svc.allocate(k, Default::default()).await }
        });
        let reserved = loop {
            if let Some(d) = h.store.dispatch(&k).await.unwrap() {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // The worker reports the session before the allocator hears back.
        h.advance(h.svc.config().fleet_grace());
        let ack = h.report_live("w1", 4, vec![k.clone()], true).await;
        assert_eq!(ack.adopted_reservations, 1, "{behaviour:?}");
        assert_eq!(ack.dispatched_sessions, 1, "the answer counts it");
        let a = call
            .await
            .unwrap()
            .expect("the allocator returns the adopted dispatch");
        assert_eq!(
            (a.dispatch.id, a.dispatch.state),
            (reserved.id, DispatchState::Active)
        );
        assert!(a.dispatch.session.is_some(), "{behaviour:?}");
        assert_eq!(h.svc.session(&k).await.unwrap().id, reserved.id);
        assert_no_drift(&h.store).await;
    }
}

#[tokio::test]
async fn concurrent_duplicates_coalesce_on_the_last_slot() {
    let h = harness(|_| {});
    // One slot left in the whole cluster, a slow worker.
    h.report("w1", 1, false).await;
    h.workers
        .set_behaviour(&wid("w1"), Behaviour::Slow(Duration::from_millis(100)));
    let replica = on_store(
        h.store.clone(),
        h.clock.clone(),
        h.workers.clone(),
        config(|c| c.seed = 8),
    );
    let k = key("exam", "clicker");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let svc = if i % 2 == 0 {
            Arc::clone(&h.svc)
        } else {
            Arc::clone(&replica.svc)
        };
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            svc.allocate(k, Default::default()).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let a = t.await.unwrap().expect("every duplicate gets the session");
        ids.insert(a.dispatch.id);
        assert_eq!(a.dispatch.state, DispatchState::Active);
    }
    assert_eq!(ids.len(), 1, "one dispatch for all");
    assert_eq!(h.workers.allocate_calls(), 1, "the worker was asked once");
    assert_eq!(
        h.store
            .worker(&wid("w1"))
            .await
            .unwrap()
            .unwrap()
            .dispatched,
        1
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn the_wait_for_an_allocation_in_flight_is_bounded() {
    let h = harness(|c| c.coalesce_wait = Some(Duration::from_millis(50)));
    h.report("w1", 4, false).await;
    let k = key("exam", "s1");
    // A reservation in flight on another replica that never finishes.
    h.store
        .reserve(&request(&k, &wid("w1"), START))
        .await
        .unwrap();
    let err = h.svc.allocate(k, Default::default()).await.unwrap_err();
    assert!(matches!(err, Error::AllocationInProgress(_)), "{err:?}");
}

#[tokio::test]
async fn a_reload_during_a_mass_failure_keeps_the_dispatch() {
    let h = harness(|_| {});
    for w in ["w1", "w2", "w3"] {
        h.report(w, 4, false).await;
    }
    let k = key("exam", "s1");
    let first = h.svc.allocate(k.clone(), Default::default()).await.unwrap();
    let on: WorkerId = first.dispatch.worker.clone();
    let up = ["w1", "w2", "w3"]
        .into_iter()
        .find(|w| *w != on.as_str())
        .unwrap();
    // Two of three workers go silent at once, the session's among them.
    h.advance(Duration::from_secs(100));
    h.report(up, 4, false).await;
    h.advance(Duration::from_secs(30));

    let reload = h.svc.allocate(k.clone(), Default::default()).await.unwrap();
    assert_eq!(reload.dispatch.id, first.dispatch.id, "the same desktop");
    assert_eq!(reload.outcome, AllocateOutcome::Existing);
    assert!(reload.warning.is_some(), "the API can tell the student");
    assert_eq!(h.svc.session(&k).await.unwrap().worker, on);
    assert!(
        h.count(|e| matches!(e, EventKind::SessionMigrated { .. })) == 0,
        "nothing moved"
    );
}

#[tokio::test]
async fn a_released_slot_is_usable_before_the_next_heartbeat() {
    let h = harness(|_| {});
    h.report("w1", 1, false).await;
    let (first, second) = (key("exam", "first"), key("exam", "second"));
    h.svc
        .allocate(first.clone(), Default::default())
        .await
        .unwrap();
    // The worker reports it: one slot, in use.
    assert_eq!(h.report("w1", 1, false).await.available_sessions, 0);
    let full = h.svc.allocate(second.clone(), Default::default()).await;
    assert!(matches!(full, Err(Error::NoCapacity(_))), "{full:?}");

    // Released, the worker confirmed the stop: the next student is placed
    // at once, with the worker's last report still listing the first.
    h.svc.release(&first).await.unwrap().expect("released");
    let placed = h
        .svc
        .allocate(second.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w1");
    assert_eq!(h.workers.sessions(&wid("w1")), vec![second]);
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn a_release_the_worker_did_not_confirm_holds_the_slot_until_it_reports() {
    let h = harness(|c| c.worker_call_timeout = Duration::from_millis(30));
    h.report("w1", 1, false).await;
    let (first, second) = (key("exam", "first"), key("exam", "second"));
    h.svc
        .allocate(first.clone(), Default::default())
        .await
        .unwrap();
    h.report("w1", 1, false).await;

    // The stop call hangs: the record goes, the slot stays held.
    h.workers.set_behaviour(&wid("w1"), Behaviour::Hanging);
    h.svc.release(&first).await.unwrap().expect("released");
    assert!(h.store.dispatch(&first).await.unwrap().is_none());
    let snap = h.store.worker(&wid("w1")).await.unwrap().unwrap();
    assert_eq!((snap.dispatched, snap.record.unrecorded), (0, 1));
    h.workers.set_behaviour(&wid("w1"), Behaviour::Healthy);
    let held = h.svc.allocate(second.clone(), Default::default()).await;
    assert!(matches!(held, Err(Error::NoCapacity(_))), "{held:?}");

    // The worker's next report says the session is gone: the slot is free.
    h.report_live("w1", 1, Vec::new(), false).await;
    let placed = h
        .svc
        .allocate(second.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w1");
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn an_adopted_session_is_counted_once() {
    let h = harness(|_| {});
    h.report("w1", 3, false).await;
    let placed = key("exam", "placed");
    h.svc
        .allocate(placed.clone(), Default::default())
        .await
        .unwrap();
    // A session the worker runs that nobody recorded: counted as
    // unrecorded when the report is written, then adopted.
    let stray = key("other", "stray");
    h.run_on("w1", &stray).await;
    let ack = h.report("w1", 3, false).await;
    assert_eq!(ack.adopted_sessions, 1);
    assert_eq!((ack.used_sessions, ack.available_sessions), (2, 1));
    let snap = h.store.worker(&wid("w1")).await.unwrap().unwrap();
    assert_eq!((snap.dispatched, snap.record.unrecorded), (2, 0));
    assert_no_drift(&h.store).await;
}
