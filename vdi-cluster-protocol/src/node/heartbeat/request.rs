//! [`HeartbeatRequest`]: a worker's heartbeat, and its conversion into
//! core's [`Heartbeat`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::{
    CapacityInput, CapacitySpec, Heartbeat, HeartbeatStamp, ResourceUsage, SessionKey,
    ValidationError, WorkerId,
};

use super::description::require_api_base_url;
use super::{DescriptionJson, HostJson, PoolJson, SessionRef};

/// A worker's heartbeat: the exam platform's body, plus optional fields.
///
/// ```json
/// {"code": "worker-node-2", "name": "Worker Node 2",
///  "apiBaseUrl": "https://worker2.example.edu.vn",
///  "totalCpuCores": 32, "totalMemoryMb": 65536,
///  "reservedCpuCores": 4, "reservedMemoryMb": 8192,
///  "vmCpuCores": 1.5, "vmMemoryMb": 2048, "activeSessions": 11}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    /// The worker's code (`worker-node-2`).
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
        min_length = 1,
        max_length = 64
    )]
    pub code: String,
    /// Name, URL, zone, labels, capabilities.
    #[serde(flatten)]
    pub description: DescriptionJson,
    /// CPU cores of the node (decimals allowed, at most 3 places).
    #[serde(serialize_with = "whole_as_integer")]
    #[schema(minimum = 0, maximum = 65_536, multiple_of = 0.001)]
    pub total_cpu_cores: f64,
    /// Memory of the node, MB.
    #[schema(maximum = 67_108_864)]
    pub total_memory_mb: u64,
    /// CPU cores kept for the host (default 0).
    #[serde(default, serialize_with = "whole_as_integer")]
    #[schema(minimum = 0, maximum = 65_536, multiple_of = 0.001)]
    pub reserved_cpu_cores: f64,
    /// Memory kept for the host, MB (default 0).
    #[serde(default)]
    #[schema(maximum = 67_108_864)]
    pub reserved_memory_mb: u64,
    /// CPU cores of one session's VM (more than 0).
    #[serde(serialize_with = "whole_as_integer")]
    #[schema(exclusive_minimum = 0, maximum = 65_536, multiple_of = 0.001)]
    pub vm_cpu_cores: f64,
    /// Memory of one session's VM, MB (more than 0).
    #[schema(minimum = 1, maximum = 67_108_864)]
    pub vm_memory_mb: u64,
    /// Sessions running on the node now.
    #[schema(maximum = 1_000_000)]
    pub active_sessions: u32,
    /// Random id the agent picks at start-up; a new one means it restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub boot_id: Option<String>,
    /// Increases by one per heartbeat within a boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The sessions the node runs, when the agent reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 10_000)]
    pub live_sessions: Option<Vec<SessionRef>>,
    /// CPU usage percent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "some_whole_as_integer"
    )]
    #[schema(minimum = 0, maximum = 100)]
    pub cpu_percent: Option<f64>,
    /// Memory usage percent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "some_whole_as_integer"
    )]
    #[schema(minimum = 0, maximum = 100)]
    pub memory_percent: Option<f64>,
    /// Disk usage percent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "some_whole_as_integer"
    )]
    #[schema(minimum = 0, maximum = 100)]
    pub disk_percent: Option<f64>,
    /// Host name, disk, OS and agent version.
    #[serde(flatten)]
    pub host: HostJson,
    /// The prewarm pool per exam (left out: nothing prewarmed).
    #[serde(default, skip_serializing_if = "PoolJson::is_empty")]
    pub prewarm_pool: PoolJson,
    /// How many desktops the node may be starting at once (its agent's
    /// `--max-concurrent-starts`; left out: derived from its slots, a
    /// quarter of them rounded up, between 1 and 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrent_starts: Option<u32>,
}

