//! Behaviour specific to the PostgreSQL backend, and a differential test
//! that drives it and the in-memory reference backend with the same random
//! operations and requires the same answers.

mod common;

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;
use vdi_cluster_core::policy::AdminPolicy;
use vdi_cluster_core::store::{
    AuditEntry, AuditLog, CasOutcome, DeleteOutcome, DispatchStore, LeaderLease, Registry,
    Reservation, ReserveRequest,
};
use vdi_cluster_core::{Dispatch, DispatchId, DispatchState, MemoryStore, Timestamp};
use vdi_cluster_postgres::PgStore;

use common::{TestDb, register};
use vdi_cluster_core::testkit::{assert_no_drift, key, request, wid, worker_record};

const WORKERS: [(&str, u32); 4] = [("w-a", 2), ("w-b", 1), ("w-c", 3), ("w-d", 2)];

/// Either the id of the session's current dispatch, or a random one.
fn some_id(rng: &mut SmallRng, current: Option<&Dispatch>) -> DispatchId {
    match current {
        Some(d) if rng.random_bool(0.8) => d.id,
        _ => DispatchId::new(),
    }
}

/// Applies the same random step to both stores and compares the answers.
async fn step(rng: &mut SmallRng, t: u64, mem: &MemoryStore, pg: &PgStore, db: &TestDb) {
    let exams = ["e-1", "e:2 Toán"];
    let k = key(
        exams[rng.random_range(0..2)],
        &format!("u-{}", rng.random_range(0..4)),
    );
    let (code, slots) = WORKERS[rng.random_range(0..WORKERS.len())];
    let w = wid(code);
    let current = mem.dispatch(&k).await.unwrap();
    let roll = rng.random_range(0..100);
    match roll {
        0..=34 => {
            let supersede = if rng.random_bool(0.4) {
                current.as_ref().map(|d| d.id)
            } else {
                None
            };
            let req = ReserveRequest {
                dispatch: Dispatch::reserve(
                    k.clone(),
                    w.clone(),
                    Timestamp(t),
                    Some("boot-1".into()),
                    Some(t),
                ),
                supersede,
                permit: None,
            };
            let a = mem.reserve(&req).await.unwrap();
            let b = pg.reserve(&req).await.unwrap();
            assert_eq!(a, b, "reserve {req:?}");
        }
        35..=49 => {
            let id = some_id(rng, current.as_ref());
            let session = rng.random_bool(0.8).then(
                || serde_json::json!({"rdp": format!("rdp://{code}/{t}"), "n": t, "f": 0.25}),
            );
            let ttl = Duration::from_millis(rng.random_range(1..40));
            let a = mem
                .confirm(&k, id, session.clone(), Timestamp(t), ttl, None)
                .await
                .unwrap();
            let b = pg
                .confirm(&k, id, session, Timestamp(t), ttl, None)
                .await
                .unwrap();
            assert_eq!(a, b, "confirm {k}");
        }
        50..=57 => {
            let id = some_id(rng, current.as_ref());
            assert_eq!(
                mem.undo(&k, id, None, None, None).await.unwrap(),
                pg.undo(&k, id, None, None, None).await.unwrap(),
                "undo {k}"
            );
        }
        58..=67 => {
            let id = rng.random_bool(0.5).then(|| some_id(rng, current.as_ref()));
            assert_eq!(
                mem.release(&k, id, None, None).await.unwrap(),
                pg.release(&k, id, None, None).await.unwrap(),
                "release {k}"
            );
        }
        68..=71 => {
            let id = some_id(rng, current.as_ref());
            assert_eq!(
                mem.mark_orphaned(&k, id, None).await.unwrap(),
                pg.mark_orphaned(&k, id, None).await.unwrap(),
                "mark_orphaned {k}"
            );
        }
        72..=79 => {
            let stored = mem.worker(&w).await.unwrap();
            let mut record = stored
                .as_ref()
                .map_or_else(|| worker_record(code, slots, 0), |s| s.record.clone());
            record.reported_active = rng.random_range(0..=slots + 1);
            record.unrecorded = rng.random_range(0..=slots + 1);
            record.policy = match rng.random_range(0..6) {
                0 => AdminPolicy::Draining { deadline: None },
                1 => AdminPolicy::Disabled { forced: false },
                _ => AdminPolicy::Active,
            };
            if rng.random_bool(0.1) {
                record.deregistered_at = Some(Timestamp(t));
            } else {
                record.deregistered_at = None;
            }
            let version = stored.as_ref().map(|s| s.version);
            let expected = match rng.random_range(0..10) {
                0 => version.map(|v| v + 1),
                1 => None,
                _ => version,
            };
            assert_eq!(
                mem.put_worker(&record, expected).await.unwrap(),
                pg.put_worker(&record, expected).await.unwrap(),
                "put_worker {code}"
            );
        }
        80..=82 => {
            let version = mem.worker(&w).await.unwrap().map_or(1, |s| s.version);
            let expected = if rng.random_bool(0.8) {
                version
            } else {
                version + 1
            };
            assert_eq!(
                mem.delete_worker(&w, expected).await.unwrap(),
                pg.delete_worker(&w, expected).await.unwrap(),
                "delete_worker {code}"
            );
        }
        83..=87 => {
            let now = Timestamp(t.saturating_sub(rng.random_range(0..30)));
            assert_eq!(
                mem.placement(&k.exam_id, now).await.unwrap(),
                pg.placement(&k.exam_id, now).await.unwrap(),
                "placement {}",
                k.exam_id
            );
        }
        88..=92 => {
            let limit = rng.random_range(0..5);
            assert_eq!(
                mem.worker_dispatches(&w, limit).await.unwrap(),
                pg.worker_dispatches(&w, limit).await.unwrap(),
                "worker_dispatches {code}"
            );
            assert_eq!(current, pg.dispatch(&k).await.unwrap(), "dispatch {k}");
        }
        93..=96 => {
            let count = rng.random_range(1..5);
            let (mut a_cursor, mut b_cursor) = (None::<String>, None::<String>);
            loop {
                let a = mem
                    .scan_dispatches(a_cursor.as_deref(), count)
                    .await
                    .unwrap();
                let b = pg
                    .scan_dispatches(b_cursor.as_deref(), count)
                    .await
                    .unwrap();
                assert_eq!(a, b, "scan page of {count}");
                (a_cursor, b_cursor) = (a.next, b.next);
                if a_cursor.is_none() {
                    break;
                }
            }
        }
        97 => {
            // Drift behind both stores' backs, then repair.
            // (Only below a positive count: the in-memory helper would keep
            // a zero entry that its recount then counts as checked.)
            if let Some(snap) = mem.worker(&w).await.unwrap() {
                let delta = if snap.dispatched > 0 && rng.random_bool(0.5) {
                    -1
                } else {
                    1
                };
                mem.corrupt_dispatched(&w, delta);
                assert!(db.corrupt_dispatched(&w, delta).await);
                assert_eq!(
                    mem.recount(false).await.unwrap(),
                    pg.recount(false).await.unwrap(),
                    "recount after corruption"
                );
                assert_eq!(
                    mem.recount(true).await.unwrap(),
                    pg.recount(true).await.unwrap(),
                    "repair"
                );
            }
        }
        _ => {
            assert_eq!(
                mem.recount(false).await.unwrap(),
                pg.recount(false).await.unwrap(),
                "recount"
            );
            let (a, b) = (mem.workers().await.unwrap(), pg.workers().await.unwrap());
            assert_eq!(a, b, "workers");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_answers_as_the_in_memory_backend() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    for seed in 1..=6_u64 {
        let pg = db.store();
        let mem = MemoryStore::new();
        // Start from the same fleet (w-d stays unregistered until a step
        // registers it).
        for (code, slots) in &WORKERS[..3] {
            let record = worker_record(code, *slots, 0);
            assert_eq!(register(&mem, &record).await, register(&pg, &record).await);
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        for t in 1..=400 {
            step(&mut rng, t, &mem, &pg, &db).await;
        }
        assert_eq!(mem.workers().await.unwrap(), pg.workers().await.unwrap());
        assert_eq!(
            mem.recount(false).await.unwrap(),
            pg.recount(false).await.unwrap()
        );
        // Clear the database for the next seed.
        let mut conn = db.connection().await;
        sqlx::raw_sql(
            "TRUNCATE vdi.workers, vdi.dispatches, vdi.sticky, vdi.affinity, vdi.leases, vdi.audit",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
    }
    db.cleanup().await;
}

#[tokio::test]
async fn records_round_trip_exactly() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    let mut record = worker_record("w-full", 4, 2);
    record.description.zone = Some("zone-a".into());
    record
        .description
        .labels
        .insert("gpu".into(), "a100".into());
    record.description.capabilities.insert("firecracker".into());
    record.live_sessions = Some(vec![key("exam:2026:Toán cao cấp", "sv 001")]);
    record.retired_boots = vec!["boot-0".into()];
    record.policy = AdminPolicy::Draining {
        deadline: Some(Timestamp(99)),
    };
    register(&store, &record).await;
    let snap = store.worker(&record.id).await.unwrap().unwrap();
    assert_eq!(snap.record, record);

    let k = key("exam:2026:Toán cao cấp", "sv 001");
    let mut dispatch = Dispatch::reserve(
        k.clone(),
        record.id.clone(),
        Timestamp(1_700_000_000_000),
        Some("boot-1".into()),
        Some(u64::MAX),
    );
    // A draining worker takes nothing new.
    let req = ReserveRequest {
        dispatch: dispatch.clone(),
        supersede: None,
        permit: None,
    };
    assert_eq!(
        store.reserve(&req).await.unwrap(),
        Reservation::NotAccepting
    );
    record.policy = AdminPolicy::Active;
    assert!(matches!(
        store.put_worker(&record, Some(snap.version)).await.unwrap(),
        CasOutcome::Written { .. }
    ));
    let Reservation::Reserved {
        dispatch: stored, ..
    } = store.reserve(&req).await.unwrap()
    else {
        panic!("not reserved")
    };
    assert_eq!(stored, dispatch);
    let session = serde_json::json!({
        "connection": "rdp://w-full/1",
        "big": u64::MAX,
        "neg": -3,
        "float": 1.5e300,
        "nested": {"list": [1, "two", null, true]},
    });
    let confirmed = store
        .confirm(
            &k,
            dispatch.id,
            Some(session.clone()),
            Timestamp(1_700_000_000_500),
            Duration::MAX,
            None,
        )
        .await
        .unwrap()
        .expect("confirmed");
    dispatch.state = DispatchState::Active;
    dispatch.activated_at = Some(Timestamp(1_700_000_000_500));
    dispatch.session = Some(session);
    assert_eq!(confirmed, dispatch);
    assert_eq!(store.dispatch(&k).await.unwrap(), Some(dispatch.clone()));
    // A sticky TTL beyond the representable never expires.
    let placement = store
        .placement(&k.exam_id, Timestamp(u64::MAX / 4))
        .await
        .unwrap();
    assert_eq!(placement.sticky, Some(record.id.clone()));
    db.cleanup().await;
}

#[tokio::test]
async fn dispatches_by_age_finds_stuck_reservations() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    let w = worker_record("w-age", 10, 0);
    register(&store, &w).await;
    let mut ids = Vec::new();
    for (i, t) in [50_u64, 10, 30, 70].into_iter().enumerate() {
        let k = key("exam-age", &format!("u{i}"));
        let Reservation::Reserved { dispatch, .. } = store
            .reserve(&request(&k, &w.id, Timestamp(t)))
            .await
            .unwrap()
        else {
            panic!("not reserved")
        };
        ids.push((t, dispatch));
    }
    // Confirm the one reserved at 30: it is no longer a reservation.
    let d30 = &ids[2].1;
    store
        .confirm(
            &d30.key,
            d30.id,
            None,
            Timestamp(31),
            Duration::from_secs(1),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let stuck = store
        .dispatches_by_age(DispatchState::Reserved, Timestamp(60), 10)
        .await
        .unwrap();
    let at: Vec<u64> = stuck.iter().map(|d| d.reserved_at.as_millis()).collect();
    assert_eq!(at, vec![10, 50]);
    let one = store
        .dispatches_by_age(DispatchState::Reserved, Timestamp(100), 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].reserved_at, Timestamp(10));
    let active = store
        .dispatches_by_age(DispatchState::Active, Timestamp(100), 10)
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    db.cleanup().await;
}

#[tokio::test]
async fn delete_worker_refuses_while_rows_remain_even_if_the_count_drifted() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    let w = worker_record("w-del", 3, 0);
    let version = register(&store, &w).await;
    let k = key("exam-del", "u1");
    store
        .reserve(&request(&k, &w.id, Timestamp(1)))
        .await
        .unwrap();
    assert_eq!(
        store.delete_worker(&w.id, version).await.unwrap(),
        DeleteOutcome::HasDispatches(1)
    );
    assert!(db.corrupt_dispatched(&w.id, -1).await);
    assert_eq!(
        store.delete_worker(&w.id, version).await.unwrap(),
        DeleteOutcome::HasDispatches(1),
        "the rows are counted when the counter says zero"
    );
    assert_eq!(store.recount(true).await.unwrap().drift.len(), 1);
    store.release(&k, None, None, None).await.unwrap().unwrap();
    assert_eq!(
        store.delete_worker(&w.id, version).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(store.worker(&w.id).await.unwrap().is_none());
    assert_no_drift(&store).await;
    db.cleanup().await;
}

#[tokio::test]
async fn lease_tokens_fence_on_the_database_clock() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let (a, b) = (db.store(), db.store());
    let hour = Duration::from_secs(3600);
    let first = a
        .try_acquire("reconcile", "a", hour)
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.try_acquire("reconcile", "b", hour)
            .await
            .unwrap()
            .is_none()
    );
    // Renewal keeps the token.
    let renewed = a
        .try_acquire("reconcile", "a", hour)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed, first);
    // Leases are independent by name.
    let other = b.try_acquire("prewarm", "b", hour).await.unwrap().unwrap();
    assert!(other.token > first.token);

    // Expired (zero TTL): anyone may take it, with a larger token; the old
    // holder's lease no longer releases it.
    let short = a
        .try_acquire("reconcile", "a", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        short.token, first.token,
        "still a renewal: it was unexpired"
    );
    // The expiry is `now()` of that statement; any later statement is past it.
    let mut taken = None;
    for _ in 0..1000 {
        taken = b.try_acquire("reconcile", "b", hour).await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let taken = taken.expect("an expired lease can be taken");
    assert!(taken.token > other.token);
    assert!(!a.release_lease(&short).await.unwrap());

    // Release once; the next acquisition, even by the same holder, is new.
    assert!(b.release_lease(&taken).await.unwrap());
    assert!(!b.release_lease(&taken).await.unwrap(), "released twice");
    let again = b
        .try_acquire("reconcile", "b", hour)
        .await
        .unwrap()
        .unwrap();
    assert!(again.token > taken.token);

    // A TTL beyond any date is accepted (and shortened).
    let forever = a
        .try_acquire("forever", "a", Duration::MAX)
        .await
        .unwrap()
        .unwrap();
    assert!(forever.token > again.token);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lease_acquisitions_have_one_winner_and_growing_tokens() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let stores: Vec<PgStore> = (0..4).map(|_| db.store()).collect();
    let mut last = 0;
    for round in 0..20 {
        let mut tasks = Vec::new();
        for (i, store) in stores.iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .try_acquire("leader", &format!("r{i}"), Duration::from_secs(60))
                    .await
                    .unwrap()
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let lease = winners.pop().unwrap();
        assert!(lease.token > last, "round {round}: token did not grow");
        last = lease.token;
        let holder = stores[lease.holder[1..].parse::<usize>().unwrap()].clone();
        assert!(holder.release_lease(&lease).await.unwrap());
    }
    db.cleanup().await;
}

