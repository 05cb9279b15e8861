//! Test support: a real server on 127.0.0.1 port 0, credentials, request
//! helpers and fake worker nodes (small axum apps on their own ports).

mod credentials;
mod fake_worker;
mod heartbeats;
mod server;
mod setup;

use std::time::Duration;

pub use self::{
    credentials::{Cred, jwt},
    fake_worker::{Behaviour, FakeWorker},
    heartbeats::{exam_platform_heartbeat, slots_heartbeat},
    server::{Reply, TestServer},
    setup::{Setup, auth},
};

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const WORKER_TOKEN: &str = "worker-token-for-tests-0123456789abcdef";
pub const CLUSTER_TOKEN: &str = "cluster-token-for-tests-0123456789abcdef";
/// Timeout of one worker call in tests: short enough that a hanging fake
/// worker fails over quickly, long enough for a healthy one on a busy
/// machine. No test asserts on time.
pub const WORKER_CALL_TIMEOUT: Duration = Duration::from_secs(2);
