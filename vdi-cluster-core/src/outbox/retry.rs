//! When to retry a delivery, when to give up, when an endpoint is failing.
//!
//! Exponential backoff with jitter: the `n`th failed attempt waits a
//! random time between half and all of `first_delay · 2ⁿ⁻¹`, capped at
//! `max_delay`; a delivery whose next attempt would come more than
//! `give_up_after` after the event is given up (and can be retried by an
//! admin). An endpoint whose attempts failed `failing_after` times in a
//! row is failing: that crossing is a `webhook.failing` event.

use std::time::Duration;

use super::{Failing, OutboxEntry};
use crate::time::Timestamp;

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It was accepted: done.
    Delivered,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// The retry window is over: mark it failed.
    GiveUp,
}

/// The retry schedule and the failing-endpoint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure: 5 s.
    pub first_delay: Duration,
    /// Longest wait between two attempts: 1 h.
    pub max_delay: Duration,
    /// No attempt later than this after the event: 24 h
    /// (`VDI_WEBHOOK_RETRY_HOURS`).
    pub give_up_after: Duration,
    /// Consecutive failed attempts after which an endpoint is failing: 5.
    pub failing_after: u32,
    /// How long a deliverer owns a leased delivery: 30 s (well over the
    /// send timeout, so a lease outlives its attempt).
    pub lease: Duration,
    /// Timeout of one attempt: 10 s.
    pub send_timeout: Duration,
    /// Deliveries leased per step: 50.
    pub batch: usize,
    /// How long delivered and failed deliveries are kept after their last
    /// attempt: 7 days (`VDI_WEBHOOK_RETENTION_DAYS`).
    pub retention: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            failing_after: 5,
            lease: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            batch: 50,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`th failed attempt (1 for the first),
    /// with `jitter` in `[0, 1)`: between half and all of the capped
    /// exponential delay.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(32);
        let base = self
            .first_delay
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.div_f64(2.0) + base.div_f64(2.0).mul_f64(jitter)
    }

    /// What follows an attempt at `now` of an event from `event_at`, after
    /// `failures` failed attempts (this one included when it failed).
    pub fn next(
        &self,
        succeeded: bool,
        event_at: Timestamp,
        now: Timestamp,
        failures: u32,
        jitter: f64,
    ) -> Next {
        if succeeded {
            return Next::Delivered;
        }
        let due = now.plus(self.delay(failures, jitter));
        if due.since(event_at) > self.give_up_after {
            Next::GiveUp
        } else {
            Next::RetryAt(due)
        }
    }

    /// The failing-endpoint rule for an acknowledgement that writes
    /// `entries` (the `webhook.failing` event) when it is reached.
    pub fn failing<'a>(&self, entries: &'a [OutboxEntry]) -> Failing<'a> {
        Failing {
            threshold: self.failing_after.max(1),
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn schedule_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(5));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(10));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(10));
        assert_eq!(p.delay(40, 1.0), Duration::from_secs(3600));
    }

    #[test]
    fn gives_up_after_the_window() {
        let p = RetryPolicy::default();
        let at = Timestamp(0);
        assert_eq!(p.next(true, at, at, 0, 0.5), Next::Delivered);
        let late = at.plus(Duration::from_secs(24 * 3600 - 1));
        assert_eq!(p.next(false, at, late, 3, 0.5), Next::GiveUp);
        assert!(matches!(p.next(false, at, at, 1, 0.5), Next::RetryAt(_)));
    }

    #[test]
    fn failing_is_reported_once_per_run() {
        let p = RetryPolicy::default();
        let failing = p.failing(&[]);
        let crossings: Vec<u32> = (0..20).filter(|n| failing.reached(*n)).collect();
        assert_eq!(crossings, vec![5]);
    }

    proptest! {
        #[test]
        fn delay_is_bounded_and_jitter_stays_within_half(
            failures in 1u32..200,
            jitter in 0.0f64..1.0,
            first_ms in 1u64..60_000,
            max_ms in 1u64..7_200_000,
        ) {
            let p = RetryPolicy {
                first_delay: Duration::from_millis(first_ms),
                max_delay: Duration::from_millis(max_ms),
                ..RetryPolicy::default()
            };
            let d = p.delay(failures, jitter);
            let cap = p.max_delay.min(
                p.first_delay.saturating_mul(1u32 << failures.saturating_sub(1).min(31)),
            );
            prop_assert!(d <= cap + Duration::from_nanos(1));
            prop_assert!(d + Duration::from_nanos(1) >= cap / 2);
            prop_assert!(d <= p.max_delay + Duration::from_nanos(1));
        }

        #[test]
        fn retries_never_pass_the_window(
            failures in 1u32..100,
            jitter in 0.0f64..1.0,
            elapsed_s in 0u64..200_000,
        ) {
            let p = RetryPolicy::default();
            let at = Timestamp(1_000);
            let now = at.plus(Duration::from_secs(elapsed_s));
            match p.next(false, at, now, failures, jitter) {
                Next::RetryAt(due) => {
                    prop_assert!(due > now);
                    prop_assert!(due.since(at) <= p.give_up_after);
                }
                Next::GiveUp => prop_assert!(now.plus(p.delay(failures, jitter)).since(at) > p.give_up_after),
                Next::Delivered => prop_assert!(false, "a failure is never delivered"),
            }
        }

        #[test]
        fn consecutive_failures_cross_the_threshold_once(threshold in 1u32..50, run in 0u32..200) {
            let p = RetryPolicy { failing_after: threshold, ..RetryPolicy::default() };
            let failing = p.failing(&[]);
            // The consecutive-failure count after each of `run` failures.
            let crossings = (1..=run).filter(|n| failing.reached(*n)).count();
            prop_assert_eq!(crossings, usize::from(run >= threshold));
        }
    }
}
