//! `surge`: exam start. Every student clicks "start" at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use vdi_cluster_core::service::{AllocateOutcome, Allocation};
use vdi_cluster_core::{Error, SessionKey};

use crate::audit::{Audit, audit};
use crate::cluster::{Cluster, Tuning};
use crate::cpu::{self, CpuUse};
use crate::deploy::Deployment;
use crate::driver::{Tally, drive};
use crate::instrument::{Breakdown, MethodStats};
use crate::latency::Summary;

/// Sizes of a surge.
#[derive(Debug, Clone, PartialEq)]
pub struct SurgeConfig {
    /// Worker nodes.
    pub workers: usize,
    /// Slots per worker.
    pub slots: u32,
    /// Students, all allocating at once.
    pub students: usize,
    /// Exams the students are spread over (round robin).
    pub exams: usize,
    /// Allocations in flight.
    pub concurrency: usize,
    /// Allocations made and released before the measurement (connections,
    /// scripts, caches), untimed.
    pub warmup: usize,
    /// Stop starting allocations after this long.
    pub time_limit: Duration,
    /// Replica settings.
    pub tuning: Tuning,
    /// PostgreSQL pool size of each replica (and of each baseline
    /// connection set).
    pub pg_pool: u32,
    /// Count every store call of the measured phase.
    pub breakdown: bool,
}

impl Default for SurgeConfig {
    fn default() -> Self {
        Self {
            workers: 500,
            slots: 20,
            students: 10_000,
            exams: 10,
            concurrency: 64,
            warmup: 1_000,
            time_limit: Duration::from_secs(120),
            tuning: Tuning::default(),
            pg_pool: 8,
            breakdown: false,
        }
    }
}

/// Outcomes of allocations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AllocTally {
    /// New placements.
    pub placed: u64,
    /// Answered with an existing dispatch (never expected in a surge).
    pub existing: u64,
    /// Typed `NoCapacity` refusals.
    pub no_capacity: u64,
    /// Any other error.
    pub errors: u64,
    /// The first such error.
    pub first_error: Option<String>,
    /// Reservations refused because the snapshot was stale, summed.
    pub contention_retries: u64,
    /// Allocations that needed at least one such retry.
    pub contended: u64,
    /// Worker calls that failed, summed.
    pub failed_calls: u64,
}

/// The result of one allocation, as the driver tallies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocOutcome {
    /// Placed anew, after this many contention retries and failed worker
    /// calls.
    Placed {
        /// Reservations refused because the snapshot was stale.
        retries: u32,
        /// Worker calls that failed.
        failed_calls: u32,
    },
    /// The session's existing dispatch was returned.
    Existing,
    /// A typed `NoCapacity` refusal (HTTP 503).
    NoCapacity,
    /// Anything else.
    Failed(String),
}

impl AllocOutcome {
    /// Classifies the answer of [`ClusterService::allocate`](vdi_cluster_core::ClusterService::allocate).
    pub fn of(result: Result<Allocation, Error>) -> Self {
        match result {
            Ok(a) if a.outcome == AllocateOutcome::Existing => Self::Existing,
            Ok(a) => Self::Placed {
                retries: a.contention_retries,
                failed_calls: a.failed_calls,
            },
            Err(Error::NoCapacity(_)) => Self::NoCapacity,
            Err(e) => Self::Failed(e.to_string()),
        }
    }
}

impl Tally for AllocTally {
    type Outcome = AllocOutcome;

