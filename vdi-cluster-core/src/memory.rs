//! The in-memory backend: the embedded default, and what tests use.
//!
//! All state sits behind one mutex, so every trait method is atomic; the
//! mutex is never held across an `.await`. Clones of a [`MemoryStore`] are
//! independent handles on the same state, which is how tests model several
//! control-plane replicas sharing one backend.

mod credentials;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::credential::CredentialSnapshot;
use crate::dispatch::{Dispatch, DispatchState};
use crate::error::{Error, Result};
use crate::ids::{DispatchId, ExamId, SessionKey, WorkerId};
use crate::operator_session::OperatorSession;
use crate::pacing::PermitReturn;
use crate::store::{
    Adoption, AuditEntry, CasOutcome, Counter, DeleteOutcome, DispatchPage, DispatchStore, Drift,
    ExamPlacement, JoinToken, Lease, RecountReport, Registry, Reservation, ReserveRequest,
};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::worker::{WorkerRecord, WorkerSnapshot};

mod audit;
mod capacity;
mod exams;
mod lease;
mod ledger;
mod lost;
mod outbox;
mod permits;
mod rehearsals;
mod scheduled;
mod waiting_room;

#[derive(Debug, Default)]
struct State {
    workers: BTreeMap<WorkerId, (WorkerRecord, u64)>,
    dispatched: HashMap<WorkerId, u32>,
    dispatches: BTreeMap<SessionKey, Dispatch>,
    sticky: HashMap<ExamId, (WorkerId, Timestamp)>,
    affinity: HashMap<ExamId, BTreeMap<WorkerId, u32>>,
    leases: HashMap<String, (String, u64, Timestamp)>,
    lease_tokens: u64,
    /// Checkpoints saved beside leases, by lease name.
    checkpoints: HashMap<String, String>,
    audit: VecDeque<AuditEntry>,
    join_tokens: Vec<JoinToken>,
    credentials: HashMap<WorkerId, CredentialSnapshot>,
    operator_sessions: HashMap<String, OperatorSession>,
    exams: exams::ExamState,
    queues: waiting_room::QueueState,
    outbox: outbox::OutboxState,
    capacity_requests: BTreeMap<String, crate::scale::StoredCapacityRequest>,
    scheduled: scheduled::ScheduledState,
    permits: permits::PermitState,
    ledger: ledger::LedgerState,
    rehearsals: BTreeMap<ExamId, crate::rehearsal::StoredRehearsal>,
}

impl State {
    fn add_counters(&mut self, d: &Dispatch) {
        *self.dispatched.entry(d.worker.clone()).or_default() += 1;
        *self
            .affinity
            .entry(d.key.exam_id.clone())
            .or_default()
            .entry(d.worker.clone())
            .or_default() += 1;
    }

