//! The scripted faults, one every `fault_gap` after the click window:
//!
//! 1. a worker agent is SIGKILLed (it stays down until the fleet restart);
//! 2. another is SIGSTOPped — a partition: it neither answers nor
//!    heartbeats — for longer than the heartbeat TTL, then SIGCONTed;
//! 3. the replica holding the background lease is SIGKILLed, and started
//!    again on its port half a gap later;
//! 4. the whole fleet restarts: every agent SIGKILLed and started again
//!    (new boot ids), as after a power cut or an image update;
//! 5. the store restarts: the private `redis-server` SIGKILLed and started
//!    again on its data; on PostgreSQL, whose server is shared, every
//!    connection to the run's database is ended instead.
//!
//! Between steps every process is watched: one that exits by itself is a
//! crash, recorded and started again.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::procs::PrivateRedis;
use super::students::{Crowd, now_ms};
use crate::deploy::Deployment;

/// A fault of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A worker agent SIGKILLed.
    WorkerKill,
    /// A worker agent SIGSTOPped, then SIGCONTed.
    Partition,
    /// The lease-holding replica SIGKILLed, then started again.
    ReplicaKill,
    /// Every agent SIGKILLed and started again (new boot ids).
    FleetRestart,
    /// The store SIGKILLed and started again.
    StoreRestart,
}

/// The faults, in their order.
pub const FAULTS: [Fault; 5] = [
    Fault::WorkerKill,
    Fault::Partition,
    Fault::ReplicaKill,
    Fault::FleetRestart,
    Fault::StoreRestart,
];

impl Fault {
    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::WorkerKill => "worker SIGKILL",
            Self::Partition => "worker SIGSTOP (partition)",
            Self::ReplicaKill => "replica SIGKILL",
            Self::FleetRestart => "fleet restart",
            Self::StoreRestart => "store restart",
        }
    }
}

/// A fault as injected.
#[derive(Debug, Clone)]
pub struct Injected {
    /// Which.
    pub fault: Fault,
    /// What was done, precisely.
    pub what: String,
    /// When, from the first click.
    pub offset: Duration,
    /// When, ms since the epoch.
    pub at_ms: u64,
}

/// How the timeline runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) first_click: Instant,
    pub(crate) window: Duration,
    pub(crate) gap: Duration,
    pub(crate) partition: Duration,
    pub(crate) store_down: Duration,
}

impl Schedule {
    /// When fault `k` (from 0) is injected.
    pub(crate) fn at(&self, k: usize) -> Instant {
        self.first_click + self.window + self.gap * u32::try_from(k + 1).unwrap_or(u32::MAX)
    }

    /// When the last fault's gap is over.
    pub(crate) fn end(&self) -> Instant {
        self.at(FAULTS.len())
    }
}

/// The store, for its restart.
#[derive(Debug)]
pub(crate) enum StoreHandle<'a> {
    /// The private `redis-server`.
    Redis(&'a mut PrivateRedis),
    /// Redis without a private server: its restart is skipped.
    SharedRedis(String),
    /// PostgreSQL: its connections are ended.
    Postgres(&'a Deployment),
}

/// What the timeline did, and the processes that crashed on their own.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    pub(crate) injected: Vec<Injected>,
    pub(crate) crashes: Vec<String>,
}

/// Sleeps until `until`, checking every process twice a second; a process
/// that exited by itself is recorded and started again.
async fn watch_until(cluster: &mut Cluster, until: Instant, ran: &mut Ran) {
    loop {
        for r in &mut cluster.replicas {
            if let Err(e) = r.proc.check_alive() {
                ran.crashes.push(format!("{e:#}"));
                let _ = r.proc.restart();
            }
        }
        for a in &mut cluster.agents {
            if let Err(e) = a.proc.check_alive() {
                ran.crashes.push(format!("{e:#}"));
                let _ = a.proc.restart();
            }
        }
        let now = Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep((until - now).min(Duration::from_millis(500))).await;
    }
}

/// Runs the timeline; returns once the last fault's gap is over.
pub(crate) async fn run(
    cluster: &mut Cluster,
    mut store: StoreHandle<'_>,
    crowd: &Crowd,
    schedule: Schedule,
) -> anyhow::Result<Ran> {
    let mut ran = Ran::default();
    let killed = 0;
    let partitioned = 1.min(cluster.agents.len() - 1);
    for (k, fault) in FAULTS.into_iter().enumerate() {
        watch_until(cluster, schedule.at(k), &mut ran).await;
        let at = Instant::now();
        let at_ms = now_ms();
        crowd.fault_injected(at);
        let what = match fault {
            Fault::WorkerKill => {
                let agent = &mut cluster.agents[killed];
                agent.proc.kill();
                format!("SIGKILL {} (down until the fleet restart)", agent.code)
            }
            Fault::Partition => {
                let code = cluster.agents[partitioned].code.clone();
                cluster.agents[partitioned].proc.stop()?;
                watch_until(cluster, at + schedule.partition, &mut ran).await;
                cluster.agents[partitioned].proc.resume()?;
                format!(
                    "SIGSTOP {code}, SIGCONT {:.0} s later",
                    schedule.partition.as_secs_f64()
                )
            }
            Fault::ReplicaKill => {
                let leader = cluster.leader();
                let name = cluster.replicas[leader].proc.name.clone();
                let held = cluster.replicas[leader]
                    .proc
                    .logged("holding the background lease");
                cluster.replicas[leader].proc.kill();
                watch_until(cluster, at + schedule.gap / 2, &mut ran).await;
                cluster.replicas[leader].proc.restart()?;
                cluster.wait_ready(leader, Duration::from_secs(60)).await?;
                format!(
                    "SIGKILL {name}{}, started again {:.0} s later",
                    if held { " (the lease holder)" } else { "" },
                    (schedule.gap / 2).as_secs_f64()
                )
            }
            Fault::FleetRestart => {
                for a in &mut cluster.agents {
                    if a.proc.is_stopped() {
                        a.proc.resume()?;
                    }
                    a.proc.restart()?;
                }
                format!(
                    "SIGKILL every agent ({}), each started again (new boot id)",
                    cluster.agents.len()
                )
            }
            Fault::StoreRestart => match &mut store {
                StoreHandle::Redis(redis) => {
                    redis.kill();
                    tokio::time::sleep(schedule.store_down).await;
                    redis.start_again().await?;
                    format!(
                        "SIGKILL the private redis-server, started again on its data {:.0} s later",
                        schedule.store_down.as_secs_f64()
                    )
                }
                StoreHandle::SharedRedis(url) => format!(
                    "skipped: no private redis-server, and {url} is shared (restarting it would touch others' data)"
                ),
                StoreHandle::Postgres(deployment) => {
                    let ended = deployment.terminate_connections().await?;
                    format!(
                        "server not restarted (shared by other databases); \
                         instead every connection to the run's database ended ({ended})"
                    )
                }
            },
        };
        ran.injected.push(Injected {
            fault,
            what,
            offset: at.saturating_duration_since(schedule.first_click),
            at_ms,
        });
    }
    watch_until(cluster, schedule.end(), &mut ran).await;
    Ok(ran)
}
