//! Scheduled drains: the fleet wing schedules them at an instant or at
//! the next maintenance window, and the leader's step carries them out
//! through the change freeze.

use vdi_cluster_core::calendar::ExamStore;
use vdi_cluster_core::exam::Exam;
use vdi_cluster_core::scheduled::{ActionState, ScheduledActions};
use vdi_cluster_core::service::{DrainAt, MaintenanceQuery};
use vdi_cluster_core::store::AuditLog;
use vdi_cluster_core::testkit::exam;

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

/// Workers `w1` and `w2` of 4 slots, and an exam of 6 students (it needs
/// both) starting in three hours, for an hour.
async fn two_workers_and_an_exam(h: &Harness) -> Exam {
    h.beat("w1", 4, 0).await;
    h.beat("w2", 4, 0).await;
    let e = exam("final", START.plus(3 * HOUR), 60, 6);
    h.store.put_exam_if_version(&e, 0).await.unwrap();
    e
}

fn field(e: Error) -> String {
    match e {
        Error::Invalid(v) => v.field,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_drain_is_scheduled_at_the_next_window_long_enough() {
    let h = harness(|_| {});
    let e = two_workers_and_an_exam(&h).await;
    let fleet = h.svc.fleet();
    let w1 = wid("w1");
    let short = fleet
        .schedule_drain(
            &w1,
            DrainAt::NextWindow { duration: HOUR },
            "alice",
            "patch",
        )
        .await
        .unwrap();
    assert_eq!(short.at, START, "free until the exam's lead begins");
    let long = DrainAt::NextWindow { duration: 4 * HOUR };
    let after = fleet
        .schedule_drain(&w1, long, "alice", "firmware")
        .await
        .unwrap();
    assert_eq!(after.at, e.window().end, "after the exam's window");
    let plan = fleet
        .maintenance_windows(MaintenanceQuery {
            workers: vec![w1.clone()],
            duration: 4 * HOUR,
            from: None,
            to: None,
        })
        .await
        .unwrap();
    assert_eq!(plan.windows[0].start, after.at);
    let listed: Vec<String> = fleet
        .scheduled_drains(Some(&w1))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, [short.id.clone(), after.id.clone()], "by time");
    assert!(
        fleet
            .scheduled_drains(Some(&wid("w2")))
            .await
            .unwrap()
            .is_empty()
    );

    let at = |t: Timestamp| DrainAt::At(t);
    let past = fleet.schedule_drain(&w1, at(START), "alice", "patch").await;
    assert_eq!(field(past.unwrap_err()), "at");
    let far = fleet
        .schedule_drain(&w1, at(START.plus(40 * 24 * HOUR)), "alice", "patch")
        .await;
    assert_eq!(field(far.unwrap_err()), "at");
    let tiny = DrainAt::NextWindow {
        duration: Duration::from_secs(10),
    };
    let tiny = fleet.schedule_drain(&w1, tiny, "alice", "patch").await;
    assert_eq!(field(tiny.unwrap_err()), "duration");
    let blank = fleet
        .schedule_drain(&w1, at(START.plus(HOUR)), "alice", " ")
        .await;
    assert_eq!(field(blank.unwrap_err()), "reason");
    let unknown = fleet
        .schedule_drain(&wid("w9"), at(START.plus(HOUR)), "alice", "patch")
        .await;
    assert!(matches!(unknown, Err(Error::WorkerNotFound(_))));
    let audit = h.store.recent_audit(10).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "schedule-drain")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_due_drain_the_freeze_refuses_then_fails_and_alerts() {
    let h = harness(|_| {});
    let e = two_workers_and_an_exam(&h).await;
    let w1 = wid("w1");
    let during = e.starts_at.plus(Duration::from_secs(600));
    let drain = h
        .svc
        .fleet()
        .schedule_drain(&w1, DrainAt::At(during), "alice", "kernel patch")
        .await
        .unwrap();
    h.clock.set(during);
    h.beat("w1", 4, 0).await;
    h.beat("w2", 4, 0).await;
    assert_eq!(h.svc.fleet().fire_due_scheduled(None).await.unwrap(), 1);
    let stored = h.store.scheduled(&drain.id).await.unwrap().unwrap();
    let ActionState::Failed { reason, .. } = &stored.action.state else {
        panic!("{stored:?}");
    };
    assert!(reason.contains("change freeze"), "{reason}");
    let view = h.svc.fleet().worker_view(&w1).await.unwrap();
    assert!(view.record.policy.accepts_new_sessions(), "not forced");
    assert!(h.has_event(|k| matches!(
        k,
        EventKind::WorkerScheduledDrainFailed { worker, exams, actor, .. }
            if worker == &w1 && exams == std::slice::from_ref(&e.id) && actor == "alice"
    )));
    let audit = h.store.recent_audit(10).await.unwrap();
    let fired = audit
        .iter()
        .find(|a| a.action == "scheduled-drain")
        .expect("audited");
    assert_eq!(fired.actor, "alice");
    assert_eq!(fired.detail["state"], "failed");
    assert!(
        h.svc
            .fleet()
            .scheduled_drains(None)
            .await
            .unwrap()
            .is_empty()
    );
}
