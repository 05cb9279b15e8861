//! Cases of the read-all and write-all operations a store's export and
//! import use ([`crate::transfer`]): a store's contents survive a trip
//! through the backend and back with nothing lost, and an import never
//! overwrites nor duplicates.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::{now, put_new, reserved};
use super::outbox::{endpoint, entry};
use crate::credential::{IssuedSecret, WorkerCredential};
use crate::dispatch::Dispatch;
use crate::ids::SessionKey;
use crate::ledger::{Disruption, DisruptionKind};
use crate::memory::MemoryStore;
use crate::scale::{CapacityRequest, CapacityState};
use crate::scheduled::{ActionKind, CLAIM_TTL, ScheduledAction};
use crate::store::{Adoption, AuditEntry, CasOutcome, JoinToken, Store};
use crate::testkit::{exam, exam_network_policy, key, wid, worker_record};
use crate::transfer::{Copied, ImportError, ImportMode, StoreContents, export, import};

const STICKY: Duration = Duration::from_secs(21_600);
const DAY: Duration = Duration::from_secs(86_400);

/// Writes something into every part a store's export copies: two
/// workers (one with unrecorded slots), credentials (one of a worker
/// without a record), a bound join token with a use counted, an exam with
/// a network policy,
/// a webhook endpoint with two undelivered entries, two audit entries,
/// an active dispatch (adopted from its worker's report) and an orphaned
/// one, and a reservation in flight
/// (which an export leaves out), two capacity requests (one requested of
/// the hook, one released), three scheduled drains: one pending, one
/// a leader claimed, one cancelled (which an export leaves out), and three
/// ledger entries (two of a booked exam's student, one of an exam no
/// longer booked), and two rehearsals: the booked exam's, and one of an
/// exam no longer booked whose removal is pending (which an export leaves
/// out).
pub async fn fill_every_part(store: &Arc<dyn Store>) {
    let t = now();
    put_new(store, &worker_record("w-1", 4, 0)).await;
    let mut second = worker_record("w-2", 3, 1);
    second.unrecorded = 1;
    put_new(store, &second).await;
    for (code, hash) in [("w-1", "a1"), ("w-joined", "b2")] {
        let secret = IssuedSecret::new(hash.repeat(32), t, DAY);
        store
            .put_worker_credential(&wid(code), &WorkerCredential::issued(secret), None)
            .await
            .unwrap();
    }
    store
        .put_join_token(&JoinToken {
            id: "jt-1".into(),
            token_hash: "c3".repeat(32),
            created_by: "admin".into(),
            created_at: t,
            expires_at: t.plus(DAY),
            max_uses: 3,
            uses: 0,
            worker: Some(wid("w-3")),
        })
        .await
        .unwrap();
    store
        .redeem_join_token(&"c3".repeat(32), t)
        .await
        .unwrap()
        .expect("a use of the join token");
    let booked = crate::exam::Exam {
        network_policy: Some(exam_network_policy()),
        ..exam("exam-1", t.plus(DAY), 90, 20)
    };
    store.put_exam_if_version(&booked, 0).await.unwrap();
    assert!(store.put_webhook(&endpoint("wh_1", t)).await.unwrap());
    let entries = [
        entry("msg_1", "wh_1", "dedup-1", t),
        entry("msg_2", "wh_1", "dedup-2", t),
    ];
    assert_eq!(store.append_outbox(&entries, None).await.unwrap(), 2);
    for (i, action) in ["drain", "activate"].into_iter().enumerate() {
        store
            .append_audit(&AuditEntry {
                at: t.plus(Duration::from_millis(i as u64)),
                actor: "admin".into(),
                action: action.into(),
                target: "w-1".into(),
                detail: serde_json::json!({ "i": i }),
            })
            .await
            .unwrap();
    }
    let (active, orphaned) = (key("exam-1", "u-1"), key("exam-1", "u-2"));
    let details = serde_json::json!({ "rdp": "10.0.0.5" });
    let w1 = store.worker(&wid("w-1")).await.unwrap().unwrap().record;
    let adoption = Dispatch::adopted(active.clone(), &w1, t, Some(details.clone()));
    assert!(matches!(
        store.adopt(&adoption, STICKY).await.unwrap(),
        Adoption::Adopted(_)
    ));
    let d = reserved(store, &orphaned, &wid("w-1")).await;
    store
        .confirm(&orphaned, d.id, Some(details), t, STICKY, None)
        .await
        .unwrap()
        .expect("confirmed");
    let o = store.dispatch(&orphaned).await.unwrap().unwrap();
    assert!(store.mark_orphaned(&orphaned, o.id, None).await.unwrap());
    reserved(store, &key("exam-1", "u-3"), &wid("w-2")).await;
    fill_scheduling(store).await;
    let entry = |k: &SessionKey, kind, from: u64, cause: &str| {
        Disruption::new(
            k.clone(),
            kind,
            t.minus(Duration::from_secs(from)),
            t.minus(Duration::from_secs(from - 30)),
            vec![wid("w-2"), wid("w-1")],
            cause,
        )
    };
    let ledger = [
        entry(&active, DisruptionKind::WorkerLost, 600, "dsp_1"),
        entry(&active, DisruptionKind::Refused, 900, "refusal_1"),
        entry(
            &key("exam-0", "u-9"),
            DisruptionKind::WaitingRoom,
            7_200,
            "queued_1",
        ),
    ];
    assert_eq!(store.append_disruptions(&ledger).await.unwrap(), 3);
}

