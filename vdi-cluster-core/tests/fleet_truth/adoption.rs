//! Adoption of what workers run without a record, stale reservations
//! confirmed by reports, duplicates stopped, reconcile's sweep.

use std::sync::Arc;

use vdi_cluster_core::events::EventKind;
use vdi_cluster_core::service::AllocateOutcome;
use vdi_cluster_core::testkit::{assert_no_drift, key, request, wid};
use vdi_cluster_core::{DispatchState, DispatchStore, MemoryStore, Registry, SessionKey};

use crate::{START, config, harness, on_store};

#[tokio::test]
async fn a_session_without_a_record_is_adopted_with_its_details() {
    let h = harness(|_| {});
    h.report("w1", 4, false).await;
    let k = key("exam", "s1");
    h.run_on("w1", &k).await;

    let ack = h.report("w1", 4, true).await;
    assert_eq!(ack.adopted_sessions, 1);
    assert!(ack.release_sessions.is_empty());
    let d = h.svc.placement().session(&k).await.unwrap();
    assert_eq!((d.worker.as_str(), d.state), ("w1", DispatchState::Active));
    assert_eq!(d.session.unwrap()["connection"], "rdp://w1/exam/s1");
    assert_eq!(
        h.count(|e| matches!(e, EventKind::SessionAdopted { session, .. } if *session == k)),
        1
    );

    // The student's next allocate returns it; a second report adopts nothing.
    let again = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        (again.dispatch.id, again.outcome),
        (d.id, AllocateOutcome::Existing)
    );
    assert_eq!(h.report("w1", 4, true).await.adopted_sessions, 0);
    assert_eq!(h.dispatched("w1").await, 1);
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
        let a = h
            .svc
            .placement()
            .allocate(k.clone(), Default::default())
            .await
            .unwrap();
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
            .placement()
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
    let d = h.svc.placement().session(&k).await.unwrap();
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
        .placement()
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
    assert_eq!(h.svc.placement().session(&k).await.unwrap().worker, holder);
}

#[tokio::test]
async fn an_adopted_session_is_counted_once() {
    let h = harness(|_| {});
    h.report("w1", 3, false).await;
    let placed = key("exam", "placed");
    h.svc
        .placement()
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

#[tokio::test]
async fn a_reconcile_pass_repairs_toward_the_stored_reports_and_says_so() {
    let h = harness(|_| {});
    h.report("w1", 4, false).await;
    h.report("w2", 4, false).await;

    // A record lost behind the control plane's back after the worker's
    // last report listed the session.
    let lost = key("exam", "lost");
    let placed = h
        .svc
        .placement()
        .allocate(lost.clone(), Default::default())
        .await
        .unwrap();
    let holder = placed.dispatch.worker.as_str().to_owned();
    h.report(&holder, 4, false).await;
    h.store.release(&lost, None, None, None).await.unwrap();
    // A report stored before the loss adopts nothing (it may predate a
    // release); the worker's next heartbeat does, and the pass counts it.
    let report = h.svc.operations().reconcile().await.unwrap();
    assert!(report.scan_complete);
    assert_eq!(report.sessions_adopted, 0, "{report:?}");
    assert!(h.store.dispatch(&lost).await.unwrap().is_none());
    assert_eq!(h.report(&holder, 4, false).await.adopted_sessions, 1);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.sessions_adopted, 1, "{report:?}");
    assert_eq!(
        h.svc
            .placement()
            .session(&lost)
            .await
            .unwrap()
            .worker
            .as_str(),
        holder
    );

    // A copy on the other worker of a session settled on the holder: the
    // pass's sweep stops it once the grace has passed, and counts it.
    let other = if holder == "w1" { "w2" } else { "w1" };
    h.run_on(other, &lost).await;
    assert!(h.report(other, 4, false).await.release_sessions.is_empty());
    h.advance(h.svc.config().fleet_grace());
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.duplicates_stopped, 1, "{report:?}");
    assert!(h.workers.sessions(&wid(other)).is_empty());
    assert_eq!(h.workers.sessions(&wid(&holder)), vec![lost]);
    assert_no_drift(&h.store).await;
}

