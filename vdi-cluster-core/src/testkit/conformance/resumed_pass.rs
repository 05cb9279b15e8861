//! Passes that finish: a dispatch scan resumed from its cursor — on
//! another handle, after a leader change, with dispatches added and
//! removed meanwhile — covers every dispatch present throughout exactly
//! once; the cursor is kept beside the background lease, fenced by it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::{add_worker, now, reserved, superseding};
use crate::error::Error;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::reconcile::{PassCheckpoint, StepStart};
use crate::service::{BACKGROUND_LEASE, ClusterService, ServiceConfig};
use crate::store::{Lease, Reservation, Store};
use crate::testkit::{SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key};

const TTL: Duration = Duration::from_secs(30);

/// The dispatches of a walk so far, by id, with how often each came back.
#[derive(Debug, Default)]
struct Covered(BTreeMap<DispatchId, u32>);

impl Covered {
    fn note(&mut self, ids: impl IntoIterator<Item = DispatchId>) {
        for id in ids {
            *self.0.entry(id).or_default() += 1;
        }
    }
}

/// The cursor saved beside lease `name`, read on `reader`.
async fn saved_cursor(reader: &Arc<dyn Store>, name: &str) -> Option<String> {
    let text = reader
        .checkpoint(name)
        .await
        .unwrap()
        .expect("a checkpoint");
    let checkpoint = PassCheckpoint::decode(&text).expect("a checkpoint of this release");
    checkpoint.current.map(|p| p.cursor)
}

