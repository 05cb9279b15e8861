//! Cases of the disruption ledger
//! ([`DisruptionLedger`](crate::ledger::DisruptionLedger)): entries ride
//! with a re-dispatch's confirmation, all or nothing, are stored once and
//! outlive the session; and a re-dispatch killed at any step leaves its
//! move and its entry both committed or both absent.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::StoreFactory;
use super::fixtures::now;
use crate::dispatch::DispatchState;
use crate::ids::{DispatchId, SessionKey};
use crate::ledger::{Disruption, DisruptionKind};
use crate::policy::AdminPolicy;
use crate::service::{ClusterService, ServiceConfig};
use crate::store::{Reservation, Store};
use crate::testkit::{
    SimulatedWorkers, heartbeat_with_slots, key, request, reserve_and_confirm, worker_record,
};
use crate::time::Timestamp;

fn lost(session: &SessionKey, cause: &str, from: u64, to: u64) -> Disruption {
    Disruption::new(
        session.clone(),
        DisruptionKind::WorkerLost,
        Timestamp(from),
        Timestamp(to),
        Vec::new(),
        cause,
    )
}

/// A confirmation carries its ledger entries: one that fails writes none,
/// one that wins writes them (with or without outbox entries), a second
/// write of the same entry is skipped, and the entries outlive the
/// session's release. An exam lists every student's entries.
pub async fn ledger_entries_commit_with_their_confirmation(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t = now();
    let ttl = Duration::from_secs(60);
    let record = worker_record("w-ledger", 4, 0);
    store.put_worker(&record, None).await.unwrap();
    let session = key("e-ledger", "u1");
    let Reservation::Reserved { dispatch, .. } = store
        .reserve(&request(&session, &record.id, t))
        .await
        .unwrap()
    else {
        panic!("reserved");
    };
    let entry = lost(&session, &dispatch.id.to_string(), 1_000, 5_000);

    let other = store
        .confirm_with_outbox(
            &session,
            DispatchId::new(),
            None,
            t,
            ttl,
            None,
            &[],
            std::slice::from_ref(&entry),
        )
        .await
        .unwrap();
    assert_eq!(other, None, "another reservation's id confirms nothing");
    assert!(
        store.disruptions(&session).await.unwrap().is_empty(),
        "a confirmation that failed wrote no entry"
    );

    let active = store
        .confirm_with_outbox(
            &session,
            dispatch.id,
            None,
            t,
            ttl,
            None,
            &[],
            std::slice::from_ref(&entry),
        )
        .await
        .unwrap()
        .expect("confirmed");
    assert_eq!(active.state, DispatchState::Active);
    assert_eq!(
        store.disruptions(&session).await.unwrap(),
        vec![entry.clone()]
    );

    let second = lost(&session, "later", 6_000, 9_000);
    assert_eq!(
        store
            .append_disruptions(&[entry.clone(), second.clone()])
            .await
            .unwrap(),
        1,
        "an entry already stored is skipped"
    );
    let other_student = key("e-ledger", "u2");
    let theirs = lost(&other_student, "theirs", 2_000, 3_000);
    store
        .append_disruptions(std::slice::from_ref(&theirs))
        .await
        .unwrap();
    store.append_disruptions(&[]).await.unwrap();

    store
        .release(&session, Some(dispatch.id), None, None)
        .await
        .unwrap()
        .expect("released");
    let mut mine = store.disruptions(&session).await.unwrap();
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![entry, second];
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(mine, want, "the entries outlive the session");

    let mut exam = store.exam_disruptions(&session.exam_id).await.unwrap();
    exam.sort_by(|a, b| a.id.cmp(&b.id));
    want.push(theirs);
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(exam, want);
    assert!(
        store
            .exam_disruptions(&key("e-ledger-none", "u").exam_id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A store killed at one call of a placement: from the call numbered
/// `kill_at` on (counting from 1), no call reaches the store — the call is
/// stopped before it is sent, or, with `after`, once the store has
/// answered it — and it never returns, as if the process died there.
#[derive(Debug)]
struct Killed {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
    kill_at: usize,
    after: bool,
    died: Notify,
}

impl Killed {
    async fn around<T>(&self, _method: &'static str, call: impl Future<Output = T>) -> T {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n < self.kill_at {
            return call.await;
        }
        if n == self.kill_at && self.after {
            let _ = call.await;
        }
        self.died.notify_one();
        std::future::pending().await
    }
}

crate::delegate_store!(Killed, inner, around);

/// A student's desktop on a worker an operator then disabled is moved by
/// the student's next request; the process doing it is killed at each of
/// its store calls in turn (before the call, and after its answer). At
/// every kill, the session's move to the new worker and its `moved`
/// ledger entry are both committed or both absent; the run that is not
/// killed commits both.
pub async fn a_redispatch_and_its_ledger_entry_commit_together(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let t = now();
    let mut completed = false;
    for kill_at in 1..=40usize {
        for after in [false, true] {
            let tag = format!("{kill_at}{}", if after { "a" } else { "b" });
            let store = factory.replica().await;
            let service = |s: Arc<dyn Store>| {
                ClusterService::builder(s, Arc::new(workers.clone()))
                    .config(ServiceConfig {
                        slow_start: Duration::ZERO,
                        ..ServiceConfig::default()
                    })
                    .clock(Arc::new(crate::time::ManualClock::new(t)))
                    .build()
            };
            let setup = service(Arc::clone(&store));
            let old_worker = format!("kill-a{tag}");
            setup
                .fleet()
                .heartbeat(heartbeat_with_slots(&old_worker, 4, 0))
                .await
                .unwrap();
            let session = key(&format!("e-kill{tag}"), "u1");
            let placed = reserve_and_confirm(
                &*store,
                &request(&session, &crate::testkit::wid(&old_worker), t),
                t,
                Duration::from_secs(60),
            )
            .await;
            setup
                .fleet()
                .heartbeat(heartbeat_with_slots(&format!("kill-b{tag}"), 4, 0))
                .await
                .unwrap();
            let snapshot = store
                .worker(&placed.worker)
                .await
                .unwrap()
                .expect("the old worker");
            let mut disabled = snapshot.record.clone();
            disabled.policy = AdminPolicy::Disabled { forced: true };
            store
                .put_worker(&disabled, Some(snapshot.version))
                .await
                .unwrap();

            let killed = Arc::new(Killed {
                inner: Arc::clone(&store),
                calls: AtomicUsize::new(0),
                kill_at,
                after,
                died: Notify::new(),
            });
            let dying = service(Arc::clone(&killed) as Arc<dyn Store>);
            let finished = tokio::select! {
                answer = dying.placement().allocate(session.clone(), Default::default()) => {
                    answer.expect("the move is made");
                    true
                }
                () = killed.died.notified() => false,
            };

            let dispatch = store.dispatch(&session).await.unwrap();
            let entries = store.disruptions(&session).await.unwrap();
            let moved = dispatch
                .as_ref()
                .filter(|d| d.state == DispatchState::Active && d.worker.as_str() != old_worker);
            match moved {
                Some(d) => {
                    assert_eq!(
                        entries.len(),
                        1,
                        "{tag}: the move has its entry: {entries:?}"
                    );
                    assert_eq!(entries[0].cause, d.id.to_string(), "{tag}");
                    assert_eq!(entries[0].kind, DisruptionKind::Moved, "{tag}");
                    assert_eq!(
                        entries[0].workers,
                        vec![placed.worker.clone(), d.worker.clone()],
                        "{tag}"
                    );
                }
                None => assert!(
                    entries.is_empty(),
                    "{tag}: no move, no entry: {dispatch:?} {entries:?}"
                ),
            }
            if finished {
                assert!(moved.is_some(), "{tag}: the run that was not killed moved");
                completed = true;
            }
        }
        if completed {
            break;
        }
    }
    assert!(completed, "a run got through every store call");
}
