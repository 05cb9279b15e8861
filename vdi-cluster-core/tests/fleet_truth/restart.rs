//! A worker that answers is never failed: a restart's report frees the
//! slots of what the worker no longer runs with the heartbeat that proves
//! it, once however many replicas apply it, in bounded steps, and whatever
//! the mass-failure guard says about other, silent workers.

use std::time::Duration;

use vdi_cluster_core::Page;
use vdi_cluster_core::events::EventKind;
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::service::HeartbeatAck;
use vdi_cluster_core::store::ReserveRequest;
use vdi_cluster_core::testkit::{
    Behaviour, assert_no_drift, heartbeat_with_slots, key, reserve_and_confirm, wid,
};
use vdi_cluster_core::{Clock, ClusterService, Dispatch, Error, Registry, SessionKey, WorkerId};

use super::{Harness, config, harness, on_store};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A heartbeat of `code` from boot `boot` (sequence `seq`), listing what
/// the simulated worker runs, or no list at all with `list` off.
async fn beat(
    h: &Harness,
    code: &str,
    slots: u32,
    boot: &str,
    seq: u64,
    list: bool,
) -> HeartbeatAck {
    beat_on(&h.svc, h, code, slots, boot, seq, list).await
}

async fn beat_on(
    svc: &ClusterService,
    h: &Harness,
    code: &str,
    slots: u32,
    boot: &str,
    seq: u64,
    list: bool,
) -> HeartbeatAck {
    let live = h.workers.sessions(&wid(code));
    let mut hb = heartbeat_with_slots(code, slots, live.len() as u32);
    hb.stamp = HeartbeatStamp {
        boot_id: Some(boot.into()),
        seq: Some(seq),
    };
    hb.live_sessions = list.then_some(live);
    svc.fleet().heartbeat(hb).await.expect("heartbeat")
}

/// The whole of `code`'s machine restarts: its sessions vanish, it answers
/// again.
fn restart(h: &Harness, code: &str) {
    h.workers.kill(&wid(code));
    h.workers.set_behaviour(&wid(code), Behaviour::Healthy);
}

async fn place(h: &Harness, exam: &str, user: &str) -> WorkerId {
    h.svc
        .placement()
        .allocate(key(exam, user), Default::default())
        .await
        .expect("placed")
        .dispatch
        .worker
}

