//! What this replica remembers of each worker's last starts, the inputs of
//! its start limit ([`start_limit`](crate::pacing::start_limit)), so a
//! paced start costs no read of its own besides taking and giving back its
//! permit.
//!
//! * A worker's samples are read from the store
//!   ([`start_queue`](crate::pacing::StartPermits::start_queue)) when this
//!   replica has none younger than
//!   [`PacingConfig::inputs_max_age`](crate::service::PacingConfig::inputs_max_age)
//!   (zero: always read fresh), and whenever a read of the queue happens
//!   anyway (a start that waits, a student's `starting` answer, the
//!   operators' view).
//! * This replica's own starts move them at once: a permit given back with
//!   a sample appends it here as the store does (the newest
//!   `samples_kept`), so its limit follows its own starts without a read;
//!   the other replicas' starts are seen within the lifetime.
//!
//! The limit only bounds how many permits the store grants at once: a
//! stale input may keep a limit one lifetime longer than a fresh one would,
//! and every grant is still checked against the limit core passes, in one
//! atomic step of the store (invariant F).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::ids::WorkerId;
use crate::pacing::StartSample;

/// A worker's samples and when they were read from the store.
#[derive(Debug)]
struct Inputs {
    fetched: Instant,
    samples: Arc<Vec<StartSample>>,
}

/// This replica's cached start limit inputs (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct StartInputs {
    workers: Mutex<HashMap<WorkerId, Inputs>>,
}

impl StartInputs {
    fn lock(&self) -> MutexGuard<'_, HashMap<WorkerId, Inputs>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `worker`'s samples, if read less than `max_age` ago.
    pub(crate) fn fresh(
        &self,
        worker: &WorkerId,
        max_age: Duration,
    ) -> Option<Arc<Vec<StartSample>>> {
        let workers = self.lock();
        let inputs = workers.get(worker)?;
        (inputs.fetched.elapsed() < max_age).then(|| Arc::clone(&inputs.samples))
    }

    /// Keeps `samples`, just read from the store, as `worker`'s.
    pub(crate) fn read(&self, worker: &WorkerId, samples: &[StartSample]) {
        self.lock().insert(
            worker.clone(),
            Inputs {
                fetched: Instant::now(),
                samples: Arc::new(samples.to_vec()),
            },
        );
    }

    /// Appends this replica's own `sample` to `worker`'s cached samples,
    /// keeping the newest `keep` (the store keeps the same); nothing when
    /// none are cached (the next start reads them).
    pub(crate) fn own_start(&self, worker: &WorkerId, sample: StartSample, keep: u32) {
        let mut workers = self.lock();
        let Some(inputs) = workers.get_mut(worker) else {
            return;
        };
        let samples = Arc::make_mut(&mut inputs.samples);
        samples.push(sample);
        let excess = samples.len().saturating_sub(keep as usize);
        samples.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(millis: u32) -> StartSample {
        StartSample {
            millis,
            in_flight: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn samples_live_their_lifetime_and_follow_own_starts() {
        let inputs = StartInputs::default();
        let w = WorkerId::parse("worker", "w-1").expect("id");
        let age = Duration::from_secs(5);
        assert!(inputs.fresh(&w, age).is_none());
        inputs.own_start(&w, sample(1), 3);
        assert!(inputs.fresh(&w, age).is_none(), "nothing cached to move");

        inputs.read(&w, &[sample(10), sample(20)]);
        inputs.own_start(&w, sample(30), 3);
        inputs.own_start(&w, sample(40), 3);
        let kept: Vec<u32> = inputs
            .fresh(&w, age)
            .expect("fresh")
            .iter()
            .map(|s| s.millis)
            .collect();
        assert_eq!(kept, [20, 30, 40], "the newest three, as the store keeps");

        tokio::time::advance(age).await;
        assert!(
            inputs.fresh(&w, age).is_none(),
            "read again after its lifetime"
        );
        inputs.read(&w, &[]);
        assert!(
            inputs.fresh(&w, Duration::ZERO).is_none(),
            "zero: always read"
        );
    }
}
