//! Heartbeat bodies, as a worker sends them.

use serde_json::{Value, json};

/// The exam platform's heartbeat body, verbatim, with `activeSessions` and the
/// worker's code and URL replaced.
pub fn exam_platform_heartbeat(code: &str, api_base_url: &str, active: u32) -> Value {
    json!({
      "code": code,
      "name": "Worker Node 2",
      "apiBaseUrl": api_base_url,
      "totalCpuCores": 32,
      "totalMemoryMb": 65536,
      "reservedCpuCores": 4,
      "reservedMemoryMb": 8192,
      "vmCpuCores": 1.5,
      "vmMemoryMb": 2048,
      "activeSessions": active
    })
}

/// A heartbeat with exactly `slots` slots.
pub fn slots_heartbeat(code: &str, api_base_url: &str, slots: u32, active: u32) -> Value {
    json!({
      "code": code,
      "name": code,
      "apiBaseUrl": api_base_url,
      "totalCpuCores": slots,
      "totalMemoryMb": slots * 1024,
      "vmCpuCores": 1,
      "vmMemoryMb": 1024,
      "activeSessions": active
    })
}
