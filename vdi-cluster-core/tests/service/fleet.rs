//! Heartbeats, drain and disable, deregistration, and the fleet's report as
//! truth: the fleet wing.

use super::*;

#[tokio::test]
async fn the_exam_platforms_heartbeat_gives_18_max_and_7_available() {
    let h = harness(|_| {});
    let mut hb = heartbeat_for("worker-node-2", 32.0, 65536, 11);
    hb.capacity.reserved_cpu = vdi_cluster_core::Millicores(4000);
    hb.capacity.reserved_memory_mb = 8192;
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert_eq!((ack.max_sessions, ack.available_sessions), (18, 7));
    assert_eq!(ack.status, WorkerStatus::Active);
    assert!(ack.is_enabled && !ack.is_draining);
    assert!(
        (18.0..=22.0).contains(&ack.next_heartbeat_sec),
        "{}",
        ack.next_heartbeat_sec
    );
    let summary = h.svc.operations().summary().await.unwrap();
    assert_eq!((summary.healthy_workers, summary.total_workers), (1, 1));
    assert_eq!(
        (summary.total_available_sessions, summary.total_max_sessions),
        (7, 18)
    );
    assert_eq!(summary.total_active_sessions, 11);
}

#[tokio::test]
async fn a_replayed_heartbeat_changes_nothing() {
    let h = harness(|_| {});
    let mut hb = heartbeat_with_slots("w1", 4, 3);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("b".into()),
        seq: Some(10),
    };
    assert!(h.svc.fleet().heartbeat(hb.clone()).await.unwrap().accepted);
    hb.active_sessions = 0;
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert!(!ack.accepted);
    assert_eq!(ack.used_sessions, 3, "the stored report stands");
}

#[tokio::test]
async fn the_exam_platforms_drain_runbook() {
    let h = harness(|_| {});
    let (on, other) = h.two_workers_one_session().await;
    // 1. Drain.
    let out = h
        .admin(&on, AdminAction::Drain { deadline: None }, "proctor-1")
        .await;
    assert_eq!(out.worker.status, WorkerStatus::Draining);
    // 2. Keeps its session (a reload returns the same desktop); takes no new ones.
    let again = h
        .svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(
        (again.outcome, again.dispatch.worker.clone()),
        (AllocateOutcome::Existing, on.clone())
    );
    assert_eq!(h.place("exam", "s2").await.as_str(), other);
    // Disabling now is refused, naming the count.
    let err = h
        .svc
        .fleet()
        .admin(&on, AdminAction::Disable { force: false }, "proctor-1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transition(TransitionError::SessionsRemain { count: 1 })
        ),
        "{err}"
    );
    let info = h.svc.fleet().drain_info(&on).await.unwrap();
    assert_eq!(info.drain_status, DrainStatus::Draining);
    assert_eq!(
        info.blocking
            .get(&ExamId::parse("examId", "exam").unwrap())
            .map(Vec::len),
        Some(1)
    );
    // 3. The student submits; the worker reports 0 → drained (observation).
    h.svc.placement().release(&key("exam", "s1")).await.unwrap();
    h.beat(on.as_str(), 4, 0).await;
    let info = h.svc.fleet().drain_info(&on).await.unwrap();
    assert_eq!(info.drain_status, DrainStatus::Drained);
    assert!(info.blocking.is_empty());
    // 4. Disable for maintenance.
    let out = h
        .admin(&on, AdminAction::Disable { force: false }, "proctor-1")
        .await;
    assert_eq!(out.worker.status, WorkerStatus::Disabled);
    assert!(
        h.has_event(|k| matches!(k, EventKind::WorkerPolicy { to, .. } if to.name() == "drained"))
    );
    let audit = h.store_audit().await;
    assert_eq!(audit, ["disable", "drain"]);
    // activate returns it to service.
    let out = h.admin(&on, AdminAction::Activate, "proctor-1").await;
    assert_eq!(out.worker.status, WorkerStatus::Active);
}

impl Harness {
    async fn store_audit(&self) -> Vec<String> {
        use vdi_cluster_core::AuditLog;
        self.store
            .recent_audit(10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a != "activate")
            .collect()
    }
}

