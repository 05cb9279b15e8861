//! Cases of [`WaitingRoom`](crate::store::WaitingRoom): order, idempotent
//! enqueue, positions, claims, leaving and abandoning, and invariant E with
//! enqueues, promotions, released claims, leaves and abandons racing on
//! several replicas.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::ids::{ExamId, UserId};
use crate::store::{Completion, Enqueued, Standing, Store};
use crate::waiting_room::QueueClaim;

const MINUTE: Duration = Duration::from_secs(60);

fn exam(id: &str) -> ExamId {
    ExamId::parse("examId", id).unwrap()
}

fn user(n: usize) -> UserId {
    UserId::parse("userId", format!("student {n}/ü:*")).unwrap()
}

async fn order(store: &Arc<dyn Store>, exam: &ExamId) -> Vec<UserId> {
    let q = store.exam_queue(exam).await.unwrap();
    q.entries.into_iter().map(|e| e.user).collect()
}

/// Students queue in arrival order with 1-based positions; a repeated
/// enqueue or a poll keeps the place and refreshes `last_seen`; leaving
/// closes the gap; queues of different exams are apart.
pub async fn queue_is_fifo_and_enqueue_is_idempotent(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let e = exam("exam:1 ü/*");
    let other = exam("exam-2");
    let t0 = now();
    assert_eq!(a.queued_exams().await.unwrap(), Vec::<ExamId>::new());
    assert_eq!(
        a.touch_queued(&e, &user(1), t0).await.unwrap(),
        Standing::NotQueued { waiting: 0 }
    );
    for n in 1..=3 {
        let store = if n % 2 == 0 { &a } else { &b };
        match store.enqueue(&e, &user(n), t0).await.unwrap() {
            Enqueued::Joined(p) => {
                assert_eq!(p.position, u32::try_from(n).unwrap());
                assert_eq!((p.entry.enqueued_at, p.entry.last_seen), (t0, t0));
            }
            other => panic!("first enqueue of {n}: {other:?}"),
        }
    }
    a.enqueue(&other, &user(1), t0).await.unwrap();
    let later = t0.plus(Duration::from_secs(5));
    match b.enqueue(&e, &user(2), later).await.unwrap() {
        Enqueued::Already(p) => {
            assert_eq!(p.position, 2, "a repeated enqueue keeps the place");
            assert_eq!((p.entry.enqueued_at, p.entry.last_seen), (t0, later));
        }
        other => panic!("repeated enqueue: {other:?}"),
    }
    assert_eq!(order(&a, &e).await, vec![user(1), user(2), user(3)]);
    let polled = t0.plus(Duration::from_secs(9));
    match a.touch_queued(&e, &user(3), polled).await.unwrap() {
        Standing::Queued(p) => assert_eq!((p.position, p.entry.last_seen), (3, polled)),
        other => panic!("poll: {other:?}"),
    }
    assert_eq!(
        a.touch_queued(&e, &user(9), polled).await.unwrap(),
        Standing::NotQueued { waiting: 3 }
    );
    let mut exams = b.queued_exams().await.unwrap();
    exams.sort();
    assert_eq!(exams, vec![other.clone(), e.clone()]);

    assert!(b.leave_queue(&e, &user(2)).await.unwrap());
    assert!(!b.leave_queue(&e, &user(2)).await.unwrap(), "leaving twice");
    assert_eq!(order(&a, &e).await, vec![user(1), user(3)]);
    match a.touch_queued(&e, &user(3), polled).await.unwrap() {
        Standing::Queued(p) => assert_eq!(p.position, 2),
        other => panic!("poll after a leave: {other:?}"),
    }
    assert!(a.leave_queue(&other, &user(1)).await.unwrap());
    assert_eq!(a.queued_exams().await.unwrap(), vec![e.clone()]);
    match a.enqueue(&e, &user(2), polled).await.unwrap() {
        Enqueued::Joined(p) => assert_eq!(p.position, 3, "back at the end"),
        other => panic!("enqueue after leaving: {other:?}"),
    }
}

