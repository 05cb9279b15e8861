//! A store wrapper that counts every call per method and the time spent in
//! it: the breakdown behind `vdi-loadgen --breakdown`, and what the
//! service tests count round trips with.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::calendar::{CalendarWrite, ExamCalendar, ExamStore};
use crate::credential::{CredentialSnapshot, WorkerCredential};
use crate::exam::Exam;
use crate::outbox::{
    Attempt, Delivery, Failing, LeasedDelivery, Next, Outbox, OutboxEntry, WebhookEndpoint,
};
use crate::store::{
    Adoption, AuditEntry, CasOutcome, ClaimOutcome, DeleteOutcome, DispatchPage, ExamPlacement,
    JoinClaim, JoinToken, Lease, RecountReport, Reservation, ReserveRequest,
};
use crate::waiting_room::{Completion, Enqueued, Standing, WaitingRoom};
use crate::waiting_room::{ExamQueue, QueueClaim};
use crate::{
    AuditLog, Credentials, Dispatch, DispatchId, DispatchStore, ExamId, LeaderLease, Registry,
    Result, SessionKey, Store, Timestamp, UserId, WorkerId, WorkerRecord, WorkerSnapshot,
};
use async_trait::async_trait;

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

/// Implements `$store` for [`Instrumented`]: every listed method delegates
/// to `inner`, timed under its own name; `{ … }` holds the methods that
/// count otherwise.
macro_rules! timed_delegation {
    ($store:ident { $($own:tt)* } $(fn $method:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        #[async_trait]
        impl $store for Instrumented {
            $($own)*

            $(async fn $method(&self, $($arg: $ty),*) -> Result<$out> {
                self.timed(stringify!($method), self.inner.$method($($arg),*)).await
            })*
        }
    };
}

timed_delegation! { Registry {}
    fn ping() -> ();
    fn worker(id: &WorkerId) -> Option<WorkerSnapshot>;
    fn workers() -> Vec<WorkerSnapshot>;
    fn put_worker(record: &WorkerRecord, expected: Option<u64>) -> CasOutcome;
    fn put_worker_if_dispatched(record: &WorkerRecord, expected: u64, dispatched: u32) -> CasOutcome;
    fn delete_worker(id: &WorkerId, expected: u64) -> DeleteOutcome;
}

timed_delegation! { DispatchStore {
        /// Counted per outcome: a `full` is a contention retry.
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
    }
    fn confirm(key: &SessionKey, id: DispatchId, session: Option<serde_json::Value>,
               now: Timestamp, sticky_ttl: Duration) -> Option<Dispatch>;
    fn adopt(dispatch: &Dispatch, sticky_ttl: Duration) -> Adoption;
    fn undo(key: &SessionKey, id: DispatchId, fence: Option<&Lease>, hold: Option<&WorkerId>) -> bool;
    fn release(key: &SessionKey, id: Option<DispatchId>, fence: Option<&Lease>, hold: Option<&WorkerId>) -> Option<Dispatch>;
    fn mark_orphaned(key: &SessionKey, id: DispatchId, fence: Option<&Lease>) -> bool;
    fn dispatch(key: &SessionKey) -> Option<Dispatch>;
    fn worker_dispatches(worker: &WorkerId, limit: usize) -> Vec<Dispatch>;
    fn scan_dispatches(cursor: Option<&str>, count: usize) -> DispatchPage;
    fn placement(exam: &ExamId, now: Timestamp) -> ExamPlacement;
    fn recount(repair: bool) -> RecountReport;
}

timed_delegation! { LeaderLease {}
    fn try_acquire(name: &str, holder: &str, ttl: Duration) -> Option<Lease>;
    fn release_lease(lease: &Lease) -> bool;
}

timed_delegation! { AuditLog {}
    fn append_audit(entry: &AuditEntry) -> ();
    fn recent_audit(limit: usize) -> Vec<AuditEntry>;
}

timed_delegation! { Credentials {}
    fn put_join_token(token: &JoinToken) -> ();
    fn redeem_join_token(token_hash: &str, now: Timestamp) -> Option<JoinToken>;
    fn join_tokens() -> Vec<JoinToken>;
    fn revoke_join_token(id: &str) -> bool;
    fn claim_worker(claim: &JoinClaim) -> ClaimOutcome;
    fn put_worker_credential(worker: &WorkerId, credential: &WorkerCredential,
                             expected: Option<u64>) -> CasOutcome;
    fn worker_credential(worker: &WorkerId) -> Option<CredentialSnapshot>;
}

timed_delegation! { ExamStore {}
    fn exam_calendar() -> ExamCalendar;
    fn put_exam_if_version(exam: &Exam, expected: u64) -> CalendarWrite;
    fn delete_exam_if_version(id: &ExamId, expected: u64) -> CalendarWrite;
    fn swap_exam_risk(id: &ExamId, shortfall: Option<u32>, entries: &[OutboxEntry]) -> Option<u32>;
}

timed_delegation! { WaitingRoom {}
    fn enqueue(exam: &ExamId, user: &UserId, now: Timestamp) -> Enqueued;
    fn touch_queued(exam: &ExamId, user: &UserId, now: Timestamp) -> Standing;
    fn exam_queue(exam: &ExamId) -> ExamQueue;
    fn leave_queue(exam: &ExamId, user: &UserId) -> bool;
    fn claim_queue_head(exam: &ExamId, now: Timestamp, until: Timestamp) -> Option<QueueClaim>;
    fn complete_queue_claim(claim: &QueueClaim, now: Timestamp) -> Completion;
    fn release_queue_claim(claim: &QueueClaim) -> ();
    fn abandon_queued(exam: &ExamId, user: &UserId, seen_before: Timestamp, now: Timestamp) -> bool;
    fn queued_exams() -> Vec<ExamId>;
}

timed_delegation! { Outbox {}
    fn put_webhook(endpoint: &WebhookEndpoint) -> bool;
    fn webhooks() -> Vec<WebhookEndpoint>;
    fn delete_webhook(id: &str) -> bool;
    fn append_outbox(entries: &[OutboxEntry], fence: Option<&Lease>) -> u32;
    fn put_worker_with_outbox(record: &WorkerRecord, expected: Option<u64>,
                              dispatched: Option<u32>, entries: &[OutboxEntry]) -> CasOutcome;
    fn delete_worker_with_outbox(id: &WorkerId, expected: u64,
                                 entries: &[OutboxEntry]) -> DeleteOutcome;
    fn confirm_with_outbox(key: &SessionKey, id: DispatchId, session: Option<serde_json::Value>,
                           now: Timestamp, sticky_ttl: Duration,
                           entries: &[OutboxEntry]) -> Option<Dispatch>;
    fn lease_deliveries(now: Timestamp, until: Timestamp, limit: usize) -> Vec<LeasedDelivery>;
    fn finish_delivery(delivery: &LeasedDelivery, attempt: &Attempt, next: Next,
                       failing: Option<Failing<'_>>) -> Option<u32>;
    fn deliveries(endpoint: &str, limit: usize) -> Vec<Delivery>;
    fn retry_delivery(endpoint: &str, id: &str, now: Timestamp) -> bool;
    fn purge_deliveries(before: Timestamp, limit: usize) -> u32;
}
