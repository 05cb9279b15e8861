//! The waiting room: more students than free slots click "start"; those
//! beyond capacity are queued with a position and placed strictly in
//! order as others submit.

use std::sync::Arc;

use vdi_cluster_core::service::{SessionRequest, SessionState};
use vdi_cluster_core::{ExamId, SessionKey};

use crate::day::Day;

/// Every student in `keys` asks for a desktop at once through both
/// replicas; then students submit, a few at a time, until the queue is
/// empty. Checks that the positions handed out were 1..N and that each
/// release placed the head of the queue.
pub(crate) async fn surge_with_queue(day: &mut Day, exam: &ExamId, keys: Vec<SessionKey>) {
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (i, key) in keys.iter().cloned().enumerate() {
        let svc = Arc::clone(&day.replicas[i % 2]);
        tasks.push(tokio::spawn(async move {
            let asked = svc
                .placement()
                .request_session(key.clone(), Default::default())
                .await;
            (key, asked)
        }));
    }
    let (mut seated, mut positions) = (Vec::new(), Vec::new());
    for t in tasks {
        let (key, asked) = t.await.expect("task");
        match asked.expect("request") {
            // Starts are not paced in the day: no student waits for one.
            SessionRequest::Placed(_) | SessionRequest::Starting(_) => seated.push(key),
            SessionRequest::Queued(s) => positions.push(s.position),
        }
    }
    let placed = seated.len() as u32;
    positions.sort_unstable();
    let queued = positions.len() as u32;
    day.say(format!(
        "  placed {placed}; {queued} beyond capacity queued with positions {}..{} (HTTP 202, not a bare 503), in {:.1} ms of real time",
        positions.first().copied().unwrap_or_default(),
        positions.last().copied().unwrap_or_default(),
        started.elapsed().as_secs_f64() * 1000.0
    ));
    assert_eq!(
        positions,
        (1..=queued).collect::<Vec<_>>(),
        "positions 1..N"
    );
    day.placed += placed;
    day.heartbeats().await;
    day.summary().await;
    let head = &queue_order(day, exam).await[0];
    let SessionState::Queued(s) = day
        .leader()
        .placement()
        .session_state(head)
        .await
        .expect("state")
    else {
        panic!("{head} should be waiting");
    };
    day.say(format!(
        "  {head} polls: position {}, estimated wait ~{} s",
        s.position,
        s.estimated_wait.as_secs()
    ));

    let mut finishers = seated.into_iter();
    while queued_now(day, exam).await > 0 {
        let order = queue_order(day, exam).await;
        let done: Vec<SessionKey> = finishers.by_ref().take(4).collect();
        for key in &done {
            day.leader()
                .placement()
                .end_session(key)
                .await
                .expect("submit");
        }
        day.leader().placement().promote_after_release(exam).await;
        let moved: Vec<&SessionKey> = order.iter().take(done.len()).collect();
        for key in &moved {
            let state = day
                .leader()
                .placement()
                .session_state(key)
                .await
                .expect("state");
            assert!(
                matches!(state, SessionState::Placed(_)),
                "{key} placed in its turn"
            );
        }
        day.placed += moved.len() as u32;
        day.say(format!(
            "  {} students submit early -> the head of the queue is placed, in order: {}; {} still waiting",
            done.len(),
            moved
                .iter()
                .map(|k| k.user_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            queued_now(day, exam).await
        ));
    }
    day.heartbeats().await;
    let figures = day
        .leader()
        .exams()
        .queue_figures(exam)
        .await
        .expect("figures");
    day.say(format!(
        "  {exam}'s waiting room: {} waiting, {} placed from it, {} abandoned",
        figures.queued, figures.placed_total, figures.abandoned_total
    ));
}

async fn queued_now(day: &Day, exam: &ExamId) -> u32 {
    day.leader()
        .exams()
        .queue_figures(exam)
        .await
        .expect("figures")
        .queued
}

/// The waiting students, head first.
async fn queue_order(day: &Day, exam: &ExamId) -> Vec<SessionKey> {
    day.leader()
        .exams()
        .exam_queue(exam)
        .await
        .expect("queue")
        .waiting
        .into_iter()
        .map(|w| SessionKey::new(exam.clone(), w.entry.user))
        .collect()
}
