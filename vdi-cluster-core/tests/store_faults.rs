//! A store failing over in the middle of a placement: one of the
//! placement's steps waits (for a connection, while the store finds its
//! new primary) long enough for the rest of the control plane to move on
//! without it. Whatever the late step finds, every record of a session
//! on a worker must stay a desktop that worker runs. In-memory backend
//! behind a wrapper, manual clock, simulated workers.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::timeout;
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::pacing::{StartPermits, StartSample};
use vdi_cluster_core::service::HeartbeatAck;
use vdi_cluster_core::service::PacingConfig;
use vdi_cluster_core::testkit::{
    SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key, wid,
};
use vdi_cluster_core::{
    Clock, ClusterService, DispatchState, DispatchStore, ManualClock, MemoryStore, ServiceConfig,
    SessionKey, Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

/// Longest wait for a step the test expects to happen (never reached when
/// the code is right; a bound, not a measurement).
const BOUND: Duration = Duration::from_secs(10);

/// A memory store that holds the first call of one method until the test
/// lets it go: the step waited on a store that was failing over.
#[derive(Debug, Clone)]
struct Stalling {
    inner: MemoryStore,
    method: &'static str,
    taken: Arc<AtomicBool>,
    entered: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl Stalling {
    fn new(inner: MemoryStore, method: &'static str) -> Self {
        Self {
            inner,
            method,
            taken: Arc::default(),
            entered: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    async fn around<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        if method == self.method && !self.taken.swap(true, Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.acquire().await.expect("gate open").forget();
        }
        call.await
    }
}

vdi_cluster_core::delegate_store!(Stalling, inner, around);

/// Who takes the session up while the first placement's confirmation
/// waits.
#[derive(Debug, Clone, Copy)]
enum Meanwhile {
    /// The worker's heartbeat reports the desktop, which has no record
    /// any more: it is adopted.
    Heartbeat,
    /// The student clicks again (through another replica) and is placed
    /// on the same worker, whose allocate answers the running desktop.
    Reload,
}

struct Harness {
    clock: ManualClock,
    store: Stalling,
    workers: SimulatedWorkers,
    seq: AtomicU64,
}

impl Harness {
    fn new() -> Self {
        Self::stalling("confirm")
    }

    /// A harness whose store holds the first call of `method`.
    fn stalling(method: &'static str) -> Self {
        let clock = ManualClock::new(START);
        let inner = MemoryStore::with_clock(Arc::new(clock.clone()));
        Self {
            clock,
            store: Stalling::new(inner, method),
            workers: SimulatedWorkers::new(),
            seq: AtomicU64::new(0),
        }
    }

    /// A control-plane replica over the shared store.
    fn replica(&self) -> Arc<ClusterService> {
        self.replica_with(ServiceConfig {
            seed: 7,
            snapshot_max_age: Duration::ZERO,
            allocate_timeout: Duration::from_secs(10),
            ..ServiceConfig::default()
        })
    }

    /// A control-plane replica over the shared store, configured.
    fn replica_with(&self, config: ServiceConfig) -> Arc<ClusterService> {
        Arc::new(
            ClusterService::builder(Arc::new(self.store.clone()), Arc::new(self.workers.clone()))
                .config(config)
                .clock(Arc::new(self.clock.clone()))
                .build(),
        )
    }

    /// `code`'s heartbeat (4 slots) listing what the simulated worker
    /// runs, with each desktop's connection details (as the node agent
    /// sends them).
    async fn report(&self, svc: &ClusterService, code: &str) -> HeartbeatAck {
        let live = self.workers.sessions(&wid(code));
        let mut hb = heartbeat_with_slots(code, 4, u32::try_from(live.len()).unwrap());
        hb.stamp = HeartbeatStamp {
            boot_id: Some(format!("{code}-boot")),
            seq: Some(self.seq.fetch_add(1, Ordering::SeqCst) + 1),
        };
        hb.live_details = live
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    serde_json::json!({ "connection": format!("rdp://{code}/{k}") }),
                )
            })
            .collect();
        hb.live_sessions = Some(live);
        let ack = svc.fleet().heartbeat(hb).await.expect("heartbeat");
        assert!(ack.accepted);
        ack
    }

    fn runs(&self, code: &str, k: &SessionKey) -> bool {
        self.workers.sessions(&wid(code)).contains(k)
    }
}