#[tokio::test]
async fn audit_entries_round_trip_newest_first() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    for i in 0..5_u64 {
        store
            .append_audit(&AuditEntry {
                at: Timestamp(i),
                actor: "admin@example".into(),
                action: if i.is_multiple_of(2) {
                    "drain"
                } else {
                    "activate"
                }
                .into(),
                target: format!("w-{i}"),
                detail: serde_json::json!({"i": i, "why": "maintenance ✓"}),
            })
            .await
            .unwrap();
    }
    let recent = store.recent_audit(3).await.unwrap();
    let at: Vec<u64> = recent.iter().map(|e| e.at.as_millis()).collect();
    assert_eq!(at, vec![4, 3, 2]);
    assert_eq!(recent[0].detail["why"], "maintenance ✓");
    assert!(store.recent_audit(0).await.unwrap().is_empty());
    assert_eq!(store.recent_audit(100).await.unwrap().len(), 5);
    db.cleanup().await;
}

#[tokio::test]
async fn ids_are_compared_byte_wise() {
    // Scan order is byte order of (exam, user), as in the in-memory backend,
    // whatever the database's default collation.
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    let w = worker_record("w-order", 20, 0);
    register(&store, &w).await;
    let users = ["b", "B", "a", "ä", "Z", "z", "_", "1", "é", "e"];
    for u in users {
        store
            .reserve(&request(&key("exam", u), &w.id, Timestamp(1)))
            .await
            .unwrap();
    }
    let page = store.scan_dispatches(None, 100).await.unwrap();
    let got: Vec<&str> = page
        .dispatches
        .iter()
        .map(|d| d.key.user_id.as_str())
        .collect();
    let mut want = users.to_vec();
    want.sort();
    assert_eq!(got, want);
    let cursor_err = store.scan_dispatches(Some("{}"), 10).await.unwrap_err();
    assert!(matches!(cursor_err, vdi_cluster_core::Error::Invalid(_)));
    db.cleanup().await;
}
