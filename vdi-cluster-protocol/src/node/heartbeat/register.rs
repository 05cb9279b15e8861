//! [`RegisterRequest`] and [`DeregisterRequest`]: a worker arriving and
//! leaving.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::{HostInfo, ValidationError, WorkerDescription, WorkerId};

use super::description::require_api_base_url;
use super::{DescriptionJson, HostJson};

/// Registration ahead of the first heartbeat (as minicloud). Idempotent: a
/// known worker's description is updated. Without `code`, or with one
/// another worker (on another host) holds, the control plane assigns one
/// and answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The worker's code, as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
        min_length = 1,
        max_length = 64
    )]
    pub code: Option<String>,
    /// Name, URL, zone, labels, capabilities.
    #[serde(flatten)]
    pub description: DescriptionJson,
    /// Host name, address, disk, OS, container runtime, Nix and agent
    /// versions (as SkyPanelV2).
    #[serde(flatten)]
    pub host: HostJson,
}

impl RegisterRequest {
    /// The requested id (field `code`), if any, the description and the
    /// host metadata. Both are validated by core
    /// (`Fleet::register_assigned`), not here.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> Result<(Option<WorkerId>, WorkerDescription, HostInfo), ValidationError> {
        let id = self
            .code
            .map(|code| WorkerId::parse("code", code))
            .transpose()?;
        require_api_base_url(&self.description)?;
        Ok((id, self.description.into(), self.host.into()))
    }
}

/// A worker leaving cleanly (as minicloud), optionally saying why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeregisterRequest {
    /// Why (`shutdown`, `maintenance`, ...), shown in the worker's detail
    /// and the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub reason: Option<String>,
}
