//! Cases of [`Outbox`](crate::outbox::Outbox) where the entries ride with
//! another store write: a worker's removal or guarded write, a
//! re-dispatch's confirmation, an exam's risk flag. Each writes its
//! entries in the same atomic step, or nothing.

use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::calendar::CalendarWrite;
use crate::dispatch::DispatchState;
use crate::ids::DispatchId;
use crate::outbox::DeliveryState;
use crate::store::{CasOutcome, DeleteOutcome, Reservation};
use crate::testkit::{exam, key, request, reserve_and_confirm, worker_record};

use super::outbox::{endpoint, entry, states};

/// A guarded write (on the dispatched count too) and a removal commit
/// their events with them or not at all: a count that moved, a stale
/// version or dispatches still on the worker write no event.
pub async fn worker_removals_and_guarded_writes_commit_their_alerts(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t = now();
    assert!(store.put_webhook(&endpoint("wh_g", t)).await.unwrap());
    let record = worker_record("w-guarded", 4, 0);
    let CasOutcome::Written { version } = store.put_worker(&record, None).await.unwrap() else {
        panic!("a new worker is written");
    };
    let session = key("e-guarded", "u1");
    let placed = reserve_and_confirm(
        &*store,
        &request(&session, &record.id, t),
        t,
        Duration::from_secs(60),
    )
    .await;

    let stale_count = store
        .put_worker_with_outbox(
            &record,
            Some(version),
            Some(0),
            &[entry("msg_g1", "wh_g", "g1", t)],
        )
        .await
        .unwrap();
    assert!(
        matches!(stale_count, CasOutcome::Conflict { .. }),
        "the dispatched count moved: {stale_count:?}"
    );
    let guarded = store
        .put_worker_with_outbox(
            &record,
            Some(version),
            Some(1),
            &[entry("msg_g2", "wh_g", "g2", t)],
        )
        .await
        .unwrap();
    let CasOutcome::Written { version } = guarded else {
        panic!("the count holds: {guarded:?}");
    };
    assert_eq!(
        states(&store, "wh_g").await,
        vec![("msg_g2".into(), DeliveryState::Pending)],
        "only the write that won carried its event"
    );

    let busy = store
        .delete_worker_with_outbox(&record.id, version, &[entry("msg_g3", "wh_g", "g3", t)])
        .await
        .unwrap();
    assert_eq!(busy, DeleteOutcome::HasDispatches(1));
    store
        .release(&session, Some(placed.id), None, None)
        .await
        .unwrap()
        .expect("released");
    let stale = store
        .delete_worker_with_outbox(&record.id, version + 7, &[entry("msg_g4", "wh_g", "g4", t)])
        .await
        .unwrap();
    assert_eq!(stale, DeleteOutcome::Conflict);
    let current = store
        .worker(&record.id)
        .await
        .unwrap()
        .expect("kept")
        .version;
    let deleted = store
        .delete_worker_with_outbox(&record.id, current, &[entry("msg_g5", "wh_g", "g5", t)])
        .await
        .unwrap();
    assert_eq!(deleted, DeleteOutcome::Deleted);
    assert!(store.worker(&record.id).await.unwrap().is_none());
    assert_eq!(
        states(&store, "wh_g").await,
        vec![
            ("msg_g2".into(), DeliveryState::Pending),
            ("msg_g5".into(), DeliveryState::Pending),
        ],
        "a refused removal wrote no event; the removal wrote its own"
    );
}

