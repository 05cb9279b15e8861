//! What a worker tells about its host besides capacity (as SkyPanelV2 and
//! Aetherium):
//! host name, disk, operating system and agent version. Informational: no
//! scheduling decision reads it.

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
            hostname: incoming.hostname.clone().or_else(|| self.hostname.clone()),
            disk_gb: incoming.disk_gb.or(self.disk_gb),
            used_disk_gb: incoming.used_disk_gb.or(self.used_disk_gb),
            os: incoming.os.clone().or_else(|| self.os.clone()),
            agent_version: incoming
                .agent_version
                .clone()
                .or_else(|| self.agent_version.clone()),
        }
    }
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
            ..HostInfo::default()
        };
        let merged = stored.merged(&incoming);
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
        assert!(HostInfo::default().validate().is_ok());
    }
}
