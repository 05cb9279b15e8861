//! The store's lanes: while students' calls hold every connection of the
//! general pool, a worker's heartbeat (and the leader's lease) still lands
//! on the liveness lane's connections; a call waiting on a general lane
//! whose server went away (a call failed so) and whose calls stopped
//! answering fails as `Unavailable` instead of waiting for the acquire
//! timeout; and a surge on a lane whose calls answer waits in line and is
//! served.
//!
//! The general pool is held by compare-and-set writes blocked on a row
//! lock taken by a connection of the test's own; the server going away is
//! one of their sessions terminated (`pg_terminate_backend`, as a server
//! shutting down ends it). No test asserts how
//! fast: the acquire and statement timeouts are far above the bound that
//! only turns a hang into a failure.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use sqlx::{Connection, Executor, PgConnection};
use vdi_cluster_core::store::{CasOutcome, Lane, LeaderLease, Registry};
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_for, worker_record};
use vdi_cluster_core::{ClusterService, Error, WorkerRecord};
use vdi_cluster_postgres::{PgStore, PgStoreConfig};

use common::{TestDb, register, test_config};

/// Turns a hang into a test failure; well below the acquire and
/// statement timeouts of the stores under test.
const HANG: Duration = Duration::from_secs(20);

/// Connections of the general pool under test.
const GENERAL: u32 = 2;

fn config() -> PgStoreConfig {
    test_config()
        .max_connections(GENERAL)
        .acquire_timeout(Duration::from_secs(120))
        .statement_timeout(Duration::from_secs(120))
}

type Held = Vec<tokio::task::JoinHandle<vdi_cluster_core::Result<CasOutcome>>>;

/// `writes` writes to `record` that wait for the row lock `locker` holds,
/// every general connection of `store` taken by one; returns once
/// PostgreSQL shows them all taken.
async fn hold_the_general_pool(
    db: &TestDb,
    store: &PgStore,
    record: &WorkerRecord,
    version: u64,
    locker: &mut PgConnection,
    writes: u32,
) -> Held {
    locker.execute("BEGIN").await.expect("begin");
    sqlx::query("SELECT 1 FROM vdi.workers WHERE id = $1 FOR UPDATE")
        .bind(record.id.as_str())
        .execute(&mut *locker)
        .await
        .expect("lock the worker's row");
    let held = (0..writes)
        .map(|_| {
            let (store, record) = (store.clone(), record.clone());
            tokio::spawn(async move { store.put_worker(&record, Some(version)).await })
        })
        .collect();
    let mut watcher = db.connection().await;
    let waiting = async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut watcher)
            .await
            .expect("pg_stat_activity");
            if n >= i64::from(GENERAL) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(HANG, waiting)
        .await
        .expect("the writes wait for the row lock");
    let _ = watcher.close().await;
    held
}

/// Ends the lock; the held writes then complete, but for `terminated`
/// of them, which fail as unavailable.
async fn release(mut locker: PgConnection, held: Held, terminated: usize) {
    locker.execute("ROLLBACK").await.expect("rollback");
    let _ = locker.close().await;
    let mut failed = 0;
    for write in join_all(held).await {
        match write.expect("task") {
            Ok(CasOutcome::Written { .. } | CasOutcome::Conflict { .. }) => {}
            Err(Error::Unavailable { .. }) => failed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(failed, terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_lands_while_allocations_hold_every_general_connection() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store_with(config());
    let busy = worker_record("w-busy", 4, 0);
    let version = register(&store, &busy).await;
    let mut locker = db.connection().await;
    let held = hold_the_general_pool(&db, &store, &busy, version, &mut locker, GENERAL).await;

    let service =
        ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new())).build();
    let heartbeat = service
        .fleet()
        .heartbeat(heartbeat_for("w-live", 8.0, 12288, 0));
    let ack = tokio::time::timeout(HANG, heartbeat)
        .await
        .expect("the heartbeat does not wait behind the held connections")
        .expect("the heartbeat is applied");
    assert!(ack.accepted, "{ack:?}");

    let lease = Lane::Liveness.scope(store.try_acquire(
        "vdi.background",
        "replica-1",
        Duration::from_secs(10),
    ));
    let lease = tokio::time::timeout(HANG, lease)
        .await
        .expect("the lease does not wait behind the held connections")
        .expect("the lease is answered");
    assert!(lease.is_some(), "a free lease is taken");

    release(locker, held, 0).await;
    let stored = store.worker(&ack.code).await.expect("read");
    assert!(stored.is_some(), "the heartbeat registered its worker");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_a_lane_whose_server_went_away_fails_at_once() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store_with(config().stalled_after(Duration::from_millis(500)));
    let busy = worker_record("w-busy", 4, 0);
    let version = register(&store, &busy).await;
    let mut locker = db.connection().await;
    // One write more than connections: it takes the turn of the one whose
    // session ends, and waits for the lock in turn.
    let held = hold_the_general_pool(&db, &store, &busy, version, &mut locker, GENERAL + 1).await;
    let mut admin = db.connection().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock' LIMIT 1",
    )
    .execute(&mut admin)
    .await
    .expect("end one session");
    let _ = admin.close().await;

    for what in ["a call waiting for a connection", "the next call"] {
        let refused = tokio::time::timeout(HANG, store.workers())
            .await
            .unwrap_or_else(|_| panic!("{what} waits for the acquire timeout"));
        assert!(
            matches!(refused, Err(Error::Unavailable { .. })),
            "{what}: {refused:?}"
        );
    }

    release(locker, held, 1).await;
    let workers = tokio::time::timeout(HANG, store.workers())
        .await
        .expect("bounded")
        .expect("the lane answers again");
    assert_eq!(workers.len(), 1);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surge_on_a_lane_that_answers_waits_in_line() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store_with(config());
    register(&store, &worker_record("w-1", 4, 0)).await;
    let surge = (0..64).map(|_| store.workers());
    let answers = tokio::time::timeout(HANG, join_all(surge))
        .await
        .expect("the surge is served");
    for answer in answers {
        assert_eq!(answer.expect("no call of the surge is refused").len(), 1);
    }
    db.cleanup().await;
}
