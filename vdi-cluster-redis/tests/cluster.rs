//! The core conformance suite on a Redis Cluster of the test's own (three
//! primaries on loopback), through a `redis+cluster://` URL: every case,
//! one after the other, each under its own prefix, hash-tagged by the
//! store. The store's keys are in one slot, on one of the three nodes;
//! its requests reach that node through the cluster protocol, whichever
//! node the client first talks to.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use vdi_cluster_core::testkit::conformance::StoreFactory;
use vdi_cluster_core::{Store, WorkerId};
use vdi_cluster_redis::redis::cluster::ClusterClient;
use vdi_cluster_redis::redis::cluster_async::ClusterConnection;
use vdi_cluster_redis::testkit::RedisCluster;
use vdi_cluster_redis::{RedisStore, hash_tagged};

/// One prefix on the cluster.
struct ClusterFactory {
    url: String,
    prefix: String,
    admin: ClusterConnection,
}

#[async_trait]
impl StoreFactory for ClusterFactory {
    async fn replica(&self) -> Arc<dyn Store> {
        let store = RedisStore::builder(&self.url)
            .prefix(&self.prefix)
            .connect()
            .await
            .expect("a replica connects to the cluster");
        assert_eq!(store.prefix(), hash_tagged(&self.prefix));
        Arc::new(store)
    }

    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        let mut conn = self.admin.clone();
        let prefix = hash_tagged(&self.prefix);
        common::corrupt_dispatched(&mut conn, &prefix, worker.as_str(), delta).await;
        true
    }

    // The cluster, and every key in it, goes with the test.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_conformance_suite_passes_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start().await else {
        return;
    };
    let nodes: Vec<String> = cluster.nodes.iter().map(|node| node.url()).collect();
    let admin = ClusterClient::new(nodes)
        .expect("the nodes' URLs")
        .get_async_connection()
        .await
        .expect("an admin connection to the cluster");
    vdi_cluster_core::conformance_tests!(in_sequence ClusterFactory {
        url: cluster.url(),
        prefix: common::test_prefix(),
        admin: admin.clone(),
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_the_replica_the_cluster_promotes() {
    use std::time::Duration;
    use vdi_cluster_core::store::Registry;
    use vdi_cluster_core::testkit::{wid, worker_record};

    let Some(mut cluster) = RedisCluster::start().await else {
        return;
    };
    let store = RedisStore::builder(cluster.url())
        .prefix(common::test_prefix())
        .timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("the store connects to the cluster");
    let before = worker_record("w-before", 4, 0);
    store.put_worker(&before, None).await.expect("a write");
    cluster.until_replicated(store.prefix()).await;
    let killed = cluster.kill_primary_of(store.prefix()).await;

    let after = worker_record("w-after", 4, 0);
    let mut errors = Vec::new();
    let written = tokio::time::timeout(Duration::from_secs(60), async {
        while let Err(e) = store.put_worker(&after, None).await {
            errors.push(e.to_string());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        written.is_ok(),
        "no write after the primary on port {killed} died: {:?}",
        &errors[errors.len().saturating_sub(5)..]
    );
    assert_ne!(cluster.primary_of(store.prefix()).await, killed);
    assert!(
        store
            .worker(&wid("w-before"))
            .await
            .expect("a read")
            .is_some(),
        "replicated before the kill"
    );
}
