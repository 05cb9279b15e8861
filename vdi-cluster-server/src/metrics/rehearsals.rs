//! Rehearsals per booked exam, read at each scrape from the stored
//! records (so every replica exports the same figures): the go / no-go
//! verdict as the report answers it now, and the workers by the outcome
//! of their last check.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_exam_rehearsal_go` | gauge, read at scrape: 1 go, 0 no-go | `exam` |
//! | `vdi_exam_rehearsal_workers` | gauge, read at scrape | `exam`, `outcome`: `ok`, `slow`, `imageMissing`, `failed` (every outcome, zeros included) |
//! | `vdi_exam_rehearsal_missing_students` | gauge, read at scrape: students the exam could not place at its peak without its failing workers | `exam` |
//!
//! **Bounded cardinality.** Only the booked exams of the scrape (not past
//! their teardown, as the other per-exam series) that were rehearsed have
//! series; an exam never rehearsed has none. `vdi_exam_rehearsal_go == 0`
//! is the alert `VdiExamRehearsalNoGo`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vdi_cluster_core::rehearsal::{Outcome, Verdict};
use vdi_cluster_core::service::RehearsalReport;
use vdi_cluster_core::{ClusterService, ExamId};

/// Every outcome, in the report's order.
const OUTCOMES: [Outcome; 4] = [
    Outcome::Ok,
    Outcome::Slow,
    Outcome::ImageMissing,
    Outcome::Failed,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ExamLabel {
    exam: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    exam: String,
    outcome: &'static str,
}

/// The rehearsal series.
#[derive(Debug, Clone, Default)]
pub(super) struct RehearsalSeries {
    go: Family<ExamLabel, Gauge>,
    workers: Family<OutcomeLabel, Gauge>,
    missing: Family<ExamLabel, Gauge>,
}

impl RehearsalSeries {
    /// Registers the series in `registry` (prefixed `vdi_`).
    pub(super) fn register(registry: &mut Registry) -> Self {
        let series = Self::default();
        registry.register(
            "exam_rehearsal_go",
            "1 when the exam's last rehearsal says go, 0 for no-go",
            series.go.clone(),
        );
        registry.register(
            "exam_rehearsal_workers",
            "Workers of the exam's last rehearsal by the outcome of their last check",
            series.workers.clone(),
        );
        registry.register(
            "exam_rehearsal_missing_students",
            "Students the exam could not place at its peak without the workers its rehearsal left out",
            series.missing.clone(),
        );
        series
    }

    /// Rebuilds the series of `exams` (the booked exams of this scrape);
    /// leaves them as they were when the store cannot be read
    /// (`vdi_backend_up` says so).
    pub(super) async fn refresh(&self, service: &ClusterService, exams: &[ExamId]) {
        match service.exams().rehearsal_reports(exams).await {
            Ok(reports) => self.set(&reports),
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape could not read the rehearsals");
            }
        }
    }

    /// Sets the series to `reports`, and only them.
    fn set(&self, reports: &[RehearsalReport]) {
        self.go.clear();
        self.workers.clear();
        self.missing.clear();
        for r in reports {
            let exam = r.rehearsal.exam_id.to_string();
            let label = ExamLabel { exam: exam.clone() };
            self.go
                .get_or_create(&label)
                .set(i64::from(r.report.verdict == Verdict::Go));
            self.missing
                .get_or_create(&label)
                .set(i64::from(r.report.missing));
            for outcome in OUTCOMES {
                let n = r
                    .rehearsal
                    .workers
                    .iter()
                    .filter(|c| c.outcome == outcome)
                    .count();
                self.workers
                    .get_or_create(&OutcomeLabel {
                        exam: exam.clone(),
                        outcome: outcome.name(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}
