//! `cover`: how long the leader's reconcile pass takes to cover every
//! dispatch at exam scale (100,000 by default), in steps resumed from the
//! cursor it saves beside the background lease.
//!
//! Setup (untimed): the workers are registered healthy, and the
//! dispatches written active through the store's `adopt` (one atomic step
//! each, with its counters) by `concurrency` tasks. The replica's clock
//! stands still at the instant the setup began, so no dispatch turns stale
//! and no worker silent while the figures are taken: every check ends in
//! "keep", and what is measured is the cost of covering the keyspace, not
//! of repairs. Then, timed, one after the other:
//!
//! * the leader's pass: `reconcile_step` under the background lease, back
//!   to back (the lease renewed before each), from the start of the
//!   keyspace to the step that completes it — that last step also
//!   recounts every counter. The background loop pauses `step_pause` (1 s)
//!   between two steps: its full cover is this plus `steps - 1` seconds;
//! * an operator's pass (`reconcile`: one run to the end of the keyspace);
//! * the recount alone (`recount(false)`), the part of the last step whose
//!   cost grows with the dispatches in one store call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use vdi_cluster_core::service::BACKGROUND_LEASE;
use vdi_cluster_core::store::Adoption;
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{
    Clock, ClusterService, Dispatch, DispatchState, ManualClock, ServiceConfig, SessionKey,
    SystemClock,
};

use crate::deploy::Deployment;
use crate::driver::{Plain, drive, restart};
use crate::fleet::register_fleet;

/// Sizes of a cover run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverConfig {
    /// Dispatch records to cover.
    pub dispatches: usize,
    /// Workers they are spread over (round robin).
    pub workers: usize,
    /// Exams they belong to (round robin).
    pub exams: usize,
    /// Adoptions in flight while filling.
    pub concurrency: usize,
    /// `WORKER_DISPATCH_SCAN_COUNT`: dispatches per scan page.
    pub scan_count: usize,
    /// Scan pages per step of the leader's pass.
    pub pages_per_step: usize,
}

impl Default for CoverConfig {
    fn default() -> Self {
        let service = ServiceConfig::default();
        Self {
            dispatches: 100_000,
            workers: 500,
            exams: 20,
            concurrency: 64,
            scan_count: service.scan_count,
            pages_per_step: service.scan_pages_per_step,
        }
    }
}

/// What one cover run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverReport {
    /// Dispatches written.
    pub dispatches: usize,
    /// Time to write them (untimed phase, for the record).
    pub fill: Duration,
    /// Steps of the leader's pass.
    pub steps: u32,
    /// Each step's wall time, in order (the last one recounts).
    pub step_times: Vec<Duration>,
    /// Dispatches the pass read.
    pub pass_scanned: u64,
    /// Whether it reached the end of the keyspace.
    pub pass_complete: bool,
    /// An operator's pass: wall time, dispatches read, complete.
    pub operator: (Duration, u32, bool),
    /// `recount(false)` alone.
    pub recount: Duration,
}

impl CoverReport {
    /// The leader's pass, its steps back to back.
    pub fn work(&self) -> Duration {
        self.step_times.iter().sum()
    }

    /// The leader's pass as the background loop runs it: its work plus a
    /// `step_pause` between two steps.
    pub fn with_pauses(&self, step_pause: Duration) -> Duration {
        self.work() + step_pause * self.steps.saturating_sub(1)
    }

    /// Whether both passes read every dispatch exactly once.
    pub fn correct(&self) -> bool {
        self.pass_complete
            && self.pass_scanned == self.dispatches as u64
            && self.operator.2
            && self.operator.1 as usize == self.dispatches
    }
}

/// Fills a fresh `deployment` with `config.dispatches` active dispatches
/// and times a full cover (see the module docs).
pub async fn cover(
    deployment: &Deployment,
    config: &CoverConfig,
    progress: &ProgressBar,
) -> anyhow::Result<CoverReport> {
    let store = Arc::clone(deployment.stores().first().context("a store")?);
    let workers = config.workers.max(1);
    let slots = u32::try_from(config.dispatches.div_ceil(workers) + 10).unwrap_or(u32::MAX);
    let started = SystemClock.now();
    let ids = Arc::new(register_fleet(&*store, workers, slots).await);
    let clock = ManualClock::new(started);

    // Fill: every dispatch active on its worker, with its counters.
    restart(progress, config.dispatches);
    let fill_started = Instant::now();
    let (s, ids2, exams) = (Arc::clone(&store), Arc::clone(&ids), config.exams.max(1));
    let filled = drive::<Plain, _, _>(
        config.concurrency,
        config.dispatches,
        fill_started + Duration::from_secs(3_600),
        progress,
        move |i| {
            let (s, ids) = (Arc::clone(&s), Arc::clone(&ids2));
            async move {
                let key = SessionKey::parse(format!("exam-{:03}", i % exams), format!("s{i:07}"))
                    .map_err(|e| e.to_string())?;
                let mut d = Dispatch::reserve(
                    key,
                    ids[i % ids.len()].clone(),
                    started,
                    Some("boot".into()),
                    Some(1),
                );
                d.state = DispatchState::Active;
                d.activated_at = Some(started);
                match s.adopt(&d, Duration::from_secs(21_600)).await {
                    Ok(Adoption::Adopted(_)) => Ok(()),
                    Ok(other) => Err(format!("not adopted: {other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await;
    let fill = fill_started.elapsed();
    if filled.tally.ok != config.dispatches as u64 {
        bail!(
            "filling {} dispatches: {} written, {} failed (first: {})",
            config.dispatches,
            filled.tally.ok,
            filled.tally.errors,
            filled.tally.first_error.unwrap_or_default()
        );
    }

    let svc = ClusterService::builder(Arc::clone(&store), Arc::new(SimulatedWorkers::new()))
        .config(ServiceConfig {
            replica_id: "bench-leader".into(),
            scan_count: config.scan_count.max(1),
            scan_pages_per_step: config.pages_per_step.max(1),
            ..ServiceConfig::default()
        })
        .clock(Arc::new(clock) as Arc<dyn Clock>)
        .build();
    let ttl = Duration::from_secs(30);

    // The leader's pass, step after step.
    let per_step = config.scan_count.max(1) * config.pages_per_step.max(1);
    let most = config.dispatches / per_step + 3;
    restart(progress, most);
    let mut step_times = Vec::new();
    let (mut pass_scanned, mut pass_complete) = (0, false);
    for _ in 0..most {
        let lease = store
            .try_acquire(BACKGROUND_LEASE, "bench-leader", ttl)
            .await?
            .context("the background lease is free in a fresh namespace")?;
        let t = Instant::now();
        let report = svc.operations().reconcile_step(&lease).await?;
        step_times.push(t.elapsed());
        progress.inc(1);
        pass_scanned = report.pass.dispatches_scanned;
        if report.pass.complete {
            pass_complete = true;
            break;
        }
    }
    let steps = u32::try_from(step_times.len()).unwrap_or(u32::MAX);

    // An operator's pass, then the recount alone.
    let t = Instant::now();
    let operator = svc.operations().reconcile().await?;
    let operator = (
        t.elapsed(),
        operator.dispatches_scanned,
        operator.pass.complete,
    );
    let t = Instant::now();
    let drift = store.recount(false).await?;
    let recount = t.elapsed();
    if !drift.drift.is_empty() {
        bail!("the recount found drift: {:?}", drift.drift);
    }
    Ok(CoverReport {
        dispatches: config.dispatches,
        fill,
        steps,
        step_times,
        pass_scanned,
        pass_complete,
        operator,
        recount,
    })
}
