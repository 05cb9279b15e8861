//! A student's submission racing the control plane's own placements of
//! their session: a re-dispatch away from a failed worker planned by a
//! reconcile pass before the student released, and a promotion from the
//! waiting room whose promoter claimed the student before they left and
//! stalled before completing. Neither leaves a desktop behind.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::testkit::{
    SimulatedWorkers, assert_no_drift, exam, heartbeat_with_slots, key, total_dispatched,
};
use vdi_cluster_core::waiting_room::WaitingRoom;
use vdi_cluster_core::{
    ClusterService, DispatchStore, ExamId, FailurePolicy, ManualClock, MemoryStore, ServiceConfig,
    SessionKey, Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

/// A memory store with three ways to put a step of another party between
/// two of a placement's: release a session just before the next
/// compare-and-reserve (the student's submission landing after the
/// mover's read), hold compare-and-reserves until a permit is given, and
/// never answer a queue claim's completion (its promoter stalled or died).
#[derive(Debug, Clone)]
struct Racing {
    inner: MemoryStore,
    release_first: Arc<Mutex<Option<SessionKey>>>,
    reserve_gate: Option<Arc<Semaphore>>,
    stall_completion: Arc<AtomicBool>,
}

impl Racing {
    fn new(clock: &ManualClock) -> Self {
        Self {
            inner: MemoryStore::with_clock(Arc::new(clock.clone())),
            release_first: Arc::default(),
            reserve_gate: None,
            stall_completion: Arc::default(),
        }
    }

    async fn around<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        if method == "reserve" {
            if let Some(gate) = &self.reserve_gate {
                gate.acquire().await.unwrap().forget();
            }
            let pending = self.release_first.lock().unwrap().take();
            if let Some(k) = pending {
                let released = self.inner.release(&k, None, None, None).await.unwrap();
                assert!(released.is_some(), "{k} had a dispatch to release");
            }
        }
        if method == "complete_queue_claim" && self.stall_completion.load(Ordering::SeqCst) {
            return std::future::pending().await;
        }
        call.await
    }
}

vdi_cluster_core::delegate_store!(Racing, inner, around);

fn service(store: &Racing, clock: &ManualClock, config: ServiceConfig) -> Arc<ClusterService> {
    Arc::new(
        ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new()))
            .config(config)
            .clock(Arc::new(clock.clone()))
            .build(),
    )
}

#[tokio::test]
async fn a_session_released_during_a_pass_is_not_migrated_back() {
    let clock = ManualClock::new(START);
    let store = Racing::new(&clock);
    let svc = service(
        &store,
        &clock,
        ServiceConfig {
            seed: 7,
            snapshot_max_age: Duration::ZERO,
            failure_policy: FailurePolicy::Automatic,
            exam_affinity: false,
            herd_width: 1,
            ..ServiceConfig::default()
        },
    );
    let seq = AtomicU64::new(0);
    let beat = |code: &'static str, slots: u32| {
        let mut hb = heartbeat_with_slots(code, slots, 0);
        hb.stamp = HeartbeatStamp {
            boot_id: Some("boot-1".into()),
            seq: Some(seq.fetch_add(1, Ordering::SeqCst) + 1),
        };
        let svc = &svc;
        async move { assert!(svc.fleet().heartbeat(hb).await.unwrap().accepted) }
    };
    beat("w1", 10).await;
    beat("w2", 4).await;
    beat("w3", 4).await;
    let leaving = key("exam", "leaving");
    let staying = key("exam", "staying");
    for k in [&leaving, &staying] {
        let placed = svc
            .placement()
            .allocate(k.clone(), Default::default())
            .await
            .unwrap();
        assert_eq!(placed.dispatch.worker.as_str(), "w1");
    }
    // w1 falls silent past the hard timeout; the others keep reporting.
    for _ in 0..7 {
        clock.advance(Duration::from_secs(100));
        beat("w2", 4).await;
        beat("w3", 4).await;
    }

    // The pass reads both dispatches on w1; `leaving` submits before its
    // move reserves.
    *store.release_first.lock().unwrap() = Some(leaving.clone());
    let report = svc.operations().reconcile().await.unwrap();

    assert_eq!(store.inner.dispatch(&leaving).await.unwrap(), None);
    let moved = store.inner.dispatch(&staying).await.unwrap().unwrap();
    assert_ne!(moved.worker.as_str(), "w1");
    assert_eq!(report.migrated, 1, "{report:?}");
    assert_eq!(total_dispatched(&store.inner).await, 1);
    assert_no_drift(&store.inner).await;
}

#[tokio::test(start_paused = true)]
async fn a_student_who_leaves_while_a_stalled_promoter_places_them_holds_nothing() {
    let clock = ManualClock::new(START);
    let gate = Arc::new(Semaphore::new(0));
    let store = Racing {
        reserve_gate: Some(Arc::clone(&gate)),
        ..Racing::new(&clock)
    };
    let svc = service(
        &store,
        &clock,
        ServiceConfig {
            exam_headroom_percent: 0,
            ..ServiceConfig::default()
        },
    );
    let room = ExamId::parse("examId", "wr").unwrap();
    let (first, waiting) = (key("wr", "first"), key("wr", "waiting"));
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 1, 0))
        .await
        .unwrap();
    let mut booked = exam("wr", START.plus(Duration::from_secs(3600)), 60, 1);
    booked.queue = true;
    svc.exams().book_exam(booked, "admin").await.unwrap();
    gate.add_permits(1);
    svc.placement()
        .request_session(first.clone(), Default::default())
        .await
        .unwrap();
    svc.placement()
        .request_session(waiting.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        store.inner.exam_queue(&room).await.unwrap().entries.len(),
        1
    );
    svc.placement().release(&first).await.unwrap();

    // A promoter claims the waiting student and is held before it
    // reserves; it will never hear back from its completion.
    store.stall_completion.store(true, Ordering::SeqCst);
    let promoter = tokio::spawn({
        let (svc, room) = (Arc::clone(&svc), room.clone());
        async move { svc.placement().promote_queue(&room).await }
    });
    while store.inner.exam_queue(&room).await.unwrap().claim.is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The student leaves; the promoter reserves after the release looked.
    let leaving = tokio::spawn({
        let (svc, waiting) = (Arc::clone(&svc), waiting.clone());
        async move { svc.placement().end_session(&waiting).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!leaving.is_finished(), "the departure waits for the claim");
    gate.add_permits(1);

    let departure = leaving.await.unwrap().unwrap();
    assert!(departure.left_queue);
    assert_eq!(
        departure.released.map(|d| d.key),
        Some(waiting.clone()),
        "what the promoter placed is released"
    );
    assert_eq!(store.inner.dispatch(&waiting).await.unwrap(), None);
    assert_eq!(total_dispatched(&store.inner).await, 0);
    assert_no_drift(&store.inner).await;
    promoter.abort();
}
