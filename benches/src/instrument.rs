//! A store wrapper that counts every call per method and the time spent in
//! it: the timing breakdown behind `vdi-loadgen --breakdown`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use vdi_cluster_core::store::{
    Adoption, AuditEntry, CasOutcome, DeleteOutcome, DispatchPage, ExamPlacement, JoinToken, Lease,
    RecountReport, Reservation, ReserveRequest,
};
use vdi_cluster_core::{
    AuditLog, Credentials, Dispatch, DispatchId, DispatchStore, ExamId, LeaderLease, Registry,
    Result, SessionKey, Store, Timestamp, WorkerId, WorkerRecord, WorkerSnapshot,
};

/// Calls of one store method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodStats {
    /// Calls made.
    pub calls: u64,
    /// Time spent in them, summed (wall time, so concurrent calls overlap).
    pub total: Duration,
}

/// Per-method counts shared by every wrapper of one run.
#[derive(Debug, Clone, Default)]
pub struct Breakdown(Arc<Mutex<BTreeMap<&'static str, MethodStats>>>);

impl Breakdown {
    /// A new, empty breakdown.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, method: &'static str, took: Duration) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry(method).or_default();
        s.calls += 1;
        s.total += took;
    }

    /// Forgets everything counted so far.
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The counts so far, by method name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, MethodStats> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A [`Store`] that delegates every call to `inner` and counts it in a
/// [`Breakdown`].
#[derive(Debug)]
pub struct Instrumented {
    inner: Arc<dyn Store>,
    breakdown: Breakdown,
}

impl Instrumented {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, breakdown: Breakdown) -> Self {
        Self { inner, breakdown }
    }

    async fn timed<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let t = Instant::now();
        let out = call.await;
        self.breakdown.add(method, t.elapsed());
        out
    }
}

#[async_trait]
impl Registry for Instrumented {
    async fn ping(&self) -> Result<()> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn worker(&self, id: &WorkerId) -> Result<Option<WorkerSnapshot>> {
        self.timed("worker", self.inner.worker(id)).await
    }

    async fn workers(&self) -> Result<Vec<WorkerSnapshot>> {
        self.timed("workers", self.inner.workers()).await
    }

    async fn put_worker(&self, record: &WorkerRecord, expected: Option<u64>) -> Result<CasOutcome> {
        self.timed("put_worker", self.inner.put_worker(record, expected))
            .await
    }

    async fn delete_worker(&self, id: &WorkerId, expected: u64) -> Result<DeleteOutcome> {
        self.timed("delete_worker", self.inner.delete_worker(id, expected))
            .await
    }
}

#[async_trait]
impl DispatchStore for Instrumented {
    async fn reserve(&self, request: &ReserveRequest) -> Result<Reservation> {
        let t = Instant::now();
        let out = self.inner.reserve(request).await;
        let method = match &out {
            Ok(Reservation::Reserved { .. }) => "reserve → reserved",
            Ok(Reservation::Full) => "reserve → full",
            Ok(Reservation::NotAccepting) => "reserve → not accepting",
            Ok(Reservation::Existing(_)) => "reserve → existing",
            Err(_) => "reserve → error",
        };
        self.breakdown.add(method, t.elapsed());
        out
    }

    async fn confirm(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
    ) -> Result<Option<Dispatch>> {
        self.timed(
            "confirm",
            self.inner.confirm(key, id, session, now, sticky_ttl),
        )
        .await
    }

    async fn adopt(&self, dispatch: &Dispatch, sticky_ttl: Duration) -> Result<Adoption> {
        self.timed("adopt", self.inner.adopt(dispatch, sticky_ttl))
            .await
    }

    async fn undo(&self, key: &SessionKey, id: DispatchId) -> Result<bool> {
        self.timed("undo", self.inner.undo(key, id)).await
    }

    async fn release(&self, key: &SessionKey, id: Option<DispatchId>) -> Result<Option<Dispatch>> {
        self.timed("release", self.inner.release(key, id)).await
    }

    async fn mark_orphaned(&self, key: &SessionKey, id: DispatchId) -> Result<bool> {
        self.timed("mark_orphaned", self.inner.mark_orphaned(key, id))
            .await
    }

    async fn dispatch(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        self.timed("dispatch", self.inner.dispatch(key)).await
    }

    async fn worker_dispatches(&self, worker: &WorkerId, limit: usize) -> Result<Vec<Dispatch>> {
        self.timed(
            "worker_dispatches",
            self.inner.worker_dispatches(worker, limit),
        )
        .await
    }

    async fn scan_dispatches(&self, cursor: Option<&str>, count: usize) -> Result<DispatchPage> {
        self.timed("scan_dispatches", self.inner.scan_dispatches(cursor, count))
            .await
    }

    async fn placement(&self, exam: &ExamId, now: Timestamp) -> Result<ExamPlacement> {
        self.timed("placement", self.inner.placement(exam, now))
            .await
    }

    async fn recount(&self, repair: bool) -> Result<RecountReport> {
        self.timed("recount", self.inner.recount(repair)).await
    }
}

#[async_trait]
impl LeaderLease for Instrumented {
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        self.timed("try_acquire", self.inner.try_acquire(name, holder, ttl))
            .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        self.timed("release_lease", self.inner.release_lease(lease))
            .await
    }
}

#[async_trait]
impl AuditLog for Instrumented {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.timed("append_audit", self.inner.append_audit(entry))
            .await
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.timed("recent_audit", self.inner.recent_audit(limit))
            .await
    }
}

#[async_trait]
impl Credentials for Instrumented {
    async fn put_join_token(&self, token: &JoinToken) -> Result<()> {
        self.timed("put_join_token", self.inner.put_join_token(token))
            .await
    }

    async fn redeem_join_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<JoinToken>> {
        self.timed(
            "redeem_join_token",
            self.inner.redeem_join_token(token_hash, now),
        )
        .await
    }

    async fn join_tokens(&self) -> Result<Vec<JoinToken>> {
        self.timed("join_tokens", self.inner.join_tokens()).await
    }

    async fn revoke_join_token(&self, id: &str) -> Result<bool> {
        self.timed("revoke_join_token", self.inner.revoke_join_token(id))
            .await
    }

    async fn put_worker_credential(&self, worker: &WorkerId, token_hash: &str) -> Result<()> {
        self.timed(
            "put_worker_credential",
            self.inner.put_worker_credential(worker, token_hash),
        )
        .await
    }

    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<String>> {
        self.timed("worker_credential", self.inner.worker_credential(worker))
            .await
    }
}
