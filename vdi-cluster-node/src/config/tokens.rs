//! The shared tokens of a cluster, one flag each, flattened into both
//! `vdi-cluster worker` ([`WorkerArgs`](super::WorkerArgs)) and
//! `vdi-cluster serve`: the same variables name the same secrets on the
//! control plane and its workers. Each flag is spelt as its variable, and
//! as the worker's own flag once was (an alias).

use std::fmt;

use clap::Args;

/// The cluster token and the shared heartbeat token.
#[derive(Clone, Default, Args)]
pub struct TokenArgs {
    /// Shared cluster token (at least 32 bytes), the same on the control
    /// plane and its workers: the control plane sends it to workers in
    /// `x-cluster-token`. `serve` without one generates one for its
    /// process and prints it once; `worker` needs it.
    #[arg(
        long = "worker-cluster-token",
        visible_alias = "cluster-token",
        env = "WORKER_CLUSTER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub cluster_token: Option<String>,

    /// Shared heartbeat token (at least 32 bytes) that workers send in
    /// `x-worker-token` on heartbeats and registration. `serve` without
    /// one generates one for its process and prints it once; `worker`
    /// sends it when set (the control plane requires it when configured).
    #[arg(
        long = "worker-heartbeat-token",
        visible_alias = "worker-token",
        env = "WORKER_HEARTBEAT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub worker_token: Option<String>,
}

impl TokenArgs {
    /// `WORKER_CLUSTER_TOKEN`, if set and not blank.
    pub fn cluster_token(&self) -> Option<&str> {
        non_empty(&self.cluster_token)
    }

    /// `WORKER_HEARTBEAT_TOKEN`, if set and not blank.
    pub fn worker_token(&self) -> Option<&str> {
        non_empty(&self.worker_token)
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl fmt::Debug for TokenArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |token: &Option<String>| token.as_ref().map(|_| "..");
        f.debug_struct("TokenArgs")
            .field("cluster_token", &set(&self.cluster_token))
            .field("worker_token", &set(&self.worker_token))
            .finish()
    }
}
