//! Simulated worker nodes: a [`WorkerClient`] that keeps sessions in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::client::{DesktopSettings, WorkerCallError, WorkerClient};
use crate::ids::{ExamId, SessionKey, WorkerId};
use crate::rehearsal::{CheckReport, ProvisionerCheck};
use crate::worker::{ExamPool, PoolReport, WorkerRecord};

/// How a simulated worker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answers at once.
    #[default]
    Healthy,
    /// Answers after this delay.
    Slow(Duration),
    /// Refuses every call (a dead or broken node).
    Failing,
    /// Never answers (the caller's timeout fires).
    Hanging,
    /// Starts the sessions it is asked for but never answers those calls
    /// (the answer is lost on the way); answers every other call at once.
    LostAnswers,
}

/// How a simulated worker answers a rehearsal's check (when its
/// [`Behaviour`] lets it answer at all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CheckBehaviour {
    /// The test desktop starts in 10 ms, the image is there.
    #[default]
    Passes,
    /// The test desktop starts in this many milliseconds.
    StartsIn(u32),
    /// The test desktop does not start, for this reason.
    Fails(String),
    /// The exam's image is not on the worker.
    ImageMissing,
    /// The provisioner's check of this name fails.
    CheckFails(String),
}

impl CheckBehaviour {
    fn report(&self) -> CheckReport {
        let mut report = CheckReport {
            started: true,
            start_ms: 10,
            image_present: Some(true),
            image: Some("sim-image".into()),
            checks: Vec::new(),
            error: None,
        };
        match self {
            Self::Passes => {}
            Self::StartsIn(ms) => report.start_ms = *ms,
            Self::Fails(why) => {
                report.started = false;
                report.error = Some(why.clone());
            }
            Self::ImageMissing => {
                report.started = false;
                report.image_present = Some(false);
            }
            Self::CheckFails(name) => report.checks.push(ProvisionerCheck {
                name: name.clone(),
                ok: false,
                detail: Some("simulated".into()),
            }),
        }
        report
    }
}

#[derive(Debug, Default)]
struct State {
    checks: HashMap<WorkerId, CheckBehaviour>,
    check_calls: Vec<(WorkerId, ExamId)>,
    sessions: HashMap<WorkerId, BTreeSet<SessionKey>>,
    prewarmed: BTreeMap<(WorkerId, ExamId), u32>,
    behaviour: HashMap<WorkerId, Behaviour>,
    allocate_calls: u64,
    /// The settings of each session's last allocate call, and of each
    /// exam's last prewarm call.
    session_settings: HashMap<SessionKey, DesktopSettings>,
    prewarm_settings: HashMap<ExamId, DesktopSettings>,
}

/// Simulated workers. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct SimulatedWorkers(Arc<Mutex<State>>);

#[derive(Debug, thiserror::Error)]
#[error("simulated worker {0} is down")]
struct Down(WorkerId);

impl SimulatedWorkers {
    /// No workers, every one healthy by default.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets how `worker` answers from now on.
    pub fn set_behaviour(&self, worker: &WorkerId, behaviour: Behaviour) {
        self.lock().behaviour.insert(worker.clone(), behaviour);
    }

    /// Sets how `worker` answers a rehearsal's check from now on.
    pub fn set_check(&self, worker: &WorkerId, check: CheckBehaviour) {
        self.lock().checks.insert(worker.clone(), check);
    }

    /// The checks asked so far, in order.
    pub fn check_calls(&self) -> Vec<(WorkerId, ExamId)> {
        self.lock().check_calls.clone()
    }

    /// Kills `worker`: its sessions vanish and it refuses every call.
    pub fn kill(&self, worker: &WorkerId) {
        let mut s = self.lock();
        s.sessions.remove(worker);
        s.behaviour.insert(worker.clone(), Behaviour::Failing);
    }

