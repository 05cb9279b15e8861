//! The background loop on tokio's paused time: when reconcile passes start,
//! and that a pass longer than the lease keeps it. Every assertion is on
//! the sequence of simulated instants, never on wall-clock durations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use vdi_cluster_core::UserId;
use vdi_cluster_core::calendar::{CalendarWrite, ExamCalendar, ExamStore};
use vdi_cluster_core::credential::{CredentialSnapshot, WorkerCredential};
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::exam::Exam;
use vdi_cluster_core::outbox::{
    Attempt, Delivery, Failing, LeasedDelivery, Next, Outbox, OutboxEntry, WebhookEndpoint,
};
use vdi_cluster_core::service::{BACKGROUND_LEASE, BackgroundConfig, run_background};
use vdi_cluster_core::store::{
    Adoption, AuditEntry, CasOutcome, ClaimOutcome, DeleteOutcome, DispatchPage, ExamPlacement,
    JoinClaim, JoinToken, Lease, RecountReport, Reservation, ReserveRequest,
};
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots};
use vdi_cluster_core::waiting_room::{Completion, Enqueued, Standing, WaitingRoom};
use vdi_cluster_core::waiting_room::{ExamQueue, QueueClaim};
use vdi_cluster_core::{
    AuditLog, Clock, ClusterService, Credentials, Dispatch, DispatchId, DispatchStore, ExamId,
    LeaderLease, MemoryStore, Registry, Result, ServiceConfig, SessionKey, Timestamp, WorkerId,
    WorkerRecord, WorkerSnapshot,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

/// A clock that follows tokio's (paused) time, so the store's lease expiry
/// and the service's timestamps move with the simulated instants.
#[derive(Debug)]
struct TokioClock(Instant);

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        START.plus(self.0.elapsed())
    }
}

/// A [`MemoryStore`] whose every call takes a round trip of simulated time
/// (`latency` plus up to 12 ms of deterministic jitter, as against a real
/// backend), and whose dispatch scans take `scan` more (a slow pass).
#[derive(Debug, Clone)]
struct Slow {
    inner: MemoryStore,
    latency: Duration,
    calls: Arc<AtomicU64>,
    scan: Arc<Mutex<Duration>>,
}

impl Slow {
    fn new(clock: &Arc<TokioClock>) -> Self {
        Self {
            inner: MemoryStore::with_clock(Arc::clone(clock) as Arc<dyn Clock>),
            latency: Duration::from_millis(10),
            calls: Arc::default(),
            scan: Arc::default(),
        }
    }

    async fn wait(&self) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency + Duration::from_millis(n * 7919 % 13)).await;
    }
}