    fn remove_counters(&mut self, d: &Dispatch) {
        if let Some(n) = self.dispatched.get_mut(&d.worker) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.dispatched.remove(&d.worker);
            }
        }
        if let Some(exam) = self.affinity.get_mut(&d.key.exam_id) {
            if let Some(n) = exam.get_mut(&d.worker) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    exam.remove(&d.worker);
                }
            }
            if exam.is_empty() {
                self.affinity.remove(&d.key.exam_id);
            }
        }
    }

    /// Refuses a write fenced by a lease that is not held, unexpired at
    /// `now`, by its holder under its token. Checked under the same lock
    /// as the write it guards.
    fn check_fence(&self, fence: Option<&Lease>, now: Timestamp) -> Result<()> {
        let Some(lease) = fence else {
            return Ok(());
        };
        let held = self.leases.get(&lease.name).is_some_and(|(h, t, expires)| {
            *h == lease.holder && *t == lease.token && *expires > now
        });
        if held { Ok(()) } else { Err(lease.refusal()) }
    }

    /// Compare-and-set of a worker record; with `dispatched`, also on the
    /// worker's dispatched count.
    fn put_worker(
        &mut self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
    ) -> CasOutcome {
        let current = self.workers.get(&record.id).map(|(_, v)| *v);
        let count = self.dispatched.get(&record.id).copied().unwrap_or(0);
        if current != expected || dispatched.is_some_and(|n| n != count) {
            return CasOutcome::Conflict { current };
        }
        let version = expected.map_or(1, |v| v + 1);
        self.workers
            .insert(record.id.clone(), (record.clone(), version));
        CasOutcome::Written { version }
    }

    /// Gives back the start permit or place held under the dispatch `id`
    /// (the step that ends its reservation carries it).
    fn return_permit(&mut self, id: DispatchId, permit: Option<&PermitReturn>) {
        if let Some(p) = permit {
            permits::give_back(
                &mut self.permits,
                &p.worker,
                &id.to_string(),
                p.sample,
                p.keep,
            );
        }
    }

    /// Marks the reservation `id` of `key` active and moves the exam's
    /// sticky worker to it; `None` if it is gone or not `id`.
    fn confirm(
        &mut self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
    ) -> Option<Dispatch> {
        self.return_permit(id, permit);
        let d = self.dispatches.get_mut(key)?;
        if d.id != id || d.state != DispatchState::Reserved {
            return None;
        }
        d.state = DispatchState::Active;
        d.activated_at = Some(now);
        d.session = session;
        let d = d.clone();
        self.sticky.insert(
            key.exam_id.clone(),
            (d.worker.clone(), now.plus(sticky_ttl)),
        );
        Some(d)
    }

    /// Deletes a worker record at version `expected` without dispatches.
    fn delete_worker(&mut self, id: &WorkerId, expected: u64) -> DeleteOutcome {
        if self.workers.get(id).map(|(_, v)| *v) != Some(expected) {
            return DeleteOutcome::Conflict;
        }
        // Count the records, not the counter: a drifted counter must not let
        // a worker with dispatches go.
        let records = self.dispatches.values().filter(|d| &d.worker == id).count();
        if records > 0 {
            return DeleteOutcome::HasDispatches(u32::try_from(records).unwrap_or(u32::MAX));
        }
        self.workers.remove(id);
        DeleteOutcome::Deleted
    }

    fn remove_dispatch(&mut self, key: &SessionKey) -> Option<Dispatch> {
        let d = self.dispatches.remove(key)?;
        self.remove_counters(&d);
        Some(d)
    }

    /// Keeps one slot of `worker` in use after a removal: its unrecorded
    /// count grows by one and its version moves, so a heartbeat computed
    /// before the removal cannot overwrite the count.
    fn hold_slot(&mut self, worker: Option<&WorkerId>) {
        if let Some((record, version)) = worker.and_then(|w| self.workers.get_mut(w)) {
            record.unrecorded = record.unrecorded.saturating_add(1);
            *version += 1;
        }
    }
}

