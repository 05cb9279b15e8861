//! Control plane ↔ node agent: heartbeats, registration and the worker-side
//! API.
//!
//! Everything a worker node and the control plane say to each other is
//! defined here, once, so that the control plane's HTTP
//! `HttpWorkerClient` (in `vdi-cluster-server`) and the worker mode
//! (which serves the worker-side API and runs the heartbeat agent) share the
//! same types:
//!
//! | direction | path | body | answer |
//! |---|---|---|---|
//! | worker → control plane | [`HEARTBEAT_PATH`] | [`HeartbeatRequest`] | [`HeartbeatResponse`] |
//! | worker → control plane | [`REGISTER_PATH`] | [`RegisterRequest`] | the worker |
//! | worker → control plane | [`JOIN_PATH`] (join token in [`JOIN_TOKEN_HEADER`]) | [`RegisterRequest`] | [`JoinResponse`] |
//! | worker → control plane | [`DEREGISTER_PATH`] | `{}` | the worker |
//! | worker → control plane | [`CREDENTIAL_ROTATE_PATH`] (its credential in [`WORKER_TOKEN_HEADER`]) | — | [`JoinResponse`] |
//! | control plane → worker | [`WORKER_ALLOCATE_PATH`] | [`AllocateRequest`] | [`AllocateResponse`] |
//! | control plane → worker | [`WORKER_RELEASE_PATH`] | [`ReleaseRequest`] | [`ReleaseResponse`] |
//! | control plane → worker | [`WORKER_PREWARM_PATH`] | [`PrewarmRequest`] | [`PrewarmResponse`] |
//! | control plane → worker | `DELETE` [`WORKER_PREWARM_DISCARD_PATH`] | — | [`PrewarmDiscardResponse`] |
//! | control plane → worker | [`WORKER_CHECK_PATH`] (a rehearsal) | [`CheckRequest`] | [`CheckResponse`] |
//! | operator → worker | `GET` [`WORKER_STATUS_PATH`] | — | the worker's own view |
//!
//! Calls to a worker carry the shared cluster token in [`CLUSTER_TOKEN_HEADER`];
//! heartbeats carry, in [`WORKER_TOKEN_HEADER`], the worker's own credential
//! (received by joining) or the shared worker token when the control plane
//! is configured with one. Every error, on either side, is an
//! [`ErrorBody`](crate::ErrorBody). Field names are camelCase, exactly as the exam platform writes them.
//!
//! Heartbeat and registration bodies tolerate unknown fields (an agent newer
//! than the control plane during a rolling upgrade still gets through).

//!
//! The heartbeat and registration bodies are in `heartbeat` (re-exported
//! here); the worker-side API's bodies are below.

mod check;
mod heartbeat;
mod network_policy;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::{DesktopSettings, SessionKey, ValidationError};

pub use check::{
    CheckAnswer, CheckRequest, CheckResponse, ProvisionerCheckJson, WORKER_CHECK_PATH,
};
pub use heartbeat::{
    DeregisterRequest, DescriptionJson, ExamPoolJson, HeartbeatRequest, HeartbeatResponse,
    HostJson, PoolJson, RegisterRequest, SessionRef,
};
pub use network_policy::{NETWORK_POLICY_VARIABLE, NetworkPolicyJson};

/// Header carrying the worker token on heartbeats and registration.
pub const WORKER_TOKEN_HEADER: &str = "x-worker-token";
/// Header carrying the shared cluster token (control plane ↔ worker, and
/// service calls to the session API).
pub const CLUSTER_TOKEN_HEADER: &str = "x-cluster-token";

