//! Latency recording (HdrHistogram, microseconds) and throughput summaries.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a histogram records exactly (60 s); longer ones are
/// clamped to it.
const MAX_MICROS: u64 = 60_000_000;

/// Latencies of one kind of operation, in microseconds, with 3
/// significant digits.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl fmt::Debug for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latencies")
            .field("count", &self.0.len())
            .finish()
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty recorder.
    pub fn new() -> Self {
        Self(Histogram::new_with_max(MAX_MICROS, 3).expect("valid histogram bounds"))
    }

    /// Records one operation that took `d`.
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("histograms share bounds");
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0.0–1.0).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.0.value_at_quantile(q))
    }

    /// The largest latency recorded.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.0.max())
    }

    /// Count, rate over `elapsed` and the usual percentiles.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        Summary {
            count: self.count(),
            elapsed,
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: self.max(),
        }
    }
}

/// Throughput and latency of one measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Operations completed.
    pub count: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest latency.
    pub max: Duration,
}

impl Summary {
    /// Operations per second over the phase.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.count as f64 / secs
        } else {
            0.0
        }
    }
}

/// `d` in milliseconds with two decimals (`1.25 ms`).
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The median of `values` (the lower middle one for an even count); `None`
/// when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[(v.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rate() {
        let mut l = Latencies::new();
        for i in 1..=100u64 {
            l.record(Duration::from_millis(i));
        }
        let s = l.summary(Duration::from_secs(2));
        assert_eq!(s.count, 100);
        assert!((s.rate() - 50.0).abs() < 1e-9);
        assert!(s.p50 >= Duration::from_millis(49) && s.p50 <= Duration::from_millis(51));
        assert!(s.max >= Duration::from_millis(99));
        let mut m = Latencies::new();
        m.merge(&l);
        assert_eq!(m.count(), 100);
    }

    #[test]
    fn median_of_runs() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
    }
}
