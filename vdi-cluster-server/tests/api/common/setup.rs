//! How a test server is built: its store, its worker client, the service
//! configuration, limits, throttling and credentials.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{MemoryStore, ServiceConfig, Store, WorkerClient};
use vdi_cluster_server::HttpLimits;
use vdi_cluster_server::auth::AuthConfig;
use vdi_cluster_server::client::HttpWorkerClient;
use vdi_cluster_server::throttle::ThrottleConfig;

use super::{CLUSTER_TOKEN, JWT_SECRET, WORKER_CALL_TIMEOUT, WORKER_TOKEN};

/// The service configuration of tests: fresh snapshots, no herd rotation
/// (deterministic order), short worker calls.
// `ServiceConfig` is `#[non_exhaustive]`: no struct literal from outside.
#[allow(clippy::field_reassign_with_default)]
pub fn test_config() -> ServiceConfig {
    let mut c = ServiceConfig::default();
    c.snapshot_max_age = Duration::ZERO;
    c.herd_width = 1;
    c.worker_call_timeout = WORKER_CALL_TIMEOUT;
    c.seed = 7;
    c
}

/// How to build a test server.
pub struct Setup {
    pub store: Arc<dyn Store>,
    pub memory: Option<MemoryStore>,
    pub client: Arc<dyn WorkerClient>,
    pub config: ServiceConfig,
    pub limits: HttpLimits,
    pub throttle: ThrottleConfig,
    pub store_name: &'static str,
    pub auth: AuthConfig,
    /// How long the cluster statistics are kept (none by default).
    pub stats_window: Duration,
}

impl Setup {
    /// `store` and `client` with the tests' configuration, limits,
    /// throttling and credentials.
    fn new(
        store: Arc<dyn Store>,
        memory: Option<MemoryStore>,
        client: Arc<dyn WorkerClient>,
        store_name: &'static str,
    ) -> Self {
        Self {
            store,
            memory,
            client,
            config: test_config(),
            limits: HttpLimits::default(),
            throttle: lenient_throttle(),
            store_name,
            auth: auth(),
            stats_window: Duration::ZERO,
        }
    }

    /// In-memory store, simulated workers.
    pub fn memory() -> (Self, SimulatedWorkers) {
        let memory = MemoryStore::new();
        let sim = SimulatedWorkers::new();
        let client = Arc::new(sim.clone());
        (
            Self::new(Arc::new(memory.clone()), Some(memory), client, "memory"),
            sim,
        )
    }

    /// In-memory store, real HTTP calls to workers.
    pub fn memory_http() -> Self {
        let memory = MemoryStore::new();
        Self::new(
            Arc::new(memory.clone()),
            Some(memory),
            http_client(),
            "memory",
        )
    }

    /// Any store, real HTTP calls to workers.
    pub fn with_store_http(store: Arc<dyn Store>, name: &'static str) -> Self {
        Self::new(store, None, http_client(), name)
    }

    /// Any store, simulated workers.
    pub fn with_store(store: Arc<dyn Store>, name: &'static str) -> (Self, SimulatedWorkers) {
        let sim = SimulatedWorkers::new();
        let client = Arc::new(sim.clone());
        (Self::new(store, None, client, name), sim)
    }
}

/// Real HTTP calls to workers, with the cluster token.
fn http_client() -> Arc<dyn WorkerClient> {
    Arc::new(HttpWorkerClient::new(Some(CLUSTER_TOKEN), WORKER_CALL_TIMEOUT).unwrap())
}

/// Tests send many bad credentials from one address on purpose: no
/// throttling, unless a test asks for it.
pub fn lenient_throttle() -> ThrottleConfig {
    ThrottleConfig {
        max_failures: u32::MAX,
        ..ThrottleConfig::default()
    }
}

pub fn auth() -> AuthConfig {
    AuthConfig::new()
        .with_jwt_secret(JWT_SECRET.as_bytes(), None, None)
        .with_worker_token(WORKER_TOKEN)
}