#[tokio::test]
async fn a_confirmation_answered_late_keeps_the_desktop_of_whoever_took_the_session_up() {
    for meanwhile in [Meanwhile::Heartbeat, Meanwhile::Reload] {
        let h = Harness::new();
        let (first, second) = (h.replica(), h.replica());
        h.report(&first, "w1").await;
        let k = key("exam", "student");

        // The first replica reserves, the worker starts the desktop, and
        // the confirmation waits on the store.
        let placing = tokio::spawn({
            let (svc, k) = (Arc::clone(&first), k.clone());
            async move { svc.placement().allocate(k, Default::default()).await }
        });
        timeout(BOUND, h.store.entered.notified())
            .await
            .expect("the confirmation reached the store");
        assert!(h.runs("w1", &k), "{meanwhile:?}: the worker started it");
        let reserved = h.store.inner.dispatch(&k).await.unwrap().unwrap();
        assert_eq!(reserved.state, DispatchState::Reserved);

        // Past the allocate timeout, reconcile reclaims the reservation
        // (its allocator looks dead), holding the slot for the worker.
        h.clock.advance(Duration::from_secs(11));
        let pass = second.operations().reconcile().await.unwrap();
        assert_eq!(pass.reservations_reclaimed, 1, "{meanwhile:?}: {pass:?}");

        // Someone takes the session up on the same worker.
        let taken = match meanwhile {
            Meanwhile::Heartbeat => {
                assert_eq!(h.report(&second, "w1").await.adopted_sessions, 1);
                h.store.inner.dispatch(&k).await.unwrap().unwrap()
            }
            Meanwhile::Reload => {
                let again = second
                    .placement()
                    .allocate(k.clone(), Default::default())
                    .await
                    .unwrap();
                again.dispatch
            }
        };
        assert_ne!(taken.id, reserved.id);
        assert_eq!(
            (taken.worker.as_str(), taken.state),
            ("w1", DispatchState::Active),
            "{meanwhile:?}"
        );

        // The first replica's confirmation is answered at last: the
        // reservation it confirms is gone.
        h.store.gate.add_permits(1);
        let answered = timeout(BOUND, placing)
            .await
            .expect("the first placement ends")
            .unwrap()
            .expect("the student is answered with a desktop");

        assert_eq!(
            (answered.dispatch.id, answered.dispatch.worker.as_str()),
            (taken.id, "w1"),
            "{meanwhile:?}: the first request answers the dispatch that holds the session"
        );
        let record = h.store.inner.dispatch(&k).await.unwrap().unwrap();
        assert_eq!(record.id, taken.id, "{meanwhile:?}");
        assert!(
            h.runs("w1", &k),
            "{meanwhile:?}: the record's desktop still runs on its worker"
        );

        // Nothing for the next report or pass to repair.
        let ack = h.report(&first, "w1").await;
        assert_eq!(
            (ack.adopted_sessions, ack.dispatched_sessions),
            (0, 1),
            "{meanwhile:?}: {ack:?}"
        );
        assert!(ack.release_sessions.is_empty(), "{meanwhile:?}: {ack:?}");
        assert_no_drift(&h.store.inner).await;
    }
}

#[tokio::test]
async fn a_late_confirmation_that_finds_nobody_keeps_the_desktop_a_delayed_report_adopts() {
    let h = Harness::new();
    let (first, second) = (h.replica(), h.replica());
    h.report(&first, "w1").await;
    let k = key("exam", "student");
    let placing = tokio::spawn({
        let (svc, k) = (Arc::clone(&first), k.clone());
        async move { svc.placement().allocate(k, Default::default()).await }
    });
    timeout(BOUND, h.store.entered.notified())
        .await
        .expect("the confirmation reached the store");
    h.clock.advance(Duration::from_secs(11));
    let pass = second.operations().reconcile().await.unwrap();
    assert_eq!(pass.reservations_reclaimed, 1, "{pass:?}");

    // The worker's heartbeat lists the desktop now, but reaches the
    // control plane only after the late confirmation is answered (its
    // replica waits on the store too).
    let live = h.workers.sessions(&wid("w1"));
    assert_eq!(live, vec![k.clone()]);
    h.store.gate.add_permits(1);
    let answered = timeout(BOUND, placing)
        .await
        .expect("the first placement ends")
        .unwrap();
    assert!(answered.is_err(), "one worker, already tried: {answered:?}");

    let mut hb = heartbeat_with_slots("w1", 4, 1);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("w1-boot".into()),
        seq: Some(h.seq.fetch_add(1, Ordering::SeqCst) + 1),
    };
    hb.live_sessions = Some(live);
    let ack = second.fleet().heartbeat(hb).await.expect("heartbeat");
    assert_eq!(ack.adopted_sessions, 1, "{ack:?}");
    let record = h.store.inner.dispatch(&k).await.unwrap().unwrap();
    assert_eq!(record.worker.as_str(), "w1");
    assert!(
        h.runs("w1", &k),
        "the adopted record's desktop still runs: the late confirmation left it"
    );
    assert_no_drift(&h.store.inner).await;
}

#[tokio::test]
async fn a_start_whose_reservation_waited_on_the_store_leaves_the_worker_call_as_its_sample() {
    let h = Harness::stalling("reserve");
    let svc = h.replica_with(ServiceConfig {
        seed: 7,
        snapshot_max_age: Duration::ZERO,
        allocate_timeout: Duration::from_secs(10),
        pacing: PacingConfig {
            enabled: true,
            ..PacingConfig::default()
        },
        ..ServiceConfig::default()
    });
    h.report(&svc, "w1").await;
    let k = key("exam", "student");

    // The reservation, which takes the start permit with the slot, waits
    // 8 s on a store failing over; then the worker answers at once.
    let placing = tokio::spawn({
        let (svc, k) = (Arc::clone(&svc), k.clone());
        async move { svc.placement().allocate(k, Default::default()).await }
    });
    timeout(BOUND, h.store.entered.notified())
        .await
        .expect("the reservation reached the store");
    h.clock.advance(Duration::from_secs(8));
    h.store.gate.add_permits(1);
    let placed = timeout(BOUND, placing)
        .await
        .expect("the placement ends")
        .unwrap()
        .expect("placed");
    assert_eq!(placed.dispatch.worker.as_str(), "w1");

    // The worker's start took no time: the store's wait is no measure of
    // how many desktops the worker can start at once.
    let queue = h
        .store
        .inner
        .start_queue(&wid("w1"), h.clock.now())
        .await
        .unwrap();
    assert_eq!(
        queue.samples,
        vec![StartSample {
            millis: 0,
            in_flight: 1
        }],
        "the sample is the worker's call alone"
    );
    assert!(queue.held.is_empty(), "the permit was given back");
}