macro_rules! slow_delegation {
    ($store:ident { $($own:tt)* } $(fn $method:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        #[async_trait]
        impl $store for Slow {
            $($own)*

            $(async fn $method(&self, $($arg: $ty),*) -> Result<$out> {
                self.wait().await;
                self.inner.$method($($arg),*).await
            })*
        }
    };
}

slow_delegation! { Registry {}
    fn ping() -> ();
    fn worker(id: &WorkerId) -> Option<WorkerSnapshot>;
    fn workers() -> Vec<WorkerSnapshot>;
    fn put_worker(record: &WorkerRecord, expected: Option<u64>) -> CasOutcome;
    fn put_worker_if_dispatched(record: &WorkerRecord, expected: u64, dispatched: u32) -> CasOutcome;
    fn delete_worker(id: &WorkerId, expected: u64) -> DeleteOutcome;
}

slow_delegation! { DispatchStore {
        async fn scan_dispatches(&self, cursor: Option<&str>, count: usize) -> Result<DispatchPage> {
            let scan = *self.scan.lock().unwrap();
            self.wait().await;
            tokio::time::sleep(scan).await;
            self.inner.scan_dispatches(cursor, count).await
        }
    }
    fn reserve(request: &ReserveRequest) -> Reservation;
    fn confirm(key: &SessionKey, id: DispatchId, session: Option<serde_json::Value>,
               now: Timestamp, sticky_ttl: Duration) -> Option<Dispatch>;
    fn adopt(dispatch: &Dispatch, sticky_ttl: Duration) -> Adoption;
    fn undo(key: &SessionKey, id: DispatchId, fence: Option<&Lease>, hold: Option<&WorkerId>) -> bool;
    fn release(key: &SessionKey, id: Option<DispatchId>, fence: Option<&Lease>, hold: Option<&WorkerId>) -> Option<Dispatch>;
    fn mark_orphaned(key: &SessionKey, id: DispatchId, fence: Option<&Lease>) -> bool;
    fn dispatch(key: &SessionKey) -> Option<Dispatch>;
    fn worker_dispatches(worker: &WorkerId, limit: usize) -> Vec<Dispatch>;
    fn placement(exam: &ExamId, now: Timestamp) -> ExamPlacement;
    fn recount(repair: bool) -> RecountReport;
}

slow_delegation! { LeaderLease {}
    fn try_acquire(name: &str, holder: &str, ttl: Duration) -> Option<Lease>;
    fn release_lease(lease: &Lease) -> bool;
}

slow_delegation! { AuditLog {}
    fn append_audit(entry: &AuditEntry) -> ();
    fn recent_audit(limit: usize) -> Vec<AuditEntry>;
}

slow_delegation! { Credentials {}
    fn put_join_token(token: &JoinToken) -> ();
    fn redeem_join_token(token_hash: &str, now: Timestamp) -> Option<JoinToken>;
    fn join_tokens() -> Vec<JoinToken>;
    fn revoke_join_token(id: &str) -> bool;
    fn claim_worker(claim: &JoinClaim) -> ClaimOutcome;
    fn put_worker_credential(worker: &WorkerId, credential: &WorkerCredential,
                             expected: Option<u64>) -> CasOutcome;
    fn worker_credential(worker: &WorkerId) -> Option<CredentialSnapshot>;
}

slow_delegation! { ExamStore {}
    fn exam_calendar() -> ExamCalendar;
    fn put_exam_if_version(exam: &Exam, expected: u64) -> CalendarWrite;
    fn delete_exam_if_version(id: &ExamId, expected: u64) -> CalendarWrite;
    fn swap_exam_risk(id: &ExamId, shortfall: Option<u32>, entries: &[OutboxEntry]) -> Option<u32>;
}

slow_delegation! { WaitingRoom {}
    fn enqueue(exam: &ExamId, user: &UserId, now: Timestamp) -> Enqueued;
    fn touch_queued(exam: &ExamId, user: &UserId, now: Timestamp) -> Standing;
    fn exam_queue(exam: &ExamId) -> ExamQueue;
    fn leave_queue(exam: &ExamId, user: &UserId) -> bool;
    fn claim_queue_head(exam: &ExamId, now: Timestamp, until: Timestamp) -> Option<QueueClaim>;
    fn complete_queue_claim(claim: &QueueClaim, now: Timestamp) -> Completion;
    fn release_queue_claim(claim: &QueueClaim) -> ();
    fn abandon_queued(exam: &ExamId, user: &UserId, seen_before: Timestamp, now: Timestamp) -> bool;
    fn queued_exams() -> Vec<ExamId>;
}

slow_delegation! { Outbox {}
    fn put_webhook(endpoint: &WebhookEndpoint) -> bool;
    fn webhooks() -> Vec<WebhookEndpoint>;
    fn delete_webhook(id: &str) -> bool;
    fn append_outbox(entries: &[OutboxEntry], fence: Option<&Lease>) -> u32;
    fn put_worker_with_outbox(record: &WorkerRecord, expected: Option<u64>,
                              dispatched: Option<u32>, entries: &[OutboxEntry]) -> CasOutcome;
    fn delete_worker_with_outbox(id: &WorkerId, expected: u64,
                                 entries: &[OutboxEntry]) -> DeleteOutcome;
    fn confirm_with_outbox(key: &SessionKey, id: DispatchId, session: Option<serde_json::Value>,
                           now: Timestamp, sticky_ttl: Duration,
                           entries: &[OutboxEntry]) -> Option<Dispatch>;
    fn lease_deliveries(now: Timestamp, until: Timestamp, limit: usize) -> Vec<LeasedDelivery>;
    fn finish_delivery(delivery: &LeasedDelivery, attempt: &Attempt, next: Next,
                       failing: Option<Failing<'_>>) -> Option<u32>;
    fn deliveries(endpoint: &str, limit: usize) -> Vec<Delivery>;
    fn retry_delivery(endpoint: &str, id: &str, now: Timestamp) -> bool;
    fn purge_deliveries(before: Timestamp, limit: usize) -> u32;
}

struct Replica {
    svc: Arc<ClusterService>,
    events: RecordingSink,
}

fn replica(store: &Slow, clock: &Arc<TokioClock>, name: &str) -> Replica {
    let events = RecordingSink::default();
    let svc = ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new()))
        .config(ServiceConfig {
            replica_id: name.into(),
            ..ServiceConfig::default()
        })
        .clock(Arc::clone(clock) as Arc<dyn Clock>)
        .events(Arc::new(events.clone()))
        .build();
    Replica {
        svc: Arc::new(svc),
        events,
    }
}

