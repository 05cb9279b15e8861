//! Timed prewarm: when a booked exam's lead before its start begins, the
//! leader replica prewarms its machines across the eligible workers (the
//! same planner as a manual prewarm).

use super::Exams;
use super::prewarm::PrewarmReport;
use crate::calendar::CalendarWrite;
use crate::error::Result;
use crate::ids::ExamId;

impl Exams {
    /// Starts the prewarm of every booked exam that is due at this instant
    /// ([`Exam::prewarm_due`](crate::Exam::prewarm_due)). Each exam is first
    /// marked started with a compare-and-set on the calendar, so that
    /// among replicas and passes exactly one prewarms it; then prewarmed,
    /// and the prewarm is audited (actor `system`). A calendar that changed
    /// meanwhile is left to the next call. Returns what each started
    /// prewarm did.
    pub async fn start_due_prewarms(&self) -> Result<Vec<(ExamId, PrewarmReport)>> {
        let now = self.shared.clock.now();
        let mut started = Vec::new();
        loop {
            let calendar = self.shared.store.exam_calendar().await?;
            let Some((exam, machines)) = calendar
                .exams
                .iter()
                .find_map(|e| e.prewarm_due(now).map(|n| (e, n)))
            else {
                return Ok(started);
            };
            let mut marked = exam.clone();
            marked.prewarm_started_at = Some(now);
            match self.placement.put_exam(&marked, calendar.version).await? {
                CalendarWrite::Written { .. } => {}
                CalendarWrite::Conflict { .. } => return Ok(started),
            }
            tracing::info!(exam = %exam.id, machines, "starting the timed prewarm");
            let report = self
                .prewarm(exam.id.clone(), machines, exam.constraints.clone())
                .await?;
            let detail = serde_json::to_value(&report).unwrap_or_default();
            self.shared
                .audit("system", "prewarm", exam.id.as_str(), detail)
                .await?;
            started.push((exam.id.clone(), report));
        }
    }
}
