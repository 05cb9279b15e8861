//! An exam day, simulated in-process on the embedded (in-memory) store.
//!
//! The organiser's day of the exam platform's runbook (checklist B–E,
//! `docs/compat/exam-platform-runbook.md`) run through the library:
//! twenty worker nodes heartbeat; the organiser books three morning exams
//! and is told, with the shortfall, when a fourth one would fit, and books
//! it there; the leader's tick prewarms each exam on time and the workers'
//! pool reports show its readiness; 350 students click "start" in the same
//! instant through two control-plane replicas; a worker dies mid-exam and
//! its students are moved, another is drained (refused by the change
//! freeze, forced with a reason) and disabled for maintenance, the afternoon exam is flagged at risk until two new nodes
//! join; a proctor gives one of the dead worker's students the time its
//! disruption ledger counted (`workerLost`, from the last heartbeat to the
//! new desktop), and that student keeps the desktop past the exam's end until the
//! leader releases it at the student's own end; unclaimed machines are
//! released when the exams end. At the
//! afternoon exam more students turn up than there are free slots: those
//! beyond capacity wait in its waiting room with positions 1..N and are
//! placed strictly in order as others submit. Time is simulated; the
//! surges run with real concurrency.
//!
//! Run with: `cargo run -p vdi-cluster-examples --example exam_day`

mod day;
mod plan;
mod report;
mod waiting;

use std::sync::Arc;
use std::time::Instant;

use vdi_cluster_core::events::RecordingSink;
use vdi_cluster_core::exam::Exam;
use vdi_cluster_core::service::{Booking, EndChange, EndChanged, FreezeOverride};
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{
    AdminAction, ClusterService, Error, ManualClock, MemoryStore, ServiceConfig, SessionKey,
};

use day::{Day, clock_text};
use plan::{
    LATE_EXAM, LATE_REGISTRATIONS, MORNING, MORNING_EXAMS, at, exam, fleet, morning_students, node,
    students,
};

#[tokio::main]
async fn main() {
    run_day().await;
}