    fn add(&mut self, outcome: Self::Outcome) {
        match outcome {
            AllocOutcome::Placed {
                retries,
                failed_calls,
            } => {
                self.placed += 1;
                self.contention_retries += u64::from(retries);
                self.contended += u64::from(retries > 0);
                self.failed_calls += u64::from(failed_calls);
            }
            AllocOutcome::Existing => self.existing += 1,
            AllocOutcome::NoCapacity => self.no_capacity += 1,
            AllocOutcome::Failed(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.placed += other.placed;
        self.existing += other.existing;
        self.no_capacity += other.no_capacity;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.contention_retries += other.contention_retries;
        self.contended += other.contended;
        self.failed_calls += other.failed_calls;
    }
}

/// What a surge measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SurgeReport {
    /// Allocations/s and latency of every allocation (placed or refused).
    pub latency: Summary,
    /// Outcomes.
    pub tally: AllocTally,
    /// Students not started before the time limit.
    pub not_started: usize,
    /// The recount of dispatch records afterwards.
    pub audit: Audit,
    /// Sessions the simulated workers run beyond their slots (a second
    /// recount, from the workers' side).
    pub worker_side_over: u64,
    /// CPU used during the measured phase.
    pub cpu: CpuUse,
    /// Store calls of the measured phase, when asked for.
    pub breakdown: Option<BTreeMap<&'static str, MethodStats>>,
}

impl SurgeReport {
    /// Every student either got a session or a typed `NoCapacity`, and no
    /// worker holds more records than slots.
    pub fn is_correct(&self) -> bool {
        self.tally.errors == 0
            && self.audit.over_allocations == 0
            && self.worker_side_over == 0
            && self.audit.counter_drift == 0
    }
}

/// The session key of student `i` of a run.
pub fn student(i: usize, exams: usize) -> SessionKey {
    SessionKey::parse(
        format!("exam-{}", i % exams.max(1)),
        format!("student-{i:07}"),
    )
    .expect("valid session key")
}

/// Allocates `n` throwaway sessions through every replica and releases
/// them again: opens connections, loads scripts, fills caches.
pub async fn warm_up(cluster: &Cluster, n: usize, concurrency: usize) -> anyhow::Result<()> {
    let keys: Arc<Vec<SessionKey>> = Arc::new(
        (0..n)
            .map(|i| SessionKey::parse("warmup", format!("w-{i}")).expect("valid key"))
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let (c, k) = (cluster.clone(), Arc::clone(&keys));
    drive::<AllocTally, _, _>(concurrency, n, deadline, &ProgressBar::hidden(), move |i| {
        let (service, key) = (Arc::clone(c.replica(i)), k[i].clone());
        async move { AllocOutcome::of(service.allocate(key, Default::default()).await) }
    })
    .await;
    let c = cluster.clone();
    let released =
        drive::<crate::driver::Plain, _, _>(concurrency, n, deadline, &ProgressBar::hidden(), {
            move |i| {
                let (service, key) = (Arc::clone(c.replica(i)), keys[i].clone());
                async move {
                    service
                        .release(&key)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            }
        })
        .await;
    if let Some(e) = released.tally.first_error {
        anyhow::bail!("warm-up release failed: {e}");
    }
    Ok(())
}

/// Runs a surge on a fresh deployment: registers the workers, warms up,
/// then lets every student allocate at once with `concurrency` in flight,
/// round robin over the replicas, and recounts afterwards.
pub async fn surge(
    deployment: &Deployment,
    config: &SurgeConfig,
    progress: &ProgressBar,
) -> anyhow::Result<SurgeReport> {
    let breakdown = config.breakdown.then(Breakdown::new);
    let cluster = Cluster::new(deployment, config.tuning, breakdown.as_ref());
    cluster.register(config.workers, config.slots).await?;
    warm_up(&cluster, config.warmup, config.concurrency).await?;
    if let Some(b) = &breakdown {
        b.reset();
    }

    let keys: Arc<Vec<SessionKey>> = Arc::new(
        (0..config.students)
            .map(|i| student(i, config.exams))
            .collect(),
    );
    progress.set_length(config.students as u64);
    progress.set_position(0);
    let mut probe = deployment.cpu_probe().await;
    let before = probe.sample().await;
    let deadline = Instant::now() + config.time_limit;
    let c = cluster.clone();
    let driven = drive::<AllocTally, _, _>(
        config.concurrency,
        config.students,
        deadline,
        progress,
        move |i| {
            let (service, key) = (Arc::clone(c.replica(i)), keys[i].clone());
            async move { AllocOutcome::of(service.allocate(key, Default::default()).await) }
        },
    )
    .await;
    let cpu = cpu::between(&before, &probe.sample().await);
    let calls = breakdown.map(|b| b.snapshot());

    let audit = audit(deployment.stores()[0].as_ref())
        .await
        .context("recount after the surge")?;
    let max: HashMap<_, _> = cluster.services[0]
        .worker_views()
        .await?
        .into_iter()
        .map(|v| (v.record.id.clone(), u64::from(v.record.max_sessions())))
        .collect();
    let worker_side_over = max
        .iter()
        .map(|(id, max)| (cluster.workers.sessions(id).len() as u64).saturating_sub(*max))
        .sum();
    Ok(SurgeReport {
        latency: driven.latencies.summary(driven.elapsed),
        tally: driven.tally,
        not_started: driven.not_started,
        audit,
        worker_side_over,
        cpu,
        breakdown: calls,
    })
}