    /// Sessions running on `worker`.
    pub fn sessions(&self, worker: &WorkerId) -> Vec<SessionKey> {
        self.lock()
            .sessions
            .get(worker)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Machines prewarmed for `exam` on `worker` and not yet claimed.
    pub fn prewarmed(&self, worker: &WorkerId, exam: &ExamId) -> u32 {
        self.lock()
            .prewarmed
            .get(&(worker.clone(), exam.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// What `worker`'s next heartbeat reports as its prewarm pool: every
    /// machine prewarmed on it and not yet claimed, as ready, per exam (a
    /// dead worker sends no heartbeat, so its report is not asked for).
    pub fn pool_report(&self, worker: &WorkerId) -> PoolReport {
        let exams = self
            .lock()
            .prewarmed
            .iter()
            .filter(|((w, _), n)| w == worker && **n > 0)
            .map(|((_, exam), n)| {
                let pool = ExamPool {
                    ready: *n,
                    ..ExamPool::default()
                };
                (exam.clone(), pool)
            })
            .collect();
        PoolReport { exams }
    }

    /// The settings the last allocate call of `key` carried.
    pub fn session_settings(&self, key: &SessionKey) -> Option<DesktopSettings> {
        self.lock().session_settings.get(key).cloned()
    }

    /// The settings the last prewarm call for `exam` carried.
    pub fn prewarm_settings(&self, exam: &ExamId) -> Option<DesktopSettings> {
        self.lock().prewarm_settings.get(exam).cloned()
    }

    /// Allocate calls received, all workers together.
    pub fn allocate_calls(&self) -> u64 {
        self.lock().allocate_calls
    }

    async fn behave(&self, worker: &WorkerId) -> Result<(), WorkerCallError> {
        let behaviour = self
            .lock()
            .behaviour
            .get(worker)
            .copied()
            .unwrap_or_default();
        match behaviour {
            Behaviour::Healthy | Behaviour::LostAnswers => Ok(()),
            Behaviour::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Behaviour::Failing => Err(WorkerCallError::Unreachable(Box::new(Down(worker.clone())))),
            Behaviour::Hanging => std::future::pending().await,
        }
    }
}

#[async_trait]
impl WorkerClient for SimulatedWorkers {
    async fn allocate(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
        settings: &DesktopSettings,
    ) -> Result<serde_json::Value, WorkerCallError> {
        self.lock().allocate_calls += 1;
        self.behave(&worker.id).await?;
        self.lock()
            .session_settings
            .insert(key.clone(), settings.clone());
        let (claimed, lost) = {
            let mut s = self.lock();
            let warm = s
                .prewarmed
                .get_mut(&(worker.id.clone(), key.exam_id.clone()));
            let claimed = match warm {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            };
            s.sessions
                .entry(worker.id.clone())
                .or_default()
                .insert(key.clone());
            let lost = s.behaviour.get(&worker.id) == Some(&Behaviour::LostAnswers);
            (claimed, lost)
        };
        if lost {
            return std::future::pending().await;
        }
        Ok(serde_json::json!({
            "worker": worker.id,
            "connection": format!("rdp://{}/{}/{}", worker.id, key.exam_id, key.user_id),
            "prewarmed": claimed,
        }))
    }

    async fn release(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
    ) -> Result<(), WorkerCallError> {
        self.behave(&worker.id).await?;
        if let Some(set) = self.lock().sessions.get_mut(&worker.id) {
            set.remove(key);
        }
        Ok(())
    }

    async fn prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        count: u32,
        settings: &DesktopSettings,
    ) -> Result<u32, WorkerCallError> {
        self.behave(&worker.id).await?;
        let mut s = self.lock();
        s.prewarm_settings.insert(exam.clone(), settings.clone());
        *s.prewarmed
            .entry((worker.id.clone(), exam.clone()))
            .or_default() += count;
        Ok(count)
    }

    async fn discard_prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
    ) -> Result<u32, WorkerCallError> {
        self.behave(&worker.id).await?;
        Ok(self
            .lock()
            .prewarmed
            .remove(&(worker.id.clone(), exam.clone()))
            .unwrap_or(0))
    }

    async fn check(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        _settings: &DesktopSettings,
    ) -> Result<CheckReport, WorkerCallError> {
        self.behave(&worker.id).await?;
        let mut s = self.lock();
        s.check_calls.push((worker.id.clone(), exam.clone()));
        Ok(s.checks
            .get(&worker.id)
            .cloned()
            .unwrap_or_default()
            .report())
    }
}
