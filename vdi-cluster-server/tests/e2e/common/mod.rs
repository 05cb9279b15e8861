//! The harness: the built `vdi-cluster` binary as real child processes on
//! 127.0.0.1 (a control plane, workers), HTTP helpers, an SSE reader, and
//! polling with a deadline. Every child is killed when its guard drops,
//! even on panic; a failing test prints the tail of each child's log.

mod api;
mod cluster;
mod control_plane;
mod events;
mod process;
mod scale;
mod sessions;
mod tokens;
mod wait;
mod worker;

use std::time::Duration;

// The e2e and browser tests each use a part of the harness.
#[allow(unused_imports)]
pub use self::{
    api::{Api, http},
    cluster::Cluster,
    control_plane::{ControlPlane, CpOptions},
    events::Events,
    process::{Proc, free_port},
    scale::ScaledCluster,
    sessions::by_worker,
    tokens::{admin_token, service_token},
    wait::{eventually, eventually_within, wait_worker},
    worker::{Worker, WorkerOptions},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_vdi-cluster");
pub const JWT_SECRET: &str = "e2e-secret-0123456789abcdef0123456789abcdef";
pub const CLUSTER_TOKEN: &str = "e2e-cluster-token-0123456789abcdef012345";
pub const WORKER_TOKEN: &str = "e2e-worker-token-0123456789abcdef0123456";

/// Short cluster timings for tests (seconds): heartbeats every second, a
/// worker is unreachable after 3 s of silence, offline after 10 s; reconcile
/// every second.
pub const HEARTBEAT_SEC: u64 = 1;
pub const TTL_SEC: u64 = 3;
pub const OFFLINE_SEC: u64 = 10;
pub const RECONCILE_SEC: u64 = 1;

/// Failure bound of every wait: generous, so a loaded machine does not make
/// a test fail. No test asserts on how long anything took.
pub const DEADLINE: Duration = Duration::from_secs(60);
