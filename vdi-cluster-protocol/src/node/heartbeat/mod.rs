//! Worker → control plane: heartbeats and registration, and the
//! control plane's answer to a heartbeat.
//!
//! By body: `session_ref` ([`SessionRef`]), `description`
//! ([`DescriptionJson`], shared by registrations and heartbeats), `host`
//! ([`HostJson`]), `pool` ([`PoolJson`], the prewarm pool per exam),
//! `request` ([`HeartbeatRequest`]), `response` ([`HeartbeatResponse`]),
//! `register` ([`RegisterRequest`], [`DeregisterRequest`]).

mod description;
mod host;
mod pool;
mod register;
mod request;
mod response;
mod session_ref;

pub use description::DescriptionJson;
pub use host::HostJson;
pub use pool::{ExamPoolJson, PoolJson};
pub use register::{DeregisterRequest, RegisterRequest};
pub use request::HeartbeatRequest;
pub use response::HeartbeatResponse;
pub use session_ref::SessionRef;

/// The exam platform's heartbeat body (`docs/compat/exam-platform-registry.md`),
/// shared by the tests of the bodies.
#[cfg(test)]
const EXAM_PLATFORM_HEARTBEAT: &str = r#"{
      "code": "worker-node-2",
      "name": "Worker Node 2",
      "apiBaseUrl": "https://worker2.example.edu.vn",
      "totalCpuCores": 32,
      "totalMemoryMb": 65536,
      "reservedCpuCores": 4,
      "reservedMemoryMb": 8192,
      "vmCpuCores": 1.5,
      "vmMemoryMb": 2048,
      "activeSessions": 11
    }"#;