fn lost_events(h: &Harness) -> Vec<(SessionKey, WorkerId, Option<String>, Option<String>)> {
    h.events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::SessionLost {
                session,
                worker,
                old_boot_id,
                new_boot_id,
            } => Some((session, worker, old_boot_id, new_boot_id)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_fleet_restart_frees_every_slot_with_its_heartbeats_and_students_return() {
    let h = harness(|_| {});
    let endpoint = h
        .svc
        .operations()
        .create_webhook(
            "admin",
            "http://hooks.example/",
            vec!["session.lost".into()],
            None,
            SECRET.into(),
        )
        .await
        .unwrap()
        .id;
    let codes = ["w1", "w2", "w3"];
    for code in codes {
        beat(&h, code, 4, "boot-1", 1, true).await;
    }
    let mut students = Vec::new();
    for i in 0..12 {
        let exam = if i % 2 == 0 { "exam-a" } else { "exam-b" };
        place(&h, exam, &format!("s{i}")).await;
        students.push(key(exam, &format!("s{i}")));
    }
    let full = h
        .svc
        .placement()
        .allocate(key("exam-a", "late"), Default::default())
        .await;
    assert!(matches!(full, Err(Error::NoCapacity(_))), "{full:?}");
    assert_eq!(
        h.svc
            .operations()
            .summary()
            .await
            .unwrap()
            .total_available_sessions,
        0
    );

    // The power comes back: every worker has a new boot and runs nothing.
    h.advance(Duration::from_secs(5));
    for code in codes {
        restart(&h, code);
        let ack = beat(&h, code, 4, "boot-2", 1, true).await;
        assert!(ack.accepted);
        assert_eq!(
            (ack.dispatched_sessions, ack.available_sessions),
            (0, 4),
            "{ack:?}"
        );
    }
    let summary = h.svc.operations().summary().await.unwrap();
    assert_eq!(summary.total_available_sessions, 12, "{summary:?}");
    assert_eq!(summary.total_active_sessions, 0);
    let lost = lost_events(&h);
    assert_eq!(lost.len(), 12);
    assert!(lost.iter().all(|(_, _, old, new)| {
        old.as_deref() == Some("boot-1") && new.as_deref() == Some("boot-2")
    }));
    let deliveries = h
        .svc
        .operations()
        .webhook_deliveries(&endpoint, Page::first(100))
        .await
        .unwrap()
        .items;
    assert_eq!(
        deliveries.len(),
        12,
        "one session.lost each, written with the release"
    );

    // Nothing is left for the failure policy, and no guard holds anything.
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.sessions_lost, 12, "the heartbeats' releases");
    assert_eq!(
        (
            report.failed_worker_sessions,
            report.migrated,
            report.left_in_place
        ),
        (0, 0, 0)
    );
    assert!(!report.mass_failure_guard);
    assert!(report.drift.is_empty(), "{:?}", report.drift);

    // Every returning student keeps the key and gets a desktop.
    for student in &students {
        let placed = h
            .svc
            .placement()
            .allocate(student.clone(), Default::default())
            .await
            .expect("a returning student is placed");
        assert!(
            h.workers
                .sessions(&placed.dispatch.worker)
                .contains(student)
        );
    }
    assert_eq!(
        h.svc
            .operations()
            .summary()
            .await
            .unwrap()
            .total_available_sessions,
        0
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn replicas_applying_one_restart_heartbeat_free_its_slots_once() {
    let h = harness(|_| {});
    let other = on_store(
        h.store.clone(),
        h.clock.clone(),
        h.workers.clone(),
        config(|_| {}),
    );
    beat(&h, "w1", 6, "boot-1", 1, true).await;
    for i in 0..6 {
        place(&h, "exam", &format!("s{i}")).await;
    }
    h.advance(Duration::from_secs(5));
    restart(&h, "w1");
    let (a, b) = tokio::join!(
        beat_on(&h.svc, &h, "w1", 6, "boot-2", 1, true),
        beat_on(&other.svc, &h, "w1", 6, "boot-2", 1, true),
    );
    assert!(a.accepted || b.accepted, "{a:?} {b:?}");
    let snap = h.store.worker(&wid("w1")).await.unwrap().unwrap();
    assert_eq!((snap.dispatched, snap.record.unrecorded), (0, 0));
    assert_no_drift(&h.store).await;
    assert_eq!(
        lost_events(&h).len() + lost_events(&other).len(),
        6,
        "announced once"
    );
}

#[tokio::test]
async fn a_restart_beyond_one_step_is_freed_by_the_next_heartbeat_or_the_pass() {
    const SESSIONS: u32 = 1_500;
    for list in [true, false] {
        let h = harness(|c| c.scan_count = 2_000);
        beat(&h, "w1", SESSIONS, "boot-1", 1, list).await;
        let record = h.store.worker(&wid("w1")).await.unwrap().unwrap().record;
        for i in 0..SESSIONS {
            let k = key("exam", &format!("s{i}"));
            let at = h.clock.now();
            let boot = Some("boot-1".into());
            let dispatch = Dispatch::reserve(k, record.id.clone(), at, boot, Some(1));
            let request = ReserveRequest {
                dispatch,
                supersede: None,
                permit: None,
            };
            reserve_and_confirm(&h.store, &request, at, Duration::from_secs(60)).await;
        }
        h.advance(Duration::from_secs(5));
        restart(&h, "w1");
        let first = beat(&h, "w1", SESSIONS, "boot-2", 1, list).await;
        assert_eq!(first.dispatched_sessions, 500, "one bounded step");
        if list {
            // The next report, an empty list again, takes the next step.
            let next = beat(&h, "w1", SESSIONS, "boot-2", 2, list).await;
            assert_eq!(next.dispatched_sessions, 0);
            let report = h.svc.operations().reconcile().await.unwrap();
            assert_eq!(report.sessions_lost, SESSIONS);
        } else {
            // No list to compare with: the pass releases the rest.
            let report = h.svc.operations().reconcile().await.unwrap();
            assert_eq!(report.sessions_lost, SESSIONS);
            assert_eq!(report.failed_worker_sessions, 0);
        }
        assert_eq!(
            h.store
                .worker(&wid("w1"))
                .await
                .unwrap()
                .unwrap()
                .dispatched,
            0
        );
        assert_eq!(lost_events(&h).len(), SESSIONS as usize);
        assert_no_drift(&h.store).await;
    }
}

#[tokio::test]
async fn the_guard_holds_only_the_silent_never_a_worker_that_answers() {
    let h = harness(|_| {});
    for code in ["w1", "w2", "w3", "w4"] {
        beat(&h, code, 2, "boot-1", 1, true).await;
    }
    let mut on = Vec::new();
    for i in 0..8 {
        on.push((place(&h, "exam", &format!("s{i}")).await, i));
    }
    // w1 and w2 go silent past the hard timeout (the guard engages); w3
    // restarts and answers; w4 answers unchanged.
    h.advance(Duration::from_secs(700));
    restart(&h, "w3");
    beat(&h, "w3", 2, "boot-2", 1, true).await;
    beat(&h, "w4", 2, "boot-1", 2, true).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert!(report.mass_failure_guard);
    assert_eq!(report.sessions_lost, 2, "w3's, whatever the guard says");
    assert_eq!(
        h.store
            .worker(&wid("w3"))
            .await
            .unwrap()
            .unwrap()
            .dispatched,
        0
    );
    // The silent workers' sessions stay where they are; w4's are kept.
    for code in ["w1", "w2", "w4"] {
        assert_eq!(
            h.store
                .worker(&wid(code))
                .await
                .unwrap()
                .unwrap()
                .dispatched,
            2,
            "{code}"
        );
    }
    assert_eq!(report.left_in_place, 4);
}
