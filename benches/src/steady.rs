//! `steady`: an exam in progress. Students start and submit, workers
//! heartbeat, and — in the second phase — reconcile passes run back to
//! back on one replica, to show that the latency of the others stays flat.
//!
//! The load is paced (open loop): operations are issued at a fixed rate
//! (every millisecond, the ones due by then) whether or not earlier ones
//! finished, and each latency is measured from the instant the operation
//! was issued — including any wait for one of the `concurrency` permits —
//! so a stall shows up in the figures instead of slowing the load down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use vdi_cluster_core::{Error, SessionKey};

use crate::audit::{Audit, audit};
use crate::cluster::{BOOT, Tuning};
use crate::cpu::{CpuUse, Probe};
use crate::deploy::Deployment;
use crate::driver::restart;
use crate::fleet::{heartbeat, worker_code};
use crate::instrument::MethodStats;
use crate::latency::{Latencies, Summary};
use crate::target::{InProcess, Target, allocate_all, register, warm_up};

/// Sizes and pace of a steady run.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyConfig {
    /// Worker nodes.
    pub workers: usize,
    /// Slots per worker.
    pub slots: u32,
    /// Share of all slots taken before the measurement, percent.
    pub occupancy_percent: u32,
    /// Exams the students are spread over.
    pub exams: usize,
    /// Operations issued per second (40 % allocate, 40 % release, 20 %
    /// heartbeat).
    pub rate: u32,
    /// Most operations in flight.
    pub concurrency: usize,
    /// Length of each phase.
    pub phase: Duration,
    /// Pause between reconcile passes in the second phase.
    pub reconcile_pause: Duration,
    /// Replica settings.
    pub tuning: Tuning,
    /// Count every store call per phase.
    pub breakdown: bool,
}

impl Default for SteadyConfig {
    fn default() -> Self {
        Self {
            workers: 500,
            slots: 20,
            occupancy_percent: 50,
            exams: 10,
            rate: 2_000,
            concurrency: 256,
            phase: Duration::from_secs(15),
            reconcile_pause: Duration::from_millis(100),
            tuning: Tuning::default(),
            breakdown: false,
        }
    }
}

/// What one phase measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    /// `without reconcile` or `with reconcile`.
    pub name: &'static str,
    /// Every operation.
    pub all: Summary,
    /// Allocations.
    pub allocate: Summary,
    /// Releases.
    pub release: Summary,
    /// Heartbeats.
    pub heartbeat: Summary,
    /// Allocations refused with `NoCapacity`.
    pub no_capacity: u64,
    /// Operations that failed otherwise.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Reconcile passes completed during the phase, with their durations.
    pub reconcile: Option<Summary>,
    /// CPU used during the phase.
    pub cpu: CpuUse,
    /// Store calls of the phase, when asked for.
    pub breakdown: Option<BTreeMap<&'static str, MethodStats>>,
}

/// What a steady run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyReport {
    /// Without, then with reconcile.
    pub phases: Vec<PhaseReport>,
    /// Sessions live at the end.
    pub live: usize,
    /// The recount afterwards.
    pub audit: Audit,
}

#[derive(Debug, Default)]
struct Recorders {
    all: Latencies,
    allocate: Latencies,
    release: Latencies,
    heartbeat: Latencies,
    no_capacity: u64,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Allocate,
    Release,
    Heartbeat,
}

/// Shared state of the load.
#[derive(Debug)]
struct Load {
    target: InProcess,
    config: SteadyConfig,
    live: Mutex<Vec<SessionKey>>,
    next_student: AtomicUsize,
    next_heartbeat: AtomicUsize,
    seqs: Vec<AtomicU64>,
    rec: Mutex<Recorders>,
}

impl Load {
    fn new_student(&self) -> SessionKey {
        let n = self.next_student.fetch_add(1, Ordering::Relaxed);
        SessionKey::parse(
            format!("exam-{}", n % self.config.exams.max(1)),
            format!("student-{n:08}"),
        )
        .expect("valid key")
    }

    async fn run(self: Arc<Self>, op: Op, n: u64, issued_at: Instant) {
        let service = Arc::clone(self.target.cluster.replica(n as usize));
        let op = match op {
            Op::Release => {
                let key = {
                    let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                    if live.is_empty() {
                        None
                    } else {
                        let i = (crate::fleet::mix(n) % live.len() as u64) as usize;
                        Some(live.swap_remove(i))
                    }
                };
                match key {
                    Some(key) => {
                        let r = service.placement().release(&key).await.map(drop);
                        self.finish(Op::Release, issued_at, r);
                        return;
                    }
                    None => Op::Allocate,
                }
            }
            other => other,
        };
        match op {
            Op::Allocate => {
                let key = self.new_student();
                let r = service
                    .placement()
                    .allocate(key.clone(), Default::default())
                    .await;
                if r.is_ok() {
                    self.live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(key);
                }
                self.finish(Op::Allocate, issued_at, r.map(drop));
            }
            Op::Heartbeat => {
                let w = self.next_heartbeat.fetch_add(1, Ordering::Relaxed) % self.seqs.len();
                let seq = self.seqs[w].fetch_add(1, Ordering::Relaxed) + 1;
                let id =
                    vdi_cluster_core::WorkerId::parse("code", worker_code(w)).expect("valid code");
                let sessions = self.target.cluster.workers.sessions(&id);
                let mut hb = heartbeat(w, self.config.slots, sessions.len() as u32, BOOT, seq);
                hb.live_sessions = Some(sessions);
                let r = service.fleet().heartbeat(hb).await.map(drop);
                self.finish(Op::Heartbeat, issued_at, r);
            }
            Op::Release => unreachable!("handled above"),
        }
    }

