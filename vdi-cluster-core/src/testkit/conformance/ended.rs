//! Cases of a move racing the student's release: a re-dispatch planned
//! from a read of the session's dispatch never brings back a session that
//! was released since (the `supersede` contract of
//! [`ReserveRequest`](crate::store::ReserveRequest)).

use std::sync::Arc;

use super::StoreFactory;
use super::fixtures::{STICKY, add_worker, dispatched, now, reserved, superseding};
use crate::store::{Reservation, Store};
use crate::testkit::{assert_no_drift, key};

/// A supersede of a dispatch released meanwhile answers `Ended` and writes
/// nothing: no dispatch, no counter on the target, no drift.
pub async fn a_move_never_brings_back_a_released_session(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let a = add_worker(&store, "w-failed", 2).await;
    let b = add_worker(&store, "w-target", 2).await;
    let k = key("exam-ended", "u1");
    let old = reserved(&store, &k, &a).await;
    store
        .confirm(&k, old.id, None, now(), STICKY, None)
        .await
        .unwrap()
        .unwrap();
    // The student submits; the mover still holds the dispatch it read.
    let released = store.release(&k, Some(old.id), None, None).await.unwrap();
    assert_eq!(released.map(|d| d.id), Some(old.id));

    assert_eq!(
        store.reserve(&superseding(&k, &b, old.id)).await.unwrap(),
        Reservation::Ended
    );
    assert_eq!(store.dispatch(&k).await.unwrap(), None);
    assert_eq!(dispatched(&store, &a).await, 0);
    assert_eq!(dispatched(&store, &b).await, 0);
    assert_no_drift(&*store).await;
}

/// Releases and moves of the same sessions on two replicas at once: a
/// release that took the dispatch away leaves the session without one
/// (the move answered `Ended`), and a move that came first leaves the
/// release missing by id (the releaser reads again); never both a
/// successful release and a dispatch afterwards.
pub async fn releases_racing_moves_on_replicas_never_resurrect(factory: &impl StoreFactory) {
    const SESSIONS: usize = 24;
    let (releaser, mover) = (factory.replica().await, factory.replica().await);
    let a = add_worker(&releaser, "w-race-failed", SESSIONS as u32).await;
    let b = add_worker(&releaser, "w-race-target", SESSIONS as u32).await;
    let mut planted = Vec::new();
    for i in 0..SESSIONS {
        let k = key("exam-race", &format!("u{i}"));
        let d = reserved(&releaser, &k, &a).await;
        planted.push(d);
    }
    let run = |store: Arc<dyn Store>, release: bool| {
        let planted = planted.clone();
        let b = b.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for d in &planted {
                let answer = if release {
                    let r = store.release(&d.key, Some(d.id), None, None).await;
                    Some(r.unwrap().is_some())
                } else {
                    let r = store.reserve(&superseding(&d.key, &b, d.id)).await.unwrap();
                    assert!(
                        matches!(r, Reservation::Ended | Reservation::Reserved { .. }),
                        "{r:?}"
                    );
                    None
                };
                answers.push(answer);
            }
            answers
        })
    };
    let (released, _) = tokio::join!(run(Arc::clone(&releaser), true), run(mover, false));
    let released = released.unwrap();
    let mut moved: u32 = 0;
    for (d, took) in planted.iter().zip(&released) {
        let now_held = releaser.dispatch(&d.key).await.unwrap();
        if *took == Some(true) {
            assert_eq!(now_held, None, "{} was released, then came back", d.key);
        } else {
            let held = now_held.unwrap_or_else(|| panic!("{}: neither released nor moved", d.key));
            assert_eq!(held.worker, b, "{}", d.key);
            moved += 1;
        }
    }
    assert_eq!(dispatched(&releaser, &a).await, 0);
    assert_eq!(dispatched(&releaser, &b).await, moved);
    assert_no_drift(&*releaser).await;
}