/// Milliseconds after [`START`] at which each reconcile pass started.
fn pass_starts(events: &RecordingSink) -> Vec<u128> {
    events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Reconciled { report } => Some(report.started_at.since(START).as_millis()),
            _ => None,
        })
        .collect()
}

/// Runs `run_background` until the simulated time `until` and returns it
/// stopped.
async fn run_until(r: &Replica, config: BackgroundConfig, until: Duration) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let job = tokio::spawn(run_background(
        Arc::clone(r.svc.operations()),
        config,
        async {
            let _ = stopped.await;
        },
    ));
    tokio::time::sleep(until).await;
    stop.send(()).unwrap();
    job.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn reconcile_passes_start_every_interval() {
    // (tick, interval) as the server derives them: tick = min(5 s, interval).
    for (tick, every) in [(5, 10), (3, 3), (5, 60), (5, 7)] {
        let clock = Arc::new(TokioClock(Instant::now()));
        let store = Slow::new(&clock);
        let r = replica(&store, &clock, "a");
        r.svc
            .fleet()
            .heartbeat(heartbeat_with_slots("w1", 4, 0))
            .await
            .unwrap();
        let since = clock.now().since(START).as_millis();
        let config = BackgroundConfig {
            tick: Duration::from_secs(tick),
            reconcile_every: Duration::from_secs(every),
            ..BackgroundConfig::default()
        };
        run_until(&r, config, Duration::from_secs(every * 6 + 1)).await;
        // The lease is taken at the first tick, so the n-th pass is due n
        // intervals after that; it starts then, or right after the health
        // step it may meet (a few store round trips), never a tick later.
        let every = u128::from(every) * 1000;
        let starts = pass_starts(&r.events);
        assert_eq!(starts.len(), 6, "tick {tick} s: {starts:?}");
        for (n, start) in (1..).zip(&starts) {
            let due = since + n * every;
            assert!(
                (due..due + 250).contains(start),
                "tick {tick} s, interval {every} ms: pass {n} started at {start}, due at {due}: {starts:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_pass_longer_than_the_lease_keeps_it() {
    let clock = Arc::new(TokioClock(Instant::now()));
    let store = Slow::new(&clock);
    let config = BackgroundConfig {
        tick: Duration::from_secs(5),
        lease_ttl: Duration::from_secs(30),
        reconcile_every: Duration::from_secs(10),
        reconcile_enabled: true,
    };
    // Each pass scans for 100 s: more than three lease lifetimes.
    *store.scan.lock().unwrap() = Duration::from_secs(100);
    let a = replica(&store, &clock, "a");
    let b = replica(&store, &clock, "b");
    let first = store
        .inner
        .try_acquire(BACKGROUND_LEASE, "a", config.lease_ttl)
        .await
        .unwrap()
        .expect("a leads");
    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let ja = tokio::spawn(run_background(
        Arc::clone(a.svc.operations()),
        config,
        async {
            let _ = a_stopped.await;
        },
    ));
    let (stop_b, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let jb = tokio::spawn(run_background(
        Arc::clone(b.svc.operations()),
        config,
        async {
            let _ = b_stopped.await;
        },
    ));
    // Well into the first pass (it started at about 10 s) and past several
    // lease lifetimes: a still holds the lease under its first token.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let probe = store
            .inner
            .try_acquire(BACKGROUND_LEASE, "probe", config.lease_ttl)
            .await
            .unwrap();
        assert!(probe.is_none(), "the lease is held during the pass");
        let renewed = store
            .inner
            .try_acquire(BACKGROUND_LEASE, "a", config.lease_ttl)
            .await
            .unwrap()
            .expect("a still leads");
        assert_eq!(renewed.token, first.token, "renewal keeps the token");
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    stop_b.send(()).unwrap();
    jb.await.unwrap();
    stop_a.send(()).unwrap();
    ja.await.unwrap();
    assert!(
        !pass_starts(&a.events).is_empty(),
        "the long pass completed on a"
    );
    assert!(pass_starts(&b.events).is_empty(), "b never reconciled");
}
