//! Invariant D extended to students' own ends: extensions of one exam's
//! students racing on several replicas against a nearly full calendar
//! accept exactly what fits.

use std::time::Duration;

use super::StoreFactory;
use super::exams::service;
use super::fixtures::now;
use crate::exam::{Capacity, admit};
use crate::ids::SessionKey;
use crate::service::{EndChange, EndChanged};
use crate::testkit::{exam, heartbeat_with_slots};
use crate::time::Timestamp;

const MIN: Duration = Duration::from_secs(60);

/// `main` (8 students, its main window to +65 min) and `next` (8
/// students, its window opening at +75 min) on 10 slots: two seats are
/// free after `main` until `next` opens, two beside it after. Six students
/// ask +30 min (past `next`'s opening: two fit) and two +5 min (all fit),
/// on four replicas at once.
pub async fn concurrent_extensions_accept_exactly_what_fits(factory: &impl StoreFactory) {
    let first = service(factory.replica().await, 200);
    first
        .fleet()
        .heartbeat(heartbeat_with_slots("w-ext", 10, 0))
        .await
        .unwrap();
    let base = now().plus(MIN * 60);
    let main = exam("main", base, 60, 8);
    let next = exam("next", base.plus(MIN * 90), 60, 8);
    for e in [main.clone(), next] {
        let booked = first.exams().book_exam(e, "admin").await.unwrap();
        assert!(matches!(booked, crate::service::Booking::Accepted(_)));
    }
    let mut replicas = Vec::new();
    for r in 0..4u64 {
        replicas.push(service(factory.replica().await, 201 + r));
    }
    let mut tasks = Vec::new();
    for s in 0..8usize {
        let svc = std::sync::Arc::clone(&replicas[s % replicas.len()]);
        let key = SessionKey::parse("main", format!("s{s}")).unwrap();
        let minutes = if s < 6 { 30 } else { 5 };
        tasks.push(tokio::spawn(async move {
            let answer = svc
                .exams()
                .change_session_end(
                    &key,
                    EndChange::ExtendBy(minutes * 60),
                    "incident",
                    false,
                    "proctor",
                )
                .await
                .expect("extend");
            (s, answer)
        }));
    }
    let mut long_granted = Vec::new();
    for t in tasks {
        let (s, answer) = t.await.expect("task");
        match answer {
            EndChanged::Granted(end) => {
                if s < 6 {
                    long_granted.push(end.key.user_id.clone());
                }
            }
            EndChanged::Refused(refusal) => {
                assert!(s < 6, "a +5 min extension always fits");
                assert_eq!(refusal.shortfall.missing, 1);
                assert_eq!(
                    refusal.fits_extra_sec, 600,
                    "the seat fits until next opens"
                );
            }
        }
    }
    assert_eq!(long_granted.len(), 2, "exactly the two free seats");
    let calendar = first.store().exam_calendar().await.unwrap();
    let stored = calendar.get(&main.id).unwrap();
    let mut long: Vec<_> = stored
        .extensions
        .iter()
        .filter(|e| e.extra_sec == 1800)
        .map(|e| e.user_id.clone())
        .collect();
    long.sort();
    long_granted.sort();
    assert_eq!(long, long_granted, "the calendar holds what was granted");
    assert_eq!(stored.extensions.len(), 4);
    let capacity = Capacity::of_workers(&first.fleet().worker_views().await.unwrap(), 0);
    for e in &calendar.exams {
        assert!(
            admit(e, &calendar.exams, &capacity, Timestamp(0)).is_ok(),
            "invariant D broken around {}",
            e.id
        );
    }
}
