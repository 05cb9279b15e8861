//! The closed-loop driver: `concurrency` tasks take operation numbers
//! `0..total` from a shared counter until they run out or a deadline
//! passes, timing each operation.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::latency::Latencies;

/// Progress is reported in batches of this many operations.
const PROGRESS_BATCH: u64 = 64;

/// Adds up the outcomes of operations.
pub trait Tally: Default + Send + 'static {
    /// What one operation yields.
    type Outcome: Send;
    /// Counts one outcome.
    fn add(&mut self, outcome: Self::Outcome);
    /// Adds another task's counts.
    fn merge(&mut self, other: Self);
}

/// What a driven phase measured.
#[derive(Debug, Default)]
pub struct Driven<T> {
    /// Latency of every completed operation.
    pub latencies: Latencies,
    /// The outcomes, added up.
    pub tally: T,
    /// Wall time from the first operation to the last completion.
    pub elapsed: Duration,
    /// Operations not started because the deadline passed.
    pub not_started: usize,
}

/// Runs `op(0) … op(total - 1)` on `concurrency` tasks. Stops taking new
/// operations at `deadline`.
pub async fn drive<T, F, Fut>(
    concurrency: usize,
    total: usize,
    deadline: Instant,
    progress: &ProgressBar,
    op: F,
) -> Driven<T>
where
    T: Tally,
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = T::Outcome> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // A JoinSet aborts its tasks when dropped: an interrupted phase (Ctrl-C)
    // stops issuing operations before its namespace is removed.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = Arc::clone(&next);
        let op = op.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let mut latencies = Latencies::new();
            let mut tally = T::default();
            let mut pending = 0;
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let outcome = op(i).await;
                latencies.record(t.elapsed());
                tally.add(outcome);
                pending += 1;
                if pending == PROGRESS_BATCH {
                    progress.inc(pending);
                    pending = 0;
                }
            }
            progress.inc(pending);
            (latencies, tally, Instant::now())
        });
    }
    let mut out = Driven {
        latencies: Latencies::new(),
        tally: T::default(),
        elapsed: Duration::ZERO,
        not_started: 0,
    };
    let mut last = started;
    while let Some(task) = tasks.join_next().await {
        let (latencies, tally, finished) = task.expect("driver task panicked");
        out.latencies.merge(&latencies);
        out.tally.merge(tally);
        last = last.max(finished);
    }
    out.elapsed = last - started;
    out.not_started = total.saturating_sub(next.load(Ordering::Relaxed).min(total));
    out
}

/// Restarts `progress` for a phase of `total` steps.
pub fn restart(progress: &ProgressBar, total: usize) {
    progress.set_length(total as u64);
    progress.set_position(0);
}

/// Counts one failure: one more, and its message if it is the first.
pub fn count_failure(errors: &mut u64, first: &mut Option<String>, message: String) {
    *errors += 1;
    first.get_or_insert(message);
}

/// Adds another task's failures (count, first message) to `into`.
pub fn merge_failure(into: (&mut u64, &mut Option<String>), other: (u64, Option<String>)) {
    *into.0 += other.0;
    if into.1.is_none() {
        *into.1 = other.1;
    }
}

/// Counts of a phase with no outcome beyond success or failure.
#[derive(Debug, Default, Clone)]
pub struct Plain {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Tally for Plain {
    type Outcome = Result<(), String>;

    fn add(&mut self, outcome: Self::Outcome) {
        match outcome {
            Ok(()) => self.ok += 1,
            Err(e) => count_failure(&mut self.errors, &mut self.first_error, e),
        }
    }

    fn merge(&mut self, other: Self) {
        self.ok += other.ok;
        merge_failure(
            (&mut self.errors, &mut self.first_error),
            (other.errors, other.first_error),
        );
    }
}
