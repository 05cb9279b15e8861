//! Paced starts: a start waits for its worker's permit, a booked exam's
//! student is answered `Starting` meanwhile, and prewarm shares the
//! permits.

use std::sync::Mutex;

use vdi_cluster_core::DesktopSettings;
use vdi_cluster_core::pacing::{PermitAnswer, StartPermits};
use vdi_cluster_core::service::{Booking, SessionRequest, SessionState};
use vdi_cluster_core::testkit::{Behaviour, exam};

use super::*;

const BOUND: Duration = Duration::from_secs(20);

fn paced(config: &mut ServiceConfig) {
    config.pacing.enabled = true;
    config.pacing.poll = Duration::from_millis(10);
}

impl Harness {
    /// A heartbeat of a worker configured for `starts` starts at once.
    async fn beat_paced(&self, code: &str, slots: u32, starts: u32) {
        let mut hb = heartbeat_with_slots(code, slots, 0);
        hb.max_concurrent_starts = Some(starts);
        self.beat_with(hb, "boot-1").await;
    }

    async fn book(&self, id: &str) {
        let starts_at = START.plus(Duration::from_secs(7200));
        let booking = self
            .svc
            .exams()
            .book_exam(exam(id, starts_at, 60, 4), "admin")
            .await
            .unwrap();
        assert!(matches!(booking, Booking::Accepted(_)), "{booking:?}");
    }