    fn finish(&self, op: Op, issued_at: Instant, result: Result<(), Error>) {
        let took = issued_at.elapsed();
        let mut rec = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {}
            Err(Error::NoCapacity(_)) => rec.no_capacity += 1,
            Err(e) => {
                rec.errors += 1;
                rec.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        rec.all.record(took);
        match op {
            Op::Allocate => rec.allocate.record(took),
            Op::Release => rec.release.record(took),
            Op::Heartbeat => rec.heartbeat.record(took),
        }
    }
}

/// Issues operations at `config.rate` for `config.phase`.
async fn phase(
    load: &Arc<Load>,
    name: &'static str,
    reconcile: bool,
    probe: &mut Probe,
    progress: &ProgressBar,
) -> PhaseReport {
    *load.rec.lock().unwrap_or_else(|e| e.into_inner()) = Recorders::default();
    load.target.reset_breakdown();
    let before = probe.sample().await;
    let config = &load.config;
    let started = Instant::now();
    let end = started + config.phase;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // In a JoinSet, so that an interrupted phase stops it too.
    let mut reconciler = tokio::task::JoinSet::new();
    if reconcile {
        let service = Arc::clone(&load.target.cluster.services[0]);
        let (stop, pause) = (Arc::clone(&stop), config.reconcile_pause);
        reconciler.spawn(async move {
            let mut passes = Latencies::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match service.operations().reconcile().await {
                    Ok(_) => passes.record(t.elapsed()),
                    Err(e) => failures.push(e.to_string()),
                }
                tokio::time::sleep(pause).await;
            }
            (passes, failures)
        });
    }

    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let tick = Duration::from_millis(1);
    let per_tick = f64::from(config.rate) * tick.as_secs_f64();
    let mut issued = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    restart(progress, config.phase.as_secs() as usize);
    while Instant::now() < end {
        interval.tick().await;
        let since = started.elapsed().as_secs_f64();
        let due_total = (since / tick.as_secs_f64() * per_tick) as u64;
        while issued < due_total {
            // Timed from now, when it is issued: waiting for a permit (too
            // many in flight) counts, the generator's tick does not.
            let issued_at = Instant::now();
            let op = match issued % 10 {
                0..=3 => Op::Allocate,
                4..=7 => Op::Release,
                _ => Op::Heartbeat,
            };
            let (load, permits, n) = (Arc::clone(load), Arc::clone(&permits), issued);
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                load.run(op, n, issued_at).await;
            });
            issued += 1;
        }
        while tasks.try_join_next().is_some() {}
        progress.set_position(started.elapsed().as_secs());
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let cpu = crate::cpu::between(&before, &probe.sample().await);
    let mut reconcile_summary = None;
    let mut reconcile_errors = Vec::new();
    if let Some(joined) = reconciler.join_next().await {
        let (passes, failures) = joined.expect("reconciler panicked");
        reconcile_summary = Some(passes.summary(elapsed));
        reconcile_errors = failures;
    }
    let rec = std::mem::take(&mut *load.rec.lock().unwrap_or_else(|e| e.into_inner()));
    PhaseReport {
        name,
        all: rec.all.summary(elapsed),
        allocate: rec.allocate.summary(elapsed),
        release: rec.release.summary(elapsed),
        heartbeat: rec.heartbeat.summary(elapsed),
        no_capacity: rec.no_capacity,
        errors: rec.errors + reconcile_errors.len() as u64,
        first_error: rec.first_error.or_else(|| {
            reconcile_errors
                .into_iter()
                .next()
                .map(|e| format!("reconcile: {e}"))
        }),
        reconcile: reconcile_summary,
        cpu,
        breakdown: load.target.breakdown(),
    }
}

/// Registers the workers, fills them to the occupancy, then runs the two
/// phases and recounts.
pub async fn steady(
    deployment: &Deployment,
    config: &SteadyConfig,
    progress: &ProgressBar,
) -> anyhow::Result<SteadyReport> {
    let target = InProcess::new(deployment, config.tuning, config.breakdown);
    let shared: Arc<dyn Target> = Arc::new(target.clone());
    register(&shared, config.workers, config.slots).await?;
    warm_up(&shared, 200, 32).await?;
    let load = Arc::new(Load {
        target,
        config: config.clone(),
        live: Mutex::new(Vec::new()),
        next_student: AtomicUsize::new(0),
        next_heartbeat: AtomicUsize::new(0),
        seqs: (0..config.workers.max(1))
            .map(|_| AtomicU64::new(1))
            .collect(),
        rec: Mutex::new(Recorders::default()),
    });
    // Fill to the occupancy, untimed.
    let fill =
        (config.workers as u64 * u64::from(config.slots) * u64::from(config.occupancy_percent)
            / 100) as usize;
    let keys: Arc<Vec<SessionKey>> = Arc::new((0..fill).map(|_| load.new_student()).collect());
    let deadline = Instant::now() + Duration::from_secs(300);
    let filled = allocate_all(&shared, &keys, 64, deadline, &ProgressBar::hidden()).await;
    if let Some(e) = filled.tally.first_error {
        anyhow::bail!("filling to {}%: {e}", config.occupancy_percent);
    }
    load.live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(keys.iter().cloned());

    let mut probe = deployment.cpu_probe().await;
    let mut phases = Vec::new();
    for (name, reconcile) in [("without reconcile", false), ("with reconcile", true)] {
        progress.set_message(name);
        phases.push(phase(&load, name, reconcile, &mut probe, progress).await);
    }
    let live = load.live.lock().unwrap_or_else(|e| e.into_inner()).len();
    let audit = audit(deployment.stores()[0].as_ref())
        .await
        .context("recount after the run")?;
    Ok(SteadyReport {
        phases,
        live,
        audit,
    })
}
