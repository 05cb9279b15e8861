//! `surge`: exam start. Every student clicks "start" at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::ProgressBar;

use vdi_cluster_core::ServiceConfig;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::time::{Clock, SystemClock};
use vdi_cluster_protocol::exams::BookExamRequest;

use crate::alloc::{AllocTally, student, students};
use crate::audit::Audit;
use crate::cluster::Tuning;
use crate::cpu::{self, CpuUse, Probe};
use crate::deploy::Deployment;
use crate::driver::restart;
use crate::instrument::MethodStats;
use crate::latency::Summary;
use crate::target::{InProcess, Recount, Target, allocate_all, register, warm_up};

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
    /// Book the exams first (waiting room on), so every request also
    /// passes the calendar and the waiting room.
    pub booked: bool,
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
            booked: false,
        }
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

/// Books the run's exams, running now for two hours with their waiting
/// rooms on, each sized to its students, or all evenly to what admission
/// accepts (the fleet less its headroom) when that is less: students
/// beyond a booking are still placed while slots are free, and queued
/// once they are not.
async fn book_exams(target: &Arc<dyn Target>, config: &SurgeConfig) -> anyhow::Result<()> {
    let exams = config.exams.max(1);
    let now = SystemClock.now();
    // What admission accepts: the fleet less the default headroom, shared
    // evenly (a refusal below shares what is left, should it differ).
    let headroom = u64::from(ServiceConfig::default().exam_headroom_percent.min(100));
    let bookable = (config.workers as u64 * u64::from(config.slots)) * (100 - headroom) / 100;
    let mut cap = u32::try_from(bookable / exams as u64)?.max(1);
    for k in 0..exams {
        let id = student(k, exams).exam_id.to_string();
        let wanted =
            u32::try_from(config.students / exams)? + u32::from(k < config.students % exams);
        loop {
            let students = wanted.min(cap);
            let refused = target
                .book(BookExamRequest {
                    exam_id: id.clone(),
                    name: format!("Surge exam {k}"),
                    starts_at: format_rfc3339(now),
                    ends_at: format_rfc3339(now.plus(Duration::from_secs(2 * 3600))),
                    students,
                    constraints: None,
                    prewarm: None,
                    teardown_sec: None,
                    queue: Some(true),
                    network_policy: None,
                    extensions: None,
                    extra_time: None,
                })
                .await?;
            let Some(short) = refused else { break };
            // What is left now, shared by this exam and the ones after it.
            let room = students.saturating_sub(short);
            cap = room / u32::try_from(exams - k)?;
            if cap == 0 {
                bail!("exam {id}: no capacity left to book ({short} short of {students})");
            }
        }
    }
    Ok(())
}

/// Runs a surge on a fresh deployment, with replicas in this process.
pub async fn surge(
    deployment: &Deployment,
    config: &SurgeConfig,
    progress: &ProgressBar,
) -> anyhow::Result<SurgeReport> {
    let target: Arc<dyn Target> =
        Arc::new(InProcess::new(deployment, config.tuning, config.breakdown));
    surge_on(&target, deployment.cpu_probe().await, config, progress).await
}

/// Runs a surge on `target`: registers the workers, warms up, then lets
/// every student allocate at once with `concurrency` in flight, round
/// robin over the replicas, and recounts afterwards. `probe` accounts the
/// CPU of the measured phase.
pub async fn surge_on(
    target: &Arc<dyn Target>,
    mut probe: Probe,
    config: &SurgeConfig,
    progress: &ProgressBar,
) -> anyhow::Result<SurgeReport> {
    register(target, config.workers, config.slots).await?;
    warm_up(target, config.warmup, config.concurrency).await?;
    if config.booked {
        book_exams(target, config).await?;
        // Exams are booked ahead of their start: every replica sees a
        // booking made on another one once its cached calendar expires.
        tokio::time::sleep(config.tuning.snapshot_max_age + Duration::from_millis(100)).await;
    }
    target.reset_breakdown();

    let keys = students(config.students, config.exams);
    restart(progress, config.students);
    let before = probe.sample().await;
    let deadline = Instant::now() + config.time_limit;
    let driven = allocate_all(target, &keys, config.concurrency, deadline, progress).await;
    let cpu = cpu::between(&before, &probe.sample().await);
    let breakdown = target.breakdown();
    let Recount {
        audit,
        worker_side_over,
    } = target.recount(config.slots).await?;
    Ok(SurgeReport {
        latency: driven.latencies.summary(driven.elapsed),
        tally: driven.tally,
        not_started: driven.not_started,
        audit,
        worker_side_over,
        cpu,
        breakdown,
    })
}
