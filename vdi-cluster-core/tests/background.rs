//! The background loop on tokio's paused time: when reconcile passes start,
//! that a pass longer than the lease keeps it, and that the leader removes
//! the rehearsal a cancel left. Every assertion is on
//! the sequence of simulated instants, never on wall-clock durations.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use vdi_cluster_core::calendar::ExamStore;
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::rehearsal::{Rehearsal, Rehearsals};
use vdi_cluster_core::service::{BACKGROUND_LEASE, BackgroundConfig, run_background};
use vdi_cluster_core::testkit::{SimulatedWorkers, exam, heartbeat_with_slots};
use vdi_cluster_core::{Clock, ClusterService, LeaderLease, MemoryStore, ServiceConfig, Timestamp};

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

impl Slow {
    /// Every call takes a round trip; a dispatch scan `scan` more.
    async fn around<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        let scan = (method == "scan_dispatches").then(|| *self.scan.lock().unwrap());
        self.wait().await;
        if let Some(scan) = scan {
            tokio::time::sleep(scan).await;
        }
        call.await
    }
}

vdi_cluster_core::delegate_store!(Slow, inner, around);

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
        ..BackgroundConfig::default()
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

/// A pass over several steps: each next step follows `step_pause` after
/// the previous one, and the next pass is still due one interval after
/// the first was, not one interval after it finished.
#[tokio::test(start_paused = true)]
async fn a_pass_runs_over_steps_and_the_next_is_due_on_time() {
    let clock = Arc::new(TokioClock(Instant::now()));
    let store = Slow::new(&clock);
    let events = RecordingSink::default();
    let svc = ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new()))
        .config(ServiceConfig {
            replica_id: "a".into(),
            scan_count: 2,
            scan_pages_per_step: 1,
            ..ServiceConfig::default()
        })
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .events(Arc::new(events.clone()))
        .build();
    let r = Replica {
        svc: Arc::new(svc),
        events,
    };
    r.svc
        .fleet()
        .heartbeat(heartbeat_with_slots("w1", 20, 0))
        .await
        .unwrap();
    for i in 0..7 {
        let key = vdi_cluster_core::testkit::key("exam", &format!("s{i}"));
        r.svc
            .placement()
            .allocate(key, Default::default())
            .await
            .unwrap();
    }
    let since = clock.now().since(START).as_millis();
    let config = BackgroundConfig {
        tick: Duration::from_secs(5),
        reconcile_every: Duration::from_secs(60),
        step_pause: Duration::from_secs(1),
        ..BackgroundConfig::default()
    };
    run_until(&r, config, Duration::from_secs(150)).await;
    let steps: Vec<(u128, u32, bool)> = r
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Reconciled { report } => Some((
                report.started_at.since(START).as_millis(),
                report.pass.steps,
                report.pass.complete,
            )),
            _ => None,
        })
        .collect();
    // 7 dispatches, 2 a step: 4 steps a pass.
    let shape: Vec<(u32, bool)> = steps.iter().map(|s| (s.1, s.2)).collect();
    let pass = [(1, false), (2, false), (3, false), (4, true)];
    assert_eq!(shape, [pass, pass].concat(), "{steps:?}");
    for (n, first) in [(1, 0), (2, 4)] {
        let due = since + n * 60_000;
        let start = steps[first].0;
        assert!((due..due + 250).contains(&start), "pass {n}: {steps:?}");
    }
    for pair in steps[..4].windows(2).chain(steps[4..].windows(2)) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            (1_000..2_000).contains(&gap),
            "a step pause apart: {steps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_leader_removes_the_rehearsal_of_an_exam_no_longer_booked() {
    let clock = Arc::new(TokioClock(Instant::now()));
    let store = Slow::new(&clock);
    let r = replica(&store, &clock, "a");
    let t = clock.now();
    let booked = exam("exam-kept", t.plus(Duration::from_secs(7_200)), 60, 2);
    store.put_exam_if_version(&booked, 0).await.unwrap();
    for id in [&booked.id, &exam("exam-gone", t, 60, 2).id] {
        let record = Rehearsal::run(None, id.clone(), "admin", t, Vec::new(), t);
        assert!(store.put_rehearsal(&record, 0, &[]).await.unwrap());
    }
    run_until(&r, BackgroundConfig::default(), Duration::from_secs(6)).await;
    let left: Vec<String> = store
        .rehearsals()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.rehearsal.exam_id.to_string())
        .collect();
    assert_eq!(left, ["exam-kept"], "the cancelled exam's record is gone");
}