/// The capacity requests, scheduled drains and rehearsal of
/// [`fill_every_part`].
async fn fill_scheduling(store: &Arc<dyn Store>) {
    let t = now();
    let requested = CapacityRequest {
        id: "cap-exam-1-1".into(),
        exams: vec![exam("exam-1", t.plus(DAY), 90, 20).id],
        constraints: Default::default(),
        slots: 4,
        deadline: t.plus(DAY),
        needed_until: t.plus(DAY).plus(DAY),
        state: CapacityState::Requested,
        workers: vec![wid("w-new-1"), wid("w-new-2")],
        attempts: 2,
        next_attempt_at: t.plus(Duration::from_secs(30)),
        last_error: Some("hook timed out".into()),
        created_at: t,
        updated_at: t,
    };
    let released = CapacityRequest {
        id: "cap-exam-0-1".into(),
        state: CapacityState::Released,
        ..requested.clone()
    };
    for request in [&requested, &released] {
        assert!(store.insert_capacity_request(request, &[]).await.unwrap());
    }
    let drain = |id: &str, at| {
        ScheduledAction::pending(
            id.into(),
            wid("w-1"),
            ActionKind::Drain,
            at,
            "alice",
            "kernel patch",
            t,
        )
    };
    let pending = drain("sa_pending", t.plus(DAY));
    let claimed = drain("sa_claimed", t)
        .claim(t, CLAIM_TTL)
        .expect("due, so claimable");
    let cancelled = drain("sa_cancelled", t.plus(DAY))
        .cancel("bob", t)
        .expect("pending, so cancellable");
    for action in [&pending, &claimed, &cancelled] {
        let written = store.put_scheduled(action, None).await.unwrap();
        assert!(matches!(written, CasOutcome::Written { .. }), "{written:?}");
    }
    let check = crate::rehearsal::judge(
        &wid("w-2"),
        Err("unreachable".into()),
        crate::rehearsal::DEFAULT_SLOW_START,
        t,
    );
    for id in ["exam-1", "exam-cancelled"] {
        let rehearsal = crate::rehearsal::Rehearsal::run(
            None,
            exam(id, t.plus(DAY), 90, 20).id,
            "alice",
            t,
            vec![check.clone()],
            t,
        );
        assert!(store.put_rehearsal(&rehearsal, 0, &[]).await.unwrap());
    }
}

