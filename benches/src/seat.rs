//! Time to seat an exam: every student clicks once within a window (an
//! open loop: click times are fixed in advance, whatever the answers take),
//! on worker nodes whose session starts take a spread of times. A student
//! refused (no capacity, an error) clicks again after a pause, as the exam
//! application would. Measured: the time from the first click to the last
//! seat, and each student's time from click to desktop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::task::JoinSet;
use vdi_cluster_core::SessionKey;

use crate::alloc::AllocOutcome;
use crate::latency::Latencies;
use crate::target::{Beat, Recount, Target, register};

/// How often every worker heartbeats during an exam start.
const BEAT_EVERY: Duration = Duration::from_secs(5);

/// Sizes of an exam start.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatConfig {
    /// Worker nodes.
    pub workers: usize,
    /// Slots per worker.
    pub slots: u32,
    /// Students, one click each within `window`.
    pub students: usize,
    /// The clicks are spread evenly over this window.
    pub window: Duration,
    /// A refused student clicks again after this pause.
    pub retry_pause: Duration,
    /// Students not seated by then are counted as not seated.
    pub time_limit: Duration,
}

impl Default for SeatConfig {
    fn default() -> Self {
        Self {
            workers: 500,
            slots: 20,
            students: 10_000,
            window: Duration::from_secs(10),
            retry_pause: Duration::from_secs(1),
            time_limit: Duration::from_secs(120),
        }
    }
}

/// What an exam start measured.
#[derive(Debug, Clone)]
pub struct SeatReport {
    /// Students with a desktop.
    pub seated: usize,
    /// Students without one at the time limit.
    pub not_seated: usize,
    /// From the first click to the last seat.
    pub first_click_to_last_seat: Duration,
    /// Each seated student's time from their first click to their desktop.
    pub click_to_seat: Latencies,
    /// Allocation requests sent (clicks and re-clicks).
    pub requests: u64,
    /// Requests answered with an error other than no capacity.
    pub errors: u64,
    /// The first such error.
    pub first_error: Option<String>,
    /// The recount afterwards: records against slots, and the workers' own
    /// sessions beyond their slots.
    pub recount: Recount,
}

impl SeatReport {
    /// Every student seated, nobody over-allocated.
    pub fn is_correct(&self) -> bool {
        self.not_seated == 0
            && self.recount.audit.over_allocations == 0
            && self.recount.worker_side_over == 0
    }
}

/// One student's clicks until seated (or the deadline).
struct Student {
    seated_after: Option<Duration>,
    seated_at: Option<Instant>,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn student(
    target: Arc<dyn Target>,
    i: usize,
    key: SessionKey,
    click: Instant,
    config: SeatConfig,
    deadline: Instant,
) -> Student {
    tokio::time::sleep_until(click.into()).await;
    let mut out = Student {
        seated_after: None,
        seated_at: None,
        requests: 0,
        errors: 0,
        first_error: None,
    };
    let mut via = i;
    while Instant::now() < deadline {
        out.requests += 1;
        match target.allocate(via, &key).await {
            AllocOutcome::Placed { .. } | AllocOutcome::Existing => {
                let now = Instant::now();
                out.seated_at = Some(now);
                out.seated_after = Some(now - click);
                return out;
            }
            AllocOutcome::NoCapacity | AllocOutcome::Queued => {}
            AllocOutcome::Failed(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
        // Another replica next time, as a load balancer would.
        via += 1;
        tokio::time::sleep(config.retry_pause).await;
    }
    out
}

/// Registers the fleet on `target`, then lets every student click once
/// within the window and waits until all are seated or the time limit.
pub async fn seat(
    target: &Arc<dyn Target>,
    config: &SeatConfig,
    progress: &ProgressBar,
) -> anyhow::Result<SeatReport> {
    register(target, config.workers, config.slots).await?;
    let beating = tokio::spawn(keep_beating(
        Arc::clone(target),
        config.workers,
        config.slots,
    ));
    progress.set_length(config.students as u64);
    let students = config.students.max(1);
    let first_click = Instant::now() + Duration::from_millis(100);
    let deadline = first_click + config.time_limit;
    let mut tasks = JoinSet::new();
    for i in 0..students {
        let key = SessionKey::parse("seat", format!("s-{i:06}"))?;
        let click = first_click + config.window.mul_f64(i as f64 / students as f64);
        tasks.spawn(student(
            Arc::clone(target),
            i,
            key,
            click,
            config.clone(),
            deadline,
        ));
    }
    let mut report = SeatReport {
        seated: 0,
        not_seated: 0,
        first_click_to_last_seat: Duration::ZERO,
        click_to_seat: Latencies::new(),
        requests: 0,
        errors: 0,
        first_error: None,
        recount: Recount::default(),
    };
    let mut last_seat = first_click;
    while let Some(done) = tasks.join_next().await {
        let s = done?;
        report.requests += s.requests;
        report.errors += s.errors;
        if report.first_error.is_none() {
            report.first_error = s.first_error;
        }
        match (s.seated_after, s.seated_at) {
            (Some(after), Some(at)) => {
                report.seated += 1;
                report.click_to_seat.record(after);
                last_seat = last_seat.max(at);
            }
            _ => report.not_seated += 1,
        }
        progress.inc(1);
    }
    beating.abort();
    report.first_click_to_last_seat = last_seat - first_click;
    report.recount = target.recount(config.slots).await?;
    Ok(report)
}

/// Heartbeats every worker every [`BEAT_EVERY`] as its node agent would,
/// so none goes silent while an exam start takes longer than the
/// heartbeat TTL.
async fn keep_beating(target: Arc<dyn Target>, workers: usize, slots: u32) {
    for seq in 2.. {
        tokio::time::sleep(BEAT_EVERY).await;
        for worker in 0..workers {
            let beat = Beat { worker, slots, seq };
            if let Err(e) = target.heartbeat(worker, beat).await {
                eprintln!("warning: heartbeat of worker {worker} failed: {e}");
            }
        }
    }
}

/// The least time the exam start can take: the slowest node's start after
/// the students' reservations, at the store's raw ceiling
/// (`students ÷ ceiling`).
pub fn physical_bound(
    students: usize,
    slowest_start: Duration,
    raw_ceiling_per_sec: f64,
) -> Duration {
    let reserving = if raw_ceiling_per_sec > 0.0 {
        Duration::from_secs_f64(students as f64 / raw_ceiling_per_sec)
    } else {
        Duration::ZERO
    };
    slowest_start + reserving
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_adds_the_slowest_start_to_the_reservations() {
        let bound = physical_bound(10_000, Duration::from_secs(2), 50_000.0);
        assert_eq!(bound, Duration::from_millis(2_200));
        assert_eq!(
            physical_bound(10, Duration::from_secs(1), 0.0),
            Duration::from_secs(1)
        );
    }
}