/// Control plane: a worker's heartbeat (the exam platform's).
pub const HEARTBEAT_PATH: &str = "/api/vdi/workers/heartbeat";
/// Control plane: registration ahead of the first heartbeat (as minicloud).
pub const REGISTER_PATH: &str = "/api/vdi/workers/register";
/// Control plane: a worker leaving cleanly (as minicloud).
pub const DEREGISTER_PATH: &str = "/api/vdi/workers/{code}/deregister";
/// Control plane: registration with a join token (in [`JOIN_TOKEN_HEADER`]);
/// answers the worker's own credential ([`JoinResponse`]).
pub const JOIN_PATH: &str = "/api/vdi/workers/join";
/// Control plane: a worker, presenting its own credential, gets a new one
/// ([`JoinResponse`]); the old one stays accepted for a short overlap.
pub const CREDENTIAL_ROTATE_PATH: &str = "/api/vdi/workers/{code}/credential/rotate";
/// Header carrying a join token on [`JOIN_PATH`].
pub const JOIN_TOKEN_HEADER: &str = "x-join-token";
/// Worker node: its own view of its sessions, slots and control plane
/// (cluster token).
pub const WORKER_STATUS_PATH: &str = "/api/vdi/cluster/status";
/// Worker node: start (or return) a student's session.
pub const WORKER_ALLOCATE_PATH: &str = "/api/vdi/cluster/allocate";
/// Worker node: stop a student's session.
pub const WORKER_RELEASE_PATH: &str = "/api/vdi/cluster/release";
/// Worker node: prewarm machines for an exam.
pub const WORKER_PREWARM_PATH: &str = "/api/vdi/cluster/prewarm";
/// Worker node: `DELETE` discards an exam's prewarmed machines (the route
/// pattern; the exam id is one percent-encoded path segment after
/// [`WORKER_PREWARM_PATH`]).
pub const WORKER_PREWARM_DISCARD_PATH: &str = "/api/vdi/cluster/prewarm/{examId}";

/// Control plane → worker: the answer to a join ([`JOIN_PATH`]) or a
/// rotation ([`CREDENTIAL_ROTATE_PATH`]). The credential is shown once: the
/// worker sends it in [`WORKER_TOKEN_HEADER`] from then on; the control
/// plane keeps only its hash. It expires at `expiresAt`: the worker rotates
/// it before then (the node agent at two thirds of `ttlSec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    /// The worker's code.
    pub code: String,
    /// The worker's own credential (`vdiw.<code>.<secret>`).
    pub credential: String,
    /// When it expires (ms since the epoch, the control plane's clock);
    /// absent from control planes whose credentials do not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub expires_at: Option<u64>,
    /// Its lifetime from now, seconds (as `expiresAt`, without relying on
    /// the worker's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub ttl_sec: Option<u64>,
}

/// Control plane → worker: start (or return the already started) session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocateRequest {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// The exam's network policy, as booked on the calendar: the desktop
    /// gets it instead of the worker's own `EXAM_*` default (whose strict
    /// flag stays a floor). Absent: the worker's default. A worker older
    /// than this field ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyJson>,
}

impl From<&SessionKey> for AllocateRequest {
    fn from(key: &SessionKey) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
            network_policy: None,
        }
    }
}

impl AllocateRequest {
    /// The call for `key`, its desktop set up as `settings` ask.
    pub fn new(key: &SessionKey, settings: &DesktopSettings) -> Self {
        Self {
            network_policy: policy_json(settings),
            ..Self::from(key)
        }
    }
}

fn policy_json(settings: &DesktopSettings) -> Option<NetworkPolicyJson> {
    settings
        .network_policy
        .as_ref()
        .map(NetworkPolicyJson::from)
}

/// Reads the settings a call carries; a bad policy is named
/// `networkPolicy.allowedCidrs[2]` and the like.
pub fn desktop_settings(
    policy: Option<&NetworkPolicyJson>,
) -> Result<DesktopSettings, ValidationError> {
    let network_policy = policy
        .map(|p| {
            let parsed = p.into_policy("networkPolicy")?;
            parsed.validate("networkPolicy").map(|()| parsed)
        })
        .transpose()?;
    Ok(DesktopSettings { network_policy })
}

/// Worker → control plane: the started session. `session` (a JSON object:
/// remote-desktop connection details) is stored with the dispatch and handed
/// to the exam application untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocateResponse {
    /// Connection details, opaque to the control plane.
    #[schema(value_type = Object)]
    pub session: serde_json::Value,
}

/// Control plane → worker: stop a session. Releasing an unknown session
/// succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequest {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
}

impl From<&SessionKey> for ReleaseRequest {
    fn from(key: &SessionKey) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
        }
    }
}

/// Worker → control plane: whether a session was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseResponse {
    /// `false` when the worker did not know the session.
    pub released: bool,
}