/// What a filled store's export must hold, part by part.
fn assert_every_part(contents: &StoreContents) {
    let counts = [
        contents.workers.len(),
        contents.worker_credentials.len(),
        contents.join_tokens.len(),
        contents.exams.len(),
        contents.webhooks.len(),
        contents.outbox.len(),
        contents.audit.len(),
        contents.dispatches.len(),
        contents.capacity_requests.len(),
        contents.scheduled.len(),
        contents.disruptions.len(),
        contents.rehearsals.len(),
    ];
    assert_eq!(
        counts,
        [2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 3, 1],
        "{contents:#?}"
    );
    let adopted: Vec<bool> = contents.dispatches.iter().map(|d| d.adopted).collect();
    assert_eq!(adopted, [true, false], "the adopted mark travels with it");
    assert_eq!(contents.disruptions[0].key.exam_id.as_str(), "exam-0");
    assert_eq!(contents.rehearsals[0].failing().len(), 1);
    assert_eq!(
        contents.rehearsals[0].exam_id.as_str(),
        "exam-1",
        "only the rehearsals of the exams in the dump"
    );
    assert_eq!(contents.capacity_requests[1].workers.len(), 2);
    let drains: Vec<&str> = contents.scheduled.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(drains, ["sa_claimed", "sa_pending"], "open ones, by id");
    assert_eq!(contents.workers[1].unrecorded, 1);
    assert_eq!(contents.join_tokens[0].uses, 1);
    assert_eq!(
        contents.exams[0].network_policy,
        Some(exam_network_policy()),
        "the exam's network policy travels with it"
    );
    assert_eq!(contents.audit[0].action, "drain", "oldest first");
}

/// A store's contents go into the backend and come out equal: memory →
/// backend → memory, with nothing lost; the counters the backend derives
/// from the dispatches match them; a second import is refused into the
/// now non-empty store and, merging, writes nothing twice.
pub async fn store_contents_survive_export_and_import(factory: &impl StoreFactory) {
    let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
    fill_every_part(&source).await;
    let dumped = export(source.as_ref()).await.unwrap();
    assert_every_part(&dumped);

    let backend = factory.replica().await;
    let report = import(backend.as_ref(), &dumped, ImportMode::IntoEmpty, STICKY)
        .await
        .unwrap();
    assert_eq!(report.dispatches.written, 2);
    assert_eq!(report.workers.skipped, 0);
    assert_eq!(report.capacity_requests.written, 2);
    assert_eq!(report.scheduled.written, 2);
    assert_eq!(report.disruptions.written, 3);
    assert_eq!(report.rehearsals.written, 1);
    let other = factory.replica().await;
    assert_eq!(export(other.as_ref()).await.unwrap(), dumped);
    let w1 = other.worker(&wid("w-1")).await.unwrap().unwrap();
    assert_eq!(w1.dispatched, 2, "counters follow the dispatches");
    let recount = other.recount(false).await.unwrap();
    assert!(recount.drift.is_empty(), "{recount:?}");

    let again = import(other.as_ref(), &dumped, ImportMode::IntoEmpty, STICKY).await;
    assert!(
        matches!(again, Err(ImportError::NotEmpty { holds: "workers" })),
        "{again:?}"
    );
    let merged = import(other.as_ref(), &dumped, ImportMode::Merge, STICKY)
        .await
        .unwrap();
    assert_eq!(
        merged.workers.written + merged.outbox.written + merged.audit.written,
        0
    );
    assert_eq!(merged.dispatches.skipped, 2);
    assert_eq!(
        merged.disruptions,
        Copied {
            written: 0,
            skipped: 3
        }
    );
    assert_eq!(
        (merged.capacity_requests, merged.scheduled),
        (
            Copied {
                written: 0,
                skipped: 2
            },
            Copied {
                written: 0,
                skipped: 2
            }
        )
    );
    assert_eq!(export(backend.as_ref()).await.unwrap(), dumped);

    let back: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let from_backend = export(backend.as_ref()).await.unwrap();
    import(back.as_ref(), &from_backend, ImportMode::IntoEmpty, STICKY)
        .await
        .unwrap();
    assert_eq!(export(back.as_ref()).await.unwrap(), dumped);
}

/// Every worker's credential is listed, with or without a record.
pub async fn worker_credentials_are_listed(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    assert!(store.worker_credentials().await.unwrap().is_empty());
    let secret = IssuedSecret::new("d4".repeat(32), now(), DAY);
    for code in ["w-a", "w-b"] {
        store
            .put_worker_credential(&wid(code), &WorkerCredential::issued(secret.clone()), None)
            .await
            .unwrap();
    }
    let mut listed = factory.replica().await.worker_credentials().await.unwrap();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let codes: Vec<&str> = listed.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(codes, ["w-a", "w-b"]);
    assert_eq!(listed[0].1.credential, WorkerCredential::issued(secret));
}
