//! Redis with Sentinel, started by the test: a primary, a replica and three
//! sentinels on loopback. The primary is killed (SIGKILL) while handles of
//! the store are in use; the sentinels promote the replica, and the
//! handles follow without being rebuilt:
//! - a handle that was writing resumes on the new primary, and every write
//!   it had acknowledged with `WAIT 1` is there;
//! - a handle that waits for one replica refuses writes while the new
//!   primary has none, and accepts them again once the old primary is back
//!   as its replica;
//! - after a switchover (`SENTINEL FAILOVER`) demotes the primary a handle
//!   is connected to, the `READONLY` refusal makes it look again, and the
//!   refused write succeeds on the new primary;
//! - when the old primary comes back as the new one's replica before a
//!   handle that was connected to it is used again, every write through
//!   that handle (scripts, `MULTI` blocks) succeeds, on the new primary;
//! - a handle that waits for one replica, busy when the primary dies,
//!   moves to the new primary although no replica comes back.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{raw, test_prefix};
use vdi_cluster_core::store::{AuditEntry, AuditLog, Reservation};
use vdi_cluster_core::testkit::{request, wid, worker_record};
use vdi_cluster_core::{
    DispatchId, DispatchStore, Error, Page, Registry, SessionKey, Timestamp, WorkerId,
};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis;
use vdi_cluster_redis::testkit::{
    FakeSentinel, MASTER, PrivateRedis, SentinelCluster, until_replica_linked,
};

/// Generous bound that only catches a hang; nothing asserts on time.
const HANG: Duration = Duration::from_secs(90);

async fn handle(url: &str, prefix: &str, wait_replicas: u32) -> RedisStore {
    RedisStore::builder(url)
        .prefix(prefix)
        .timeout(Duration::from_secs(2))
        .connection_timeout(Duration::from_secs(1))
        .wait_replicas(wait_replicas, Duration::from_millis(500))
        .connect()
        .await
        .expect("finds the primary through the sentinels")
}

/// Reserves and confirms `student`'s session on `worker`.
async fn place(
    store: &RedisStore,
    student: &str,
    worker: &WorkerId,
) -> vdi_cluster_core::Result<DispatchId> {
    let key = SessionKey::parse("exam-failover", student).unwrap();
    let id = match store.reserve(&request(&key, worker, Timestamp(1))).await? {
        Reservation::Reserved { dispatch, .. } => dispatch.id,
        other => panic!("unexpected reservation outcome for {student}: {other:?}"),
    };
    store
        .confirm(&key, id, None, Timestamp(2), Duration::from_secs(60), None)
        .await?;
    Ok(id)
}

