//! A replica reuses its ranking snapshot for `snapshot_max_age`; a request
//! that finds no candidate on the reused snapshot reads the fleet again
//! before refusing, so slots freed meanwhile are never refused.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots, key};
use vdi_cluster_core::{ClusterService, Error, MemoryStore, ServiceConfig};

fn service(store: &MemoryStore) -> ClusterService {
    ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new()))
        .config(ServiceConfig {
            seed: 7,
            // Far longer than the test: every ranking reuses the snapshot.
            snapshot_max_age: Duration::from_secs(3600),
            ..ServiceConfig::default()
        })
        .build()
}

#[tokio::test]
async fn freed_slots_are_found_although_the_snapshot_said_full() {
    let store = MemoryStore::new();
    let svc = service(&store);
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 2, 0))
        .await
        .unwrap();
    for user in ["a", "b"] {
        svc.placement()
            .allocate(key("e", user), Default::default())
            .await
            .unwrap();
    }
    let refused = svc
        .placement()
        .allocate(key("e", "c"), Default::default())
        .await;
    assert!(matches!(refused, Err(Error::NoCapacity(_))), "{refused:?}");

    for user in ["a", "b"] {
        svc.placement().release(&key("e", user)).await.unwrap();
    }
    // The cached snapshot still says the worker is full, and this replica
    // noted it full: the request must look again instead of refusing.
    let placed = svc
        .placement()
        .allocate(key("e", "d"), Default::default())
        .await;
    assert!(placed.is_ok(), "{placed:?}");
}

#[tokio::test]
async fn a_release_on_another_replica_is_seen_before_refusing() {
    let store = MemoryStore::new();
    let (one, two) = (service(&store), service(&store));
    one.fleet()
        .heartbeat(heartbeat_with_slots("w1", 1, 0))
        .await
        .unwrap();
    one.placement()
        .allocate(key("e", "a"), Default::default())
        .await
        .unwrap();
    assert!(matches!(
        one.placement()
            .allocate(key("e", "b"), Default::default())
            .await,
        Err(Error::NoCapacity(_))
    ));
    two.placement().release(&key("e", "a")).await.unwrap();
    let placed = one
        .placement()
        .allocate(key("e", "b"), Default::default())
        .await;
    assert!(placed.is_ok(), "{placed:?}");
}