    /// Waits until `n` start permits are held on `code`.
    async fn until_held(&self, code: &str, n: usize) {
        let held = async {
            while self
                .store
                .start_queue(&wid(code), START)
                .await
                .unwrap()
                .held
                .len()
                != n
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(BOUND, held)
            .await
            .expect("permits held");
    }

    /// Waits until the session reads as placed.
    async fn until_placed(&self, exam: &str, user: &str) {
        let placed = async {
            loop {
                match self.svc.placement().session_state(&key(exam, user)).await {
                    Ok(SessionState::Placed(_)) => return,
                    Ok(SessionState::Starting(_)) => {}
                    other => panic!("{other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(BOUND, placed).await.expect("placed");
    }
}

/// One start at a time on the worker: while the first student's desktop
/// starts, the second is answered `Starting` with the worker and an
/// estimate, reads as starting, and is placed once the permit frees.
#[tokio::test]
async fn a_booked_exams_student_is_answered_starting_while_the_permit_is_taken() {
    let h = Arc::new(harness(paced));
    h.beat_paced("w1", 8, 1).await;
    h.book("math").await;
    h.workers
        .set_behaviour(&wid("w1"), Behaviour::Slow(Duration::from_millis(300)));

    let first = {
        let h = Arc::clone(&h);
        tokio::spawn(async move {
            h.svc
                .placement()
                .request_session_paced(key("math", "s1"), Default::default(), false)
                .await
        })
    };
    h.until_held("w1", 1).await;
    let second = h
        .svc
        .placement()
        .request_session_paced(key("math", "s2"), Default::default(), false)
        .await
        .unwrap();
    let SessionRequest::Starting(starting) = second else {
        panic!("{second:?}");
    };
    assert_eq!(starting.worker, wid("w1"));
    assert_eq!(starting.position, Some(0));
    assert!(starting.estimated_ready > Duration::ZERO);
    let again = h
        .svc
        .placement()
        .session_state(&key("math", "s2"))
        .await
        .unwrap();
    assert!(
        matches!(again, SessionState::Starting(ref s) if s.worker == wid("w1")),
        "{again:?}"
    );
    let repeated = h
        .svc
        .placement()
        .request_session_paced(key("math", "s2"), Default::default(), false)
        .await
        .unwrap();
    assert!(
        matches!(repeated, SessionRequest::Starting(_)),
        "{repeated:?}"
    );

    let first = tokio::time::timeout(BOUND, first)
        .await
        .expect("first answers");
    assert!(matches!(first.unwrap().unwrap(), SessionRequest::Placed(_)));
    h.until_placed("math", "s2").await;
    let queue = h.store.start_queue(&wid("w1"), START).await.unwrap();
    assert!(
        queue.held.is_empty() && queue.waiting.is_empty(),
        "{queue:?}"
    );
    assert_eq!(queue.samples.len(), 2, "each start leaves its sample");
}

/// An exam that is not booked keeps its synchronous answer (the start
/// waits for its permit inside the request) unless the client asks for
/// the asynchronous one.
#[tokio::test]
async fn an_unbooked_exam_answers_synchronously_unless_asked() {
    let h = Arc::new(harness(paced));
    h.beat_paced("w1", 8, 1).await;
    h.workers
        .set_behaviour(&wid("w1"), Behaviour::Slow(Duration::from_millis(200)));
    let first = {
        let h = Arc::clone(&h);
        tokio::spawn(async move {
            h.svc
                .placement()
                .request_session_paced(key("free", "s1"), Default::default(), false)
                .await
        })
    };
    h.until_held("w1", 1).await;
    let asked = h
        .svc
        .placement()
        .request_session_paced(key("free", "s2"), Default::default(), true)
        .await
        .unwrap();
    assert!(matches!(asked, SessionRequest::Starting(_)), "{asked:?}");
    let waited = tokio::time::timeout(
        BOUND,
        h.svc
            .placement()
            .request_session_paced(key("free", "s3"), Default::default(), false),
    )
    .await
    .expect("answers")
    .unwrap();
    assert!(matches!(waited, SessionRequest::Placed(_)), "{waited:?}");
    assert!(matches!(
        first.await.unwrap().unwrap(),
        SessionRequest::Placed(_)
    ));
    h.until_placed("free", "s2").await;
}

/// Records, at each prewarm call, how many permits its worker holds.
#[derive(Debug)]
struct PermitWatch {
    store: MemoryStore,
    calls: Mutex<Vec<(u32, usize)>>,
}

#[async_trait]
impl WorkerClient for PermitWatch {
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
        worker: &WorkerRecord,
        _: &ExamId,
        count: u32,
        _: &DesktopSettings,
    ) -> Result<u32, WorkerCallError> {
        let held = self
            .store
            .start_queue(&worker.id, START)
            .await
            .unwrap()
            .held
            .len();
        self.calls.lock().unwrap().push((count, held));
        Ok(count)
    }
    async fn discard_prewarm(&self, _: &WorkerRecord, _: &ExamId) -> Result<u32, WorkerCallError> {
        Ok(0)
    }
}

/// Prewarm takes the same permits: a worker that may start two at once
/// gets its five machines two at a time, never with more permits held.
#[tokio::test]
async fn prewarm_takes_the_same_permits() {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let watch = Arc::new(PermitWatch {
        store: store.clone(),
        calls: Mutex::default(),
    });
    let mut config = ServiceConfig {
        snapshot_max_age: Duration::ZERO,
        // Machines hold their permits for the lease: twice this.
        worker_call_timeout: Duration::from_millis(50),
        ..ServiceConfig::default()
    };
    paced(&mut config);
    let svc = ClusterService::builder(Arc::new(store.clone()), Arc::clone(&watch) as _)
        .config(config)
        .clock(Arc::new(clock))
        .build();
    let mut hb = heartbeat_with_slots("w1", 8, 0);
    hb.max_concurrent_starts = Some(2);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("boot-1".into()),
        seq: Some(1),
    };
    svc.fleet().heartbeat(hb).await.unwrap();
    let exam = ExamId::parse("examId", "math").unwrap();
    let report = tokio::time::timeout(BOUND, svc.exams().prewarm(exam, 5, Default::default()))
        .await
        .expect("prewarm ends")
        .unwrap();
    assert_eq!(report.started, 5, "{report:?}");
    let calls = watch.calls.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|c| c.0).sum::<u32>(), 5);
    assert!(
        calls.iter().all(|&(count, held)| count <= 2 && held <= 2),
        "{calls:?}"
    );
}

/// A student who leaves while their start waits for its permit is started
/// nowhere: once the permit comes, the start finds its reservation gone,
/// gives the permit back without calling the worker, and is not placed on
/// another worker that has room meanwhile.
#[tokio::test]
async fn a_start_released_while_it_waits_is_not_placed_elsewhere() {
    let h = Arc::new(harness(paced));
    h.beat_paced("w1", 8, 1).await;
    h.book("math").await;
    // Another start holds w1's only permit.
    let until = START.plus(Duration::from_secs(600));
    let held = h
        .store
        .acquire_start_permit(&wid("w1"), "other", 1, START, until)
        .await
        .unwrap();
    assert!(matches!(held, PermitAnswer::Granted { .. }), "{held:?}");
    let answer = h
        .svc
        .placement()
        .request_session_paced(key("math", "s1"), Default::default(), false)
        .await
        .unwrap();
    assert!(matches!(answer, SessionRequest::Starting(_)), "{answer:?}");

    h.svc.placement().release(&key("math", "s1")).await.unwrap();
    // w2 has room now: a placement going on after the release would take it.
    h.beat_paced("w2", 8, 4).await;
    h.store
        .release_start_permit(&wid("w1"), "other", None, 50)
        .await
        .unwrap();
    // The waiting start takes the permit (leaving the queue) and gives it
    // back.
    let settled = async {
        loop {
            let queue = h.store.start_queue(&wid("w1"), START).await.unwrap();
            if queue.held.is_empty() && queue.waiting.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(BOUND, settled)
        .await
        .expect("the start leaves w1's queue");

    assert_eq!(h.workers.allocate_calls(), 0, "no worker was asked");
    assert!(h.workers.sessions(&wid("w1")).is_empty());
    assert!(h.workers.sessions(&wid("w2")).is_empty());
    assert_eq!(h.store.dispatch(&key("math", "s1")).await.unwrap(), None);
    let w2 = h.store.start_queue(&wid("w2"), START).await.unwrap();
    assert!(w2.held.is_empty() && w2.waiting.is_empty(), "{w2:?}");
}