#[tokio::test]
async fn force_disable_orphans_then_migrates() {
    let h = harness(|_| {});
    let (on, _) = h.two_workers_one_session().await;
    let out = h
        .admin(&on, AdminAction::Disable { force: true }, "admin")
        .await;
    assert_eq!(out.worker.status, WorkerStatus::Disabled);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.migrated, 1);
    assert_ne!(
        h.svc
            .placement()
            .session(&key("exam", "s1"))
            .await
            .unwrap()
            .worker,
        on
    );
    assert_eq!(h.dispatched(on.as_str()).await, 0);
}

#[tokio::test]
async fn a_drain_deadline_force_disables() {
    let h = harness(|_| {});
    let (on, _) = h.two_workers_one_session().await;
    let deadline = h.clock.now().plus(Duration::from_secs(30));
    h.svc
        .fleet()
        .admin(
            &on,
            AdminAction::Drain {
                deadline: Some(deadline),
            },
            "ops",
        )
        .await
        .unwrap();
    h.advance(31);
    // The deadline is observed at the next observation: here, a reconcile.
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.policy_changes.len(), 1);
    let view = h.svc.fleet().worker_view(&on).await.unwrap();
    assert_eq!(
        view.record.policy,
        vdi_cluster_core::AdminPolicy::Disabled { forced: true }
    );
    assert!(
        h.has_event(|k| matches!(k, EventKind::WorkerPolicy { actor, .. } if actor == "system"))
    );
    // Its remaining session is treated as force-disabled and moved.
    assert_eq!(
        report.migrated + h.svc.operations().reconcile().await.unwrap().migrated,
        1
    );
    assert_ne!(
        h.svc
            .placement()
            .session(&key("exam", "s1"))
            .await
            .unwrap()
            .worker,
        on
    );
}

#[tokio::test]
async fn deregistered_workers_are_offline_and_can_be_removed_when_empty() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.beat("w2", 4, 0).await;
    let view = h.svc.fleet().deregister(&wid("w1"), "agent").await.unwrap();
    assert_eq!(view.status, WorkerStatus::Offline);
    assert_eq!(h.place("e", "u").await.as_str(), "w2");
    let err = h
        .svc
        .fleet()
        .remove_worker(&wid("w2"), "admin")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Transition(TransitionError::SessionsRemain { count: 1 })
    ));
    h.svc
        .fleet()
        .remove_worker(&wid("w1"), "admin")
        .await
        .unwrap();
    assert!(matches!(
        h.svc.fleet().worker_view(&wid("w1")).await,
        Err(Error::WorkerNotFound(_))
    ));
}

#[tokio::test]
async fn a_returning_worker_is_told_to_stop_superseded_sessions() {
    // One silent worker of two is no mass failure here.
    let h = harness(|c| c.mass_failure_percent = 100);
    h.beat("w1", 4, 0).await;
    h.beat("w2", 4, 0).await;
    let k = key("exam", "s1");
    let on = h.place("exam", "s1").await;
    let other = if on.as_str() == "w1" { "w2" } else { "w1" };
    h.advance(100);
    h.beat(other, 4, 0).await;
    h.advance(30);
    let moved = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(moved.dispatch.worker.as_str(), other);
    // The partition heals: the old worker still runs the old desktop. It
    // is told to stop it once the new dispatch has settled for the grace.
    let grace = h.svc.config().fleet_grace();
    h.clock.advance(grace);
    h.beat(other, 4, 1).await;
    let mut hb = heartbeat_with_slots(on.as_str(), 4, 1);
    hb.live_sessions = Some(vec![k.clone()]);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("boot-1".into()),
        seq: Some(1_000),
    };
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert_eq!(ack.release_sessions, vec![k.clone()]);
    // The new worker reporting it live is told nothing.
    let mut hb = heartbeat_with_slots(other, 4, 1);
    hb.live_sessions = Some(vec![k]);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("boot-1".into()),
        seq: Some(1_001),
    };
    assert!(
        h.svc
            .fleet()
            .heartbeat(hb)
            .await
            .unwrap()
            .release_sessions
            .is_empty()
    );
}

#[tokio::test]
async fn a_control_plane_with_an_empty_store_adopts_and_stops_nothing() {
    // A control plane restarted on a fresh in-memory store knows no
    // dispatch: the sessions a worker reports are adopted, not stopped.
    let h = harness(|_| {});
    let mut hb = heartbeat_with_slots("w1", 4, 2);
    hb.live_sessions = Some(vec![key("exam", "s1"), key("exam", "s2")]);
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert!(ack.release_sessions.is_empty());
    assert_eq!(ack.adopted_sessions, 2);
    assert_eq!(ack.used_sessions, 2, "its own report still holds the slots");
}
