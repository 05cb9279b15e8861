//! How long the heartbeat agent waits: the interval the control plane
//! asks for (`nextHeartbeatSec`), within bounds, and the exponential
//! backoff with jitter while calls fail.

use std::time::Duration;

/// Shortest wait between two heartbeats, whatever an answer asks.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait between two heartbeats, whatever an answer asks.
pub const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3600);

/// The wait an answer asks for (`nextHeartbeatSec`), within
/// [`MIN_HEARTBEAT_INTERVAL`] and [`MAX_HEARTBEAT_INTERVAL`]; `default`
/// when it asks for nothing usable.
pub fn next_interval(asked_sec: f64, default: Duration) -> Duration {
    if asked_sec.is_finite() && asked_sec > 0.0 {
        Duration::from_secs_f64(asked_sec.min(MAX_HEARTBEAT_INTERVAL.as_secs_f64()))
            .max(MIN_HEARTBEAT_INTERVAL)
    } else {
        default
    }
}

/// The base of the backoff for a heartbeat `interval`: the interval, at
/// most one second, at least [`MIN_HEARTBEAT_INTERVAL`].
pub fn backoff_base(interval: Duration) -> Duration {
    interval
        .min(Duration::from_secs(1))
        .max(MIN_HEARTBEAT_INTERVAL)
}

/// The exponential backoff after `failures` consecutive failures (1 or
/// more): `base · 2^(failures-1)`, capped by `cap`, then a uniformly random
/// share of it between one half and all of it.
pub fn backoff(failures: u32, base: Duration, cap: Duration, unit_random: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let grown = base.saturating_mul(1u32 << exponent).min(cap);
    let share = 0.5 + 0.5 * unit_random.clamp(0.0, 1.0);
    grown.mul_f64(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, base, cap, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(4, base, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(20, base, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, base, cap, 0.0), Duration::from_secs(30));
        let jittered = backoff(3, base, cap, 0.5);
        assert!(jittered > Duration::from_secs(2) && jittered < Duration::from_secs(4));
    }

    #[test]
    fn the_asked_interval_is_bounded() {
        let default = Duration::from_secs(20);
        assert_eq!(next_interval(5.0, default), Duration::from_secs(5));
        assert_eq!(next_interval(0.001, default), MIN_HEARTBEAT_INTERVAL);
        assert_eq!(next_interval(1e9, default), MAX_HEARTBEAT_INTERVAL);
        assert_eq!(next_interval(f64::NAN, default), default);
        assert_eq!(next_interval(0.0, default), default);
        assert_eq!(
            backoff_base(Duration::from_secs(20)),
            Duration::from_secs(1)
        );
        assert_eq!(backoff_base(Duration::ZERO), MIN_HEARTBEAT_INTERVAL);
    }
}
