//! [`HostJson`]: what a worker tells about its host.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::HostInfo;

use crate::decode::keyed;

/// What a worker tells about its host (as SkyPanelV2 and Aetherium): flattened into
/// [`HeartbeatRequest`]. Every field is optional; one left out keeps what
/// the control plane stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostJson {
    /// The node's host name.
    #[serde(
        default,
        deserialize_with = "hostname",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub hostname: Option<String>,
    /// Disk size, GB.
    #[serde(
        default,
        deserialize_with = "disk_gb",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(maximum = 1_073_741_824)]
    pub disk_gb: Option<u64>,
    /// Disk in use, GB.
    #[serde(
        default,
        deserialize_with = "used_disk_gb",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(maximum = 1_073_741_824)]
    pub used_disk_gb: Option<u64>,
    /// Operating system and version (`Ubuntu 22.04`).
    #[serde(
        default,
        deserialize_with = "os",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub os: Option<String>,
    /// Version of the worker agent.
    #[serde(
        default,
        deserialize_with = "agent_version",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub agent_version: Option<String>,
    /// The node's IP address, IPv4 or IPv6 (SkyPanelV2's `ipAddress`).
    #[serde(
        default,
        deserialize_with = "ip_address",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(max_length = 45, example = "192.168.1.100")]
    pub ip_address: Option<String>,
    /// Container runtime and version (SkyPanelV2's `dockerVersion`:
    /// `docker 24.0.0`).
    #[serde(
        default,
        deserialize_with = "container_runtime",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub container_runtime: Option<String>,
    /// Nix version (SkyPanelV2's `nixVersion`).
    #[serde(
        default,
        deserialize_with = "nix_version",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub nix_version: Option<String>,
}

/// One deserializer per field that names it in errors ([`keyed`]): the
/// struct is flattened into the bodies, where serde loses the path.
macro_rules! keyed_fields {
    ($($field:ident: $ty:ty = $name:literal),* $(,)?) => {$(
        fn $field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            keyed($name, d)
        }
    )*};
}

keyed_fields! {
    hostname: String = "hostname",
    disk_gb: u64 = "diskGb",
    used_disk_gb: u64 = "usedDiskGb",
    os: String = "os",
    agent_version: String = "agentVersion",
    ip_address: String = "ipAddress",
    container_runtime: String = "containerRuntime",
    nix_version: String = "nixVersion",
}

impl From<HostJson> for HostInfo {
    fn from(h: HostJson) -> Self {
        Self {
            hostname: h.hostname,
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os,
            agent_version: h.agent_version,
            ip_address: h.ip_address,
            container_runtime: h.container_runtime,
            nix_version: h.nix_version,
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
            ip_address: h.ip_address.clone(),
            container_runtime: h.container_runtime.clone(),
            nix_version: h.nix_version.clone(),
        }
    }
}
