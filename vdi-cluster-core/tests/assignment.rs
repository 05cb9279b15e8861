//! Codes the control plane assigns (as minicloud) and deregistration with a
//! reason, on the in-memory backend; several services on one store stand
//! for several replicas.

use std::collections::BTreeSet;
use std::sync::Arc;

use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots, wid};
use vdi_cluster_core::{
    AuditLog, ClusterService, HostInfo, MemoryStore, Registrant, WorkerDescription, WorkerId,
};

fn service(store: &Arc<MemoryStore>) -> ClusterService {
    ClusterService::builder(
        Arc::clone(store) as Arc<dyn vdi_cluster_core::Store>,
        Arc::new(SimulatedWorkers::new()),
    )
    .build()
}

fn at(url: &str) -> WorkerDescription {
    WorkerDescription {
        name: "Exam node".into(),
        api_base_url: url.into(),
        ..WorkerDescription::default()
    }
}

fn host(name: &str) -> HostInfo {
    HostInfo {
        hostname: Some(name.into()),
        disk_gb: Some(500),
        ..HostInfo::default()
    }
}

fn never(_: &WorkerId) -> bool {
    false
}

#[tokio::test]
async fn a_code_comes_from_the_host_and_stays_with_it() {
    let store = Arc::new(MemoryStore::new());
    let svc = service(&store);
    let shared = Registrant::SharedToken;
    let first = svc
        .fleet()
        .register_assigned(
            None,
            at("http://10.0.0.1:3001"),
            host("Node1"),
            shared,
            never,
        )
        .await
        .unwrap();
    assert_eq!(first.id().as_str(), "node1");
    assert_eq!(first.record.host.disk_gb, Some(500));
    // The same host again, asking or not: the same code.
    let again = svc
        .fleet()
        .register_assigned(
            None,
            at("http://10.0.0.1:3001"),
            host("node1"),
            shared,
            never,
        )
        .await
        .unwrap();
    assert_eq!(again.id(), first.id());
    let asked = svc
        .fleet()
        .register_assigned(
            Some(wid("node1")),
            at("http://10.0.0.1:3002"),
            HostInfo::default(),
            shared,
            never,
        )
        .await
        .unwrap();
    assert_eq!(asked.id(), first.id());
    // Another host asking for it gets another code; the first keeps its URL.
    let other = svc
        .fleet()
        .register_assigned(
            Some(wid("node1")),
            at("http://10.0.0.2:3001"),
            HostInfo::default(),
            shared,
            never,
        )
        .await
        .unwrap();
    assert_ne!(other.id(), first.id());
    assert!(other.id().as_str().starts_with("node1-"), "{}", other.id());
    let kept = svc.fleet().worker_view(first.id()).await.unwrap();
    assert_eq!(kept.record.description.api_base_url, "http://10.0.0.1:3002");
    // An operator gets the code it asks for, on any host.
    let moved = svc
        .fleet()
        .register_assigned(
            Some(wid("node1")),
            at("http://10.0.0.9:3001"),
            HostInfo::default(),
            Registrant::Operator,
            never,
        )
        .await
        .unwrap();
    assert_eq!(moved.id(), first.id());
}

#[tokio::test]
async fn skipped_codes_are_never_assigned() {
    let store = Arc::new(MemoryStore::new());
    let svc = service(&store);
    let view = svc
        .fleet()
        .register_assigned(
            None,
            at("http://10.0.0.1:3001"),
            host("summary"),
            Registrant::SharedToken,
            |id: &WorkerId| id.as_str() == "summary",
        )
        .await
        .unwrap();
    assert!(view.id().as_str().starts_with("summary-"), "{}", view.id());
}

#[tokio::test]
async fn replicas_racing_for_one_code_assign_distinct_codes() {
    let store = Arc::new(MemoryStore::new());
    let replicas: Vec<ClusterService> = (0..4).map(|_| service(&store)).collect();
    let mut tasks = Vec::new();
    for (i, svc) in replicas.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            svc.fleet()
                .register_assigned(
                    Some(wid("exam-node")),
                    at(&format!("http://10.0.1.{i}:3001")),
                    HostInfo::default(),
                    Registrant::SharedToken,
                    never,
                )
                .await
                .unwrap()
                .id()
                .clone()
        }));
    }
    let mut codes = BTreeSet::new();
    for t in tasks {
        codes.insert(t.await.unwrap());
    }
    assert_eq!(codes.len(), 4, "{codes:?}");
    assert!(codes.contains(&wid("exam-node")));
}

#[tokio::test]
async fn a_deregistration_keeps_its_reason_until_the_worker_returns() {
    let store = Arc::new(MemoryStore::new());
    let svc = service(&store);
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    let gone = svc
        .fleet()
        .deregister_with_reason(&wid("w1"), "worker:w1", Some("maintenance".into()))
        .await
        .unwrap();
    assert_eq!(
        gone.record.deregister_reason.as_deref(),
        Some("maintenance")
    );
    let audit = store.recent_audit(10).await.unwrap();
    let entry = audit.iter().find(|e| e.action == "deregister").unwrap();
    assert_eq!(entry.detail["reason"], "maintenance");
    let bad = svc
        .fleet()
        .deregister_with_reason(&wid("w1"), "worker:w1", Some("a\u{0}b".into()))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("reason"), "{bad}");
    let mut back = heartbeat_with_slots("w1", 4, 0);
    back.stamp.seq = Some(2);
    let view = svc.fleet().heartbeat(back).await.unwrap();
    assert!(view.accepted);
    let view = svc.fleet().worker_view(&wid("w1")).await.unwrap();
    assert!(view.record.deregister_reason.is_none());
    assert!(view.record.deregistered_at.is_none());
}
