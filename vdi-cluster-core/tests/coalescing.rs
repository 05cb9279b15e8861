//! Duplicate requests of one session over two replicas, on a store whose
//! calls take round trips of simulated time (tokio's paused time) and
//! whose writes land later than its reads, as on PostgreSQL: a
//! reservation is in flight, invisible to every other request, for a
//! while after its replica has counted it.
//!
//! Every duplicate must answer the one dispatch; none may be refused for
//! want of a slot while the student is being given the last one. The
//! replica's own count of its reservations in flight is no ground for a
//! refusal: only the store's answers are (`snapshot` in the placement
//! wing). The conformance case
//! `duplicate_requests_on_replicas_share_the_last_slot` runs the same race
//! on every backend with real time.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use vdi_cluster_core::service::AllocateOutcome;
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots, key, wid};
use vdi_cluster_core::{
    Clock, ClusterService, Error, MemoryStore, Registry, ServiceConfig, Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

/// Requests of one student per trial.
const DUPLICATES: u64 = 20;

/// Trials, each with its own arrival pattern.
const TRIALS: u64 = 6;

/// A clock that follows tokio's (paused) time.
#[derive(Debug)]
struct TokioClock(Instant);

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        START.plus(self.0.elapsed())
    }
}

/// A [`MemoryStore`] behind a network: every call travels 1 ms each way,
/// and a write spends 4 ms more in the server before its atomic step
/// takes effect (a PL/pgSQL function, its locks, its commit).
#[derive(Debug, Clone)]
struct Remote {
    inner: MemoryStore,
}

impl Remote {
    async fn around<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        let write = matches!(
            method,
            "reserve" | "confirm" | "undo" | "release" | "adopt" | "put_worker"
        );
        let there = if write { 5 } else { 1 };
        tokio::time::sleep(Duration::from_millis(there)).await;
        let answer = call.await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        answer
    }
}

vdi_cluster_core::delegate_store!(Remote, inner, around);

fn replica(
    store: &Remote,
    workers: &SimulatedWorkers,
    clock: &Arc<TokioClock>,
    n: u64,
) -> Arc<ClusterService> {
    Arc::new(
        ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
            .config(ServiceConfig {
                seed: n,
                replica_id: format!("replica-{n}"),
                snapshot_max_age: Duration::from_millis(20),
                ..ServiceConfig::default()
            })
            .clock(Arc::clone(clock) as Arc<dyn Clock>)
            .build(),
    )
}

/// Trials with the requests arriving at once, then spread over a few
/// milliseconds in different orders.
#[tokio::test(start_paused = true)]
async fn duplicates_over_replicas_never_refuse_the_student_being_placed() {
    let clock = Arc::new(TokioClock(Instant::now()));
    let store = Remote {
        inner: MemoryStore::with_clock(Arc::clone(&clock) as Arc<dyn Clock>),
    };
    let workers = SimulatedWorkers::new();
    let replicas = [
        replica(&store, &workers, &clock, 1),
        replica(&store, &workers, &clock, 2),
    ];
    replicas[0]
        .fleet()
        .heartbeat(heartbeat_with_slots("w-last", 2, 0))
        .await
        .unwrap();
    replicas[0]
        .placement()
        .allocate(key("exam", "holder"), Default::default())
        .await
        .unwrap();
    let mut wrong = Vec::new();
    for trial in 0..TRIALS {
        let student = key("exam", &format!("student-{trial}"));
        let mut tasks = Vec::new();
        for n in 0..DUPLICATES {
            let svc = Arc::clone(&replicas[(n % 2) as usize]);
            let student = student.clone();
            // Trial 0: all at once; then each request n after
            // (n × trial) mod 7 ms.
            let delay = Duration::from_millis(n * trial % 7);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                svc.placement().allocate(student, Default::default()).await
            }));
        }
        let mut ids = BTreeSet::new();
        let (mut placed, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(a) => {
                    ids.insert(a.dispatch.id);
                    if a.outcome != AllocateOutcome::Existing {
                        placed += 1;
                    }
                }
                Err(Error::NoCapacity(_)) => refused += 1,
                Err(e) => panic!("trial {trial}: {e}"),
            }
        }
        if refused > 0 || ids.len() != 1 || placed != 1 {
            wrong.push(format!(
                "trial {trial}: {refused} refused, {} dispatches, {placed} placed",
                ids.len()
            ));
        }
        replicas[0].placement().release(&student).await.unwrap();
    }
    assert!(
        wrong.is_empty(),
        "{} of {TRIALS} trials went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let snap = store.inner.worker(&wid("w-last")).await.unwrap().unwrap();
    assert_eq!(snap.dispatched, 1, "only the holder's slot stays taken");
}
