//! Capacity requests: stored once and stepped once across replicas, and
//! carried over a leader change (the scale hook is called again under the
//! same request, never for a second one).

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::ids::ExamId;
use crate::scale::{CapacityRequest, CapacityState};
use crate::service::{ClusterService, ServiceConfig};
use crate::store::Store;
use crate::testkit::{ScriptedScaleHook, SimulatedWorkers, exam, heartbeat_with_slots};
use crate::time::ManualClock;

const REPLICAS: usize = 4;

fn request(id: &str) -> CapacityRequest {
    let exam_id = ExamId::parse("examId", "exam-c").unwrap();
    CapacityRequest {
        id: id.into(),
        exams: vec![exam_id],
        constraints: Default::default(),
        slots: 3,
        deadline: now().plus(Duration::from_secs(600)),
        needed_until: now().plus(Duration::from_secs(3600)),
        state: CapacityState::Pending,
        workers: Vec::new(),
        attempts: 0,
        next_attempt_at: now(),
        last_error: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// Insert-if-absent and compare-and-set on the version, also when every
/// replica races for the same request or the same step.
pub async fn capacity_requests_are_inserted_once_and_compare_and_set(factory: &impl StoreFactory) {
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..REPLICAS {
        stores.push(factory.replica().await);
    }
    let r = request("cap-exam-c-1");
    let inserts = futures::future::join_all(
        stores
            .iter()
            .map(|s| async { s.insert_capacity_request(&r, &[]).await.unwrap() }),
    )
    .await;
    assert_eq!(inserts.iter().filter(|won| **won).count(), 1);
    let stored = stores[0].capacity_requests().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!((&stored[0].request, stored[0].version), (&r, 1));

    let claimed = CapacityRequest {
        attempts: 1,
        ..r.clone()
    };
    let claims = futures::future::join_all(
        stores
            .iter()
            .map(|s| async { s.update_capacity_request(&claimed, 1, &[]).await.unwrap() }),
    )
    .await;
    assert_eq!(claims.iter().filter(|won| **won).count(), 1);
    // A stale version, or a request never stored, writes nothing.
    assert!(!stores[1].update_capacity_request(&r, 1, &[]).await.unwrap());
    let other = request("cap-other-2");
    assert!(
        !stores[1]
            .update_capacity_request(&other, 0, &[])
            .await
            .unwrap()
    );
    let stored = stores[2].capacity_requests().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!((&stored[0].request, stored[0].version), (&claimed, 2));
}

/// A fleet of 4 slots, an exam of 10 students starting in half an hour
/// (written straight to the calendar: admission would refuse it), and
/// services on their own store handles sharing `clock` and `hook`.
async fn short_exam(
    factory: &impl StoreFactory,
    clock: &Arc<ManualClock>,
    hook: &ScriptedScaleHook,
    replicas: usize,
) -> Vec<Arc<ClusterService>> {
    let workers = SimulatedWorkers::new();
    let mut services = Vec::new();
    for r in 0..replicas {
        let config = ServiceConfig {
            replica_id: format!("replica-{r}"),
            exam_headroom_percent: 0,
            scale_retry: Duration::from_secs(10),
            ..ServiceConfig::default()
        };
        services.push(Arc::new(
            ClusterService::builder(factory.replica().await, Arc::new(workers.clone()))
                .config(config)
                .clock(Arc::clone(clock) as _)
                .scale_hook(Arc::new(hook.clone()))
                .build(),
        ));
    }
    services[0]
        .fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    let booked = exam("exam-c", now().plus(Duration::from_secs(1800)), 60, 10);
    services[0]
        .store()
        .put_exam_if_version(&booked, 0)
        .await
        .unwrap();
    services
}

/// Every replica tends capacity at once: the shortfall is stored as one
/// request and the hook is called once.
pub async fn a_scale_request_is_issued_once_across_racing_replicas(factory: &impl StoreFactory) {
    let clock = Arc::new(ManualClock::new(now()));
    let hook = ScriptedScaleHook::new(2);
    let services = short_exam(factory, &clock, &hook, REPLICAS).await;
    let ticks = futures::future::join_all(
        services
            .iter()
            .map(|s| async { s.operations().tend_capacity().await.unwrap() }),
    )
    .await;
    assert_eq!(ticks.iter().map(|t| t.stored).sum::<u32>(), 1);
    let ups = hook.ups();
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].slots, 6);
    let requests = services[1].operations().capacity_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].state, CapacityState::Requested);
    assert_eq!(requests[0].workers, hook.codes(&ups[0].request));
    // Again: nothing new.
    for s in &services {
        s.operations().tend_capacity().await.unwrap();
    }
    assert_eq!(hook.ups().len(), 1);
}

/// The first leader's call of the hook fails; a second service on the
/// same store (a new leader) finds the request and, once its wait has
/// passed, calls the hook again under the same id instead of storing a
/// new one.
pub async fn a_scale_request_survives_a_leader_change(factory: &impl StoreFactory) {
    let clock = Arc::new(ManualClock::new(now()));
    let hook = ScriptedScaleHook::new(1);
    hook.fail(true);
    let first = short_exam(factory, &clock, &hook, 1).await.remove(0);
    first.operations().tend_capacity().await.unwrap();
    let pending = first.operations().capacity_requests().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, CapacityState::Pending);
    assert_eq!(pending[0].attempts, 1);
    assert!(pending[0].last_error.is_some());
    drop(first);

    hook.fail(false);
    let next = ClusterService::builder(factory.replica().await, Arc::new(SimulatedWorkers::new()))
        .config(ServiceConfig {
            exam_headroom_percent: 0,
            ..ServiceConfig::default()
        })
        .clock(Arc::clone(&clock) as _)
        .scale_hook(Arc::new(hook.clone()))
        .build();
    // Within the wait: nothing is called, nothing new is stored.
    next.operations().tend_capacity().await.unwrap();
    assert_eq!(hook.ups().len(), 1);
    clock.advance(Duration::from_secs(10));
    next.operations().tend_capacity().await.unwrap();
    let ups = hook.ups();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[0].request, ups[1].request);
    let requests = next.operations().capacity_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].id, pending[0].id);
    assert_eq!(requests[0].state, CapacityState::Requested);
    assert_eq!(requests[0].last_error, None);
}
