//! Duplicate requests of one session coalesce across replicas: a student
//! who clicks "start" many times, the clicks spread over two control-plane
//! replicas, gets one desktop — every answer names the same dispatch, and
//! none is a refusal for want of a slot while the student holds (or is
//! being given) the last one.

use std::sync::Arc;

use tokio::sync::Barrier;

use super::StoreFactory;
use super::concurrency::service;
use crate::error::Error;
use crate::service::{AllocateOutcome, Allocation, ClusterService};
use crate::testkit::{SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key, wid};

/// Trials: the race is between the reservation and its duplicates, so
/// each run repeats it.
const TRIALS: usize = 30;

/// Requests of one student per trial, split over the replicas.
const DUPLICATES: usize = 20;

/// Control-plane replicas (independent store handles).
const REPLICAS: usize = 2;

/// What one request answered, kept for the assertion's message.
type Answer = Result<Allocation, Error>;

/// Every trial: one worker with exactly one free slot (its other slot is
/// another student's), twenty requests of one new student at once over two
/// replicas. Each must answer the same dispatch (one placement, the others
/// handing it back); none [`Error::NoCapacity`].
pub async fn duplicate_requests_on_replicas_share_the_last_slot(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let mut services = Vec::new();
    for r in 0..REPLICAS {
        services.push(service(
            factory.replica().await,
            &workers,
            r as u64 + 1,
            |_| {},
        ));
    }
    services[0]
        .fleet()
        .heartbeat(heartbeat_with_slots("w-last", 2, 0))
        .await
        .expect("heartbeat");
    services[0]
        .placement()
        .allocate(key("exam-dup", "holder"), Default::default())
        .await
        .expect("the first slot");
    let mut failed = Vec::new();
    for trial in 0..TRIALS {
        let student = key("exam-dup", &format!("student-{trial}"));
        let answers = race(&services, &student).await;
        if let Err(why) = judge(&answers) {
            failed.push(format!("trial {trial}: {why}"));
        }
        services[trial % REPLICAS]
            .placement()
            .release(&student)
            .await
            .expect("release");
    }
    assert!(
        failed.is_empty(),
        "{} of {TRIALS} trials went wrong:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let store = factory.replica().await;
    let snap = store.worker(&wid("w-last")).await.unwrap().unwrap();
    assert_eq!(snap.dispatched, 1, "only the holder's slot stays taken");
    assert_no_drift(&*store).await;
}

/// The answers of [`DUPLICATES`] requests of `student` sent at once,
/// alternately to each replica.
async fn race(services: &[Arc<ClusterService>], student: &crate::ids::SessionKey) -> Vec<Answer> {
    let start = Arc::new(Barrier::new(DUPLICATES));
    let mut tasks = Vec::new();
    for n in 0..DUPLICATES {
        let svc = Arc::clone(&services[n % services.len()]);
        let (start, student) = (Arc::clone(&start), student.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            svc.placement().allocate(student, Default::default()).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("request task"));
    }
    answers
}

/// `Ok` if every answer is the same dispatch, placed once.
fn judge(answers: &[Answer]) -> Result<(), String> {
    let mut ids = std::collections::BTreeSet::new();
    let mut placed = 0;
    for a in answers {
        match a {
            Ok(a) => {
                ids.insert(a.dispatch.id);
                if !matches!(a.outcome, AllocateOutcome::Existing) {
                    placed += 1;
                }
            }
            Err(e) => return Err(format!("a duplicate answered {e}")),
        }
    }
    if ids.len() != 1 || placed != 1 {
        return Err(format!(
            "{} dispatches, {placed} placements in {} answers",
            ids.len(),
            answers.len()
        ));
    }
    Ok(())
}
