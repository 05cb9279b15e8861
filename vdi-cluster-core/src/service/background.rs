//! The background loop: health events and periodic reconcile, on one
//! replica at a time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval};

use super::ClusterService;
use super::reconcile::HealthMonitor;
use crate::policy::AdminPolicy;
use crate::store::Lease;

/// The lease that elects the replica running background jobs.
pub const BACKGROUND_LEASE: &str = "background";

/// Timing of [`run_background`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackgroundConfig {
    /// How often health is observed (and the lease renewed): 5 s.
    pub tick: Duration,
    /// Lease lifetime; must exceed `tick` comfortably: 30 s.
    pub lease_ttl: Duration,
    /// Reconcile period: 60 s (seed 000).
    pub reconcile_every: Duration,
    /// `WORKER_DISPATCH_CLEANUP_ENABLED`: run periodic reconcile at all.
    pub reconcile_enabled: bool,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
            reconcile_every: Duration::from_secs(60),
            reconcile_enabled: true,
        }
    }
}

/// Runs until `shutdown` completes. On each tick the replica tries to hold
/// the background lease; while it does, it turns availability changes into
/// events, completes drains, and reconciles every `reconcile_every`. On
/// shutdown it gives the lease up so another replica takes over at once.
pub async fn run_background(
    service: Arc<ClusterService>,
    config: BackgroundConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticker = interval(config.tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut monitor = HealthMonitor::default();
    let mut held: Option<Lease> = None;
    let mut last_reconcile = Instant::now();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let replica = &service.config().replica_id;
        match service
            .store()
            .try_acquire(BACKGROUND_LEASE, replica, config.lease_ttl)
            .await
        {
            Ok(Some(lease)) => {
                if held.is_none() {
                    tracing::info!(replica = %replica, token = lease.token, "holding the background lease");
                    last_reconcile = Instant::now();
                }
                held = Some(lease);
                if let Err(e) = tick(&service, &mut monitor).await {
                    tracing::warn!(error = %e, "health tick failed");
                }
                if config.reconcile_enabled && last_reconcile.elapsed() >= config.reconcile_every {
                    last_reconcile = Instant::now();
                    match service.reconcile().await {
                        Ok(report) => tracing::info!(?report, "reconcile pass"),
                        Err(e) => tracing::warn!(error = %e, "reconcile failed"),
                    }
                }
            }
            Ok(None) => {
                if held.take().is_some() {
                    tracing::info!(replica = %replica, "lost the background lease");
                }
                monitor.reset();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the store for the background lease");
                held = None;
                monitor.reset();
            }
        }
    }
    if let Some(lease) = held
        && let Err(e) = service.store().release_lease(&lease).await
    {
        tracing::warn!(error = %e, "could not give up the background lease");
    }
}

async fn tick(service: &ClusterService, monitor: &mut HealthMonitor) -> crate::Result<()> {
    let views = service.worker_views().await?;
    for kind in monitor.observe(&views, service.clock().now()) {
        service.emit(kind);
    }
    for view in views
        .iter()
        .filter(|v| matches!(v.record.policy, AdminPolicy::Draining { .. }))
    {
        service.observe_policy(view).await?;
    }
    service.evaluate_exam_risks().await?;
    Ok(())
}
