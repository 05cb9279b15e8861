//! The demo's booked exam: `demo-exam`, booked right after the workers
//! join, sized to the fleet's schedulable capacity, starting
//! [`DEMO_EXAM_STARTS_IN`] ahead with a prewarm lead longer than that, so
//! the leader's tick prewarms it at once and its readiness climbs to
//! 100 % as the workers report their pools.

use std::time::Duration;

use vdi_cluster_core::exam::{Capacity, Exam, Prewarm, PrewarmTarget, format_rfc3339};
use vdi_cluster_core::scheduler::Constraints;
use vdi_cluster_core::service::Booking;
use vdi_cluster_core::{ClusterService, Error, ExamId, Timestamp};

/// The demo exam's id.
pub const DEMO_EXAM: &str = "demo-exam";
/// How far ahead of the demo's start the exam starts.
pub const DEMO_EXAM_STARTS_IN: Duration = Duration::from_secs(5 * 60);
/// Its length.
pub const DEMO_EXAM_LENGTH: Duration = Duration::from_secs(60 * 60);
/// Its prewarm lead: longer than [`DEMO_EXAM_STARTS_IN`], so the prewarm
/// is due as soon as it is booked.
pub const DEMO_EXAM_LEAD_SEC: u32 = 600;
/// Share of its students whose machines are prewarmed.
pub const DEMO_EXAM_PREWARM_PERCENT: u32 = 50;

/// What the banner says about the demo exam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoExam {
    /// One line: booked (with its size and times), already booked, or why
    /// not.
    pub summary: String,
}

/// Books [`DEMO_EXAM`] for as many students as the fleet can take (the
/// library's schedulable capacity, headroom off), the waiting room on.
pub async fn book(service: &ClusterService) -> DemoExam {
    let summary = match try_book(service).await {
        Ok(Booking::Accepted(status)) => {
            let e = &status.exam;
            format!(
                "{} students, {} to {}, {} machines prewarming now, waiting room on",
                e.students,
                format_rfc3339(e.starts_at),
                format_rfc3339(e.ends_at),
                status.prewarm.target
            )
        }
        Ok(Booking::Refused(r)) => format!(
            "not booked: {} students short at {}",
            r.shortfall.missing,
            format_rfc3339(r.shortfall.at)
        ),
        Err(Error::ExamExists(_)) => "already booked in this store".to_owned(),
        Err(e) => format!("not booked: {e}"),
    };
    DemoExam { summary }
}

async fn try_book(service: &ClusterService) -> Result<Booking, Error> {
    let views = service.worker_views().await?;
    let students = Capacity::of_workers(&views, service.config().exam_headroom_percent)
        .slots_for(&Constraints::default())
        .max(1);
    // Whole seconds, so the banner's times read plainly.
    let now = service.clock().now().as_millis();
    let starts_at = Timestamp::from_millis(now - now % 1000).plus(DEMO_EXAM_STARTS_IN);
    let exam = Exam {
        id: ExamId::parse("examId", DEMO_EXAM)?,
        name: "Demo exam".to_owned(),
        starts_at,
        ends_at: starts_at.plus(DEMO_EXAM_LENGTH),
        students,
        constraints: Constraints::default(),
        prewarm: Prewarm {
            target: PrewarmTarget::Percent(DEMO_EXAM_PREWARM_PERCENT),
            lead_sec: DEMO_EXAM_LEAD_SEC,
        },
        teardown_sec: vdi_cluster_core::exam::DEFAULT_TEARDOWN_SEC,
        queue: true,
        booked_by: String::new(),
        booked_at: starts_at,
        updated_at: starts_at,
        prewarm_started_at: None,
        prewarm_marks: Default::default(),
    };
    service.book_exam(exam, "demo").await
}

/// The banner's lines about the demo exam, with `curl` lines for its
/// readiness and the calendar.
pub fn banner(url: &str, exam: &DemoExam) -> String {
    format!(
        "\nA booked exam: {DEMO_EXAM}: {}\n\n  \
         curl -s {url}/api/vdi/exams/{DEMO_EXAM} -H \"authorization: Bearer $TOKEN\"   # readiness, figures\n  \
         curl -s {url}/api/vdi/exams -H \"authorization: Bearer $TOKEN\"   # the calendar\n",
        exam.summary
    )
}
