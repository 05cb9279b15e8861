//! What a scenario drives: control-plane replicas in this process
//! ([`InProcess`]), or `vdi-cluster serve` processes over HTTP
//! ([`HttpCluster`](crate::http::HttpCluster)). A scenario is written once,
//! against [`Target`]; the target decides how an allocation, a release or a
//! heartbeat travels, and how a run is recounted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use indicatif::ProgressBar;
use vdi_cluster_core::{SessionKey, Store};
use vdi_cluster_protocol::exams::BookExamRequest;

use crate::alloc::{AllocOutcome, AllocTally};
use crate::audit::{Audit, audit};
use crate::cluster::{BOOT, Cluster, Tuning};
use crate::deploy::Deployment;
use crate::driver::{Driven, Plain, drive};
use crate::fleet::heartbeat;
use crate::instrument::{Breakdown, MethodStats};
use vdi_cluster_core::service::Booking;

/// The recount after a run, from both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recount {
    /// Dispatch records against slots, in the backend.
    pub audit: Audit,
    /// Sessions the simulated workers run beyond their slots.
    pub worker_side_over: u64,
}

/// Heartbeat number `seq` of synthetic worker `worker`, of `slots` slots
/// and no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// The worker (`w-000042` for 42).
    pub worker: usize,
    /// Its slots.
    pub slots: u32,
    /// The heartbeat's sequence number.
    pub seq: u64,
}

/// Control-plane replicas with simulated workers behind them. Operation
/// `via` goes to replica `via mod replicas`.
#[async_trait]
pub trait Target: Send + Sync + 'static {
    /// Student `key` starts a session.
    async fn allocate(&self, via: usize, key: &SessionKey) -> AllocOutcome;

    /// Student `key` submits (the session is released).
    async fn release(&self, via: usize, key: &SessionKey) -> Result<(), String>;

    /// A synthetic worker's heartbeat; `false` when it was stale
    /// (overtaken by a newer one of the same worker).
    async fn heartbeat(&self, via: usize, beat: Beat) -> Result<bool, String>;

    /// Books an exam (admission checked, as `POST /api/vdi/exams`):
    /// `None` when booked, else the students short at the refusal's peak.
    async fn book(&self, exam: BookExamRequest) -> anyhow::Result<Option<u32>>;

    /// Called once every worker is registered, before any clock starts.
    async fn registered(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Starts counting store calls afresh (when they are counted).
    fn reset_breakdown(&self) {}

    /// Store calls since the last reset, when they are counted.
    fn breakdown(&self) -> Option<BTreeMap<&'static str, MethodStats>> {
        None
    }

    /// Recounts the run: records in the backend, sessions on the workers
    /// (each of `slots` slots).
    async fn recount(&self, slots: u32) -> anyhow::Result<Recount>;
}

/// Registers `workers` workers of `slots` slots each with their first
/// heartbeat (sequence 1), through every replica in turn.
pub async fn register(target: &Arc<dyn Target>, workers: usize, slots: u32) -> anyhow::Result<()> {
    let t = Arc::clone(target);
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = drive::<Plain, _, _>(32, workers, deadline, &ProgressBar::hidden(), move |i| {
        let t = Arc::clone(&t);
        let beat = Beat {
            worker: i,
            slots,
            seq: 1,
        };
        async move { t.heartbeat(i, beat).await.map(drop) }
    })
    .await;
    if done.tally.errors > 0 || done.tally.ok != workers as u64 {
        bail!(
            "registering {workers} workers: {} ok, {} failed (first: {})",
            done.tally.ok,
            done.tally.errors,
            done.tally.first_error.unwrap_or_default()
        );
    }
    target.registered().await
}

/// Student `keys[i]` allocates through replica `i` for every `i`,
/// `concurrency` in flight, until `deadline`.
pub async fn allocate_all(
    target: &Arc<dyn Target>,
    keys: &Arc<Vec<SessionKey>>,
    concurrency: usize,
    deadline: Instant,
    progress: &ProgressBar,
) -> Driven<AllocTally> {
    let (t, k) = (Arc::clone(target), Arc::clone(keys));
    drive(concurrency, keys.len(), deadline, progress, move |i| {
        let (t, k) = (Arc::clone(&t), Arc::clone(&k));
        async move { t.allocate(i, &k[i]).await }
    })
    .await
}

