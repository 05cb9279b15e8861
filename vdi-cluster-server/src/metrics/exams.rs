//! Per-exam series, labelled `exam`, for booked exams only.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_exam_booked_students`, `vdi_exam_reserved_capacity` | gauge, read at scrape | `exam` |
//! | `vdi_exam_prewarm_machines` | gauge, read at scrape | `exam`, `state`: `target`, `ready`, `starting`, `failed`, `lost` |
//! | `vdi_exam_readiness_ratio` | gauge (0–1), read at scrape | `exam` |
//! | `vdi_exam_sessions_in_use` | gauge, read at scrape | `exam` |
//! | `vdi_exam_allocations` | counter, this replica's | `exam`, `outcome`: `placed`, `refused` |
//! | `vdi_exam_time_to_desktop_seconds` | gauge, this replica's | `exam`, `quantile`: `0.5`, `0.95` |
//! | `vdi_exam_lost_seconds` | histogram, read at scrape (`lost`) | `exam` |
//!
//! **Bounded cardinality.** Every scrape rebuilds the series from the
//! calendar: only exams booked and not past their teardown
//! (`endsAt + teardownSec`) have series; an exam's series disappear at the
//! first scrape after its teardown or cancellation.
//!
//! **Per replica.** Allocation counts and time-to-desktop are recorded by
//! the replica that answered the allocation, in a bounded histogram per
//! exam (buckets doubling from 25 ms to about 14 min; a quantile is the
//! upper bound of the bucket it falls in), for at most
//! [`MAX_TRACKED_EXAMS`] exams (the least recently used one is forgotten
//! first). Sum over replicas for a fleet-wide count; quantiles are not
//! summable.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vdi_cluster_core::service::AllocateOutcome;
use vdi_cluster_core::{ClusterService, ExamId};
use vdi_cluster_protocol::exams::AllocationFiguresJson;

use super::AllocationResult;

/// Most exams whose allocations a replica keeps figures for.
pub const MAX_TRACKED_EXAMS: usize = 1024;
/// Buckets of the time-to-desktop histogram.
const BUCKETS: usize = 16;
/// Upper bound of the first bucket, milliseconds; each next one doubles.
const FIRST_BUCKET_MS: u64 = 25;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ExamLabel {
    exam: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    exam: String,
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    exam: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QuantileLabel {
    exam: String,
    quantile: &'static str,
}

/// Time to desktop in fixed buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Latencies {
    counts: [u64; BUCKETS],
}

fn bucket_bound_ms(i: usize) -> u64 {
    FIRST_BUCKET_MS << i
}

impl Latencies {
    fn observe(&mut self, elapsed: Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let i = (0..BUCKETS)
            .find(|&i| ms <= bucket_bound_ms(i))
            .unwrap_or(BUCKETS - 1);
        self.counts[i] += 1;
    }

    /// The upper bound (ms) of the bucket holding quantile `q` (0–1).
    fn quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the quantile, at least the first sample.
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_bound_ms(i));
            }
        }
        Some(bucket_bound_ms(BUCKETS - 1))
    }
}

#[derive(Debug, Clone)]
struct ExamStats {
    placed: u64,
    refused: u64,
    latencies: Latencies,
    touched: Instant,
}