/// Retries `place` (bounded) until it succeeds; the failures seen first.
async fn place_eventually(store: &RedisStore, student: &str, worker: &WorkerId) -> Vec<String> {
    let mut failures = Vec::new();
    let retried = tokio::time::timeout(HANG, async {
        loop {
            match place(store, student, worker).await {
                Ok(_) => return,
                Err(e @ Error::Unavailable { .. }) => failures.push(format!("{e:#}")),
                Err(e) => panic!("{student}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(retried.is_ok(), "{student} never placed: {failures:?}");
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_follows_the_primary_across_a_failover() {
    let Some(mut cluster) = SentinelCluster::start().await else {
        return;
    };
    let url = cluster.url();
    let prefix = test_prefix();
    let writer = handle(&url, &prefix, 0).await;
    let durable = handle(&url, &prefix, 1).await;
    let first = format!("127.0.0.1:{}", cluster.first.port());
    let second = format!("127.0.0.1:{}", cluster.second.port());
    assert_eq!(writer.primary().as_deref(), Some(first.as_str()));

    let worker = wid("w-failover");
    writer
        .put_worker(&worker_record(worker.as_str(), 1_000, 0), None)
        .await
        .unwrap();
    // Acknowledged only once the replica has them.
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let student = format!("before-{i}");
        let id = place(&durable, &student, &worker).await.expect("placed");
        acknowledged.push((student, id));
    }

    cluster.kill_primary();
    let down = Instant::now();
    let failures = place_eventually(&writer, "after-0", &worker).await;
    println!(
        "writes failed for {:.1} s ({} attempts) until the sentinels promoted the replica",
        down.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(!failures.is_empty(), "the kill was noticed");
    cluster.until_failed_over().await;
    assert_eq!(writer.primary().as_deref(), Some(second.as_str()));
    assert_eq!(writer.primary_switches(), 1);
    for (student, id) in &acknowledged {
        let key = SessionKey::parse("exam-failover", student).unwrap();
        let stored = writer.dispatch(&key).await.unwrap();
        assert_eq!(
            stored.map(|d| d.id),
            Some(*id),
            "acknowledged {student} lost"
        );
    }

    // The new primary has no replica yet: a handle that waits for one
    // refuses to acknowledge.
    let refused = place_eventually_refused(&durable, &worker).await;
    assert!(refused.contains("acknowledged"), "{refused}");

    cluster.bring_back_old_primary().await;
    // With a replica again, the durable handle acknowledges writes.
    place_eventually(&durable, "after-replica", &worker).await;
    assert_eq!(durable.primary().as_deref(), Some(second.as_str()));

    // A switchover (the operator's `SENTINEL FAILOVER`) demotes the
    // primary the writer is connected to, and the sentinels close its
    // connections: the writer follows to the first server again.
    cluster.switch_over().await;
    place_eventually(&writer, "after-switchover", &worker).await;
    assert_eq!(writer.primary().as_deref(), Some(first.as_str()));
    assert_eq!(writer.primary_switches(), 2);
}

/// A primary demoted under a live connection (`REPLICAOF`, without a
/// sentinel closing its clients) refuses writes with `READONLY`: the
/// store looks for the primary again and sends the refused write there,
/// so the caller sees it succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_as_readonly_goes_to_the_new_primary() {
    let Some(old) = PrivateRedis::start(&[]) else {
        return;
    };
    let Some(new) = PrivateRedis::start(&["--replicaof", "127.0.0.1", &old.port().to_string()])
    else {
        return;
    };
    until_replica_linked(&new.url()).await;
    let sentinel = FakeSentinel::naming(old.port()).await;
    let url = format!("redis+sentinel://127.0.0.1:{}/{MASTER}", sentinel.port());
    let store = handle(&url, &test_prefix(), 1).await;
    let worker = wid("w-readonly");
    store
        .put_worker(&worker_record(worker.as_str(), 10, 0), None)
        .await
        .unwrap();
    assert_eq!(store.primary(), Some(format!("127.0.0.1:{}", old.port())));

    // Swap the roles under the store's live connection.
    command(&new.url(), redis::cmd("REPLICAOF").arg("NO").arg("ONE")).await;
    command(
        &old.url(),
        redis::cmd("REPLICAOF").arg("127.0.0.1").arg(new.port()),
    )
    .await;
    until_replica_linked(&old.url()).await;
    sentinel.name(new.port());

    place(&store, "after-demotion", &worker)
        .await
        .expect("the refused write is sent again to the new primary");
    assert_eq!(store.primary(), Some(format!("127.0.0.1:{}", new.port())));
    assert_eq!(store.primary_switches(), 1);
}

async fn command(url: &str, cmd: &redis::Cmd) {
    let _: redis::Value = cmd
        .query_async(&mut raw(url).await)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
}

/// Places new students through `store` until a write is refused for want
/// of replicas (bounded); that refusal.
async fn place_eventually_refused(store: &RedisStore, worker: &WorkerId) -> String {
    let mut seen = String::new();
    let refused = tokio::time::timeout(HANG, async {
        for i in 0.. {
            match place(store, &format!("unreplicated-{i}"), worker).await {
                Err(e @ Error::Unavailable { .. }) => {
                    seen = e.to_string();
                    if seen.contains("acknowledged") {
                        return;
                    }
                }
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("a write was acknowledged with no replica to wait for"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "never refused for want of replicas; last error: {seen}"
    );
    seen
}

/// The old primary comes back as the new primary's replica right after
/// the sentinels' failover, with the script cache of a restarted server,
/// while handles that were connected to it still are: they never saw a
/// failed request, and the server at their address answers again but
/// refuses every write (`READONLY` inside a script's reply, queued in a
/// `MULTI` block). Every write through them succeeds nonetheless, and is
/// on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_never_stay_on_an_old_primary_back_as_a_replica() {
    let Some(cluster) = SentinelCluster::start().await else {
        return;
    };
    let url = cluster.url();
    let prefix = test_prefix();
    // One handle for the scripts, one for the `MULTI` blocks: each meets
    // the demoted server with its first request.
    let scripts = handle(&url, &prefix, 0).await;
    let blocks = handle(&url, &prefix, 0).await;
    let worker = wid("w-back");
    // Acknowledged once the replica has it, so the new primary knows it.
    handle(&url, &prefix, 1)
        .await
        .put_worker(&worker_record(worker.as_str(), 1_000, 0), None)
        .await
        .unwrap();
    place(&scripts, "before", &worker).await.expect("placed");
    blocks.append_audit(&audit_entry(0)).await.expect("audited");
    let first = format!("127.0.0.1:{}", cluster.first.port());
    let second = format!("127.0.0.1:{}", cluster.second.port());
    assert_eq!(scripts.primary().as_deref(), Some(first.as_str()));

    // The old primary stops answering (its connections stay open), the
    // sentinels fail over, and it comes back as the new one's replica.
    cluster.first.pause();
    cluster.until_failed_over().await;
    cluster.first.resume();
    command(
        &cluster.first.url(),
        redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(cluster.second.port()),
    )
    .await;
    until_replica_linked(&cluster.first.url()).await;
    command(&cluster.first.url(), redis::cmd("SCRIPT").arg("FLUSH")).await;

    // What the new primary holds, read there.
    let new_primary = RedisStore::builder(cluster.second.url())
        .prefix(&prefix)
        .connect()
        .await
        .expect("the new primary answers");
    for i in 0..10 {
        let student = format!("back-{i}");
        let id = tokio::time::timeout(HANG, place(&scripts, &student, &worker))
            .await
            .unwrap_or_else(|_| panic!("{student}: no answer"))
            .unwrap_or_else(|e| panic!("{student}: {e:#}"));
        let key = SessionKey::parse("exam-failover", &student).unwrap();
        let stored = new_primary.dispatch(&key).await.unwrap();
        assert_eq!(
            stored.map(|d| d.id),
            Some(id),
            "{student} not on the new primary"
        );
        tokio::time::timeout(HANG, blocks.append_audit(&audit_entry(i + 1)))
            .await
            .unwrap_or_else(|_| panic!("audit {i}: no answer"))
            .unwrap_or_else(|e| panic!("audit {i}: {e:#}"));
    }
    let audit = new_primary.audit_page(Page::ALL).await.unwrap();
    let targets: Vec<String> = audit.items.into_iter().map(|e| e.target).collect();
    for i in 1..=10 {
        let entry = format!("entry-{i}");
        assert!(
            targets.contains(&entry),
            "{entry} not on the new primary: {targets:?}"
        );
    }
    for handle in [&scripts, &blocks] {
        assert_eq!(handle.primary().as_deref(), Some(second.as_str()));
        assert_eq!(handle.primary_switches(), 1);
    }
}

fn audit_entry(i: u64) -> AuditEntry {
    AuditEntry {
        at: Timestamp(10 + i),
        actor: "test".to_owned(),
        action: "drain".to_owned(),
        target: format!("entry-{i}"),
        detail: serde_json::Value::Null,
    }
}

/// A handle that waits for one replica, with steps in flight on its
/// connections when the primary dies, and no replica back after the
/// failover: it still moves to the new primary, where its steps are then
/// refused for want of a replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_handle_waiting_for_replicas_moves_with_no_replica_back() {
    let Some(mut cluster) = SentinelCluster::start().await else {
        return;
    };
    let url = cluster.url();
    let durable = handle(&url, &test_prefix(), 1).await;
    let worker = wid("w-busy");
    durable
        .put_worker(&worker_record(worker.as_str(), 10_000, 0), None)
        .await
        .unwrap();
    place(&durable, "before", &worker).await.expect("placed");
    let second = format!("127.0.0.1:{}", cluster.second.port());

    let stop = Arc::new(AtomicBool::new(false));
    let busy = (0..32)
        .map(|task| {
            let (store, worker, stop) = (durable.clone(), worker.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    // Any outcome: the steps only keep the connections busy.
                    let key =
                        SessionKey::parse("exam-failover", format!("busy-{task}-{n}")).unwrap();
                    if let Ok(Reservation::Reserved { dispatch, .. }) =
                        store.reserve(&request(&key, &worker, Timestamp(1))).await
                    {
                        let _ = store
                            .confirm(
                                &key,
                                dispatch.id,
                                None,
                                Timestamp(2),
                                Duration::from_secs(60),
                                None,
                            )
                            .await;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.kill_primary();
    cluster.until_failed_over().await;
    let moved = tokio::time::timeout(HANG, async {
        while durable.primary().as_deref() != Some(second.as_str()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in busy {
        tokio::time::timeout(HANG, task)
            .await
            .expect("a busy step answers")
            .expect("a busy step does not panic");
    }
    assert!(
        moved.is_ok(),
        "the handle still names {:?}, not the new primary {second}",
        durable.primary()
    );
    let refused = place_eventually_refused(&durable, &worker).await;
    assert!(refused.contains("acknowledged"), "{refused}");
}
