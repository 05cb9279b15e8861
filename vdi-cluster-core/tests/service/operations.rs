//! Failure policies, the mass-failure guard, reconcile, the health monitor
//! and the background loop: the operations wing.

use super::*;

/// Three workers; `w1` holds three sessions and goes silent past the hard
/// timeout while the others keep heartbeating.
async fn one_worker_offline(policy: FailurePolicy) -> Harness {
    let h = harness(|c| {
        c.failure_policy = policy;
        c.exam_affinity = false;
        c.herd_width = 1;
    });
    h.beat("w1", 10, 0).await;
    h.beat("w2", 4, 0).await;
    h.beat("w3", 4, 0).await;
    for i in 0..3 {
        assert_eq!(h.place(&format!("exam-{i}"), "s").await.as_str(), "w1");
    }
    for _ in 0..7 {
        h.advance(100);
        h.beat("w2", 4, 0).await;
        h.beat("w3", 4, 0).await;
    }
    assert_eq!(
        h.svc
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Offline
    );
    h
}

#[tokio::test]
async fn automatic_policy_migrates_sessions_of_an_offline_worker() {
    let h = one_worker_offline(FailurePolicy::Automatic).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!((report.failed_worker_sessions, report.migrated), (3, 3));
    assert_eq!(h.dispatched("w1").await, 0);
    assert_eq!(h.dispatched("w2").await + h.dispatched("w3").await, 3);
    assert!(report.drift.is_empty());
    // Nothing left to do on the next pass.
    assert_eq!(
        h.svc
            .operations()
            .reconcile()
            .await
            .unwrap()
            .failed_worker_sessions,
        0
    );
}

#[tokio::test]
async fn manual_policy_orphans_and_alerts() {
    let h = one_worker_offline(FailurePolicy::Manual).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!((report.orphaned, report.migrated), (3, 0));
    assert!(h.has_event(|k| matches!(k, EventKind::SessionsOrphaned { count: 3, .. })));
    let d = h
        .svc
        .placement()
        .session(&key("exam-0", "s"))
        .await
        .unwrap();
    assert_eq!(d.state, vdi_cluster_core::DispatchState::Orphaned);
    // The student comes back: re-dispatched at once.
    let again = h
        .svc
        .placement()
        .allocate(key("exam-0", "s"), Default::default())
        .await
        .unwrap();
    assert!(matches!(
        again.outcome,
        AllocateOutcome::Redispatched { .. }
    ));
    assert_eq!(h.dispatched("w1").await, 2);
}

#[tokio::test]
async fn none_policy_leaves_sessions_alone() {
    let h = one_worker_offline(FailurePolicy::None).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(
        (report.left_in_place, report.migrated, report.orphaned),
        (3, 0, 0)
    );
    assert_eq!(h.dispatched("w1").await, 3);
}

#[tokio::test]
async fn mass_failure_moves_nothing() {
    let h = harness(|_| {});
    for w in ["w1", "w2", "w3"] {
        h.beat(w, 10, 0).await;
    }
    for i in 0..6 {
        h.place(&format!("exam-{i}"), "s").await;
    }
    for _ in 0..7 {
        h.advance(100);
        h.beat("w3", 10, 0).await;
    }
    let report = h.svc.operations().reconcile().await.unwrap();
    assert!(report.mass_failure_guard);
    assert_eq!(report.migrated, 0);
    assert!(h.has_event(|k| matches!(k, EventKind::MigrationSuspended { .. })));
    assert_eq!(total_dispatched(&h.store).await, 6);
}

#[tokio::test]
async fn a_restarted_control_plane_gives_workers_a_grace_period() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    // The control plane was down for 20 minutes; a new one starts now.
    h.advance(1_200);
    let restarted = ClusterService::builder(Arc::new(h.store.clone()), Arc::new(h.workers.clone()))
        .clock(Arc::new(h.clock.clone()))
        .build();
    h.advance(10);
    assert_eq!(
        restarted
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Healthy
    );
    assert_eq!(
        h.svc
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Offline
    );
    h.advance(150);
    assert_eq!(
        restarted
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Unreachable
    );
}

#[tokio::test]
async fn sessions_lost_to_a_worker_restart_free_their_slots_not_migrate() {
    let h = harness(|_| {});
    let (on, _) = h.two_workers_one_session().await;
    h.advance(5);
    h.beat_with(heartbeat_with_slots(on.as_str(), 4, 0), "boot-2")
        .await;
    assert!(h.has_event(|k| matches!(k, EventKind::WorkerRestarted { .. })));
    // The restart's report released it: the worker answered, so it is not
    // a failed worker and the failure policy moves nothing.
    assert!(h.has_event(|k| matches!(k, EventKind::SessionLost { .. })));
    assert_eq!(h.dispatched(on.as_str()).await, 0);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(
        (
            report.sessions_lost,
            report.migrated,
            report.failed_worker_sessions
        ),
        (1, 0, 0)
    );
    assert!(h.svc.placement().session(&key("exam", "s1")).await.is_err());
    // The student keeps the key: the next request places it, on the
    // exam's sticky worker.
    assert_eq!(h.place("exam", "s1").await, on);
}

#[tokio::test]
async fn a_session_the_worker_reports_gone_is_removed_after_the_grace() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.place("exam", "s1").await;
    h.place("exam", "s2").await;
    h.advance(61);
    let mut hb = heartbeat_with_slots("w1", 4, 1);
    hb.live_sessions = Some(vec![key("exam", "s2")]);
    h.beat_with(hb, "boot-1").await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.gone_removed, 1);
    assert!(h.svc.placement().session(&key("exam", "s1")).await.is_err());
    assert!(h.svc.placement().session(&key("exam", "s2")).await.is_ok());
}