impl HeartbeatRequest {
    /// Converts the body into core's [`Heartbeat`]. Only what core's types
    /// need to exist is checked here (the code, the capacity figures, the
    /// session ids); everything else is validated once, by core's
    /// `Fleet::heartbeat`. Errors name the field.
    pub fn into_heartbeat(self) -> Result<Heartbeat, ValidationError> {
        let worker = WorkerId::parse("code", self.code)?;
        require_api_base_url(&self.description)?;
        let capacity = CapacitySpec::new(CapacityInput {
            total_cpu_cores: self.total_cpu_cores,
            total_memory_mb: self.total_memory_mb,
            reserved_cpu_cores: self.reserved_cpu_cores,
            reserved_memory_mb: self.reserved_memory_mb,
            vm_cpu_cores: self.vm_cpu_cores,
            vm_memory_mb: self.vm_memory_mb,
        })?;
        let mut live_details = BTreeMap::new();
        let live_sessions = match self.live_sessions {
            None => None,
            Some(list) => Some(
                list.into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let key = SessionKey::parse(s.exam_id, s.user_id).map_err(|e| {
                            ValidationError::new(
                                format!("liveSessions[{i}].{}", e.field),
                                e.message,
                            )
                        })?;
                        if let Some(session) = s.session {
                            live_details.insert(key.clone(), serde_json::Value::Object(session));
                        }
                        Ok(key)
                    })
                    .collect::<Result<Vec<_>, ValidationError>>()?,
            ),
        };
        Ok(Heartbeat {
            worker,
            description: self.description.into(),
            capacity,
            active_sessions: self.active_sessions,
            stamp: HeartbeatStamp {
                boot_id: self.boot_id,
                seq: self.seq,
            },
            live_sessions,
            live_details,
            resources: ResourceUsage {
                cpu_percent: self.cpu_percent,
                memory_percent: self.memory_percent,
                disk_percent: self.disk_percent,
            },
            host: self.host.into(),
            prewarm_pool: self.prewarm_pool.into_report()?,
            max_concurrent_starts: self.max_concurrent_starts,
        })
    }
}

/// Writes a whole number of cores or percent as an integer (`8`, not
/// `8.0`): the same number to JSON, and a body the control plane reads
/// without rewriting it (see [`parse_json`](crate::decode::parse_json)).
fn whole_as_integer<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    match crate::unique_keys::integral(*value) {
        Some(n) => n.serialize(serializer),
        None => serializer.serialize_f64(*value),
    }
}

