//! Control-plane replicas over a deployment, with simulated workers.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{ClusterService, ServiceConfig, Store};

use crate::deploy::Deployment;
use crate::instrument::{Breakdown, Instrumented};

/// Boot id of the simulated workers.
pub const BOOT: &str = "bench-boot";

/// Settings of every replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// `ServiceConfig::snapshot_max_age`: how long a worker snapshot is
    /// reused for ranking.
    pub snapshot_max_age: Duration,
    /// Base seed; replica `i` uses `seed + i`.
    pub seed: u64,
    /// Whether the replicas pace starts (`PacingConfig::enabled`; off by
    /// default, so a run measures placements alone unless asked).
    pub pace_starts: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            snapshot_max_age: ServiceConfig::default().snapshot_max_age,
            seed: 42,
            pace_starts: false,
        }
    }
}

/// One [`ClusterService`] per store handle of a deployment, all calling the
/// same simulated workers.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The replicas.
    pub services: Vec<Arc<ClusterService>>,
    /// The simulated worker nodes.
    pub workers: SimulatedWorkers,
}

impl Cluster {
    /// Builds one replica per store of `deployment`; with `breakdown`,
    /// every store call is counted in it.
    pub fn new(deployment: &Deployment, tuning: Tuning, breakdown: Option<&Breakdown>) -> Self {
        let workers = SimulatedWorkers::new();
        let services = deployment
            .stores()
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let store: Arc<dyn Store> = match breakdown {
                    Some(b) => Arc::new(Instrumented::new(Arc::clone(store), b.clone())),
                    None => Arc::clone(store),
                };
                let mut config = ServiceConfig {
                    snapshot_max_age: tuning.snapshot_max_age,
                    seed: tuning.seed.wrapping_add(i as u64),
                    replica_id: format!("bench-replica-{i}"),
                    ..ServiceConfig::default()
                };
                config.pacing.enabled = tuning.pace_starts;
                Arc::new(
                    ClusterService::builder(store, Arc::new(workers.clone()))
                        .config(config)
                        .build(),
                )
            })
            .collect();
        Self { services, workers }
    }

    /// The replica that serves operation `i` (round robin).
    pub fn replica(&self, i: usize) -> &Arc<ClusterService> {
        &self.services[i % self.services.len()]
    }
}
