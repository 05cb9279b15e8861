//! Crash safety: connections are killed (`pg_terminate_backend`) in the
//! middle of allocations. Every step is one transaction, so a killed step
//! leaves nothing behind: afterwards a recount finds zero drift and every
//! acknowledged reservation, confirmation and release is as acknowledged.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection;
use vdi_cluster_core::store::{DispatchStore, Reservation};
use vdi_cluster_core::{DispatchId, DispatchState, Error, SessionKey, Timestamp, WorkerId};
use vdi_cluster_postgres::PgStore;

use common::{TestDb, register, test_config};
use vdi_cluster_core::testkit::{key, request, worker_record};

const APP: &str = "vdi-crash-test";
const TASKS: usize = 12;

/// What the store acknowledged last for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    Present(DispatchId, DispatchState),
    Released,
}

/// Runs steps on fresh sessions until told to stop; returns what was
/// acknowledged (sessions with an unacknowledged step are left out).
async fn allocate_until(
    store: PgStore,
    task: usize,
    fleet: Arc<Vec<WorkerId>>,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    progress: Arc<AtomicU64>,
) -> HashMap<SessionKey, Acked> {
    let mut acked = HashMap::new();
    let mut n = 0_usize;
    let unavailable = |e: Error| {
        assert!(
            matches!(e, Error::Unavailable { .. }),
            "unexpected error: {e}"
        );
        failures.fetch_add(1, Ordering::SeqCst);
    };
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let k = key("exam-crash", &format!("t{task}-s{n}"));
        let w = &fleet[n % fleet.len()];
        let id = match store.reserve(&request(&k, w, Timestamp(n as u64))).await {
            Ok(Reservation::Reserved { dispatch, .. }) => dispatch.id,
            Ok(other) => panic!("a fresh session on a roomy worker: {other:?}"),
            Err(e) => {
                unavailable(e);
                continue;
            }
        };
        acked.insert(k.clone(), Acked::Present(id, DispatchState::Reserved));
        progress.fetch_add(1, Ordering::SeqCst);
        if n.is_multiple_of(5) {
            // Left reserved.
            continue;
        }
        match store
            .confirm(
                &k,
                id,
                None,
                Timestamp(n as u64),
                Duration::from_secs(60),
                None,
            )
            .await
        {
            Ok(Some(_)) => {
                acked.insert(k.clone(), Acked::Present(id, DispatchState::Active));
            }
            Ok(None) => panic!("{k}: our own reservation vanished"),
            Err(e) => {
                acked.remove(&k);
                unavailable(e);
                continue;
            }
        }
        if n.is_multiple_of(3) {
            match store.release(&k, Some(id), None, None).await {
                Ok(Some(_)) => {
                    acked.insert(k, Acked::Released);
                }
                Ok(None) => panic!("{k}: our own dispatch vanished"),
                Err(e) => {
                    acked.remove(&k);
                    unavailable(e);
                }
            }
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_leave_no_drift_and_lose_no_acknowledged_step() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let first = db.store();
    let mut fleet = Vec::new();
    for i in 0..10 {
        let record = worker_record(&format!("w-{i}"), 50_000, 0);
        register(&first, &record).await;
        fleet.push(record.id);
    }
    let fleet = Arc::new(fleet);
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        // Every task is a replica with a pool of its own.
        let store = db.store_with(test_config().application_name(APP).max_connections(2));
        tasks.push(tokio::spawn(allocate_until(
            store,
            task,
            Arc::clone(&fleet),
            Arc::clone(&stop),
            Arc::clone(&failures),
            Arc::clone(&progress),
        )));
    }

    // Kill one of the test's connections at a time, mid-flight, until
    // enough have died and enough sessions were placed meanwhile.
    let mut admin = db.connection().await;
    let mut killed = 0_u32;
    for _ in 0..20_000 {
        let hit: Option<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid)
               FROM pg_stat_activity
              WHERE datname = $1 AND application_name = $2
              -- Prefer a connection in the middle of a statement.
              ORDER BY state = 'active' DESC, random()
              LIMIT 1",
        )
        .bind(db.name())
        .bind(APP)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
        if hit == Some(true) {
            killed += 1;
        }
        if killed >= 40 && progress.load(Ordering::SeqCst) >= 3_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = admin.close().await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = HashMap::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(killed > 0, "no connection was killed");
    eprintln!(
        "killed {killed} connections; {} calls failed; {} sessions acknowledged",
        failures.load(Ordering::SeqCst),
        acked.len()
    );

    // The pools recovered by themselves, and the state is exact.
    let report = first.recount(false).await.unwrap();
    assert!(
        report.drift.is_empty(),
        "drift after crashes: {:?}",
        report.drift
    );
    for (k, want) in &acked {
        let got = first.dispatch(k).await.unwrap();
        match want {
            Acked::Released => assert!(got.is_none(), "{k} was released but is back"),
            Acked::Present(id, state) => {
                let got = got.unwrap_or_else(|| panic!("acknowledged {k} is lost"));
                assert_eq!((got.id, got.state), (*id, *state), "{k}");
            }
        }
    }
    db.cleanup().await;
}