/// The whole day; panics if a check fails.
async fn run_day() {
    let clock = ManualClock::new(MORNING);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let workers = SimulatedWorkers::new();
    let events = RecordingSink::default();
    let replica = |n: u64| {
        Arc::new(
            ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
                .config(ServiceConfig {
                    seed: n,
                    replica_id: format!("control-plane-{n}"),
                    ..ServiceConfig::default()
                })
                .clock(Arc::new(clock.clone()))
                .events(Arc::new(events.clone()))
                .build(),
        )
    };
    let replicas = [replica(1), replica(2)];
    let mut day = Day::new(clock, workers, events, replicas, fleet());

    println!("== Exam day: 20 workers; MATH101, PHYS201 and CS310 at 09:00, BIO120 after ==\n");
    day.say("B. T-120: worker nodes start and heartbeat every 20 s");
    day.heartbeats().await;
    day.timeline().await;
    day.summary().await;

    day.say("B. T-120: the organiser books the day's exams; each is admitted against the fleet");
    for (id, n) in MORNING_EXAMS {
        book(&day, exam(id, n, at(120), 90)).await;
    }
    let (late_id, late_n) = LATE_EXAM;
    let wanted = exam(late_id, late_n, at(120), 60);
    let Some(earliest) = book(&day, wanted.clone()).await else {
        panic!("{late_id} was expected not to fit beside the morning exams");
    };
    book(&day, wanted.moved_to(earliest)).await;

    day.say("B. until T-30: nothing to press; the leader's tick prewarms each exam on time");
    day.run_for(89).await;
    day.next_minute_step_by_step().await;

    day.run_for(15).await;
    day.say("C. T-15: no \"Reconcile now\" and no sums by hand: the calendar says what fits");
    calendar(&day).await;

    day.run_for(15).await;
    day.say("D. T0: 350 students click \"start\" at once, through two control-plane replicas");
    surge(&mut day, morning_students()).await;

    // The two busiest workers play the rest of the day's roles.
    let mut busiest = day.leader().fleet().worker_views().await.expect("views");
    busiest.sort_by_key(|v| std::cmp::Reverse(v.used_sessions));
    let dead = busiest[0].id().clone();
    let node_down = busiest[1].id().clone();

    day.run_for(25).await;
    let victims = day.workers.sessions(&dead);
    day.workers.kill(&dead);
    day.dead.push(dead.clone());
    day.say(format!(
        "D. T+25m: {dead} loses power with {} students on it",
        victims.len()
    ));
    day.run_for(3).await;
    day.say(format!(
        "D. T+28m: {dead} missed heartbeats past the 120 s TTL: it takes no new sessions"
    ));
    for key in &victims[..victims.len().min(3)] {
        let again = day.replicas[1]
            .placement()
            .allocate(key.clone(), Default::default())
            .await
            .expect("re-dispatch");
        day.say(format!(
            "D. T+28m: {key} reloads the page -> new desktop on {} at once",
            again.dispatch.worker
        ));
    }
    let extended = victims.first().cloned();
    if let Some(key) = &extended {
        // The disruption ledger counted the desktop's loss with the move.
        let ledger = day
            .leader()
            .exams()
            .session_ledger(key)
            .await
            .expect("ledger");
        let lost_sec = u32::try_from(ledger.lost_ms.div_ceil(1000)).unwrap_or(u32::MAX);
        for e in &ledger.entries {
            day.say(format!(
                "D. T+28m: {key}'s ledger: {} from {} to {} ({} s lost), {} -> {}",
                e.kind.name(),
                clock_text(e.started_at),
                clock_text(e.ended_at),
                e.span_ms() / 1000,
                e.workers
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                e.workers
                    .last()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ));
        }
        let answer = day
            .leader()
            .exams()
            .change_session_end(
                key,
                EndChange::ExtendBy(lost_sec.max(1)),
                "desktop lost with its worker",
                false,
                "proctor-minh",
            )
            .await
            .expect("extension");
        if let EndChanged::Granted(end) = answer {
            day.say(format!(
                "D. T+28m: proctor-minh grants {key} the {lost_sec} s the dead desktop cost (the ledger's lostSec): own end {} (the exam's {})",
                clock_text(end.ends_at),
                clock_text(end.exam_ends_at)
            ));
        }
    }
    day.run_for(8).await;
    let report = day
        .leader()
        .operations()
        .reconcile()
        .await
        .expect("reconcile");
    day.say(format!(
        "D. T+36m: {dead} is offline past the hard timeout; reconcile: {} of its sessions found, {} migrated, {} failed",
        report.failed_worker_sessions, report.migrated, report.migration_failed
    ));
    day.timeline().await;
    day.summary().await;

    day.run_for(4).await;
    maintenance(&mut day, &node_down).await;
    day.readiness().await;

    day.say("D. the fleet is short for BIO120: two new nodes join with the same procedure");
    let next = day.fleet.len() + 1;
    day.fleet.extend([node(next, false), node(next + 1, false)]);
    day.heartbeats().await;
    day.leader_tick().await;

    day.run_for(30).await;
    let submitting = morning_students()
        .into_iter()
        .filter(|k| Some(k) != extended.as_ref());
    let released = release_all(&day, submitting.collect()).await;
    day.heartbeats().await;
    day.say(format!(
        "E. T+90m: the morning exams end; {released} more submissions released their desktops"
    ));
    day.leader_tick().await;
    day.heartbeats().await;
    figures(&day, MORNING_EXAMS[0].0).await;
    day.summary().await;

    day.run_for(4).await;
    day.next_minute_step_by_step().await;
    day.run_for(30).await;
    let turning_up = late_n + LATE_REGISTRATIONS;
    day.say(format!(
        "{late_id} T0: {turning_up} students click \"start\" ({late_n} booked, {LATE_REGISTRATIONS} registered late): more than the free slots"
    ));
    let late_exam = vdi_cluster_core::ExamId::parse("examId", late_id).expect("valid");
    waiting::surge_with_queue(&mut day, &late_exam, students(late_id, turning_up)).await;
    day.run_for(60).await;
    let released_late = release_all(&day, students(late_id, turning_up)).await;
    day.heartbeats().await;
    day.say(format!(
        "E. {late_id} ends: {released_late} submissions released their desktops"
    ));
    day.leader_tick().await;

    let expected = MORNING_EXAMS.iter().map(|(_, n)| n).sum::<u32>() + turning_up;
    report::finish(&day, expected).await;
}

/// Books `exam` and prints the answer; on a refusal returns the earliest
/// start the library found.
async fn book(day: &Day, exam: Exam) -> Option<vdi_cluster_core::Timestamp> {
    let id = exam.id.clone();
    match day.leader().exams().book_exam(exam, "organiser-lan").await {
        Ok(Booking::Accepted(s)) => {
            let e = &s.exam;
            let lead = std::time::Duration::from_secs(u64::from(e.prewarm.lead_sec));
            day.say(format!(
                "  booked {id}: {} students {}–{}, {} machines prewarmed from {}",
                e.students,
                clock_text(e.starts_at),
                clock_text(e.ends_at),
                s.prewarm.target,
                clock_text(e.starts_at.minus(lead))
            ));
            None
        }
        Ok(Booking::Refused(r)) => {
            let beside: Vec<String> = r
                .shortfall
                .overlapping
                .iter()
                .map(|o| format!("{} {}", o.id, o.students))
                .collect();
            day.say(format!(
                "  refused {id}: {} students short at {} (demand {} beside {})",
                r.shortfall.missing,
                clock_text(r.shortfall.at),
                r.shortfall.demand,
                beside.join(", ")
            ));
            let earliest = r.earliest_start.expect("a start that fits");
            day.say(format!(
                "  the earliest start at which it fits: {}",
                clock_text(earliest)
            ));
            Some(earliest)
        }
        Err(e) => panic!("booking {id}: {e}"),
    }
}

