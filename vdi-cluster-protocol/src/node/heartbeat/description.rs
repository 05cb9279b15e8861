//! [`DescriptionJson`]: who a worker is and where to reach it, flattened
//! into registrations and heartbeats.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::{ValidationError, WorkerDescription};

use crate::decode::keyed;

/// The descriptive fields a worker sends on registration and on every
/// heartbeat: who it is and where to reach it. Flattened into
/// [`RegisterRequest`] and [`HeartbeatRequest`], so both bodies spell them
/// the same way.
///
/// Each field names itself when its value has the wrong JSON type (a
/// flattened field is read from a buffer, where serde loses its path).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DescriptionJson {
    /// Display name; on a heartbeat, empty keeps the stored one.
    #[serde(default, deserialize_with = "name")]
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: String,
    /// Base URL the control plane calls (required): an absolute `http://`
    /// or `https://` URL with a host, at most 512 characters.
    #[serde(default, deserialize_with = "api_base_url")]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 512,
        pattern = "^https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:[/?#][^\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub api_base_url: String,
    /// Zone, for constraints and per-zone statistics.
    #[serde(
        default,
        deserialize_with = "zone",
        skip_serializing_if = "Option::is_none"
    )]
    pub zone: Option<String>,
    /// Free-form labels.
    #[serde(
        default,
        deserialize_with = "labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Capabilities (`gpu`, `firecracker`).
    #[serde(
        default,
        deserialize_with = "capabilities",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub capabilities: BTreeSet<String>,
}

fn name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    keyed("name", d)
}

fn api_base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    keyed("apiBaseUrl", d)
}

fn zone<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    keyed("zone", d)
}

fn labels<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    keyed("labels", d)
}

fn capabilities<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    keyed("capabilities", d)
}

/// The wire requires `apiBaseUrl` on every heartbeat and registration
/// (core, called in process, also takes an empty one as "keep the stored
/// one"); its syntax is core's to check.
pub(super) fn require_api_base_url(d: &DescriptionJson) -> Result<(), ValidationError> {
    if d.api_base_url.is_empty() {
        return Err(ValidationError::new(
            "apiBaseUrl",
            "required: an absolute http:// or https:// URL with a host",
        ));
    }
    Ok(())
}

impl From<&WorkerDescription> for DescriptionJson {
    fn from(d: &WorkerDescription) -> Self {
        Self {
            name: d.name.clone(),
            api_base_url: d.api_base_url.clone(),
            zone: d.zone.clone(),
            labels: d.labels.clone(),
            capabilities: d.capabilities.clone(),
        }
    }
}

impl From<DescriptionJson> for WorkerDescription {
    fn from(d: DescriptionJson) -> Self {
        Self {
            name: d.name,
            api_base_url: d.api_base_url,
            zone: d.zone,
            labels: d.labels,
            capabilities: d.capabilities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EXAM_PLATFORM_HEARTBEAT, HeartbeatRequest, RegisterRequest};

    #[test]
    fn description_fields_name_themselves_through_flatten() {
        let mut v: serde_json::Value = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        v["labels"] = serde_json::json!(["a"]);
        let e =
            crate::decode::parse_json::<HeartbeatRequest>(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field, "labels");
        let e = crate::decode::parse_json::<RegisterRequest>(br#"{"code": "w", "zone": 5}"#)
            .unwrap_err();
        assert_eq!(e.field, "zone");
    }
}
