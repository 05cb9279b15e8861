//! What the session table shows of itself: one session at an instant,
//! and the sessions a heartbeat reports.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::Value;
use vdi_cluster_core::SessionKey;
use vdi_cluster_core::network::PolicySource;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The provisioner is starting it.
    Starting,
    /// Started.
    Running,
    /// The provisioner is stopping it.
    Stopping,
}

impl SessionState {
    /// `starting`, `running` or `stopping`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
        }
    }
}

/// One session of the node, as a view at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    /// The session.
    pub key: SessionKey,
    /// Where it is in its life.
    pub state: SessionState,
    /// When it started, once running.
    pub started_at: Option<SystemTime>,
    /// Whether it runs on a prewarmed machine.
    pub prewarmed: bool,
    /// Its connection details, once running.
    pub details: Option<Value>,
    /// Whose network policy its desktop got: the exam's or the node's.
    pub network_policy: PolicySource,
}

/// A heartbeat's view of the sessions: how many, and which (with their
/// incarnations).
#[derive(Debug, Clone, Default)]
pub struct LiveSnapshot {
    /// Sessions starting, running or stopping.
    pub active: usize,
    /// Sessions starting or running, with their incarnation.
    pub live: Vec<(SessionKey, u64)>,
    /// Connection details of the running ones, sent along so the control
    /// plane can adopt a session it has no record of.
    pub details: HashMap<SessionKey, Value>,
}
