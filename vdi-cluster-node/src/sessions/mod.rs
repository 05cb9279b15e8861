//! The node's session table: the sessions it runs, its slots, its
//! prewarm pool and the admin state the control plane last told it.
//!
//! * **Idempotent.** Allocating a session the node already runs returns
//!   the same connection details; a second allocate while the first is
//!   still starting waits for it. Releasing an unknown session answers
//!   `released: false`.
//! * **Detached work.** Starts and stops run on their own tasks, so a
//!   control plane that gives up on a call (timeout, disconnect) never
//!   leaves a session half started.
//! * **Prewarm pool** ([`PrewarmPool`]). Machines started by `prewarm` wait
//!   per exam; the next allocate of that exam claims one. When sessions and
//!   idle machines together exceed the node's slots, an idle machine is
//!   discarded.
//! * **Admin state** ([`AdminView`]). A disabled node refuses new sessions,
//!   a draining one too (it keeps and returns the ones it has).
//! * **Incarnations.** Each start gets a number; the heartbeat agent stops a
//!   session the control plane no longer places here only if it is still
//!   the incarnation the heartbeat reported.
//! * **Network policy.** Each desktop started (a session or a prewarmed
//!   machine) is handed to the provisioner with one network policy: the
//!   exam's, when the control plane's call carries one, else the node's
//!   `EXAM_*` default — the node's strict flag a floor either way
//!   ([`vdi_cluster_core::network::precedence`]). Which one applied is
//!   logged and shown in each session's status (`networkPolicy`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::watch;
use vdi_cluster_core::network::{NetworkPolicy, PolicySource, effective_policy};
use vdi_cluster_core::worker::PoolReport;
use vdi_cluster_core::{DesktopSettings, ExamId, SessionKey, WorkerId};
use vdi_cluster_protocol::node::CheckResponse;

use crate::admin::AdminView;
use crate::pool::PrewarmPool;
use crate::provision::check::run_check;
use crate::provision::{Machine, ProvisionError, Provisioner};

mod view;

pub use view::{LiveSnapshot, SessionState, SessionView};

/// Why a session was not started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The control plane disabled this node.
    #[error("worker {0} is disabled by the control plane: it takes no new sessions")]
    Disabled(WorkerId),
    /// The control plane is draining this node.
    #[error("worker {0} is draining: it keeps its sessions and takes no new ones")]
    Draining(WorkerId),
    /// Every slot is in use.
    #[error("worker {worker} has no free slot ({used} of {max} in use)")]
    Full {
        /// The node.
        worker: WorkerId,
        /// Sessions running or starting.
        used: usize,
        /// Slots.
        max: u32,
    },
    /// The provisioner failed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// Another call's start of the same session failed.
    #[error("starting the session failed: {0}")]
    StartFailed(String),
}

type Outcome = Option<Result<Value, String>>;

/// What a call waits for, decided under the lock and awaited after it.
enum Wait {
    /// A start (ours or another call's).
    Start(watch::Receiver<Outcome>),
    /// Another call's stop.
    Stop(watch::Receiver<Outcome>),
    /// Our own stop.
    Own(watch::Receiver<Outcome>),
}

#[derive(Debug)]
enum Slot {
    Starting {
        incarnation: u64,
        done: watch::Receiver<Outcome>,
        policy: PolicySource,
    },
    Running {
        incarnation: u64,
        details: Value,
        started_at: SystemTime,
        prewarmed: bool,
        policy: PolicySource,
    },
    Stopping {
        done: watch::Receiver<Outcome>,
        policy: PolicySource,
    },
}