/// The in-memory store. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    unavailable: Arc<AtomicBool>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The error a [`MemoryStore`] returns while made unavailable.
#[derive(Debug, thiserror::Error)]
#[error("in-memory store is switched off")]
struct SwitchedOff;

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store judging lease and sticky expiry on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::default(),
            clock,
            unavailable: Arc::default(),
        }
    }

    /// Makes every operation fail with [`Error::Unavailable`] (or work
    /// again), on every clone: to test how callers behave when the backend
    /// is down.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Adds `delta` to a worker's dispatched counter without touching the
    /// records, to test that reconcile finds and repairs drift.
    pub fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) {
        if let Ok(mut s) = self.state.lock() {
            let n = s.dispatched.get(worker).copied().unwrap_or(0);
            let n = u32::try_from((i64::from(n) + delta).max(0)).unwrap_or(u32::MAX);
            if n == 0 {
                s.dispatched.remove(worker);
            } else {
                s.dispatched.insert(worker.clone(), n);
            }
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::unavailable(SwitchedOff));
        }
        // A poisoned lock means a panic inside a critical section; every
        // section leaves the state consistent before it can panic, so the
        // data is still usable.
        Ok(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl Registry for MemoryStore {
    async fn ping(&self) -> Result<()> {
        self.lock().map(|_| ())
    }

    async fn worker(&self, id: &WorkerId) -> Result<Option<WorkerSnapshot>> {
        let s = self.lock()?;
        Ok(s.workers.get(id).map(|(record, version)| WorkerSnapshot {
            record: record.clone(),
            version: *version,
            dispatched: s.dispatched.get(id).copied().unwrap_or(0),
        }))
    }

    async fn workers(&self) -> Result<Vec<WorkerSnapshot>> {
        let s = self.lock()?;
        Ok(s.workers
            .iter()
            .map(|(id, (record, version))| WorkerSnapshot {
                record: record.clone(),
                version: *version,
                dispatched: s.dispatched.get(id).copied().unwrap_or(0),
            })
            .collect())
    }

    async fn put_worker(&self, record: &WorkerRecord, expected: Option<u64>) -> Result<CasOutcome> {
        Ok(self.lock()?.put_worker(record, expected, None))
    }

    async fn put_worker_if_dispatched(
        &self,
        record: &WorkerRecord,
        expected: u64,
        dispatched: u32,
    ) -> Result<CasOutcome> {
        Ok(self
            .lock()?
            .put_worker(record, Some(expected), Some(dispatched)))
    }

    async fn delete_worker(&self, id: &WorkerId, expected: u64) -> Result<DeleteOutcome> {
        Ok(self.lock()?.delete_worker(id, expected))
    }
}

#[async_trait]
impl DispatchStore for MemoryStore {
    async fn reserve(&self, request: &ReserveRequest) -> Result<Reservation> {
        let mut s = self.lock()?;
        let new = &request.dispatch;
        let existing = s.dispatches.get(&new.key).cloned();
        if existing.is_none() && request.supersede.is_some() {
            return Ok(Reservation::Ended);
        }
        if let Some(old) = &existing {
            let replace = request.supersede == Some(old.id) && old.worker != new.worker;
            if !replace {
                return Ok(Reservation::Existing(old.clone()));
            }
        }
        let Some((record, _)) = s.workers.get(&new.worker) else {
            return Ok(Reservation::NotAccepting);
        };
        if !record.accepting() {
            return Ok(Reservation::NotAccepting);
        }
        let dispatched = s.dispatched.get(&new.worker).copied().unwrap_or(0);
        if crate::capacity::used_sessions(dispatched, record.unrecorded) >= record.max_sessions() {
            return Ok(Reservation::Full);
        }
        let slots_left = record
            .max_sessions()
            .saturating_sub(crate::capacity::used_sessions(
                dispatched.saturating_add(1),
                record.unrecorded,
            ));
        let superseded = existing.and_then(|old| s.remove_dispatch(&old.key));
        let mut dispatch = new.clone();
        dispatch.state = DispatchState::Reserved;
        s.add_counters(&dispatch);
        s.dispatches.insert(dispatch.key.clone(), dispatch.clone());
        let permit = request.permit.and_then(|asked| {
            let w = s.permits.entry(dispatch.worker.clone()).or_default();
            w.grant_if_free(&dispatch.id.to_string(), &asked)
        });
        Ok(Reservation::Reserved {
            dispatch,
            superseded,
            slots_left,
            permit,
        })
    }

    async fn confirm(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
    ) -> Result<Option<Dispatch>> {
        Ok(self
            .lock()?
            .confirm(key, id, session, now, sticky_ttl, permit))
    }

    async fn adopt(&self, dispatch: &Dispatch, sticky_ttl: Duration) -> Result<Adoption> {
        let mut s = self.lock()?;
        if let Some(existing) = s.dispatches.get(&dispatch.key) {
            return Ok(Adoption::Existing(existing.clone()));
        }
        if !s.workers.contains_key(&dispatch.worker) {
            return Ok(Adoption::UnknownWorker);
        }
        let mut d = dispatch.clone();
        d.state = DispatchState::Active;
        s.add_counters(&d);
        s.dispatches.insert(d.key.clone(), d.clone());
        let since = d.activated_at.unwrap_or(d.reserved_at);
        s.sticky.insert(
            d.key.exam_id.clone(),
            (d.worker.clone(), since.plus(sticky_ttl)),
        );
        Ok(Adoption::Adopted(d))
    }

    async fn undo(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
        permit: Option<&PermitReturn>,
    ) -> Result<bool> {
        let mut s = self.lock()?;
        s.check_fence(fence, self.clock.now())?;
        s.return_permit(id, permit);
        let undoable = s
            .dispatches
            .get(key)
            .is_some_and(|d| d.id == id && d.state == DispatchState::Reserved);
        if !undoable {
            return Ok(false);
        }
        s.remove_dispatch(key);
        s.hold_slot(hold);
        Ok(true)
    }

    async fn release(
        &self,
        key: &SessionKey,
        id: Option<DispatchId>,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
    ) -> Result<Option<Dispatch>> {
        let mut s = self.lock()?;
        s.check_fence(fence, self.clock.now())?;
        let matches = s
            .dispatches
            .get(key)
            .is_some_and(|d| id.is_none_or(|id| d.id == id));
        if !matches {
            return Ok(None);
        }
        let removed = s.remove_dispatch(key);
        s.hold_slot(hold);
        Ok(removed)
    }

    async fn mark_orphaned(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
    ) -> Result<bool> {
        let mut s = self.lock()?;
        s.check_fence(fence, self.clock.now())?;
        match s.dispatches.get_mut(key) {
            Some(d) if d.id == id => {
                d.state = DispatchState::Orphaned;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn dispatch(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        Ok(self.lock()?.dispatches.get(key).cloned())
    }

    async fn worker_dispatches(&self, worker: &WorkerId, limit: usize) -> Result<Vec<Dispatch>> {
        let s = self.lock()?;
        Ok(s.dispatches
            .values()
            .filter(|d| &d.worker == worker)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn scan_dispatches(&self, cursor: Option<&str>, count: usize) -> Result<DispatchPage> {
        let s = self.lock()?;
        let start = match cursor {
            None => Bound::Unbounded,
            Some(c) => {
                let key: SessionKey =
                    serde_json::from_str(c).map_err(|e| Error::invalid("cursor", e))?;
                Bound::Excluded(key)
            }
        };
        let count = count.max(1);
        let dispatches: Vec<Dispatch> = s
            .dispatches
            .range((start, Bound::Unbounded))
            .take(count)
            .map(|(_, d)| d.clone())
            .collect();
        let next = if dispatches.len() == count {
            dispatches
                .last()
                .map(|d| serde_json::to_string(&d.key).unwrap_or_default())
        } else {
            None
        };
        Ok(DispatchPage { dispatches, next })
    }

    async fn placement(&self, exam: &ExamId, now: Timestamp) -> Result<ExamPlacement> {
        let s = self.lock()?;
        Ok(ExamPlacement::new(
            s.sticky
                .get(exam)
                .filter(|(_, expires)| *expires > now)
                .map(|(w, _)| w.clone()),
            s.affinity.get(exam).cloned().unwrap_or_default(),
        ))
    }

    async fn recount(&self, repair: bool) -> Result<RecountReport> {
        let mut s = self.lock()?;
        let mut per_worker: BTreeMap<WorkerId, i64> = BTreeMap::new();
        let mut per_exam: BTreeMap<(ExamId, WorkerId), i64> = BTreeMap::new();
        for d in s.dispatches.values() {
            *per_worker.entry(d.worker.clone()).or_default() += 1;
            *per_exam
                .entry((d.key.exam_id.clone(), d.worker.clone()))
                .or_default() += 1;
        }
        let mut report = RecountReport::default();
        let workers: std::collections::BTreeSet<WorkerId> = per_worker
            .keys()
            .chain(s.dispatched.keys())
            .cloned()
            .collect();
        for w in workers {
            report.counters_checked += 1;
            let stored = i64::from(s.dispatched.get(&w).copied().unwrap_or(0));
            let actual = per_worker.get(&w).copied().unwrap_or(0);
            if stored != actual {
                report.drift.push(Drift {
                    counter: Counter::WorkerDispatched { worker: w.clone() },
                    stored,
                    actual,
                });
            }
        }
        let mut pairs: std::collections::BTreeSet<(ExamId, WorkerId)> =
            per_exam.keys().cloned().collect();
        for (exam, m) in &s.affinity {
            pairs.extend(m.keys().map(|w| (exam.clone(), w.clone())));
        }
        for (exam, w) in pairs {
            report.counters_checked += 1;
            let stored = i64::from(
                s.affinity
                    .get(&exam)
                    .and_then(|m| m.get(&w))
                    .copied()
                    .unwrap_or(0),
            );
            let actual = per_exam
                .get(&(exam.clone(), w.clone()))
                .copied()
                .unwrap_or(0);
            if stored != actual {
                report.drift.push(Drift {
                    counter: Counter::ExamAffinity {
                        exam_id: exam,
                        worker: w,
                    },
                    stored,
                    actual,
                });
            }
        }
        if repair && !report.drift.is_empty() {
            s.dispatched = per_worker
                .into_iter()
                .map(|(w, n)| (w, u32::try_from(n).unwrap_or(u32::MAX)))
                .collect();
            s.affinity.clear();
            for ((exam, w), n) in per_exam {
                s.affinity
                    .entry(exam)
                    .or_default()
                    .insert(w, u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
        Ok(report)
    }
}
