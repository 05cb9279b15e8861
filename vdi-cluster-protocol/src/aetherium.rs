//! Control plane → operators: Aetherium's resource view, in Aetherium's
//! snake_case spelling (docs/compat/aetherium.md).
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/api/vdi/vms` | [`VmList`] |
//! | `GET` | `/api/vdi/vms/{id}` | [`VmJson`] |
//! | `GET` | `/api/vdi/aetherium/workers` | [`AetheriumWorkerList`] |
//! | `GET` | `/api/vdi/aetherium/workers/{code}` | [`AetheriumWorkerJson`] |
//!
//! A VM is a session or a prewarmed machine ([`vdi_cluster_core::vm`]). A
//! worker in Aetherium's spelling is converted from our own [`WorkerJson`],
//! so both views show the same figures, computed once.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::vm::{Vm, VmId};

use crate::workers::WorkerJson;

/// A session or a prewarmed machine as one of Aetherium's VMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmJson {
    /// Stable and safe in a path: `session:<examId>:<userId>` or
    /// `prewarm:<workerCode>:<examId>:<n>`, exam and user ids in unpadded
    /// base64url.
    pub id: String,
    /// For humans: `<examId>/<userId>`, or `prewarm <examId> #<n>`.
    pub name: String,
    /// The worker it runs on (our `workerCode`).
    pub worker_id: String,
    /// `running`, `starting`, `ready` (a prewarmed machine waiting for a
    /// student) or `orphaned`.
    pub status: String,
    /// CPU cores of one slot of its worker (`vmCpuCores`); null before the
    /// worker reported its capacity.
    pub vcpus: Option<f64>,
    /// Memory of one slot of its worker, MB (`vmMemoryMb`).
    pub memory_mb: Option<u64>,
    /// `session` or `prewarmed`.
    pub kind: String,
    /// The exam it serves.
    pub exam_id: String,
    /// The student on it (a session only).
    pub user_id: Option<String>,
}

impl From<&Vm> for VmJson {
    fn from(vm: &Vm) -> Self {
        let kind = match vm.id {
            VmId::Session(_) => "session",
            VmId::Prewarmed { .. } => "prewarmed",
        };
        Self {
            id: vm.id.to_string(),
            name: vm.name(),
            worker_id: vm.worker.to_string(),
            status: vm.status.name().to_owned(),
            vcpus: vm.size.map(|s| s.cpu.as_cores()),
            memory_mb: vm.size.map(|s| s.memory_mb),
            kind: kind.to_owned(),
            exam_id: vm.exam().to_string(),
            user_id: vm.user().map(ToString::to_string),
        }
    }
}

/// Aetherium's `GET /vms`: `{"vms": [...], "total": n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmList {
    /// The VMs, by worker code: sessions first, then prewarmed machines.
    pub vms: Vec<VmJson>,
    /// How many are listed.
    pub total: usize,
}

impl VmList {
    /// The list of `vms`.
    pub fn new(vms: &[Vm]) -> Self {
        Self {
            vms: vms.iter().map(VmJson::from).collect(),
            total: vms.len(),
        }
    }
}

/// A worker as Aetherium's `GET /workers/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AetheriumWorkerJson {
    /// Our `code`.
    pub id: String,
    /// As the agent reports it.
    pub hostname: Option<String>,
    /// `host:port` of our `apiBaseUrl`.
    pub address: String,
    /// Zone.
    pub zone: Option<String>,
    /// Our `status` (`active`, `draining`, `offline`, and our other values).
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Capabilities.
    pub capabilities: BTreeSet<String>,
    /// Our `totalCpuCores`.
    pub cpu_cores: Option<f64>,
    /// Our `totalMemoryMb`.
    pub memory_mb: Option<u64>,
    /// Our `diskGb`.
    pub disk_gb: Option<u64>,
    /// Our `usedCpuCores`: `usedSessions × vmCpuCores`.
    pub used_cpu_cores: Option<f64>,
    /// Our `usedMemoryMb`: `usedSessions × vmMemoryMb`.
    pub used_memory_mb: Option<u64>,
    /// Our `usedDiskGb`.
    pub used_disk_gb: Option<u64>,
    /// Our `cpuPercent`, measured by the agent.
    pub cpu_usage_percent: Option<f64>,
    /// Our `memoryPercent`, measured by the agent.
    pub memory_usage_percent: Option<f64>,
    /// Our `usedSessions`.
    pub vm_count: u32,
    /// Our `maxSessions`.
    pub max_vms: u32,
    /// Our `startedAt`, in RFC 3339.
    pub started_at: Option<String>,
    /// Our `lastHeartbeatAt`, in RFC 3339.
    pub last_seen: Option<String>,
    /// As `2h30m45s`.
    pub uptime: Option<String>,
    /// Our `isHealthy`.
    pub is_healthy: bool,
}

/// The `host:port` of a base URL (what follows the scheme, up to the
/// path).
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

fn rfc3339(millis: Option<u64>) -> Option<String> {
    millis.map(|ms| format_rfc3339(Timestamp::from_millis(ms)))
}

