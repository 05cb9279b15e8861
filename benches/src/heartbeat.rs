//! `heartbeat`: every worker heartbeats as fast as it can.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::cluster::Tuning;
use crate::cpu::{CpuUse, Probe};
use crate::deploy::Deployment;
use crate::driver::{Plain, drive, restart};
use crate::latency::Summary;
use crate::target::{Beat, InProcess, Target, register};

/// Sizes of a heartbeat storm.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    /// Worker nodes.
    pub workers: usize,
    /// Slots per worker.
    pub slots: u32,
    /// Heartbeats in flight.
    pub concurrency: usize,
    /// Heartbeats sent in all (a bound on the loop).
    pub heartbeats: usize,
    /// Stop after this long.
    pub time_limit: Duration,
    /// Replica settings.
    pub tuning: Tuning,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            workers: 500,
            slots: 20,
            concurrency: 64,
            heartbeats: 50_000,
            time_limit: Duration::from_secs(30),
            tuning: Tuning::default(),
        }
    }
}

/// What a heartbeat storm measured.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatReport {
    /// Heartbeats/s and latency.
    pub latency: Summary,
    /// Heartbeats applied.
    pub accepted: u64,
    /// Heartbeats answered `accepted: false` (an older sequence number
    /// overtaken by a newer one of the same worker).
    pub stale: u64,
    /// Errors, and the first one.
    pub errors: u64,
    /// The first error.
    pub first_error: Option<String>,
    /// CPU used during the measured phase.
    pub cpu: CpuUse,
}

/// Runs a heartbeat storm on a fresh deployment, with replicas in this
/// process.
pub async fn heartbeats(
    deployment: &Deployment,
    config: &HeartbeatConfig,
    progress: &ProgressBar,
) -> anyhow::Result<HeartbeatReport> {
    let target: Arc<dyn Target> = Arc::new(InProcess::new(deployment, config.tuning, false));
    heartbeats_on(&target, deployment.cpu_probe().await, config, progress).await
}

/// Registers the workers, then sends `heartbeats` heartbeats, worker
/// `i mod W` for the `i`th, each with the worker's next sequence number,
/// round robin over the replicas. `probe` accounts the CPU of the measured
/// phase.
pub async fn heartbeats_on(
    target: &Arc<dyn Target>,
    mut probe: Probe,
    config: &HeartbeatConfig,
    progress: &ProgressBar,
) -> anyhow::Result<HeartbeatReport> {
    register(target, config.workers, config.slots).await?;
    let workers = config.workers.max(1);
    let seqs: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(1)).collect());
    let stale = Arc::new(AtomicU64::new(0));
    restart(progress, config.heartbeats);
    let before = probe.sample().await;
    let deadline = Instant::now() + config.time_limit;
    let (t, slots, st) = (Arc::clone(target), config.slots, Arc::clone(&stale));
    let driven = drive::<Plain, _, _>(
        config.concurrency,
        config.heartbeats,
        deadline,
        progress,
        move |i| {
            let w = i % workers;
            let beat = Beat {
                worker: w,
                slots,
                seq: seqs[w].fetch_add(1, Ordering::Relaxed) + 1,
            };
            let (t, st) = (Arc::clone(&t), Arc::clone(&st));
            async move {
                let accepted = t.heartbeat(i, beat).await?;
                if !accepted {
                    st.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        },
    )
    .await;
    let cpu = crate::cpu::between(&before, &probe.sample().await);
    let stale = stale.load(Ordering::Relaxed);
    Ok(HeartbeatReport {
        latency: driven.latencies.summary(driven.elapsed),
        accepted: driven.tally.ok - stale,
        stale,
        errors: driven.tally.errors,
        first_error: driven.tally.first_error,
        cpu,
    })
}