/// A confirmation carries its entries (a re-dispatch's
/// `session.migrated`) in the same step: written only by the confirmation
/// that marks the reservation active, never by one that finds it gone,
/// another reservation's or already active; the same key is written once.
pub async fn confirmations_commit_their_alerts(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t = now();
    let ttl = Duration::from_secs(60);
    assert!(store.put_webhook(&endpoint("wh_c", t)).await.unwrap());
    let record = worker_record("w-confirm", 4, 0);
    store.put_worker(&record, None).await.unwrap();
    let session = key("e-confirm", "u1");
    let Reservation::Reserved { dispatch, .. } = store
        .reserve(&request(&session, &record.id, t))
        .await
        .unwrap()
    else {
        panic!("reserved");
    };

    let other = store
        .confirm_with_outbox(
            &session,
            DispatchId::new(),
            None,
            t,
            ttl,
            None,
            &[entry("msg_c1", "wh_c", "c1", t)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(other, None, "another reservation's id confirms nothing");
    assert!(
        states(&store, "wh_c").await.is_empty(),
        "a confirmation that failed wrote no event"
    );

    let answer = serde_json::json!({ "desktop": "c1" });
    let active = store
        .confirm_with_outbox(
            &session,
            dispatch.id,
            Some(answer.clone()),
            t,
            ttl,
            None,
            &[entry("msg_c2", "wh_c", "c2", t)],
            &[],
        )
        .await
        .unwrap()
        .expect("the reservation is confirmed");
    assert_eq!(active.state, DispatchState::Active);
    assert_eq!(active.session, Some(answer));
    assert_eq!(
        store.placement(&session.exam_id, t).await.unwrap().sticky,
        Some(record.id.clone()),
        "the sticky worker moved as with a plain confirmation"
    );
    assert_eq!(
        states(&store, "wh_c").await,
        vec![("msg_c2".into(), DeliveryState::Pending)]
    );

    let again = store
        .confirm_with_outbox(
            &session,
            dispatch.id,
            None,
            t,
            ttl,
            None,
            &[entry("msg_c3", "wh_c", "c3", t)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(again, None, "an active dispatch is not confirmed twice");

    let second = key("e-confirm", "u2");
    let Reservation::Reserved { dispatch, .. } = store
        .reserve(&request(&second, &record.id, t))
        .await
        .unwrap()
    else {
        panic!("reserved");
    };
    store
        .confirm_with_outbox(
            &second,
            dispatch.id,
            None,
            t,
            ttl,
            None,
            &[entry("msg_c4", "wh_c", "c2", t)],
            &[],
        )
        .await
        .unwrap()
        .expect("confirmed");
    assert_eq!(
        states(&store, "wh_c").await,
        vec![("msg_c2".into(), DeliveryState::Pending)],
        "a key already written is skipped, in the same step"
    );
}

/// An at-risk swap carries its entries (`exam.at_risk`,
/// `exam.fits_again`): written only by a swap that changes the flag, never
/// by one that leaves it as it was or finds no booked exam.
pub async fn exam_risk_swaps_commit_their_alerts(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let t = now();
    assert!(a.put_webhook(&endpoint("wh_r", t)).await.unwrap());
    let booked = exam("exam-risk", t.plus(Duration::from_secs(3600)), 60, 30);
    assert_eq!(
        a.put_exam_if_version(&booked, 0).await.unwrap(),
        CalendarWrite::Written { version: 1 }
    );
    let swaps = [
        (&a, Some(5), "r1", None),
        (&b, Some(5), "r2", Some(5)),
        (&b, Some(7), "r3", Some(5)),
        (&a, None, "r4", Some(7)),
        (&a, None, "r5", None),
    ];
    for (store, flag, dedup, before) in swaps {
        let id = format!("msg_{dedup}");
        let swapped = store
            .swap_exam_risk(&booked.id, flag, &[entry(&id, "wh_r", dedup, t)])
            .await
            .unwrap();
        assert_eq!(swapped, before, "{dedup}");
    }
    let ghost = exam("ghost", t, 10, 1);
    assert_eq!(
        a.swap_exam_risk(&ghost.id, Some(1), &[entry("msg_r6", "wh_r", "r6", t)])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        states(&a, "wh_r").await,
        vec![
            ("msg_r1".into(), DeliveryState::Pending),
            ("msg_r3".into(), DeliveryState::Pending),
            ("msg_r4".into(), DeliveryState::Pending),
        ],
        "only the swaps that changed the flag wrote their event"
    );
}