impl Slot {
    /// Whose network policy the session's desktop got.
    fn policy(&self) -> PolicySource {
        match self {
            Self::Starting { policy, .. }
            | Self::Running { policy, .. }
            | Self::Stopping { policy, .. } => *policy,
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    sessions: HashMap<SessionKey, Slot>,
    pool: PrewarmPool,
}

/// The node: sessions, pool, slots, admin state.
#[derive(Debug)]
pub struct WorkerNode {
    code: WorkerId,
    max_sessions: u32,
    provisioner: Arc<dyn Provisioner>,
    network_policy: NetworkPolicy,
    table: Mutex<Table>,
    admin: Mutex<Option<AdminView>>,
    incarnations: AtomicU64,
}

impl WorkerNode {
    /// A node `code` with `max_sessions` slots, starting machines through
    /// `provisioner`.
    pub fn new(code: WorkerId, max_sessions: u32, provisioner: Arc<dyn Provisioner>) -> Self {
        Self {
            code,
            max_sessions,
            provisioner,
            network_policy: NetworkPolicy::default(),
            table: Mutex::new(Table::default()),
            admin: Mutex::new(None),
            incarnations: AtomicU64::new(0),
        }
    }

    /// The node's own network policy for exam desktops (its `EXAM_*`
    /// variables), used when a call carries no exam policy.
    pub fn with_network_policy(mut self, policy: NetworkPolicy) -> Self {
        self.network_policy = policy;
        self
    }

    /// The policy a desktop gets under `settings`, and whose it is.
    fn policy_for(&self, settings: &DesktopSettings) -> (NetworkPolicy, PolicySource) {
        effective_policy(&self.network_policy, settings.network_policy.as_ref())
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node's code.
    pub fn code(&self) -> &WorkerId {
        &self.code
    }

    /// Slots by the capacity formula.
    pub fn max_sessions(&self) -> u32 {
        self.max_sessions
    }

    /// The provisioner's kind.
    pub fn provisioner_kind(&self) -> &'static str {
        self.provisioner.kind()
    }

    /// A rehearsal's check of `exam` under `settings` (the desktop's
    /// policy chosen as for a session's), through the provisioner.
    pub async fn check(&self, exam: &ExamId, settings: &DesktopSettings) -> CheckResponse {
        let (policy, _) = self.policy_for(settings);
        run_check(self.provisioner.as_ref(), exam, &policy).await
    }

    /// The admin state last told by the control plane (`None`: not yet).
    pub fn admin(&self) -> Option<AdminView> {
        self.admin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the admin state from a heartbeat answer; returns the
    /// previous one.
    pub fn set_admin(&self, view: AdminView) -> Option<AdminView> {
        self.admin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(view)
    }

    fn admit_new(&self, table: &Table) -> Result<(), NodeError> {
        if let Some(admin) = self.admin() {
            if !admin.is_enabled {
                return Err(NodeError::Disabled(self.code.clone()));
            }
            if admin.is_draining {
                return Err(NodeError::Draining(self.code.clone()));
            }
        }
        let used = table.sessions.len();
        if used >= self.max_sessions as usize {
            return Err(NodeError::Full {
                worker: self.code.clone(),
                used,
                max: self.max_sessions,
            });
        }
        Ok(())
    }

    /// Starts the session `key`, its desktop set up as `settings` ask, or
    /// returns the one running (idempotent: a running session keeps the
    /// policy it started with).
    pub async fn allocate(
        self: &Arc<Self>,
        key: &SessionKey,
        settings: &DesktopSettings,
    ) -> Result<Value, NodeError> {
        loop {
            let step = {
                let mut table = self.table();
                match table.sessions.get(key) {
                    Some(Slot::Running { details, .. }) => return Ok(details.clone()),
                    Some(Slot::Starting { done, .. }) => Wait::Start(done.clone()),
                    // Wait for the stop, then start afresh.
                    Some(Slot::Stopping { done, .. }) => Wait::Stop(done.clone()),
                    None => Wait::Start(self.start(&mut table, key, settings)?),
                }
            };
            match step {
                Wait::Stop(mut done) | Wait::Own(mut done) => {
                    let _ = done.wait_for(Option::is_some).await;
                }
                Wait::Start(mut done) => {
                    let outcome = done.wait_for(Option::is_some).await.map(|v| v.clone());
                    match outcome {
                        Ok(Some(Ok(details))) => return Ok(details),
                        Ok(Some(Err(message))) => return Err(NodeError::StartFailed(message)),
                        // The starting task vanished (runtime shutting down): look again.
                        _ => {}
                    }
                }
            }
        }
    }

    fn start(
        self: &Arc<Self>,
        table: &mut Table,
        key: &SessionKey,
        settings: &DesktopSettings,
    ) -> Result<watch::Receiver<Outcome>, NodeError> {
        self.admit_new(table)?;
        let (policy, source) = self.policy_for(settings);
        let machine = table.pool.claim(&key.exam_id);
        let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = watch::channel(None);
        table.sessions.insert(
            key.clone(),
            Slot::Starting {
                incarnation,
                done: rx.clone(),
                policy: source,
            },
        );
        let mut evicted = Vec::new();
        while table.sessions.len() + table.pool.idle() > self.max_sessions as usize {
            match table.pool.evict(&key.exam_id) {
                Some(m) => evicted.push(m),
                None => break,
            }
        }
        for (exam, machine) in evicted {
            tracing::info!(exam = %exam, "an idle prewarmed machine makes room");
            self.discard_machines(&exam, vec![machine]);
        }
        let node = Arc::clone(self);
        let key = key.clone();
        tokio::spawn(async move {
            let prewarmed = machine.is_some();
            let result = node
                .provisioner
                .allocate(&key, machine.as_ref(), &policy)
                .await;
            let mut table = node.table();
            let ours = matches!(
                table.sessions.get(&key),
                Some(Slot::Starting { incarnation: i, .. }) if *i == incarnation
            );
            let outcome = match result {
                Ok(details) => {
                    if ours {
                        table.sessions.insert(
                            key.clone(),
                            Slot::Running {
                                incarnation,
                                details: details.clone(),
                                started_at: SystemTime::now(),
                                prewarmed,
                                policy: source,
                            },
                        );
                        tracing::info!(
                            session = %key,
                            prewarmed,
                            network_policy = source.as_str(),
                            restricted = policy.restrict_internet,
                            "session started"
                        );
                    }
                    Ok(details)
                }
                Err(e) => {
                    if ours {
                        table.sessions.remove(&key);
                    }
                    tracing::warn!(session = %key, error = %e, "session start failed");
                    Err(e.to_string())
                }
            };
            drop(table);
            let _ = tx.send(Some(outcome));
        });
        Ok(rx)
    }

    /// Stops the session `key`; `false` if the node did not run it.
    pub async fn release(self: &Arc<Self>, key: &SessionKey) -> Result<bool, NodeError> {
        loop {
            let step = {
                let mut table = self.table();
                match table.sessions.get(key) {
                    None => return Ok(false),
                    Some(Slot::Starting { done, .. }) => Wait::Start(done.clone()),
                    Some(Slot::Stopping { done, .. }) => Wait::Stop(done.clone()),
                    Some(Slot::Running { .. }) => Wait::Own(self.stop(&mut table, key)),
                }
            };
            match step {
                // Let the start finish, then stop what it started.
                Wait::Start(mut done) => {
                    let _ = done.wait_for(Option::is_some).await;
                }
                // Someone else is stopping it.
                Wait::Stop(mut done) => {
                    let _ = done.wait_for(Option::is_some).await;
                    return Ok(false);
                }
                Wait::Own(mut done) => {
                    let outcome = done.wait_for(Option::is_some).await.map(|v| v.clone());
                    return match outcome {
                        Ok(Some(Ok(_))) => Ok(true),
                        Ok(Some(Err(message))) => {
                            Err(NodeError::Provision(ProvisionError::Failed(message)))
                        }
                        _ => Ok(false),
                    };
                }
            }
        }
    }

    fn stop(self: &Arc<Self>, table: &mut Table, key: &SessionKey) -> watch::Receiver<Outcome> {
        let (tx, rx) = watch::channel(None);
        let Some(previous) = table.sessions.remove(key) else {
            let _ = tx.send(Some(Ok(Value::Null)));
            return rx;
        };
        let stopping = Slot::Stopping {
            done: rx.clone(),
            policy: previous.policy(),
        };
        table.sessions.insert(key.clone(), stopping);
        let node = Arc::clone(self);
        let key = key.clone();
        tokio::spawn(async move {
            let details = match &previous {
                Slot::Running { details, .. } => details.clone(),
                _ => Value::Null,
            };
            let result = node.provisioner.release(&key, &details).await;
            let mut table = node.table();
            let outcome = match result {
                Ok(()) => {
                    table.sessions.remove(&key);
                    tracing::info!(session = %key, "session stopped");
                    Ok(Value::Null)
                }
                Err(e) => {
                    // Still running as far as anyone can tell: keep it listed.
                    table.sessions.insert(key.clone(), previous);
                    tracing::warn!(session = %key, error = %e, "session stop failed");
                    Err(e.to_string())
                }
            };
            drop(table);
            let _ = tx.send(Some(outcome));
        });
        rx
    }

    /// Stops `key` only if it is still the running `incarnation` (the
    /// control plane asked, from a heartbeat that listed it). `true` if a
    /// stop was started.
    pub fn release_if_incarnation(self: &Arc<Self>, key: &SessionKey, incarnation: u64) -> bool {
        let mut table = self.table();
        let matches = matches!(
            table.sessions.get(key),
            Some(Slot::Running { incarnation: i, .. }) if *i == incarnation
        );
        if matches {
            drop(self.stop(&mut table, key));
        }
        matches
    }

    /// Starts up to `count` idle machines for `exam`, set up as `settings`
    /// ask, within free slots; returns how many were accepted (they start
    /// in the background).
    pub fn prewarm(
        self: &Arc<Self>,
        exam: &ExamId,
        count: u32,
        settings: &DesktopSettings,
    ) -> Result<u32, NodeError> {
        let mut table = self.table();
        if let Some(admin) = self.admin() {
            if !admin.is_enabled {
                return Err(NodeError::Disabled(self.code.clone()));
            }
            if admin.is_draining {
                return Ok(0);
            }
        }
        let used = table.sessions.len() + table.pool.idle() + table.pool.starting();
        let room = (self.max_sessions as usize).saturating_sub(used);
        let accepted = room.min(count as usize);
        table.pool.start(exam, accepted);
        drop(table);
        let (policy, source) = self.policy_for(settings);
        if accepted > 0 {
            tracing::info!(exam = %exam, machines = accepted, network_policy = source.as_str(), restricted = policy.restrict_internet, "prewarming");
        }
        for _ in 0..accepted {
            let node = Arc::clone(self);
            let exam = exam.clone();
            let policy = policy.clone();
            tokio::spawn(async move {
                let result = node.provisioner.prewarm(&exam, &policy).await;
                if let Err(e) = &result {
                    tracing::warn!(exam = %exam, error = %e, "prewarm failed");
                }
                let doomed = node.table().pool.finish(&exam, result.ok());
                if let Some(machine) = doomed {
                    node.discard_machines(&exam, vec![machine]);
                }
            });
        }
        Ok(u32::try_from(accepted).unwrap_or(u32::MAX))
    }

    /// Discards `exam`'s idle prewarmed machines (and those still
    /// starting, once started) and forgets its failed starts; returns how
    /// many idle machines were discarded.
    pub fn discard_prewarm(self: &Arc<Self>, exam: &ExamId) -> u32 {
        let idle = self.table().pool.discard(exam);
        let n = u32::try_from(idle.len()).unwrap_or(u32::MAX);
        self.discard_machines(exam, idle);
        n
    }

    fn discard_machines(self: &Arc<Self>, exam: &ExamId, machines: Vec<Machine>) {
        for machine in machines {
            let node = Arc::clone(self);
            let exam = exam.clone();
            tokio::spawn(async move {
                tracing::info!(exam = %exam, "discarding a prewarmed machine");
                if let Err(e) = node.provisioner.discard(&exam, &machine).await {
                    tracing::warn!(exam = %exam, error = %e, "discarding a prewarmed machine failed");
                }
            });
        }
    }

    /// The prewarm pool per exam (starting, ready, failed), for a
    /// heartbeat.
    pub fn pool_report(&self) -> PoolReport {
        self.table().pool.report()
    }

    /// The sessions for a heartbeat.
    pub fn snapshot(&self) -> LiveSnapshot {
        let table = self.table();
        let live = table
            .sessions
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Starting { incarnation, .. } | Slot::Running { incarnation, .. } => {
                    Some((k.clone(), *incarnation))
                }
                Slot::Stopping { .. } => None,
            })
            .collect();
        let details = table
            .sessions
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Running { details, .. } => Some((k.clone(), details.clone())),
                _ => None,
            })
            .collect();
        LiveSnapshot {
            active: table.sessions.len(),
            live,
            details,
        }
    }

    /// Every session, sorted by exam then student.
    pub fn sessions(&self) -> Vec<SessionView> {
        let table = self.table();
        let mut out: Vec<SessionView> = table
            .sessions
            .iter()
            .map(|(key, slot)| {
                let (state, started_at, prewarmed, details) = match slot {
                    Slot::Starting { .. } => (SessionState::Starting, None, false, None),
                    Slot::Running {
                        details,
                        started_at,
                        prewarmed,
                        ..
                    } => (
                        SessionState::Running,
                        Some(*started_at),
                        *prewarmed,
                        Some(details.clone()),
                    ),
                    Slot::Stopping { .. } => (SessionState::Stopping, None, false, None),
                };
                SessionView {
                    key: key.clone(),
                    state,
                    started_at,
                    prewarmed,
                    details,
                    network_policy: slot.policy(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.key.exam_id.as_str(), a.key.user_id.as_str())
                .cmp(&(b.key.exam_id.as_str(), b.key.user_id.as_str()))
        });
        out
    }

    /// Idle prewarmed machines per exam, and how many are still starting.
    pub fn pool(&self) -> (BTreeMap<String, usize>, usize) {
        let table = self.table();
        (table.pool.per_exam(), table.pool.starting())
    }
}

#[cfg(test)]
mod tests;