impl From<&WorkerJson> for AetheriumWorkerJson {
    fn from(w: &WorkerJson) -> Self {
        Self {
            id: w.code.clone(),
            hostname: w.hostname.clone(),
            address: authority(&w.api_base_url),
            zone: w.zone.clone(),
            status: w.status.clone(),
            labels: w.labels.clone(),
            capabilities: w.capabilities.clone(),
            cpu_cores: w.total_cpu_cores,
            memory_mb: w.total_memory_mb,
            disk_gb: w.disk_gb,
            used_cpu_cores: w.used_cpu_cores,
            used_memory_mb: w.used_memory_mb,
            used_disk_gb: w.used_disk_gb,
            cpu_usage_percent: w.cpu_percent,
            memory_usage_percent: w.memory_percent,
            vm_count: w.used_sessions,
            max_vms: w.max_sessions,
            started_at: rfc3339(w.started_at),
            last_seen: rfc3339(w.last_heartbeat_at),
            uptime: w.uptime.clone(),
            is_healthy: w.is_healthy,
        }
    }
}

/// Aetherium's `GET /workers`: `{"workers": [...], "total": n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AetheriumWorkerList {
    /// The workers, by id.
    pub workers: Vec<AetheriumWorkerJson>,
    /// How many.
    pub total: usize,
}

impl From<&crate::workers::WorkerList> for AetheriumWorkerList {
    fn from(list: &crate::workers::WorkerList) -> Self {
        Self {
            workers: list.workers.iter().map(AetheriumWorkerJson::from).collect(),
            total: list.page.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use vdi_cluster_core::health::HealthConfig;
    use vdi_cluster_core::vm::VmSize;
    use vdi_cluster_core::{
        CapacityInput, CapacitySpec, Dispatch, Millicores, SessionKey, WorkerDescription, WorkerId,
        WorkerRecord, WorkerSnapshot, WorkerView,
    };

    use super::*;

    use crate::test_support::sorted_keys as keys;

    #[test]
    fn a_vm_has_aetherium_s_fields() {
        let key = SessionKey::parse("exam-1", "u1").unwrap();
        let worker = WorkerId::parse("code", "w1").unwrap();
        let dispatch = Dispatch::reserve(key, worker, Timestamp::from_millis(5), None, None);
        let size = VmSize {
            cpu: Millicores(1500),
            memory_mb: 2048,
        };
        let json =
            serde_json::to_value(VmJson::from(&Vm::of_dispatch(&dispatch, Some(size)))).unwrap();
        assert_eq!(
            keys(&json),
            [
                "exam_id",
                "id",
                "kind",
                "memory_mb",
                "name",
                "status",
                "user_id",
                "vcpus",
                "worker_id"
            ]
        );
        assert_eq!(json["id"], "session:ZXhhbS0x:dTE");
        assert_eq!(json["vcpus"], 1.5);
        assert_eq!(json["memory_mb"], 2048);
        assert_eq!(json["status"], "starting");
        assert_eq!(json["kind"], "session");
    }

    #[test]
    fn a_worker_in_aetherium_s_spelling_carries_our_figures() {
        let id = WorkerId::parse("code", "w1").unwrap();
        let mut record =
            WorkerRecord::registered(id, WorkerDescription::default(), Timestamp::from_millis(0));
        record.capacity = Some(
            CapacitySpec::new(CapacityInput {
                total_cpu_cores: 16.0,
                total_memory_mb: 32_768,
                reserved_cpu_cores: 1.0,
                reserved_memory_mb: 1024,
                vm_cpu_cores: 1.5,
                vm_memory_mb: 2048,
            })
            .unwrap(),
        );
        record.last_heartbeat_at = Some(Timestamp::from_millis(1_762_087_845_000));
        record.resources.cpu_percent = Some(42.5);
        let snapshot = WorkerSnapshot {
            record,
            version: 1,
            dispatched: 2,
        };
        let now = Timestamp::from_millis(1_762_087_850_000);
        let view = WorkerView::new(snapshot, now, &HealthConfig::default());
        let ours = WorkerJson::new(&view, now);
        let theirs = AetheriumWorkerJson::from(&ours);
        assert_eq!(theirs.id, "w1");
        assert_eq!(theirs.vm_count, ours.used_sessions);
        assert_eq!(theirs.max_vms, ours.max_sessions);
        assert_eq!(theirs.cpu_usage_percent, Some(42.5));
        assert_eq!(theirs.last_seen.as_deref(), Some("2025-11-02T12:50:45Z"));
        let json = serde_json::to_value(&theirs).unwrap();
        for field in [
            "cpu_usage_percent",
            "vm_count",
            "max_vms",
            "last_seen",
            "memory_usage_percent",
            "used_cpu_cores",
            "is_healthy",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn the_address_is_the_base_url_s_authority() {
        assert_eq!(
            authority("http://192.168.1.10:8081/api"),
            "192.168.1.10:8081"
        );
        assert_eq!(authority("https://node1:9000"), "node1:9000");
        assert_eq!(authority("node1:9000"), "node1:9000");
    }
}