/// Control plane → worker: prewarm `count` machines for an exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmRequest {
    /// The exam.
    pub exam_id: String,
    /// Machines to start.
    pub count: u32,
    /// The exam's network policy, as [`AllocateRequest::network_policy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyJson>,
}

impl PrewarmRequest {
    /// The call for `count` machines of `exam`, set up as `settings` ask.
    pub fn new(exam: &vdi_cluster_core::ExamId, count: u32, settings: &DesktopSettings) -> Self {
        Self {
            exam_id: exam.to_string(),
            count,
            network_policy: policy_json(settings),
        }
    }
}

/// Worker → control plane: how many machines the worker accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmResponse {
    /// Machines accepted (at most the requested count).
    pub accepted: u32,
}

/// Worker → control plane: the answer to a discard of an exam's prewarmed
/// machines ([`WORKER_PREWARM_DISCARD_PATH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmDiscardResponse {
    /// Idle machines discarded now (machines still starting are discarded
    /// when they have started, and are not counted).
    pub discarded: u32,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json_of(value: impl Serialize) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn worker_side_field_names() {
        let key = SessionKey::parse("e1", "u1").unwrap();
        let session = json!({"examId": "e1", "userId": "u1"});
        assert_eq!(json_of(AllocateRequest::from(&key)), session);
        assert_eq!(json_of(ReleaseRequest::from(&key)), session);
        assert_eq!(
            json_of(AllocateResponse {
                session: json!({"rdp": "x"}),
            }),
            json!({"session": {"rdp": "x"}})
        );
        assert_eq!(
            json_of(ReleaseResponse { released: true }),
            json!({"released": true})
        );
        assert_eq!(
            json_of(PrewarmRequest {
                exam_id: "e1".into(),
                count: 3,
                network_policy: None,
            }),
            json!({"examId": "e1", "count": 3})
        );
        assert_eq!(
            json_of(PrewarmResponse { accepted: 2 }),
            json!({"accepted": 2})
        );
        assert_eq!(
            json_of(PrewarmDiscardResponse { discarded: 3 }),
            json!({"discarded": 3})
        );
        assert_eq!(
            json_of(JoinResponse {
                code: "w1".into(),
                credential: "vdiw.w1.s".into(),
                expires_at: Some(5_000),
                ttl_sec: Some(3),
            }),
            json!({"code": "w1", "credential": "vdiw.w1.s", "expiresAt": 5000, "ttlSec": 3})
        );
        // From a control plane whose credentials do not expire.
        let old: JoinResponse =
            serde_json::from_value(json!({"code": "w1", "credential": "vdiw.w1.s"})).unwrap();
        assert_eq!((old.expires_at, old.ttl_sec), (None, None));
    }

    #[test]
    fn an_exams_policy_rides_with_the_call_and_is_checked_on_arrival() {
        let key = SessionKey::parse("e1", "u1").unwrap();
        let settings = DesktopSettings {
            network_policy: Some(vdi_cluster_core::network::NetworkPolicy {
                allowed_ips: vec!["10.0.0.7".parse().unwrap()],
                ..vdi_cluster_core::network::NetworkPolicy::restricted()
            }),
        };
        let call = json_of(AllocateRequest::new(&key, &settings));
        assert_eq!(
            call["networkPolicy"],
            json!({"restrictInternet": true, "allowedIps": ["10.0.0.7"], "enforceStrict": true})
        );
        let read: AllocateRequest = serde_json::from_value(call).unwrap();
        assert_eq!(
            desktop_settings(read.network_policy.as_ref()).unwrap(),
            settings
        );
        let exam = vdi_cluster_core::ExamId::parse("examId", "e1").unwrap();
        let prewarm = json_of(PrewarmRequest::new(&exam, 2, &settings));
        assert_eq!(prewarm["networkPolicy"]["allowedIps"], json!(["10.0.0.7"]));
        assert!(
            json_of(PrewarmRequest::new(&exam, 2, &DesktopSettings::default()))
                .get("networkPolicy")
                .is_none()
        );
        let bad = NetworkPolicyJson {
            restrict_internet: true,
            allowed_ips: vec!["10.0.0.7".into(), "10.0.0.7".into()],
            ..Default::default()
        };
        let e = desktop_settings(Some(&bad)).unwrap_err();
        assert_eq!(e.field, "networkPolicy.allowedIps[1]");
    }
}