/// [`whole_as_integer`] of an optional figure (written only when present).
fn some_whole_as_integer<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => whole_as_integer(v, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EXAM_PLATFORM_HEARTBEAT, RegisterRequest};
    use super::*;

    #[test]
    fn exam_platform_body_parses_into_18_slots() {
        let req: HeartbeatRequest = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        let hb = req.into_heartbeat().unwrap();
        assert_eq!(hb.capacity.max_sessions(), 18);
        assert_eq!(hb.capacity.available_sessions(hb.active_sessions), 7);
        assert_eq!(hb.worker.as_str(), "worker-node-2");
    }

    #[test]
    fn unknown_fields_are_tolerated_on_heartbeats() {
        let mut v: serde_json::Value = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        v["agentVersion"] = "9.9".into();
        let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
        assert!(req.into_heartbeat().is_ok());
    }

    #[test]
    fn live_sessions_may_carry_the_session_object() {
        let mut v: serde_json::Value = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        let session = serde_json::json!({"connection": "rdp://w/e/u"});
        v["liveSessions"] = serde_json::json!([
            {"examId": "e", "userId": "u", "session": session},
            {"examId": "e", "userId": "v"},
        ]);
        let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
        let again = serde_json::to_value(&req).unwrap();
        assert!(
            again["liveSessions"][1].get("session").is_none(),
            "additive"
        );
        let hb = req.into_heartbeat().unwrap();
        assert_eq!(hb.live_sessions.map(|l| l.len()), Some(2));
        let u = SessionKey::parse("e", "u").unwrap();
        assert_eq!(hb.live_details.len(), 1);
        assert_eq!(hb.live_details.get(&u), Some(&session));
    }

    #[test]
    fn a_live_session_object_must_be_an_object() {
        let mut v: serde_json::Value = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        v["liveSessions"] = serde_json::json!([{"examId": "e", "userId": "u", "session": 6.5e261}]);
        let e =
            crate::decode::parse_json::<HeartbeatRequest>(v.to_string().as_bytes()).unwrap_err();
        assert!(e.field.starts_with("liveSessions"), "{e:?}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut v: serde_json::Value = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        v["vmCpuCores"] = 0.into();
        let req: HeartbeatRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(req.into_heartbeat().unwrap_err().field, "vmCpuCores");
        v["vmCpuCores"] = 1.into();
        v["liveSessions"] = serde_json::json!([{"examId": "e", "userId": ""}]);
        let req: HeartbeatRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(
            req.into_heartbeat().unwrap_err().field,
            "liveSessions[0].userId"
        );
        v["liveSessions"] = serde_json::Value::Null;
        v["bootId"] = "".into();
        let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
        // The boot id is core's to judge, once.
        let hb = req.into_heartbeat().unwrap();
        assert_eq!(hb.validate().unwrap_err().field, "bootId");
    }

    #[test]
    fn skypanel_metadata_is_carried_and_checked() {
        let mut v: serde_json::Value = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        v["ipAddress"] = "192.168.1.100".into();
        v["containerRuntime"] = "docker 24.0.0".into();
        v["nixVersion"] = "2.18.0".into();
        v["os"] = "Ubuntu 22.04".into();
        let req: HeartbeatRequest = serde_json::from_value(v.clone()).unwrap();
        let hb = req.into_heartbeat().unwrap();
        hb.validate().unwrap();
        assert_eq!(hb.host.ip_address.as_deref(), Some("192.168.1.100"));
        assert_eq!(hb.host.container_runtime.as_deref(), Some("docker 24.0.0"));
        assert_eq!(hb.host.nix_version.as_deref(), Some("2.18.0"));
        for (field, bad) in [
            ("ipAddress", serde_json::json!("not-an-ip")),
            ("containerRuntime", serde_json::json!("x".repeat(256))),
            ("nixVersion", serde_json::json!("")),
        ] {
            let mut v = v.clone();
            v[field] = bad;
            let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
            assert_eq!(
                req.into_heartbeat().unwrap().validate().unwrap_err().field,
                field
            );
        }
        let register: RegisterRequest = serde_json::from_value(serde_json::json!({
            "apiBaseUrl": "http://192.168.1.100:3000",
            "ipAddress": "192.168.1.100", "nixVersion": "2.18.0",
        }))
        .unwrap();
        assert_eq!(register.host.ip_address.as_deref(), Some("192.168.1.100"));
        assert_eq!(register.host.nix_version.as_deref(), Some("2.18.0"));
    }

    #[test]
    fn heartbeat_and_register_bodies_keep_their_field_names() {
        let req: HeartbeatRequest = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        let mut req = req;
        req.description.zone = Some("z".into());
        req.description.labels.insert("rack".into(), "1".into());
        req.description.capabilities.insert("gpu".into());
        req.boot_id = Some("b".into());
        req.seq = Some(1);
        req.live_sessions = Some(vec![SessionRef {
            exam_id: "e".into(),
            user_id: "u".into(),
            session: None,
        }]);
        req.cpu_percent = Some(1.0);
        req.memory_percent = Some(2.0);
        req.disk_percent = Some(3.0);
        req.prewarm_pool = serde_json::from_value(serde_json::json!({"e": {"ready": 1}})).unwrap();
        req.max_concurrent_starts = Some(4);
        let mut keys: Vec<String> = serde_json::to_value(&req)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "activeSessions",
                "apiBaseUrl",
                "bootId",
                "capabilities",
                "code",
                "cpuPercent",
                "diskPercent",
                "labels",
                "liveSessions",
                "maxConcurrentStarts",
                "memoryPercent",
                "name",
                "prewarmPool",
                "reservedCpuCores",
                "reservedMemoryMb",
                "seq",
                "totalCpuCores",
                "totalMemoryMb",
                "vmCpuCores",
                "vmMemoryMb",
                "zone",
            ]
        );
        let register = RegisterRequest {
            code: Some("w".into()),
            description: req.description.clone(),
            host: HostJson::default(),
        };
        assert_eq!(
            serde_json::to_value(&register).unwrap(),
            serde_json::json!({
                "code": "w", "name": "Worker Node 2",
                "apiBaseUrl": "https://worker2.example.edu.vn",
                "zone": "z", "labels": {"rack": "1"}, "capabilities": ["gpu"],
            })
        );
    }
    #[test]
    fn whole_figures_are_written_as_integers_and_read_back_the_same() {
        let mut req: HeartbeatRequest = serde_json::from_str(EXAM_PLATFORM_HEARTBEAT).unwrap();
        req.total_cpu_cores = 8.0;
        req.reserved_cpu_cores = 0.0;
        req.vm_cpu_cores = 1.5;
        req.cpu_percent = Some(12.0);
        req.memory_percent = Some(40.25);
        req.disk_percent = None;
        let text = serde_json::to_string(&req).unwrap();
        assert!(text.contains(r#""totalCpuCores":8,"#), "{text}");
        assert!(text.contains(r#""reservedCpuCores":0,"#), "{text}");
        assert!(text.contains(r#""vmCpuCores":1.5,"#), "{text}");
        assert!(text.contains(r#""cpuPercent":12,"#), "{text}");
        assert!(text.contains(r#""memoryPercent":40.25"#), "{text}");
        assert!(!text.contains("diskPercent"), "{text}");
        // Nothing for the control plane to rewrite: read straight from the bytes.
        assert!(crate::unique_keys::is_plain(text.as_bytes()));
        let back: HeartbeatRequest = crate::decode::parse_json(text.as_bytes()).unwrap();
        assert_eq!(back, req);
    }
}
