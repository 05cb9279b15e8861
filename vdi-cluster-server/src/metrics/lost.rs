//! `vdi_exam_lost_seconds`: per booked exam, a histogram of its students'
//! lost time from the disruption ledger, rebuilt at each scrape.
//!
//! **Bounded cardinality.** One series per booked exam not past its end
//! (the same exams as the other per-exam series), with a fixed set of
//! buckets; a student is one observation, not a label. Read from the
//! store, so every replica answers the same.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vdi_cluster_core::ledger::seconds;
use vdi_cluster_core::{ClusterService, ExamId};

/// Upper bounds of the buckets, seconds.
const BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ExamLabel {
    exam: String,
}

type LostFamily = Family<ExamLabel, Histogram, fn() -> Histogram>;

/// The lost-time histogram per booked exam.
#[derive(Debug)]
pub(super) struct LostMetrics {
    lost: LostFamily,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl LostMetrics {
    /// Registers `vdi_exam_lost_seconds`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let lost: LostFamily = Family::new_with_constructor(histogram);
        registry.register(
            "exam_lost_seconds",
            "Students' lost time per booked exam (the disruption ledger; students with lost time only)",
            lost.clone(),
        );
        Self { lost }
    }

    /// Rebuilds the series of `exams` (the booked exams of this scrape).
    pub(super) async fn refresh(&self, service: &ClusterService, exams: &[ExamId]) {
        let mut read = Vec::with_capacity(exams.len());
        for exam in exams {
            match service.exams().exam_ledger(exam, Default::default()).await {
                Ok(ledger) => read.push((exam, ledger)),
                Err(e) => tracing::debug!(exam = %exam, error = %e, "no ledger"),
            }
        }
        self.lost.clear();
        for (exam, ledger) in read {
            let h = self.lost.get_or_create(&ExamLabel {
                exam: exam.to_string(),
            });
            for s in &ledger.students {
                h.observe(seconds(s.lost_ms));
            }
        }
    }
}
