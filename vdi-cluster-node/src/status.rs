//! The node's own view of itself, `GET /api/vdi/cluster/status`: the
//! session table converted into the protocol's [`NodeStatus`], with the
//! heartbeat agent's view of the control plane (kept in the protocol's
//! shape by the agent).

use std::time::{SystemTime, UNIX_EPOCH};

use vdi_cluster_protocol::node_status::{NodeAdminStatus, NodeSessionStatus, NodeStatus};

use crate::admin::AdminView;
use crate::agent::Agent;
use crate::sessions::{SessionView, WorkerNode};

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The worker's own view of itself.
pub fn status(node: &WorkerNode, agent: &Agent) -> NodeStatus {
    let sessions: Vec<NodeSessionStatus> = node.sessions().into_iter().map(session).collect();
    let (prewarmed, prewarming) = node.pool();
    NodeStatus {
        code: node.code().to_string(),
        boot_id: agent.boot_id().to_owned(),
        seq: agent.seq(),
        provisioner: node.provisioner_kind().to_owned(),
        max_sessions: node.max_sessions(),
        active_sessions: count(sessions.len()),
        sessions,
        prewarmed: prewarmed.into_iter().map(|(e, n)| (e, count(n))).collect(),
        prewarming: count(prewarming),
        admin: node.admin().map(admin),
        control_plane: agent.view(),
    }
}

fn session(view: SessionView) -> NodeSessionStatus {
    NodeSessionStatus {
        exam_id: view.key.exam_id.to_string(),
        user_id: view.key.user_id.to_string(),
        state: view.state.name().to_owned(),
        started_at: view.started_at.map(millis),
        prewarmed: view.prewarmed,
        session: view.details,
        network_policy: Some(view.network_policy.as_str().to_owned()),
    }
}

fn admin(view: AdminView) -> NodeAdminStatus {
    NodeAdminStatus {
        status: view.status,
        is_draining: view.is_draining,
        is_enabled: view.is_enabled,
        drain_status: view.drain_status,
    }
}
