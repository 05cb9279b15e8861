//! Paced starts: how many desktops a worker may be starting at once, and
//! how long a student waits for one.
//!
//! A host that starts forty desktops at once starts each of them far more
//! slowly than one that starts four (disk, CPU and the hypervisor
//! saturate): the boot storm. So every start of a desktop on a worker —
//! a student's placement or a prewarmed machine — first takes one of the
//! worker's **start permits**, held in the store ([`StartPermits`]) with a
//! lease, and gives it back when the worker's call returns. At no moment
//! are more permits held on a worker than its start concurrency, across
//! replicas (invariant F); a replica that dies holding permits loses them
//! when their lease runs out.
//!
//! The concurrency is decided here, from numbers the store keeps for
//! every replica alike:
//!
//! * **configured**: the node agent's `--max-concurrent-starts`, sent in
//!   each heartbeat; a node without it sends [`default_concurrency`] of its
//!   slots (a quarter of them, rounded up, between 1 and 8);
//! * **adapted** ([`start_limit`]): from the worker's last starts (each a
//!   [`StartSample`]: how long it took and how many starts were in flight
//!   when it began), fitted to `start = a + b × in_flight`; the limit is
//!   the largest number of starts in flight whose predicted start time
//!   stays within the target (by default half the worker-call timeout),
//!   never above the configured one and never below 1.
//!
//! A student whose start must wait is told when the desktop should be
//! ready ([`estimate_ready`]): the start queue is worked through `limit`
//! at a time, each start taking the predicted time.

mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::WorkerId;
use crate::time::Timestamp;

pub use store::StartPermits;

/// The fewest starts of a worker the adapted limit rests on; with fewer,
/// the configured concurrency stands.
pub const MIN_SAMPLES: usize = 5;

/// The highest concurrency derived from a slot count.
pub const MAX_DEFAULT_CONCURRENCY: u32 = 8;

/// The start time assumed for a worker that has not started anything yet.
pub const UNMEASURED_START: Duration = Duration::from_secs(10);

/// A node's start concurrency when it configures none: a quarter of its
/// slots, rounded up, between 1 and [`MAX_DEFAULT_CONCURRENCY`].
pub fn default_concurrency(max_sessions: u32) -> u32 {
    max_sessions.div_ceil(4).clamp(1, MAX_DEFAULT_CONCURRENCY)
}

/// One finished start of a desktop on a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSample {
    /// How long the worker's call took, in milliseconds.
    pub millis: u32,
    /// Starts in flight on the worker when this one took its permit,
    /// itself included.
    pub in_flight: u32,
}

/// A permit held on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPermit {
    /// The permit's id (the start it is for).
    pub id: String,
    /// When it was granted.
    pub since: Timestamp,
}

/// A worker's start permits, queue and last starts, as one view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartQueue {
    /// The permits held and unexpired, oldest grant first (ties by id).
    pub held: Vec<HeldPermit>,
    /// The starts waiting for a permit and unexpired, first come first.
    pub waiting: Vec<String>,
    /// The last finished starts, oldest first.
    pub samples: Vec<StartSample>,
}

impl StartQueue {
    /// Where `id` stands: `Some(0)`-based place among the waiting, `None`
    /// when it is not waiting.
    pub fn position(&self, id: &str) -> Option<u32> {
        self.waiting
            .iter()
            .position(|w| w == id)
            .map(|p| u32::try_from(p).unwrap_or(u32::MAX))
    }

    /// The grant time of `id`'s permit, if it holds one.
    pub fn held_since(&self, id: &str) -> Option<Timestamp> {
        self.held.iter().find(|h| h.id == id).map(|h| h.since)
    }
}

/// A start permit asked for within compare-and-reserve
/// ([`ReserveRequest::permit`](crate::store::ReserveRequest::permit)),
/// under the reservation's dispatch id: granted in the same atomic step
/// only while fewer than `limit` permits are held on the worker and no
/// start waits in its queue (see [`StartPermits`]'s contract); otherwise
/// the slot is reserved without it and the start asks
/// [`acquire_start_permit`](StartPermits::acquire_start_permit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitRequest {
    /// The worker's start limit, decided by core ([`start_limit`]).
    pub limit: u32,
    /// Now, on the control plane's clock: the grant's time, and what the
    /// worker's expired permits and places are judged at.
    pub now: Timestamp,
    /// The permit's lease end.
    pub until: Timestamp,
}

/// A start permit given back by the store step that ends its reservation
/// ([`DispatchStore::confirm`](crate::store::DispatchStore::confirm),
/// [`DispatchStore::undo`](crate::store::DispatchStore::undo) and the
/// outbox's confirmation): the permit or queue place held under the
/// dispatch's id on `worker` is removed, and `sample` recorded, as
/// [`release_start_permit`](StartPermits::release_start_permit) does, in
/// the same atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitReturn {
    /// The worker the permit is held on.
    pub worker: WorkerId,
    /// The start's sample (a start that succeeded), if any.
    pub sample: Option<StartSample>,
    /// How many of the worker's last starts are kept.
    pub keep: u32,
}

