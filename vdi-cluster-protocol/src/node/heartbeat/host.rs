//! [`HostJson`]: what a worker tells about its host.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::HostInfo;

/// What a worker tells about its host (as SkyPanelV2 and Aetherium): flattened into
/// [`HeartbeatRequest`]. Every field is optional; one left out keeps what
/// the control plane stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostJson {
    /// The node's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub hostname: Option<String>,
    /// Disk size, GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 1_073_741_824)]
    pub disk_gb: Option<u64>,
    /// Disk in use, GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 1_073_741_824)]
    pub used_disk_gb: Option<u64>,
    /// Operating system and version (`Ubuntu 22.04`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub os: Option<String>,
    /// Version of the worker agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub agent_version: Option<String>,
}

impl From<HostJson> for HostInfo {
    fn from(h: HostJson) -> Self {
        Self {
            hostname: h.hostname,
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os,
            agent_version: h.agent_version,
        }
    }
}

impl From<&HostInfo> for HostJson {
    fn from(h: &HostInfo) -> Self {
        Self {
            hostname: h.hostname.clone(),
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os.clone(),
            agent_version: h.agent_version.clone(),
        }
    }
}