/// The per-exam series and this replica's allocation figures per exam.
#[derive(Debug)]
pub struct ExamMetrics {
    stats: Mutex<HashMap<ExamId, ExamStats>>,
    booked_students: Family<ExamLabel, Gauge>,
    reserved_capacity: Family<ExamLabel, Gauge>,
    prewarm: Family<StateLabel, Gauge>,
    readiness: Family<ExamLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    in_use: Family<ExamLabel, Gauge>,
    queued: Family<ExamLabel, Gauge>,
    queue_placed: Family<ExamLabel, Counter>,
    allocations: Family<OutcomeLabel, Counter>,
    time_to_desktop: Family<QuantileLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl ExamMetrics {
    /// Registers the per-exam series in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            stats: Mutex::new(HashMap::new()),
            booked_students: Family::default(),
            reserved_capacity: Family::default(),
            prewarm: Family::default(),
            readiness: Family::default(),
            in_use: Family::default(),
            queued: Family::default(),
            queue_placed: Family::default(),
            allocations: Family::default(),
            time_to_desktop: Family::default(),
        };
        registry.register(
            "exam_booked_students",
            "Students booked, per booked exam",
            m.booked_students.clone(),
        );
        registry.register(
            "exam_reserved_capacity",
            "Slots held for the exam now",
            m.reserved_capacity.clone(),
        );
        registry.register(
            "exam_prewarm_machines",
            "The exam's prewarmed machines by state, from the workers' heartbeats",
            m.prewarm.clone(),
        );
        registry.register(
            "exam_readiness_ratio",
            "Prewarmed machines ready / prewarm target",
            m.readiness.clone(),
        );
        registry.register(
            "exam_sessions_in_use",
            "The exam's sessions placed now",
            m.in_use.clone(),
        );
        registry.register(
            "exam_queued",
            "Students waiting in the exam's waiting room now",
            m.queued.clone(),
        );
        registry.register(
            "exam_queue_placed",
            "Students placed from the exam's waiting room, in total",
            m.queue_placed.clone(),
        );
        registry.register(
            "exam_allocations",
            "Allocations answered by this replica, per exam and outcome",
            m.allocations.clone(),
        );
        registry.register(
            "exam_time_to_desktop_seconds",
            "Time from allocate to the desktop's details on this replica (bucket upper bound)",
            m.time_to_desktop.clone(),
        );
        m
    }

    /// Records an allocation answered by this replica: a new placement
    /// counts as placed (its latency is the time to desktop), no capacity
    /// as refused; other answers are not exam figures.
    pub fn allocation(&self, exam: &ExamId, result: AllocationResult<'_>, elapsed: Duration) {
        let placed = match result {
            AllocationResult::Done(
                AllocateOutcome::Placed { .. } | AllocateOutcome::Redispatched { .. },
            ) => true,
            AllocationResult::NoCapacity => false,
            _ => return,
        };
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        if !stats.contains_key(exam) && stats.len() >= MAX_TRACKED_EXAMS {
            let oldest = stats
                .iter()
                .min_by_key(|(_, s)| s.touched)
                .map(|(e, _)| e.clone());
            if let Some(oldest) = oldest {
                stats.remove(&oldest);
            }
        }
        let entry = stats.entry(exam.clone()).or_insert_with(|| ExamStats {
            placed: 0,
            refused: 0,
            latencies: Latencies::default(),
            touched: Instant::now(),
        });
        entry.touched = Instant::now();
        if placed {
            entry.placed += 1;
            entry.latencies.observe(elapsed);
        } else {
            entry.refused += 1;
        }
    }

    /// This replica's allocation figures for `exam`.
    pub fn figures(&self, exam: &ExamId) -> AllocationFiguresJson {
        let stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats
            .get(exam)
            .map_or_else(AllocationFiguresJson::default, |s| AllocationFiguresJson {
                placed: s.placed,
                refused: s.refused,
                time_to_desktop_p50_ms: s.latencies.quantile_ms(0.5),
                time_to_desktop_p95_ms: s.latencies.quantile_ms(0.95),
            })
    }

    /// Rebuilds every series from the calendar: booked exams not past
    /// their teardown only. Answers those exams.
    pub async fn refresh(&self, service: &ClusterService) -> Vec<ExamId> {
        let now = service.clock().now();
        let calendar = match service.exams().exam_calendar(Some(now), None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape could not read the exam calendar");
                return Vec::new();
            }
        };
        let mut figures = Vec::new();
        for status in calendar.iter().filter(|s| now < s.exam.window().end) {
            match service.exams().exam_figures(&status.exam.id).await {
                Ok(f) => figures.push(f),
                Err(e) => tracing::debug!(exam = %status.exam.id, error = %e, "no figures"),
            }
        }
        self.clear();
        for f in &figures {
            let exam = f.status.exam.id.to_string();
            let label = ExamLabel { exam: exam.clone() };
            let gauge = |family: &Family<ExamLabel, Gauge>, v: u32| {
                family.get_or_create(&label).set(i64::from(v));
            };
            gauge(&self.booked_students, f.booked_students);
            gauge(&self.reserved_capacity, f.reserved_capacity);
            gauge(&self.in_use, f.sessions_in_use);
            gauge(&self.queued, f.queue.queued);
            self.queue_placed
                .get_or_create(&label)
                .inc_by(f.queue.placed_total);
            let r = &f.status.prewarm;
            for (state, v) in [
                ("target", r.target),
                ("ready", r.live.ready),
                ("starting", r.live.starting),
                ("failed", r.live.failed),
                ("lost", r.lost),
            ] {
                self.prewarm
                    .get_or_create(&StateLabel {
                        exam: exam.clone(),
                        state,
                    })
                    .set(i64::from(v));
            }
            self.readiness
                .get_or_create(&label)
                .set(f64::from(r.readiness_percent) / 100.0);
            let mine = self.figures(&f.status.exam.id);
            for (outcome, n) in [("placed", mine.placed), ("refused", mine.refused)] {
                self.allocations
                    .get_or_create(&OutcomeLabel {
                        exam: exam.clone(),
                        outcome,
                    })
                    .inc_by(n);
            }
            for (quantile, ms) in [
                ("0.5", mine.time_to_desktop_p50_ms),
                ("0.95", mine.time_to_desktop_p95_ms),
            ] {
                if let Some(ms) = ms {
                    self.time_to_desktop
                        .get_or_create(&QuantileLabel {
                            exam: exam.clone(),
                            quantile,
                        })
                        .set(ms as f64 / 1000.0);
                }
            }
        }
        let live: Vec<ExamId> = figures.iter().map(|f| f.status.exam.id.clone()).collect();
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|e, _| live.contains(e));
        live
    }

    fn clear(&self) {
        self.booked_students.clear();
        self.reserved_capacity.clear();
        self.prewarm.clear();
        self.readiness.clear();
        self.in_use.clear();
        self.queued.clear();
        self.queue_placed.clear();
        self.allocations.clear();
        self.time_to_desktop.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in [10, 20, 30, 40, 3000] {
            l.observe(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile_ms(0.5), Some(50));
        assert_eq!(l.quantile_ms(0.95), Some(3200));
        l.observe(Duration::from_secs(100_000));
        assert_eq!(l.quantile_ms(1.0), Some(bucket_bound_ms(BUCKETS - 1)));
    }

    #[test]
    fn only_placements_and_refusals_count_and_the_map_is_bounded() {
        let m = ExamMetrics::register(&mut Registry::default());
        let e = ExamId::parse("examId", "e").unwrap();
        m.allocation(&e, AllocationResult::NoCapacity, Duration::ZERO);
        m.allocation(&e, AllocationResult::Invalid, Duration::ZERO);
        let existing = AllocateOutcome::Existing;
        m.allocation(&e, AllocationResult::Done(&existing), Duration::ZERO);
        let f = m.figures(&e);
        assert_eq!(
            (f.placed, f.refused, f.time_to_desktop_p50_ms),
            (0, 1, None)
        );
        for i in 0..MAX_TRACKED_EXAMS + 5 {
            let exam = ExamId::parse("examId", format!("x{i}")).unwrap();
            m.allocation(&exam, AllocationResult::NoCapacity, Duration::ZERO);
        }
        assert_eq!(m.stats.lock().unwrap().len(), MAX_TRACKED_EXAMS);
    }
}