/// What asking for a start permit answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitAnswer {
    /// The permit is held (newly or again); `in_flight` permits are held
    /// on the worker, this one included.
    Granted {
        /// Permits held on the worker.
        in_flight: u32,
    },
    /// Not yet: the start waits at `position` (0 = next) in the worker's
    /// queue while `in_flight` permits are held.
    Waiting {
        /// Place in the worker's queue, 0-based.
        position: u32,
        /// Permits held on the worker.
        in_flight: u32,
    },
}

/// Start time figures of a worker's last starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartStats {
    /// How many starts the figures rest on.
    pub count: u32,
    /// Median start time, milliseconds (0 without starts).
    pub p50_ms: u32,
    /// 95th percentile, milliseconds (0 without starts).
    pub p95_ms: u32,
}

/// The nearest-rank percentile `pct` of `values` (sorted in place).
fn percentile(values: &mut [u32], pct: u32) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = (values.len() * pct as usize).div_ceil(100).max(1);
    values[rank - 1]
}

/// The p50 and p95 of `samples`' start times.
pub fn start_stats(samples: &[StartSample]) -> StartStats {
    let mut millis: Vec<u32> = samples.iter().map(|s| s.millis).collect();
    StartStats {
        count: u32::try_from(samples.len()).unwrap_or(u32::MAX),
        p50_ms: percentile(&mut millis, 50),
        p95_ms: percentile(&mut millis, 95),
    }
}

/// `start = a + b × in_flight`, least squares over `samples`; `None`
/// without two distinct in-flight counts or with a slope that is not
/// positive (starts that do not slow down with load).
fn fit(samples: &[StartSample]) -> Option<(f64, f64)> {
    let n = samples.len() as f64;
    let mean_x = samples.iter().map(|s| f64::from(s.in_flight)).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| f64::from(s.millis)).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for s in samples {
        let dx = f64::from(s.in_flight) - mean_x;
        sxy += dx * (f64::from(s.millis) - mean_y);
        sxx += dx * dx;
    }
    if sxx <= f64::EPSILON {
        return None;
    }
    let b = sxy / sxx;
    (b > 0.0).then_some((mean_y - b * mean_x, b))
}

/// The start concurrency of a worker: `configured`, adapted to its last
/// starts so that the predicted start time stays within `target` (see the
/// module's docs). Without [`MIN_SAMPLES`] starts, `configured`; when the
/// starts do not slow down with load, `configured` unless their p95
/// already exceeds the target, then scaled down in proportion.
pub fn start_limit(configured: u32, samples: &[StartSample], target: Duration) -> u32 {
    let configured = configured.max(1);
    if samples.len() < MIN_SAMPLES {
        return configured;
    }
    let target_ms = target.as_millis() as f64;
    let limit = match fit(samples) {
        // The fit is inexact by rounding: a hair more is still whole.
        Some((a, b)) => ((target_ms - a) / b + 1e-6).floor(),
        None => {
            let p95 = f64::from(start_stats(samples).p95_ms);
            if p95 <= target_ms {
                return configured;
            }
            let mean_n =
                samples.iter().map(|s| f64::from(s.in_flight)).sum::<f64>() / samples.len() as f64;
            (mean_n * target_ms / p95).floor()
        }
    };
    if limit.is_nan() || limit < 1.0 {
        1
    } else if limit >= f64::from(configured) {
        configured
    } else {
        limit as u32
    }
}

/// How long one start is expected to take with `in_flight` starts on the
/// worker: the fitted line when the starts slow down with load, else their
/// median, else [`UNMEASURED_START`].
pub fn expected_start(samples: &[StartSample], in_flight: u32) -> Duration {
    if samples.is_empty() {
        return UNMEASURED_START;
    }
    let ms = match fit(samples) {
        Some((a, b)) => (a + b * f64::from(in_flight.max(1))).max(1.0),
        None => f64::from(start_stats(samples).p50_ms.max(1)),
    };
    Duration::from_millis(ms as u64)
}

/// When a start whose place is `position` in the worker's queue (`None`:
/// it holds a permit granted at `since`) should have its desktop ready,
/// counted from `now`: each of the `limit` permits frees when its start
/// has taken the expected time, and the queue takes them in order, so the
/// start at place `p` gets the permit freed `p / limit` rounds after the
/// `p % limit`-th soonest held one, then takes one start itself.
pub fn estimate_ready(
    queue: &StartQueue,
    position: Option<u32>,
    since: Option<Timestamp>,
    limit: u32,
    now: Timestamp,
) -> Duration {
    let limit = limit.max(1);
    let start = expected_start(&queue.samples, limit);
    let Some(position) = position else {
        let elapsed = since.map_or(Duration::ZERO, |s| now.since(s));
        return start.saturating_sub(elapsed);
    };
    let mut frees: Vec<Duration> = queue
        .held
        .iter()
        .map(|h| start.saturating_sub(now.since(h.since)))
        .collect();
    frees.sort_unstable();
    // Free permits are taken at once; permits beyond the limit (it fell)
    // must all free before the queue moves.
    let free = (limit as usize).saturating_sub(frees.len());
    let beyond = frees.len().saturating_sub(limit as usize);
    let mut ready = vec![Duration::ZERO; free];
    ready.extend(frees);
    let slot = beyond + (position % limit) as usize;
    ready[slot] + start * (position / limit) + start
}

#[cfg(test)]
mod tests;