/// Prints the calendar: each exam, whether it fits, its readiness.
async fn calendar(day: &Day) {
    for s in day
        .leader()
        .exams()
        .exam_calendar(None, None)
        .await
        .expect("cal")
    {
        day.say(format!(
            "  {:<8} {}–{} {:>3} students  {}  prewarm {}/{} ready ({} %)",
            s.exam.id.as_str(),
            clock_text(s.exam.starts_at),
            clock_text(s.exam.ends_at),
            s.exam.students,
            match &s.at_risk {
                Some(short) => format!("AT RISK ({} short)", short.missing),
                None => "fits".to_owned(),
            },
            s.prewarm.live.ready,
            s.prewarm.target,
            s.prewarm.readiness_percent
        ));
    }
}

/// Every student in `keys` clicks "start" at once through both replicas.
async fn surge(day: &mut Day, keys: Vec<SessionKey>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let svc = Arc::clone(&day.replicas[i % 2]);
        tasks.push(tokio::spawn(async move {
            svc.placement().allocate(key, Default::default()).await
        }));
    }
    let (mut placed, mut refused, mut retries) = (0, 0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(a) => {
                placed += 1;
                retries += a.contention_retries;
            }
            Err(Error::NoCapacity(_) | Error::AllocationInProgress(_)) => refused += 1,
            Err(e) => panic!("allocation failed: {e}"),
        }
    }
    day.say(format!(
        "  placed {placed}, refused {refused}, contention retries {retries}, in {:.1} ms of real time",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    day.heartbeats().await;
    day.leader_tick().await;
    day.summary().await;
    day.placed += placed;
}

/// The runbook's D.2: drain a node, wait until it is drained, then disable
/// it. The exams under way need it, so the change freeze refuses the drain
/// until the operator forces it with a reason.
async fn maintenance(day: &mut Day, node: &vdi_cluster_core::WorkerId) {
    let drain = AdminAction::Drain { deadline: None };
    match day.leader().fleet().admin(node, drain, "admin-minh").await {
        Err(Error::Frozen(frozen)) => day.say(format!(
            "D. T+40m: draining {node} is refused by the change freeze: {} exam(s) under way \
             would be {} student(s) shorter; safe from {}",
            frozen.freeze.exams.len(),
            frozen
                .freeze
                .exams
                .iter()
                .map(|e| e.missing - e.missing_before)
                .max()
                .unwrap_or(0),
            clock_text(frozen.freeze.safe_from)
        )),
        other => panic!("the drain under the exams was not refused: {other:?}"),
    }
    let force = FreezeOverride::Force {
        reason: "failing disk on the node",
    };
    day.leader()
        .fleet()
        .admin_forcing(node, drain, "admin-minh", None, force)
        .await
        .expect("forced drain");
    let info = day
        .leader()
        .fleet()
        .drain_info(node)
        .await
        .expect("drain info");
    let blocking: usize = info.blocking.values().map(Vec::len).sum();
    day.say(format!(
        "D. T+40m: operator drains {node}; its {blocking} students keep working, new students go elsewhere"
    ));
    day.timeline().await;
    if let Err(e) = day
        .leader()
        .fleet()
        .admin(node, AdminAction::Disable { force: false }, "admin-minh")
        .await
    {
        day.say(format!("D. T+40m: disabling {node} now is refused: {e}"));
    }
    let leaving = day.workers.sessions(node);
    for key in &leaving {
        day.leader()
            .placement()
            .release(key)
            .await
            .expect("release");
    }
    day.run_for(20).await;
    let info = day
        .leader()
        .fleet()
        .drain_info(node)
        .await
        .expect("drain info");
    day.say(format!(
        "D. T+60m: its {} students submitted; drainStatus = {:?}",
        leaving.len(),
        info.drain_status
    ));
    day.leader()
        .fleet()
        .admin(node, AdminAction::Disable { force: false }, "admin-minh")
        .await
        .expect("disable");
    day.say(format!("D. T+60m: {node} disabled for maintenance"));
}

/// Every student in `keys` submits; returns the desktops released.
async fn release_all(day: &Day, keys: Vec<SessionKey>) -> usize {
    let mut released = 0;
    for key in keys {
        if day.replicas[released % 2]
            .placement()
            .release(&key)
            .await
            .expect("release")
            .is_some()
        {
            released += 1;
        }
    }
    released
}

/// Prints one exam's figures.
async fn figures(day: &Day, id: &str) {
    let id = vdi_cluster_core::ExamId::parse("examId", id).expect("valid");
    let f = day
        .leader()
        .exams()
        .exam_figures(&id)
        .await
        .expect("figures");
    day.say(format!(
        "E. {id}: {} booked, {} slots reserved, {} sessions in use, prewarm {}/{} ready",
        f.booked_students,
        f.reserved_capacity,
        f.sessions_in_use,
        f.status.prewarm.live.ready,
        f.status.prewarm.target
    ));
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_day_runs_with_everyone_placed_and_no_worker_over_its_slots() {
        super::run_day().await;
    }
}
