//! Prewarm: the exams wing.

use vdi_cluster_core::DesktopSettings;
use vdi_cluster_core::exam::{Exam, ExamPatch};
use vdi_cluster_core::service::Booking;
use vdi_cluster_core::testkit::{exam, exam_network_policy};

use super::*;

/// Counts prewarm calls in flight.
#[derive(Debug, Default)]
struct CountingClient {
    in_flight: AtomicU32,
    peak: AtomicU32,
}

#[async_trait]
impl WorkerClient for CountingClient {
    async fn allocate(
        &self,
        _: &WorkerRecord,
        _: &SessionKey,
        _: &DesktopSettings,
    ) -> Result<serde_json::Value, WorkerCallError> {
        Ok(serde_json::Value::Null)
    }
    async fn release(&self, _: &WorkerRecord, _: &SessionKey) -> Result<(), WorkerCallError> {
        Ok(())
    }
    async fn prewarm(
        &self,
        _: &WorkerRecord,
        _: &ExamId,
        count: u32,
        _: &DesktopSettings,
    ) -> Result<u32, WorkerCallError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(count)
    }
    async fn discard_prewarm(&self, _: &WorkerRecord, _: &ExamId) -> Result<u32, WorkerCallError> {
        Ok(0)
    }
}

#[tokio::test(start_paused = true)]
async fn prewarm_splits_by_free_slots_with_bounded_concurrency() {
    let client = Arc::new(CountingClient::default());
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::new()),
        Arc::<CountingClient>::clone(&client),
    )
    .build();
    for i in 0..10 {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(&format!("w{i}"), 10 + i, 0))
            .await
            .unwrap();
    }
    let exam = ExamId::parse("examId", "exam").unwrap();
    let report = svc
        .exams()
        .prewarm(exam.clone(), 500, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (report.requested, report.planned, report.started),
        (500, 80, 80),
        "VDI_PREWARM_MAX caps it"
    );
    assert_eq!(report.shares.len(), 10);
    assert!(
        client.peak.load(Ordering::SeqCst) <= 4,
        "VDI_PREWARM_CONCURRENCY"
    );
    let small = svc
        .exams()
        .prewarm(exam, 3, Default::default())
        .await
        .unwrap();
    assert_eq!(small.started, 3);
    assert!(
        matches!(svc.exams().prewarm(ExamId::parse("examId", "x").unwrap(), 0, Default::default()).await, Err(Error::Invalid(e)) if e.field == "count")
    );
}

/// An exam booked with a network policy: its allocations and its prewarm
/// carry it to the worker; an exam not booked carries none; a PATCH
/// removing it stops sending it.
#[tokio::test]
async fn an_exams_network_policy_rides_with_its_allocations_and_prewarm() {
    let h = harness(|_| {});
    h.beat("w1", 8, 0).await;
    let starts_at = START.plus(Duration::from_secs(7200));
    let booked = Exam {
        network_policy: Some(exam_network_policy()),
        ..exam("math", starts_at, 60, 4)
    };
    let booking = h.svc.exams().book_exam(booked, "admin").await.unwrap();
    assert!(matches!(booking, Booking::Accepted(_)), "{booking:?}");
    let expected = DesktopSettings {
        network_policy: Some(exam_network_policy()),
    };

    h.place("math", "s1").await;
    assert_eq!(
        h.workers.session_settings(&key("math", "s1")),
        Some(expected.clone())
    );
    let math = ExamId::parse("examId", "math").unwrap();
    h.svc
        .exams()
        .prewarm(math.clone(), 2, Default::default())
        .await
        .unwrap();
    assert_eq!(h.workers.prewarm_settings(&math), Some(expected));

    h.place("unbooked", "s1").await;
    assert_eq!(
        h.workers.session_settings(&key("unbooked", "s1")),
        Some(DesktopSettings::default())
    );

    let patch = ExamPatch {
        network_policy: Some(None),
        ..Default::default()
    };
    h.svc
        .exams()
        .update_exam(&math, &patch, "admin")
        .await
        .unwrap();
    h.place("math", "s2").await;
    assert_eq!(
        h.workers.session_settings(&key("math", "s2")),
        Some(DesktopSettings::default())
    );
}
