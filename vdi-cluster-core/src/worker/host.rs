//! What a worker tells about its host besides capacity (as SkyPanelV2 and
//! Aetherium):
//! host name, address, disk, operating system, container runtime, Nix and
//! agent versions. Informational: no scheduling decision reads it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// Longest host name, OS or version string, in characters.
pub const MAX_HOST_TEXT_LEN: usize = 255;
/// Largest disk accepted, GB (1 EB).
pub const MAX_DISK_GB: u64 = 1 << 30;

/// Host metadata from the latest heartbeat that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostInfo {
    /// The node's host name (`node1.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Disk size, GB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<u64>,
    /// Disk in use, GB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_disk_gb: Option<u64>,
    /// Operating system and version (`Ubuntu 22.04`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Version of the worker agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The node's IP address (`192.168.1.100`, or IPv6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Container runtime and version (SkyPanelV2's `dockerVersion`:
    /// `docker 24.0.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
    /// Nix version (`2.18.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nix_version: Option<String>,
}

fn check_text(field: &str, value: Option<&String>) -> Result<(), ValidationError> {
    match value {
        Some(v)
            if v.is_empty()
                || v.chars().count() > MAX_HOST_TEXT_LEN
                || v.chars().any(char::is_control) =>
        {
            Err(ValidationError::new(
                field,
                format!("must be 1 to {MAX_HOST_TEXT_LEN} characters without control characters"),
            ))
        }
        _ => Ok(()),
    }
}

impl HostInfo {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks lengths and sizes; errors name the API field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("hostname", self.hostname.as_ref())?;
        check_text("os", self.os.as_ref())?;
        check_text("agentVersion", self.agent_version.as_ref())?;
        check_text("containerRuntime", self.container_runtime.as_ref())?;
        check_text("nixVersion", self.nix_version.as_ref())?;
        if let Some(ip) = &self.ip_address
            && ip.parse::<IpAddr>().is_err()
        {
            return Err(ValidationError::new(
                "ipAddress",
                "must be an IPv4 or IPv6 address",
            ));
        }
        for (field, value) in [("diskGb", self.disk_gb), ("usedDiskGb", self.used_disk_gb)] {
            if value.is_some_and(|v| v > MAX_DISK_GB) {
                return Err(ValidationError::new(
                    field,
                    format!("must be at most {MAX_DISK_GB}"),
                ));
            }
        }
        Ok(())
    }

    /// `incoming` over `self`: fields a heartbeat leaves out keep what is
    /// stored.
    pub fn merged(&self, incoming: &Self) -> Self {
        Self {
            hostname: newer(&incoming.hostname, &self.hostname),
            disk_gb: incoming.disk_gb.or(self.disk_gb),
            used_disk_gb: incoming.used_disk_gb.or(self.used_disk_gb),
            os: newer(&incoming.os, &self.os),
            agent_version: newer(&incoming.agent_version, &self.agent_version),
            ip_address: newer(&incoming.ip_address, &self.ip_address),
            container_runtime: newer(&incoming.container_runtime, &self.container_runtime),
            nix_version: newer(&incoming.nix_version, &self.nix_version),
        }
    }
}

/// The incoming text if there is one, else the stored.
fn newer(incoming: &Option<String>, stored: &Option<String>) -> Option<String> {
    incoming.clone().or_else(|| stored.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_without_host_fields_keeps_the_stored_ones() {
        let stored = HostInfo {
            hostname: Some("node1".into()),
            disk_gb: Some(500),
            ..HostInfo::default()
        };
        let incoming = HostInfo {
            used_disk_gb: Some(50),
            ip_address: Some("10.0.0.7".into()),
            ..HostInfo::default()
        };
        let merged = stored.merged(&incoming);
        assert_eq!(merged.ip_address.as_deref(), Some("10.0.0.7"));
        assert_eq!(stored.merged(&HostInfo::default()), stored);
        assert_eq!(merged.hostname.as_deref(), Some("node1"));
        assert_eq!(merged.disk_gb, Some(500));
        assert_eq!(merged.used_disk_gb, Some(50));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = HostInfo {
            used_disk_gb: Some(MAX_DISK_GB + 1),
            ..HostInfo::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "usedDiskGb");
        let bad = HostInfo {
            hostname: Some(String::new()),
            ..HostInfo::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "hostname");
        let bad = HostInfo {
            ip_address: Some("192.168.1.300".into()),
            ..HostInfo::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "ipAddress");
        let bad = HostInfo {
            container_runtime: Some("d".repeat(MAX_HOST_TEXT_LEN + 1)),
            ..HostInfo::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "containerRuntime");
        let bad = HostInfo {
            nix_version: Some("2.18\n".into()),
            ..HostInfo::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "nixVersion");
        let good = HostInfo {
            ip_address: Some("fd00::1".into()),
            container_runtime: Some("docker 24.0.0".into()),
            nix_version: Some("2.18.0".into()),
            ..HostInfo::default()
        };
        assert!(good.validate().is_ok());
        assert!(HostInfo::default().validate().is_ok());
    }
}