/// Allocates `n` throwaway sessions through every replica and releases
/// them again: opens connections, loads scripts, fills caches.
pub async fn warm_up(target: &Arc<dyn Target>, n: usize, concurrency: usize) -> anyhow::Result<()> {
    let keys: Arc<Vec<SessionKey>> = Arc::new(
        (0..n)
            .map(|i| SessionKey::parse("warmup", format!("w-{i}")).expect("valid key"))
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let hidden = ProgressBar::hidden();
    let allocated = allocate_all(target, &keys, concurrency, deadline, &hidden).await;
    if let Some(e) = allocated.tally.first_error {
        bail!("warm-up allocation failed: {e}");
    }
    let t = Arc::clone(target);
    let released = drive::<Plain, _, _>(concurrency, n, deadline, &hidden, move |i| {
        let (t, k) = (Arc::clone(&t), Arc::clone(&keys));
        async move { t.release(i, &k[i]).await }
    })
    .await;
    if let Some(e) = released.tally.first_error {
        bail!("warm-up release failed: {e}");
    }
    Ok(())
}

/// Replicas in this process, one [`ClusterService`](vdi_cluster_core::ClusterService)
/// per store handle of a deployment, calling in-memory simulated workers.
#[derive(Debug, Clone)]
pub struct InProcess {
    /// The replicas and the simulated workers.
    pub cluster: Cluster,
    audit_store: Arc<dyn Store>,
    breakdown: Option<Breakdown>,
}

impl InProcess {
    /// Replicas over `deployment`'s stores; with `count_calls`, every store
    /// call is counted.
    pub fn new(deployment: &Deployment, tuning: Tuning, count_calls: bool) -> Self {
        let breakdown = count_calls.then(Breakdown::new);
        Self {
            cluster: Cluster::new(deployment, tuning, breakdown.as_ref()),
            audit_store: Arc::clone(&deployment.stores()[0]),
            breakdown,
        }
    }
}

#[async_trait]
impl Target for InProcess {
    /// The session API's entry point: placed, or queued for a booked
    /// exam with its waiting room on.
    async fn allocate(&self, via: usize, key: &SessionKey) -> AllocOutcome {
        let service = self.cluster.replica(via);
        AllocOutcome::of_request(
            service
                .placement()
                .request_session(key.clone(), Default::default())
                .await,
        )
    }

    async fn book(&self, exam: BookExamRequest) -> anyhow::Result<Option<u32>> {
        let exam = exam.into_exam()?;
        Ok(
            match self
                .cluster
                .replica(0)
                .exams()
                .book_exam(exam, "vdi-loadgen")
                .await?
            {
                Booking::Accepted(_) => None,
                Booking::Refused(refusal) => Some(refusal.shortfall.missing),
            },
        )
    }

    async fn release(&self, via: usize, key: &SessionKey) -> Result<(), String> {
        let service = self.cluster.replica(via);
        service
            .placement()
            .release(key)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn heartbeat(&self, via: usize, beat: Beat) -> Result<bool, String> {
        let service = self.cluster.replica(via);
        let hb = heartbeat(beat.worker, beat.slots, 0, BOOT, beat.seq);
        match service.fleet().heartbeat(hb).await {
            Ok(ack) => Ok(ack.accepted),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Every replica reads the registered fleet.
    async fn registered(&self) -> anyhow::Result<()> {
        for s in &self.cluster.services {
            s.fleet().worker_views().await.context("read the fleet")?;
        }
        Ok(())
    }

    fn reset_breakdown(&self) {
        if let Some(b) = &self.breakdown {
            b.reset();
        }
    }

    fn breakdown(&self) -> Option<BTreeMap<&'static str, MethodStats>> {
        self.breakdown.as_ref().map(Breakdown::snapshot)
    }

    /// Sessions beyond each worker's recorded `maxSessions`.
    async fn recount(&self, _slots: u32) -> anyhow::Result<Recount> {
        let audit = audit(self.audit_store.as_ref())
            .await
            .context("recount of the records")?;
        let max: HashMap<_, _> = self.cluster.services[0]
            .fleet()
            .worker_views()
            .await?
            .into_iter()
            .map(|v| (v.record.id.clone(), u64::from(v.record.max_sessions())))
            .collect();
        let worker_side_over = max
            .iter()
            .map(|(id, max)| (self.cluster.workers.sessions(id).len() as u64).saturating_sub(*max))
            .sum();
        Ok(Recount {
            audit,
            worker_side_over,
        })
    }
}