#[tokio::test]
async fn stuck_reservations_and_stale_dispatches_are_cleaned() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    // An allocator that died after reserving.
    let k = key("exam", "crashed");
    let d = vdi_cluster_core::Dispatch::reserve(k.clone(), wid("w1"), h.clock.now(), None, None);
    h.store
        .reserve(&vdi_cluster_core::store::ReserveRequest {
            dispatch: d,
            supersede: None,
            permit: None,
        })
        .await
        .unwrap();
    let err = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AllocationInProgress(_)), "{err}");
    h.place("exam", "old").await;
    h.advance(91);
    h.beat("w1", 4, 0).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.reservations_reclaimed, 1);
    assert_eq!(h.dispatched("w1").await, 1);
    // Six hours later with no live session evidence: stale.
    for _ in 0..217 {
        h.advance(100);
        h.beat("w1", 4, 0).await;
    }
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.stale_removed, 1);
    assert_eq!(h.dispatched("w1").await, 0);
}

#[tokio::test]
async fn a_deposed_leaders_reconcile_writes_are_fenced_off() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    let k = key("exam", "crashed");
    let d = vdi_cluster_core::Dispatch::reserve(k.clone(), wid("w1"), h.clock.now(), None, None);
    h.store
        .reserve(&vdi_cluster_core::store::ReserveRequest {
            dispatch: d.clone(),
            supersede: None,
            permit: None,
        })
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let stale = h
        .store
        .try_acquire(BACKGROUND_LEASE, "a", ttl)
        .await
        .unwrap()
        .expect("a leads");
    // a pauses past its lease; b takes over.
    h.advance(91);
    h.beat("w1", 4, 0).await;
    let current = h
        .store
        .try_acquire(BACKGROUND_LEASE, "b", ttl)
        .await
        .unwrap()
        .expect("b leads");
    let err = h
        .svc
        .operations()
        .reconcile_leased(Some(&stale))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
    assert_eq!(
        h.store.dispatch(&k).await.unwrap().map(|x| x.id),
        Some(d.id)
    );
    let report = h
        .svc
        .operations()
        .reconcile_leased(Some(&current))
        .await
        .unwrap();
    assert_eq!(report.reservations_reclaimed, 1);
    assert_eq!(h.dispatched("w1").await, 0);
}

#[tokio::test]
async fn reconcile_repairs_counter_drift() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.place("exam", "s1").await;
    h.store.corrupt_dispatched(&wid("w1"), 2);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.drift.len(), 1);
    assert_eq!((report.drift[0].stored, report.drift[0].actual), (3, 1));
    assert_eq!(h.dispatched("w1").await, 1);
    assert!(
        h.svc
            .operations()
            .reconcile()
            .await
            .unwrap()
            .drift
            .is_empty()
    );
}

#[tokio::test]
async fn health_monitor_reports_each_transition_once() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    let mut monitor = HealthMonitor::default();
    let views = h.svc.fleet().worker_views().await.unwrap();
    assert!(monitor.observe(&views, h.clock.now()).is_empty());
    h.advance(130);
    let views = h.svc.fleet().worker_views().await.unwrap();
    let events = monitor.observe(&views, h.clock.now());
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0],
        EventKind::WorkerAvailability {
            to: Availability::Unreachable,
            ..
        }
    ));
    assert!(monitor.observe(&views, h.clock.now()).is_empty());
    h.beat("w1", 4, 0).await;
    let views = h.svc.fleet().worker_views().await.unwrap();
    assert!(matches!(
        &monitor.observe(&views, h.clock.now())[..],
        [EventKind::WorkerAvailability {
            to: Availability::Healthy,
            ..
        }]
    ));
}

#[tokio::test]
async fn a_backend_outage_is_a_typed_error_and_heals() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.store.set_unavailable(true);
    let err = h
        .svc
        .placement()
        .allocate(key("e", "u"), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(h.svc.ping().await.is_err());
    h.store.set_unavailable(false);
    h.place("e", "u").await;
}

#[tokio::test(start_paused = true)]
async fn background_jobs_run_on_one_replica_at_a_time() {
    let store = MemoryStore::new();
    let workers = SimulatedWorkers::new();
    let make = |name: &str| {
        let sink = RecordingSink::default();
        let svc = Arc::new(
            ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
                .config(ServiceConfig {
                    replica_id: name.into(),
                    ..ServiceConfig::default()
                })
                .events(Arc::new(sink.clone()))
                .build(),
        );
        (svc, sink)
    };
    let (a, a_events) = make("a");
    let (b, b_events) = make("b");
    let config = BackgroundConfig {
        tick: Duration::from_millis(10),
        reconcile_every: Duration::from_millis(30),
        ..BackgroundConfig::default()
    };
    let reconciles = |s: &RecordingSink| {
        s.events()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Reconciled { .. }))
            .count()
    };
    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let ja = tokio::spawn(run_background(Arc::clone(a.operations()), config, async {
        let _ = a_stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let jb = tokio::spawn(run_background(Arc::clone(b.operations()), config, async {
        let _ = b_stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reconciles(&a_events) > 0, "the first replica leads");
    assert_eq!(reconciles(&b_events), 0, "the second replica waits");
    // Stopping the leader gives the lease up: the other takes over.
    stop_a.send(()).unwrap();
    ja.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reconciles(&b_events) > 0, "the second replica took over");
    stop_b.send(()).unwrap();
    jb.await.unwrap();
}
