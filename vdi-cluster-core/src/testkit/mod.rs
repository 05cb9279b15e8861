//! Test support shared by every backend: the conformance suite, simulated
//! workers, heartbeat builders and the [`fixtures`] every test builds
//! (re-exported here). Enabled by the `testkit` feature.

pub mod conformance;
pub mod delegate;
pub mod fixtures;
pub mod fuzzing;
pub mod instrument;
mod local;
mod scale_hook;
mod sim;

pub use fixtures::{
    FIXTURE_BOOT, FIXTURE_TIME, assert_no_drift, exam, exam_network_policy, key, request,
    reserve_and_confirm, total_dispatched, wid, worker_record, worker_record_at,
};
pub use local::{free_port, private_dir};
pub use scale_hook::ScriptedScaleHook;
pub use sim::{Behaviour, CheckBehaviour, SimulatedWorkers};

use crate::capacity::{CapacityInput, CapacitySpec};
use crate::health::{HeartbeatStamp, ResourceUsage};
use crate::ids::WorkerId;
use crate::worker::{Heartbeat, WorkerDescription};

/// Environment variable that turns "backend unreachable" from a skip into
/// a failure (CI sets it).
pub const REQUIRE_BACKENDS_ENV: &str = "VDI_REQUIRE_BACKENDS";

/// Reports an unreachable backend: panics when [`REQUIRE_BACKENDS_ENV`] is
/// `1`, otherwise prints a skip line. Returns `None` so callers can write
/// `let Some(f) = ... else { return skip(..) }`.
pub fn backend_unreachable<T>(
    backend: &str,
    url: &str,
    error: &dyn std::fmt::Display,
) -> Option<T> {
    if std::env::var(REQUIRE_BACKENDS_ENV).is_ok_and(|v| v == "1") {
        panic!("{backend} at {url} is unreachable and {REQUIRE_BACKENDS_ENV}=1: {error}");
    }
    eprintln!(
        "SKIP: {backend} at {url} is unreachable ({error}); set {REQUIRE_BACKENDS_ENV}=1 to fail instead"
    );
    None
}

/// A heartbeat of worker `code` with the runbook's profile: `cpu` cores and
/// `memory_mb`, 1 core and 1024 MB reserved, VM 1.5 cores / 2048 MB.
pub fn heartbeat_for(code: &str, cpu: f64, memory_mb: u64, active: u32) -> Heartbeat {
    heartbeat(
        code,
        CapacityInput {
            total_cpu_cores: cpu,
            total_memory_mb: memory_mb,
            reserved_cpu_cores: 1.0,
            reserved_memory_mb: 1024,
            vm_cpu_cores: 1.5,
            vm_memory_mb: 2048,
        },
        active,
    )
}

/// A heartbeat of worker `code` with exactly `slots` slots (one core and
/// 1024 MB per VM, nothing reserved).
pub fn heartbeat_with_slots(code: &str, slots: u32, active: u32) -> Heartbeat {
    heartbeat(
        code,
        CapacityInput {
            total_cpu_cores: f64::from(slots),
            total_memory_mb: u64::from(slots) * 1024,
            reserved_cpu_cores: 0.0,
            reserved_memory_mb: 0,
            vm_cpu_cores: 1.0,
            vm_memory_mb: 1024,
        },
        active,
    )
}

fn heartbeat(code: &str, input: CapacityInput, active: u32) -> Heartbeat {
    let worker = WorkerId::parse("code", code).expect("valid worker code");
    Heartbeat {
        description: WorkerDescription {
            name: code.to_owned(),
            api_base_url: format!("http://127.0.0.1/{code}"),
            ..Default::default()
        },
        worker,
        capacity: CapacitySpec::new(input).expect("valid capacity"),
        active_sessions: active,
        stamp: HeartbeatStamp::default(),
        live_sessions: None,
        live_details: Default::default(),
        prewarm_pool: Default::default(),
        max_concurrent_starts: None,
        resources: ResourceUsage::default(),
        host: Default::default(),
    }
}