/// A worker with one slot runs a student's desktop; the worker composes a
/// heartbeat listing it (sequence N); the student submits, the worker
/// stops the desktop and the record goes; then that heartbeat arrives and
/// has the session adopted. The worker's next report (N+1) omits it: the
/// slot is free at once, not after the live-session grace, and the next
/// student takes it.
#[tokio::test]
async fn a_release_racing_a_heartbeat_holds_no_slot_for_the_grace() {
    let h = harness(|_| {});
    h.report("w1", 1, false).await;
    let (first, second) = (key("exam", "s1"), key("exam", "s2"));
    h.svc
        .placement()
        .allocate(first.clone(), Default::default())
        .await
        .unwrap();
    let composed = h.workers.sessions(&wid("w1"));
    h.svc.placement().release(&first).await.unwrap();
    assert!(h.workers.sessions(&wid("w1")).is_empty());

    let late = h.report_live("w1", 1, composed, false).await;
    assert_eq!(late.adopted_sessions, 1);
    let adopted = h.store.dispatch(&first).await.unwrap().expect("adopted");
    let stamp = h.store.worker(&wid("w1")).await.unwrap().unwrap();
    let seq = stamp.record.stamp.and_then(|s| s.seq);
    assert_eq!((adopted.adopted, adopted.worker_seq), (true, seq));
    assert!(
        h.svc
            .placement()
            .allocate(second.clone(), Default::default())
            .await
            .is_err(),
        "full while the adopted record holds the slot"
    );

    // One heartbeat interval later, far within the grace.
    h.advance(h.svc.config().heartbeat_interval);
    assert!(h.svc.config().heartbeat_interval < h.svc.config().live_session_grace);
    let next = h.report("w1", 1, false).await;
    assert_eq!((next.dispatched_sessions, next.available_sessions), (0, 1));
    assert!(h.store.dispatch(&first).await.unwrap().is_none());
    let seated = h
        .svc
        .placement()
        .allocate(second.clone(), Default::default())
        .await
        .expect("the next student is placed on the freed slot");
    assert_eq!(seated.dispatch.worker.as_str(), "w1");
    assert_eq!(h.count(|e| matches!(e, EventKind::SessionLost { .. })), 0);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.gone_removed, 1, "{report:?}");
    assert_eq!(report.sessions_lost, 0, "{report:?}");
    assert_no_drift(&h.store).await;
}

/// The report that omits an adopted session was stored before the
/// adoption (another replica wrote it in between), so no heartbeat
/// releases it: the next reconcile pass does, without the grace. A
/// session placed normally and omitted the same way waits for the grace.
#[tokio::test]
async fn reconcile_frees_an_adopted_session_a_stored_report_omits() {
    let h = harness(|_| {});
    h.report("w1", 2, false).await;
    let (adopted, placed) = (key("exam", "adopted"), key("exam", "placed"));
    h.run_on("w1", &adopted).await;
    h.report("w1", 2, false).await;
    assert!(h.store.dispatch(&adopted).await.unwrap().unwrap().adopted);
    h.svc
        .placement()
        .allocate(placed.clone(), Default::default())
        .await
        .unwrap();

    // A later report, stored, omits both.
    let snap = h.store.worker(&wid("w1")).await.unwrap().unwrap();
    let mut record = snap.record.clone();
    let stamp = record.stamp.as_mut().unwrap();
    stamp.seq = stamp.seq.map(|s| s + 1);
    record.live_sessions = Some(Vec::new());
    h.store
        .put_worker(&record, Some(snap.version))
        .await
        .unwrap();

    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.gone_removed, 1, "{report:?}");
    assert!(h.store.dispatch(&adopted).await.unwrap().is_none());
    assert!(
        h.store.dispatch(&placed).await.unwrap().is_some(),
        "a placed session keeps the grace"
    );
    assert_no_drift(&h.store).await;
}