/// One claim per exam, on its head; completion and release are fenced by
/// the token; a lapsed claim can be taken over; abandon spares a claimed
/// head and counts; totals outlive the queue.
pub async fn queue_claims_are_exclusive_and_fenced(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let e = exam("exam-claims");
    let t0 = now();
    assert_eq!(
        a.claim_queue_head(&e, t0, t0.plus(MINUTE)).await.unwrap(),
        None
    );
    for n in 1..=4 {
        a.enqueue(&e, &user(n), t0).await.unwrap();
    }
    let first = a
        .claim_queue_head(&e, t0, t0.plus(MINUTE))
        .await
        .unwrap()
        .expect("the head");
    assert_eq!(
        (first.exam.clone(), first.user.clone()),
        (e.clone(), user(1))
    );
    assert_eq!(first.until, t0.plus(MINUTE));
    assert_eq!(
        b.claim_queue_head(&e, t0, t0.plus(MINUTE)).await.unwrap(),
        None,
        "held"
    );
    let q = b.exam_queue(&e).await.unwrap();
    assert_eq!(q.claim.as_ref(), Some(&first));
    assert!(
        !b.abandon_queued(&e, &user(1), t0.plus(MINUTE), t0)
            .await
            .unwrap(),
        "a claimed head is not abandoned"
    );

    // Released: the head stays the head, and can be claimed again.
    b.release_queue_claim(&first).await.unwrap();
    let second = b
        .claim_queue_head(&e, t0, t0.plus(MINUTE))
        .await
        .unwrap()
        .expect("claimable again");
    assert_eq!(second.user, user(1));
    assert!(second.token > first.token);
    a.release_queue_claim(&first).await.unwrap();
    assert_eq!(
        a.complete_queue_claim(&first, t0).await.unwrap(),
        Completion::Lost,
        "a released claim does not complete"
    );

    // Lapsed: taken over; the old token cannot complete.
    let late = t0.plus(MINUTE * 2);
    let third = a
        .claim_queue_head(&e, late, late.plus(MINUTE))
        .await
        .unwrap()
        .expect("a lapsed claim is taken over");
    assert!(third.token > second.token);
    assert_eq!(
        b.complete_queue_claim(&second, late).await.unwrap(),
        Completion::Lost
    );
    assert_eq!(
        a.complete_queue_claim(&third, late).await.unwrap(),
        Completion::Placed
    );
    assert_eq!(
        a.complete_queue_claim(&third, late).await.unwrap(),
        Completion::Lost,
        "once"
    );
    assert_eq!(order(&b, &e).await, vec![user(2), user(3), user(4)]);

    // Leaving while claimed: the promoter learns it at completion, which
    // clears the claim and counts nothing.
    let fourth = b
        .claim_queue_head(&e, late, late.plus(MINUTE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fourth.user, user(2));
    assert!(a.leave_queue(&e, &user(2)).await.unwrap());
    assert_eq!(
        b.complete_queue_claim(&fourth, late).await.unwrap(),
        Completion::Left
    );
    assert_eq!(b.exam_queue(&e).await.unwrap().claim, None);

    // Abandon: only before the cutoff.
    b.touch_queued(&e, &user(4), late).await.unwrap();
    assert!(
        !a.abandon_queued(&e, &user(4), late, late).await.unwrap(),
        "seen at the cutoff"
    );
    assert!(a.abandon_queued(&e, &user(3), late, late).await.unwrap());
    assert!(!a.abandon_queued(&e, &user(3), late, late).await.unwrap());
    let fifth = a
        .claim_queue_head(&e, late, late.plus(MINUTE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b.complete_queue_claim(&fifth, late.plus(MINUTE))
            .await
            .unwrap(),
        Completion::Placed
    );

    let q = a.exam_queue(&e).await.unwrap();
    assert!(q.entries.is_empty());
    assert_eq!(q.claim, None);
    assert_eq!((q.totals.placed, q.totals.abandoned), (2, 1));
    assert_eq!(q.totals.first_placed_at, Some(late));
    assert_eq!(q.totals.last_placed_at, Some(late.plus(MINUTE)));
    assert_eq!(a.queued_exams().await.unwrap(), Vec::<ExamId>::new());
}

/// What the racing tasks of [`concurrent_queue_keeps_invariant_e`] saw.
#[derive(Debug, Default)]
struct Outcomes {
    joined: Vec<(UserId, u32)>,
    placed: Vec<(u64, UserId)>,
    left: Vec<UserId>,
    abandoned: Vec<UserId>,
}

/// Invariant E: students enqueued twice from several replicas at once get
/// one entry each, at distinct positions; then promoters on every replica
/// (some giving their claim up, some dying with it) race late arrivals,
/// leaves and abandons. Nobody is placed twice, placements follow the
/// queue's order, and every student ends placed, left or abandoned, as the
/// totals say.
pub async fn concurrent_queue_keeps_invariant_e(factory: &impl StoreFactory) {
    const REPLICAS: usize = 3;
    const TASKS: usize = 4;
    const FIRST: usize = 96;
    const LATE: usize = 24;
    let e = exam("exam-e");
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(factory.replica().await);
    }
    let seen = Arc::new(Mutex::new(Outcomes::default()));

    // Every student is enqueued twice, by two different tasks.
    let mut tasks = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for t in 0..TASKS {
            let store = Arc::clone(replica);
            let (e, seen) = (e.clone(), Arc::clone(&seen));
            let lane = r * TASKS + t;
            tasks.push(tokio::spawn(async move {
                for n in (0..FIRST)
                    .filter(|n| n % (REPLICAS * TASKS / 2) == lane % (REPLICAS * TASKS / 2))
                {
                    if let Enqueued::Joined(p) = store.enqueue(&e, &user(n), now()).await.unwrap() {
                        seen.lock().unwrap().joined.push((user(n), p.position));
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let first_order = order(&replicas[0], &e).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.joined.len(), FIRST, "one entry per student");
        assert_eq!(first_order.len(), FIRST);
        for (u, p) in &seen.joined {
            assert_eq!(
                &first_order[usize::try_from(*p).unwrap() - 1],
                u,
                "position as answered"
            );
        }
    }

    let arrivals_done = Arc::new(AtomicBool::new(false));
    let claims = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for replica in &replicas {
        for _ in 0..2 {
            let store = Arc::clone(replica);
            let (e, seen) = (e.clone(), Arc::clone(&seen));
            let (done, claims) = (Arc::clone(&arrivals_done), Arc::clone(&claims));
            tasks.push(tokio::spawn(async move {
                loop {
                    let t = now();
                    let n = claims.fetch_add(1, Ordering::Relaxed);
                    // Every 11th promoter dies: its claim has lapsed already.
                    let until = if n % 11 == 5 { t } else { t.plus(MINUTE) };
                    let Some(claim) = store.claim_queue_head(&e, t, until).await.unwrap() else {
                        let empty = store.exam_queue(&e).await.unwrap().entries.is_empty();
                        if empty && done.load(Ordering::Acquire) {
                            return;
                        }
                        tokio::task::yield_now().await;
                        continue;
                    };
                    tokio::task::yield_now().await;
                    if n % 11 == 5 {
                        continue;
                    }
                    if n % 7 == 3 {
                        // No slot this time.
                        store.release_queue_claim(&claim).await.unwrap();
                        continue;
                    }
                    if store.complete_queue_claim(&claim, now()).await.unwrap()
                        == Completion::Placed
                    {
                        record_placed(&seen, &claim);
                    }
                }
            }));
        }
    }
    {
        let store = Arc::clone(&replicas[1]);
        let (e, seen, done) = (e.clone(), Arc::clone(&seen), Arc::clone(&arrivals_done));
        tasks.push(tokio::spawn(async move {
            for n in FIRST..FIRST + LATE {
                store.enqueue(&e, &user(n), now()).await.unwrap();
                tokio::task::yield_now().await;
            }
            done.store(true, Ordering::Release);
            let _ = seen;
        }));
    }
    {
        let store = Arc::clone(&replicas[2]);
        let (e, seen) = (e.clone(), Arc::clone(&seen));
        tasks.push(tokio::spawn(async move {
            for n in (0..FIRST + LATE).filter(|n| n % 10 == 3) {
                if store.leave_queue(&e, &user(n)).await.unwrap() {
                    seen.lock().unwrap().left.push(user(n));
                }
            }
        }));
    }
    {
        let store = Arc::clone(&replicas[0]);
        let (e, seen) = (e.clone(), Arc::clone(&seen));
        tasks.push(tokio::spawn(async move {
            for n in (0..FIRST + LATE).filter(|n| n % 10 == 7) {
                let t = now();
                if store
                    .abandon_queued(&e, &user(n), t.plus(MINUTE), t)
                    .await
                    .unwrap()
                {
                    seen.lock().unwrap().abandoned.push(user(n));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let full_order = order(&replicas[2], &e).await;
    assert!(full_order.is_empty(), "the queue drained: {full_order:?}");
    let totals = replicas[0].exam_queue(&e).await.unwrap().totals;
    let seen = seen.lock().unwrap();
    let mut placed = seen.placed.clone();
    placed.sort_by_key(|(token, _)| *token);
    let placed: Vec<UserId> = placed.into_iter().map(|(_, u)| u).collect();
    let distinct: HashSet<&UserId> = placed.iter().collect();
    assert_eq!(distinct.len(), placed.len(), "nobody placed twice");

    let arrival: HashMap<UserId, usize> = first_order
        .iter()
        .cloned()
        .chain((FIRST..FIRST + LATE).map(user))
        .enumerate()
        .map(|(i, u)| (u, i))
        .collect();
    for pair in placed.windows(2) {
        assert!(
            arrival[&pair[0]] < arrival[&pair[1]],
            "{} was placed before {}, queued earlier",
            pair[1],
            pair[0]
        );
    }

    let mut ends: HashMap<&UserId, usize> = HashMap::new();
    for u in placed.iter().chain(&seen.left).chain(&seen.abandoned) {
        *ends.entry(u).or_default() += 1;
    }
    for u in arrival.keys() {
        assert_eq!(
            ends.get(u),
            Some(&1),
            "{u} ends placed, left or abandoned, once"
        );
    }
    assert_eq!(totals.placed, u64::try_from(placed.len()).unwrap());
    assert_eq!(
        totals.abandoned,
        u64::try_from(seen.abandoned.len()).unwrap()
    );
}

fn record_placed(seen: &Mutex<Outcomes>, claim: &QueueClaim) {
    seen.lock()
        .unwrap()
        .placed
        .push((claim.token, claim.user.clone()));
}
