//! The admin state the control plane last told this node in a heartbeat
//! answer: a disabled node refuses new sessions and prewarms, a draining
//! one refuses new sessions (it keeps and returns the ones it has).

use vdi_cluster_protocol::HeartbeatResponse;

/// What the control plane last said about this node's admin state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminView {
    /// One status by precedence (`active`, `draining`, `disabled`, …).
    pub status: String,
    /// Keep sessions, take no new ones.
    pub is_draining: bool,
    /// In service at all.
    pub is_enabled: bool,
    /// `none`, `draining` or `drained`.
    pub drain_status: String,
}

impl From<&HeartbeatResponse> for AdminView {
    fn from(answer: &HeartbeatResponse) -> Self {
        Self {
            status: answer.status.clone(),
            is_draining: answer.is_draining,
            is_enabled: answer.is_enabled,
            drain_status: answer.drain_status.clone(),
        }
    }
}