/// Walks the dispatches 5 at a time, alternating between two handles that
/// each resume from the cursor the other saved beside a lease (the lease
/// moves from one to the other half-way, and the deposed holder's save is
/// refused), while sessions are added (before and after the cursor, on
/// every worker), removed, superseded onto another worker, confirmed and
/// orphaned. Every dispatch present throughout comes back exactly once,
/// and no dispatch twice.
pub async fn resumed_scans_cover_every_dispatch_once(factory: &impl StoreFactory) {
    let handles = [factory.replica().await, factory.replica().await];
    let store = &handles[0];
    let mut workers: Vec<WorkerId> = Vec::new();
    for code in ["w-pass-a", "w-pass-m", "w-pass-z"] {
        workers.push(add_worker(store, code, 200).await);
    }
    let on = |i: usize| &workers[i % workers.len()];
    let mut steady = BTreeMap::new();
    for i in 0..40 {
        let k = key(&format!("exam-{}", i % 5), &format!("steady-{i:02}"));
        steady.insert(reserved(store, &k, on(i)).await.id, k);
    }
    let mut doomed = Vec::new();
    for i in 0..12 {
        let k = key(&format!("exam-{}", i % 5), &format!("doomed-{i:02}"));
        doomed.push(reserved(store, &k, on(i + 1)).await);
    }
    let mut movers = Vec::new();
    for i in 0..6 {
        let k = key(&format!("exam-{}", i % 5), &format!("mover-{i:02}"));
        movers.push(reserved(store, &k, on(i)).await);
    }

    let name = "pass-conformance";
    let holders = ["replica-a", "replica-b"];
    let mut lease: Lease = handles[0]
        .try_acquire(name, holders[0], TTL)
        .await
        .unwrap()
        .expect("a leads");
    let mut leader = 0;
    let mut deposed: Option<Lease> = None;
    let start = StepStart::new_pass(now());
    let mut checkpoint = PassCheckpoint::default();
    let mut covered = Covered::default();
    let mut steady_ids: Vec<DispatchId> = steady.keys().copied().collect();
    let mut finished = false;
    for page in 0..200 {
        let reader = &handles[page % 2];
        let cursor = if page == 0 {
            None
        } else {
            saved_cursor(reader, name).await
        };
        if page > 0 && cursor.is_none() {
            finished = true;
            break;
        }
        let scanned = reader.scan_dispatches(cursor.as_deref(), 5).await.unwrap();
        covered.note(scanned.dispatches.iter().map(|d| d.id));
        checkpoint = checkpoint.after_step(&start, 5, scanned.next.clone(), now());
        if scanned.next.is_none() {
            finished = true;
            break;
        }
        handles[leader]
            .save_checkpoint(&lease, &checkpoint.encode())
            .await
            .unwrap();

        // Churn while the walk runs.
        if let Some(d) = doomed.pop() {
            assert!(
                store
                    .release(&d.key, Some(d.id), None, None)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        for exam in ["aaa-early", "zzz-late", "exam-2"] {
            reserved(store, &key(exam, &format!("added-{page:03}")), on(page)).await;
        }
        if let Some(m) = movers.pop() {
            let to = workers
                .iter()
                .find(|w| **w != m.worker)
                .expect("another worker");
            let moved = store.reserve(&superseding(&m.key, to, m.id)).await.unwrap();
            assert!(
                matches!(
                    moved,
                    Reservation::Reserved {
                        superseded: Some(_),
                        ..
                    }
                ),
                "{moved:?}"
            );
        }
        if let Some(id) = steady_ids.pop() {
            let k = &steady[&id];
            if page % 2 == 0 {
                let confirmed = store.confirm(k, id, None, now(), TTL, None).await.unwrap();
                assert!(confirmed.is_some(), "steady dispatches stay");
            } else {
                assert!(store.mark_orphaned(k, id, None).await.unwrap());
            }
        }

        // Half-way, the lease moves to the other handle.
        if page == 3 {
            assert!(handles[leader].release_lease(&lease).await.unwrap());
            let old = std::mem::replace(
                &mut lease,
                handles[1]
                    .try_acquire(name, holders[1], TTL)
                    .await
                    .unwrap()
                    .expect("b leads"),
            );
            deposed = Some(old);
            leader = 1;
        }
        if let Some(old) = &deposed {
            let before = handles[1].checkpoint(name).await.unwrap();
            let late = handles[0].save_checkpoint(old, "{}").await;
            assert!(matches!(late, Err(Error::Fenced { .. })), "{late:?}");
            assert_eq!(
                handles[1].checkpoint(name).await.unwrap(),
                before,
                "refused, unchanged"
            );
        }
    }
    assert!(finished, "the walk must reach the end");

    let twice: Vec<_> = covered.0.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "returned more than once: {twice:?}");
    let missed: Vec<_> = steady
        .iter()
        .filter(|(id, _)| !covered.0.contains_key(id))
        .map(|(_, k)| k)
        .collect();
    assert!(missed.is_empty(), "present throughout, missed: {missed:?}");
    assert_no_drift(&**store).await;
}

/// The leader's pass through the service: steps of 4 dispatches on one
/// replica, then — after a leader change — on another, which resumes from
/// the cursor the first saved beside the background lease. The pass reads
/// each dispatch once (its steps' counts add up to the dispatches), says
/// how far it got at every step, and completes; the deposed leader's step
/// is fenced off and leaves the cursor where it was.
pub async fn a_pass_resumes_on_the_next_leader(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let mut replicas = Vec::new();
    for r in 0..2 {
        let store = factory.replica().await;
        let config = ServiceConfig {
            replica_id: format!("replica-{r}"),
            scan_count: 4,
            scan_pages_per_step: 1,
            ..ServiceConfig::default()
        };
        let svc = ClusterService::builder(Arc::clone(&store), Arc::new(workers.clone()))
            .config(config)
            .build();
        replicas.push((store, svc));
    }
    let (a, svc_a) = &replicas[0];
    let (b, svc_b) = &replicas[1];
    for code in ["w-step-1", "w-step-2"] {
        svc_a
            .fleet()
            .heartbeat(heartbeat_with_slots(code, 20, 0))
            .await
            .unwrap();
    }
    let on = [
        crate::testkit::wid("w-step-1"),
        crate::testkit::wid("w-step-2"),
    ];
    let mut sessions = BTreeSet::<SessionKey>::new();
    for i in 0..18 {
        let k = key(&format!("exam-{}", i % 3), &format!("student-{i:02}"));
        reserved(a, &k, &on[i % 2]).await;
        sessions.insert(k);
    }

    let lease_a = a
        .try_acquire(BACKGROUND_LEASE, "replica-0", TTL)
        .await
        .unwrap()
        .expect("a leads");
    let mut total = 0;
    for step in 1..=2 {
        let r = svc_a.operations().reconcile_step(&lease_a).await.unwrap();
        assert_eq!(
            (r.pass.steps, r.pass.resumed, r.pass.complete),
            (step, step > 1, false)
        );
        assert_eq!(r.dispatches_scanned, 4);
        total += r.dispatches_scanned;
        assert_eq!(r.pass.dispatches_scanned, u64::from(total));
    }
    let began = svc_a
        .operations()
        .pass_checkpoint()
        .await
        .unwrap()
        .expect("saved");
    let began = began.current.expect("under way").started_at;

    // a stops leading; b takes over and resumes.
    assert!(a.release_lease(&lease_a).await.unwrap());
    let lease_b = b
        .try_acquire(BACKGROUND_LEASE, "replica-1", TTL)
        .await
        .unwrap()
        .expect("b leads");
    let before = svc_b.operations().pass_checkpoint().await.unwrap();
    let fenced = svc_a.operations().reconcile_step(&lease_a).await;
    assert!(matches!(fenced, Err(Error::Fenced { .. })), "{fenced:?}");
    assert_eq!(svc_b.operations().pass_checkpoint().await.unwrap(), before);

    let mut last = None;
    for _ in 0..10 {
        let r = svc_b.operations().reconcile_step(&lease_b).await.unwrap();
        assert!(r.pass.resumed, "b continues a's pass");
        assert_eq!(r.pass.started_at, began);
        total += r.dispatches_scanned;
        let complete = r.pass.complete;
        last = Some(r);
        if complete {
            break;
        }
    }
    let last = last.expect("a step");
    assert!(last.pass.complete && last.scan_complete, "{last:?}");
    assert_eq!(total as usize, sessions.len(), "each dispatch read once");
    assert_eq!(last.pass.dispatches_scanned, sessions.len() as u64);
    assert_eq!(last.pass.steps, 5, "4 + 4 on a, 4 + 4 + 2 on b");
    assert_eq!(last.pass.checked_since, Some(began));
    let saved = svc_a
        .operations()
        .pass_checkpoint()
        .await
        .unwrap()
        .expect("saved");
    assert_eq!(saved.current, None);
    assert_eq!(saved.last_complete.map(|c| c.scanned), Some(18));

    // The next step begins a new pass.
    let next = svc_b.operations().reconcile_step(&lease_b).await.unwrap();
    assert_eq!((next.pass.steps, next.pass.resumed), (1, false));
    assert!(next.pass.started_at >= began);
    for k in &sessions {
        b.release(k, None, None, None).await.unwrap();
    }
    assert_no_drift(&**b).await;
}
