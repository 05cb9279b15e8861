use std::time::Duration;

use super::*;

fn sample(millis: u32, in_flight: u32) -> StartSample {
    StartSample { millis, in_flight }
}

/// Starts on a node whose start time is `base × (1 + k × in_flight)`.
fn storm(base: u32, k: f64, levels: &[u32]) -> Vec<StartSample> {
    levels
        .iter()
        .map(|&n| sample((f64::from(base) * (1.0 + k * f64::from(n))) as u32, n))
        .collect()
}

#[test]
fn the_default_is_a_quarter_of_the_slots_between_one_and_eight() {
    assert_eq!(default_concurrency(0), 1);
    assert_eq!(default_concurrency(4), 1);
    assert_eq!(default_concurrency(5), 2);
    assert_eq!(default_concurrency(18), 5);
    assert_eq!(default_concurrency(200), MAX_DEFAULT_CONCURRENCY);
}

#[test]
fn percentiles_are_nearest_rank() {
    let samples: Vec<_> = (1..=100).map(|i| sample(i * 10, 1)).collect();
    let stats = start_stats(&samples);
    assert_eq!((stats.count, stats.p50_ms, stats.p95_ms), (100, 500, 950));
    assert_eq!(start_stats(&[]), StartStats::default());
}

#[test]
fn few_samples_keep_the_configured_limit() {
    let samples = storm(2_000, 0.5, &[10, 10, 10]);
    assert_eq!(start_limit(6, &samples, Duration::from_secs(5)), 6);
}

#[test]
fn a_storm_is_paced_to_what_keeps_starts_within_the_target() {
    // 2 s × (1 + 0.25 n): within 6 s while n <= 8.
    let samples = storm(2_000, 0.25, &[1, 4, 8, 12, 16, 20, 24]);
    assert_eq!(start_limit(40, &samples, Duration::from_secs(6)), 8);
    assert_eq!(start_limit(5, &samples, Duration::from_secs(6)), 5);
    assert_eq!(start_limit(40, &samples, Duration::from_millis(100)), 1);
}

#[test]
fn flat_starts_over_the_target_scale_down() {
    let samples = vec![sample(12_000, 4); 10];
    assert_eq!(start_limit(8, &samples, Duration::from_secs(6)), 2);
    let quick = vec![sample(1_000, 4); 10];
    assert_eq!(start_limit(8, &quick, Duration::from_secs(6)), 8);
}

#[test]
fn the_estimate_counts_rounds_of_the_limit() {
    let now = Timestamp(100_000);
    let samples = vec![sample(4_000, 2); 10];
    let queue = StartQueue {
        held: vec![
            HeldPermit {
                id: "a".into(),
                since: Timestamp(99_000),
            },
            HeldPermit {
                id: "b".into(),
                since: Timestamp(97_000),
            },
        ],
        waiting: vec!["c".into(), "d".into(), "e".into()],
        samples,
    };
    let est = |p| estimate_ready(&queue, Some(p), None, 2, now);
    // c takes b's permit in 1 s, d a's in 3 s, e c's in 1 + 4 s; each
    // then starts for 4 s.
    assert_eq!(est(0), Duration::from_secs(5));
    assert_eq!(est(1), Duration::from_secs(7));
    assert_eq!(est(2), Duration::from_secs(9));
    assert_eq!(queue.position("d"), Some(1));
    let held = estimate_ready(&queue, None, queue.held_since("a"), 2, now);
    assert_eq!(held, Duration::from_secs(3));
    // A free permit is taken at once.
    assert_eq!(
        estimate_ready(&queue, Some(0), None, 3, now),
        Duration::from_secs(4)
    );
}
