//! Allocation failover with a mocked worker client: the first worker times
//! out, the second gets the session, and nothing is left behind.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mockall::predicate::always;
use vdi_cluster_core::client::{DesktopSettings, WorkerCallError, WorkerClient};
use vdi_cluster_core::service::AllocateOutcome;
use vdi_cluster_core::testkit::{Behaviour, SimulatedWorkers, heartbeat_with_slots};
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{
    ClusterService, DispatchStore, ExamId, MemoryStore, Registry, ServiceConfig, SessionKey,
    WorkerId,
};

mockall::mock! {
    Client {}
    #[async_trait]
    impl WorkerClient for Client {
        async fn allocate(&self, worker: &WorkerRecord, key: &SessionKey, settings: &DesktopSettings) -> Result<serde_json::Value, WorkerCallError>;
        async fn release(&self, worker: &WorkerRecord, key: &SessionKey) -> Result<(), WorkerCallError>;
        async fn prewarm(&self, worker: &WorkerRecord, exam: &ExamId, count: u32, settings: &DesktopSettings) -> Result<u32, WorkerCallError>;
        async fn discard_prewarm(&self, worker: &WorkerRecord, exam: &ExamId) -> Result<u32, WorkerCallError>;
    }
}

impl std::fmt::Debug for MockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockClient")
    }
}

fn config() -> ServiceConfig {
    ServiceConfig {
        // Deterministic order: no herd rotation, no affinity.
        herd_width: 1,
        exam_affinity: false,
        seed: 7,
        ..ServiceConfig::default()
    }
}

#[tokio::test]
async fn first_worker_times_out_second_gets_the_session() {
    let store = MemoryStore::new();
    let mut client = MockClient::new();
    // w-big has more free slots, so spread tries it first.
    client
        .expect_allocate()
        .withf(|w, _, _| w.id.as_str() == "w-big")
        .times(1)
        .returning(|_, _, _| Err(WorkerCallError::Timeout));
    client
        .expect_allocate()
        .withf(|w, _, _| w.id.as_str() == "w-small")
        .times(1)
        .returning(|w, _, _| Ok(serde_json::json!({ "host": w.id.as_str() })));
    client.expect_release().with(always(), always()).never();
    let service = ClusterService::builder(Arc::new(store.clone()), Arc::new(client))
        .config(config())
        .build();
    service
        .fleet()
        .heartbeat(heartbeat_with_slots("w-big", 10, 0))
        .await
        .unwrap();
    service
        .fleet()
        .heartbeat(heartbeat_with_slots("w-small", 4, 0))
        .await
        .unwrap();

    let key = SessionKey::parse("exam-1", "student-1").unwrap();
    let placed = service
        .placement()
        .allocate(key.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w-small");
    assert_eq!(placed.failed_calls, 1);
    assert!(matches!(placed.outcome, AllocateOutcome::Placed { .. }));
    assert_eq!(
        placed.dispatch.session,
        Some(serde_json::json!({ "host": "w-small" }))
    );

    let big = WorkerId::parse("code", "w-big").unwrap();
    let small = WorkerId::parse("code", "w-small").unwrap();
    assert_eq!(
        store.worker(&big).await.unwrap().unwrap().dispatched,
        0,
        "reservation undone"
    );
    assert_eq!(store.worker(&small).await.unwrap().unwrap().dispatched, 1);
    let placement = store
        .placement(&key.exam_id, service.clock().now())
        .await
        .unwrap();
    assert_eq!(
        placement.sticky,
        Some(small.clone()),
        "sticky moves to the worker that succeeded"
    );
    assert!(!placement.affinity.contains_key(&big));
    assert!(store.recount(false).await.unwrap().drift.is_empty());
}

#[tokio::test]
async fn every_worker_failing_ends_in_no_capacity_with_nothing_left() {
    let store = MemoryStore::new();
    let mut client = MockClient::new();
    client.expect_allocate().times(3).returning(|_, _, _| {
        Err(WorkerCallError::Refused {
            status: 500,
            message: "boom".into(),
        })
    });
    let service = ClusterService::builder(Arc::new(store.clone()), Arc::new(client))
        .config(config())
        .build();
    for code in ["w1", "w2", "w3", "w4"] {
        service
            .fleet()
            .heartbeat(heartbeat_with_slots(code, 2, 0))
            .await
            .unwrap();
    }
    let key = SessionKey::parse("exam-1", "student-1").unwrap();
    let err = service
        .placement()
        .allocate(key.clone(), Default::default())
        .await
        .unwrap_err();
    let vdi_cluster_core::Error::NoCapacity(reason) = err else {
        panic!("expected NoCapacity, got {err}");
    };
    assert_eq!(
        reason.failed_calls, 3,
        "WORKER_ALLOCATE_RETRY_COUNT bounds the calls"
    );
    assert!(reason.to_string().contains("3 worker call(s) failed"));
    assert!(store.dispatch(&key).await.unwrap().is_none());
    for snap in store.workers().await.unwrap() {
        assert_eq!(snap.dispatched, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_worker_is_abandoned_after_the_call_timeout() {
    let store = MemoryStore::new();
    let workers = SimulatedWorkers::new();
    let service = ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
        .config(ServiceConfig {
            worker_call_timeout: Duration::from_millis(15_000),
            ..config()
        })
        .build();
    service
        .fleet()
        .heartbeat(heartbeat_with_slots("w-hang", 10, 0))
        .await
        .unwrap();
    service
        .fleet()
        .heartbeat(heartbeat_with_slots("w-ok", 4, 0))
        .await
        .unwrap();
    let hang = WorkerId::parse("code", "w-hang").unwrap();
    workers.set_behaviour(&hang, Behaviour::Hanging);
    let key = SessionKey::parse("exam-1", "student-1").unwrap();
    let placed = service
        .placement()
        .allocate(key, Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w-ok");
    assert_eq!(placed.failed_calls, 1);
    assert_eq!(store.worker(&hang).await.unwrap().unwrap().dispatched, 0);
}
