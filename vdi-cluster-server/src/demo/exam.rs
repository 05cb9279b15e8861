//! The demo's booked exam: `demo-exam`, booked right after the workers
//! join, sized to the fleet's schedulable capacity, starting
//! [`DEMO_EXAM_STARTS_IN`] ahead with a prewarm lead longer than that, so
//! the leader's tick prewarms it at once and its readiness climbs to
//! 100 % as the workers report their pools. One student,
//! [`DEMO_EXTENDED_STUDENT`], is booked with [`DEMO_EXTRA_SEC`] of extra
//! time: their desktop outlives the exam's end by that much.

use std::time::Duration;

use vdi_cluster_core::exam::{
    Capacity, Exam, Prewarm, PrewarmTarget, StudentExtra, format_rfc3339,
};
use vdi_cluster_core::scheduler::Constraints;
use vdi_cluster_core::service::Booking;
use vdi_cluster_core::{ClusterService, Error, ExamId, Timestamp, UserId};

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
/// The student booked with extra time (a known accommodation).
pub const DEMO_EXTENDED_STUDENT: &str = "student-2";
/// Their extra time: 30 minutes.
pub const DEMO_EXTRA_SEC: u32 = 1_800;

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
                "{} students, {} to {}, {} machines prewarming now, waiting room on; \
                 {DEMO_EXTENDED_STUDENT} ends {} min later",
                e.students,
                format_rfc3339(e.starts_at),
                format_rfc3339(e.ends_at),
                status.prewarm.target,
                DEMO_EXTRA_SEC / 60
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
    let views = service.fleet().worker_views().await?;
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
        network_policy: None,
        extensions: vec![StudentExtra {
            user_id: UserId::parse("userId", DEMO_EXTENDED_STUDENT)?,
            extra_sec: DEMO_EXTRA_SEC,
        }],
        extra_time: Vec::new(),
        expiry_warned_through: None,
    };
    service.exams().book_exam(exam, "demo").await
}

/// The banner's lines about the demo exam: `curl` lines for its readiness
/// and the calendar, and for its waiting room: `slots` is the fleet's
/// size, so a loop of a few more students than that fills it and the last
/// ones are queued (202 with a position).
pub fn banner(url: &str, exam: &DemoExam, slots: u32) -> String {
    let auth = "-H \"authorization: Bearer $TOKEN\"";
    let service = "-H \"authorization: Bearer $SERVICE_TOKEN\"";
    let students = slots + 5;
    format!(
        "\nA booked exam: {DEMO_EXAM}: {summary}\n\n  \
         curl -s {url}/api/vdi/exams/{DEMO_EXAM} {auth}   # readiness, figures\n  \
         curl -s {url}/api/vdi/exams {auth}   # the calendar\n\n\
         Its waiting room: {students} students for {slots} slots; the last ones answer 202 with a position:\n\n  \
         for i in $(seq 1 {students}); do curl -s -o /dev/null -w '%{{http_code}} ' -X POST {url}/api/vdi/sessions {service} \\\n       \
         -H 'content-type: application/json' -d \"{{\\\"examId\\\":\\\"{DEMO_EXAM}\\\",\\\"userId\\\":\\\"student-$i\\\"}}\"; done; echo\n  \
         curl -s {url}/api/vdi/sessions/{DEMO_EXAM}/student-{students} {service}   # state: queued, position\n  \
         curl -s {url}/api/vdi/exams/{DEMO_EXAM}/queue {auth}   # who waits, in order\n  \
         curl -s -X DELETE {url}/api/vdi/sessions/{DEMO_EXAM}/student-1 {service}   # a slot frees: the head is placed\n\n\
         A student's own end: {DEMO_EXTENDED_STUDENT} was booked with {extra} min more; give student-3 ten minutes:\n\n  \
         curl -s -X PATCH {url}/api/vdi/sessions/{DEMO_EXAM}/student-3 {auth} \\\n       \
         -H 'content-type: application/json' -d '{{\"extendSec\":600,\"reason\":\"desktop froze\"}}'   # endsAt 10 min later\n\n\
         A disruption: free a few slots, take student-2's worker out; student-2 comes back, is moved, and the ledger counts the time lost:\n\n  \
         for i in $(seq 3 30); do curl -s -o /dev/null -X DELETE {url}/api/vdi/sessions/{DEMO_EXAM}/student-$i {service}; done\n  \
         W=$(curl -s {url}/api/vdi/sessions/{DEMO_EXAM}/student-2 {service} | sed -n 's/.*\"workerCode\":\"\\([^\"]*\\)\".*/\\1/p')\n  \
         curl -s -X PATCH {url}/api/vdi/workers/$W {auth} -H 'content-type: application/json' \\\n       \
         -d '{{\"isEnabled\":false,\"force\":true,\"reason\":\"host failure\"}}'\n  \
         curl -s -X POST {url}/api/vdi/sessions {service} -H 'content-type: application/json' \\\n       \
         -d '{{\"examId\":\"{DEMO_EXAM}\",\"userId\":\"student-2\"}}'   # outcome: redispatched\n  \
         curl -s {url}/api/vdi/sessions/{DEMO_EXAM}/student-2 {service}   # disruptions: moved, lostSec\n  \
         curl -s '{url}/api/vdi/exams/{DEMO_EXAM}/disruptions?format=csv' {auth}   # the exam's lost time as CSV\n",
        summary = exam.summary,
        extra = DEMO_EXTRA_SEC / 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vdi_cluster_core::MemoryStore;
    use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots};

    use super::*;

    #[tokio::test]
    async fn the_demo_exam_is_sized_to_the_fleet_and_due_for_prewarm_at_once() {
        let service = ClusterService::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(SimulatedWorkers::new()),
        )
        .build();
        for (code, slots) in [("w1", 4), ("w2", 10), ("w3", 20)] {
            service
                .fleet()
                .heartbeat(heartbeat_with_slots(code, slots, 0))
                .await
                .unwrap();
        }
        let booked = book(&service).await;
        assert!(booked.summary.starts_with("30 students"), "{booked:?}");
        let calendar = service.exams().exam_calendar(None, None).await.unwrap();
        let exam = &calendar[0].exam;
        assert!(exam.queue);
        assert_eq!(exam.prewarm_due(service.clock().now()), Some(15));

        let again = book(&service).await;
        assert_eq!(again.summary, "already booked in this store");
        let text = banner("http://127.0.0.1:8080", &booked, 34);
        assert!(text.contains("$(seq 1 39)"), "{text}");
        assert!(text.contains("/api/vdi/exams/demo-exam/queue"), "{text}");
        assert!(
            text.contains("/api/vdi/sessions/demo-exam/student-3"),
            "{text}"
        );
        assert_eq!(
            exam.extra_sec_of(&UserId::parse("userId", "student-2").unwrap()),
            1_800
        );
    }
}
