//! A store that hands every call on to another: the one list of the
//! storage traits' methods, for wrappers that add something around each
//! call ([`Instrumented`](super::instrument::Instrumented) counts and
//! times them; a test's store may make each one take a round trip of
//! simulated time).
//!
//! ```ignore
//! struct Slow { inner: MemoryStore }
//!
//! impl Slow {
//!     async fn around<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
//!         tokio::time::sleep(ROUND_TRIP).await;
//!         call.await
//!     }
//! }
//!
//! vdi_cluster_core::delegate_store!(Slow, inner, around);
//! ```

#[doc(hidden)]
pub use async_trait::async_trait;
#[doc(hidden)]
pub use serde_json::Value as Json;

/// Implements every storage trait of [`Store`](crate::Store) for
/// `$wrapper`: each method calls the same method of the store in the
/// field `$inner` (a store, or an `Arc` of one), through the wrapper's
/// own `async fn $around<T>(&self, method: &'static str, call: impl
/// Future<Output = T>) -> T`, which gets the method's name and the inner
/// store's call, not yet started, and answers what the call answers.
#[macro_export]
macro_rules! delegate_store {
    ($wrapper:ty, $inner:ident, $around:ident) => {
        $crate::delegate_store! { @impl ($wrapper, $inner, $around)
            $crate::store::Registry {
                fn ping() -> ();
                fn worker(id: &$crate::WorkerId) -> Option<$crate::WorkerSnapshot>;
                fn workers() -> Vec<$crate::WorkerSnapshot>;
                fn put_worker(record: &$crate::WorkerRecord, expected: Option<u64>)
                    -> $crate::store::CasOutcome;
                fn put_worker_if_dispatched(record: &$crate::WorkerRecord, expected: u64,
                                            dispatched: u32) -> $crate::store::CasOutcome;
                fn delete_worker(id: &$crate::WorkerId, expected: u64)
                    -> $crate::store::DeleteOutcome;
            }
            $crate::store::DispatchStore {
                fn reserve(request: &$crate::store::ReserveRequest) -> $crate::store::Reservation;
                fn confirm(key: &$crate::SessionKey, id: $crate::DispatchId,
                           session: Option<$crate::testkit::delegate::Json>, now: $crate::Timestamp,
                           sticky_ttl: std::time::Duration,
                           permit: Option<&$crate::pacing::PermitReturn>)
                    -> Option<$crate::Dispatch>;
                fn adopt(dispatch: &$crate::Dispatch, sticky_ttl: std::time::Duration)
                    -> $crate::store::Adoption;
                fn undo(key: &$crate::SessionKey, id: $crate::DispatchId,
                        fence: Option<&$crate::store::Lease>, hold: Option<&$crate::WorkerId>,
                        permit: Option<&$crate::pacing::PermitReturn>)
                    -> bool;
                fn release(key: &$crate::SessionKey, id: Option<$crate::DispatchId>,
                           fence: Option<&$crate::store::Lease>,
                           hold: Option<&$crate::WorkerId>) -> Option<$crate::Dispatch>;
                fn mark_orphaned(key: &$crate::SessionKey, id: $crate::DispatchId,
                                 fence: Option<&$crate::store::Lease>) -> bool;
                fn dispatch(key: &$crate::SessionKey) -> Option<$crate::Dispatch>;
                fn worker_dispatches(worker: &$crate::WorkerId, limit: usize)
                    -> Vec<$crate::Dispatch>;
                fn scan_dispatches(cursor: Option<&str>, count: usize)
                    -> $crate::store::DispatchPage;
                fn placement(exam: &$crate::ExamId, now: $crate::Timestamp)
                    -> $crate::store::ExamPlacement;
                fn recount(repair: bool) -> $crate::store::RecountReport;
            }
            $crate::store::LeaderLease {
                fn try_acquire(name: &str, holder: &str, ttl: std::time::Duration)
                    -> Option<$crate::store::Lease>;
                fn release_lease(lease: &$crate::store::Lease) -> bool;
                fn checkpoint(name: &str) -> Option<String>;
                fn save_checkpoint(lease: &$crate::store::Lease, checkpoint: &str) -> ();
            }
            $crate::store::AuditLog {
                fn append_audit(entry: &$crate::store::AuditEntry) -> ();
                fn audit_page(page: $crate::Page) -> $crate::Paged<$crate::store::AuditEntry>;
            }
            $crate::store::Credentials {
                fn put_join_token(token: &$crate::store::JoinToken) -> ();
                fn redeem_join_token(token_hash: &str, now: $crate::Timestamp)
                    -> Option<$crate::store::JoinToken>;
                fn join_tokens() -> Vec<$crate::store::JoinToken>;
                fn revoke_join_token(id: &str) -> bool;
                fn claim_worker(claim: &$crate::store::JoinClaim) -> $crate::store::ClaimOutcome;
                fn put_worker_credential(worker: &$crate::WorkerId,
                                         credential: &$crate::credential::WorkerCredential,
                                         expected: Option<u64>) -> $crate::store::CasOutcome;
                fn worker_credential(worker: &$crate::WorkerId)
                    -> Option<$crate::credential::CredentialSnapshot>;
                fn worker_credentials()
                    -> Vec<($crate::WorkerId, $crate::credential::CredentialSnapshot)>;
                fn put_operator_session(id_hash: &str,
                                        session: &$crate::operator_session::OperatorSession) -> ();
                fn operator_session(id_hash: &str, now: $crate::Timestamp)
                    -> Option<$crate::operator_session::OperatorSession>;
                fn end_operator_session(id_hash: &str) -> bool;
                fn end_operator_sessions() -> u64;
            }
            $crate::calendar::ExamStore {
                fn exam_calendar() -> $crate::calendar::ExamCalendar;
                fn put_exam_if_version(exam: &$crate::exam::Exam, expected: u64)
                    -> $crate::calendar::CalendarWrite;
                fn delete_exam_if_version(id: &$crate::ExamId, expected: u64)
                    -> $crate::calendar::CalendarWrite;
                fn swap_exam_risk(id: &$crate::ExamId, shortfall: Option<u32>,
                                  entries: &[$crate::outbox::OutboxEntry]) -> Option<u32>;
            }
            $crate::waiting_room::WaitingRoom {
                fn enqueue(exam: &$crate::ExamId, user: &$crate::UserId, now: $crate::Timestamp)
                    -> $crate::waiting_room::Enqueued;
                fn touch_queued(exam: &$crate::ExamId, user: &$crate::UserId,
                                now: $crate::Timestamp) -> $crate::waiting_room::Standing;
                fn exam_queue(exam: &$crate::ExamId) -> $crate::waiting_room::ExamQueue;
                fn leave_queue(exam: &$crate::ExamId, user: &$crate::UserId) -> bool;
                fn claim_queue_head(exam: &$crate::ExamId, now: $crate::Timestamp,
                                    until: $crate::Timestamp) -> Option<$crate::waiting_room::QueueClaim>;
                fn complete_queue_claim(claim: &$crate::waiting_room::QueueClaim, now: $crate::Timestamp)
                    -> $crate::waiting_room::Completion;
                fn release_queue_claim(claim: &$crate::waiting_room::QueueClaim) -> ();
                fn abandon_queued(exam: &$crate::ExamId, user: &$crate::UserId,
                                  seen_before: $crate::Timestamp, now: $crate::Timestamp) -> bool;
                fn queued_exams() -> Vec<$crate::ExamId>;
            }
            $crate::outbox::Outbox {
                fn put_webhook(endpoint: &$crate::outbox::WebhookEndpoint) -> bool;
                fn webhooks() -> Vec<$crate::outbox::WebhookEndpoint>;
                fn delete_webhook(id: &str) -> bool;
                fn append_outbox(entries: &[$crate::outbox::OutboxEntry],
                                 fence: Option<&$crate::store::Lease>) -> u32;
                fn put_worker_with_outbox(record: &$crate::WorkerRecord, expected: Option<u64>,
                                          dispatched: Option<u32>,
                                          entries: &[$crate::outbox::OutboxEntry])
                    -> $crate::store::CasOutcome;
                fn put_worker_releasing_lost(record: &$crate::WorkerRecord, expected: u64,
                                             entries: &[$crate::outbox::OutboxEntry],
                                             lost: &[$crate::outbox::LostDispatch])
                    -> $crate::outbox::LostRelease;
                fn delete_worker_with_outbox(id: &$crate::WorkerId, expected: u64,
                                             entries: &[$crate::outbox::OutboxEntry])
                    -> $crate::store::DeleteOutcome;
                fn confirm_with_outbox(key: &$crate::SessionKey, id: $crate::DispatchId,
                                       session: Option<$crate::testkit::delegate::Json>,
                                       now: $crate::Timestamp, sticky_ttl: std::time::Duration,
                                       permit: Option<&$crate::pacing::PermitReturn>,
                                       entries: &[$crate::outbox::OutboxEntry],
                                       disruptions: &[$crate::ledger::Disruption])
                    -> Option<$crate::Dispatch>;
                fn lease_deliveries(now: $crate::Timestamp, until: $crate::Timestamp,
                                    limit: usize) -> Vec<$crate::outbox::LeasedDelivery>;
                fn finish_delivery(delivery: &$crate::outbox::LeasedDelivery,
                                   attempt: &$crate::outbox::Attempt, next: $crate::outbox::Next,
                                   failing: Option<$crate::outbox::Failing<'_>>) -> Option<u32>;
                fn delivery_page(endpoint: &str, page: $crate::Page)
                    -> $crate::Paged<$crate::outbox::Delivery>;
                fn retry_delivery(endpoint: &str, id: &str, now: $crate::Timestamp) -> bool;
                fn purge_deliveries(before: $crate::Timestamp, limit: usize) -> u32;
            }
            $crate::scale::CapacityRequests {
                fn capacity_requests() -> Vec<$crate::scale::StoredCapacityRequest>;
                fn insert_capacity_request(request: &$crate::scale::CapacityRequest,
                                           entries: &[$crate::outbox::OutboxEntry]) -> bool;
                fn update_capacity_request(request: &$crate::scale::CapacityRequest, expected: u64,
                                           entries: &[$crate::outbox::OutboxEntry]) -> bool;
            }
            $crate::scheduled::ScheduledActions {
                fn put_scheduled(action: &$crate::scheduled::ScheduledAction, expected: Option<u64>)
                    -> $crate::store::CasOutcome;
                fn scheduled(id: &str) -> Option<$crate::scheduled::ScheduledSnapshot>;
                fn open_scheduled(due_by: Option<$crate::Timestamp>, limit: usize)
                    -> Vec<$crate::scheduled::ScheduledSnapshot>;
            }
            $crate::pacing::StartPermits {
                fn acquire_start_permit(worker: &$crate::WorkerId, id: &str, limit: u32,
                                        now: $crate::Timestamp, until: $crate::Timestamp)
                    -> $crate::pacing::PermitAnswer;
                fn release_start_permit(worker: &$crate::WorkerId, id: &str,
                                        sample: Option<$crate::pacing::StartSample>, keep: u32)
                    -> bool;
                fn start_queue(worker: &$crate::WorkerId, now: $crate::Timestamp)
                    -> $crate::pacing::StartQueue;
            }
            $crate::ledger::DisruptionLedger {
                fn append_disruptions(entries: &[$crate::ledger::Disruption]) -> u32;
                fn disruptions(key: &$crate::SessionKey) -> Vec<$crate::ledger::Disruption>;
                fn exam_disruptions(exam: &$crate::ExamId) -> Vec<$crate::ledger::Disruption>;
                fn ledger_exams() -> Vec<$crate::ExamId>;
                fn open_interruption(open: &$crate::ledger::OpenInterruption)
                    -> $crate::ledger::OpenInterruption;
                fn open_interruptions(key: &$crate::SessionKey)
                    -> Vec<$crate::ledger::OpenInterruption>;
                fn close_interruption(open: &$crate::ledger::OpenInterruption) -> bool;
            }
            $crate::rehearsal::Rehearsals {
                fn rehearsal(exam: &$crate::ExamId) -> Option<$crate::rehearsal::StoredRehearsal>;
                fn rehearsals() -> Vec<$crate::rehearsal::StoredRehearsal>;
                fn put_rehearsal(rehearsal: &$crate::rehearsal::Rehearsal, expected: u64,
                                 entries: &[$crate::outbox::OutboxEntry]) -> bool;
                fn remove_rehearsal(exam: &$crate::ExamId, expected: u64) -> bool;
            }
        }
    };
    (@impl ($wrapper:ty, $inner:ident, $around:ident)
     $($store:path { $(fn $method:ident($($arg:ident: $ty:ty),* $(,)?) -> $out:ty;)* })*) => {
        const _: () = {
            // The inner store's methods, by name (a `dyn Store` needs none).
            #[allow(unused_imports)]
            use $crate::{
                calendar::ExamStore as _, ledger::DisruptionLedger as _, outbox::Outbox as _,
                scheduled::ScheduledActions as _, pacing::StartPermits as _,
                rehearsal::Rehearsals as _,
                store::AuditLog as _,
                store::Credentials as _, store::DispatchStore as _, store::LeaderLease as _,
                store::Registry as _, waiting_room::WaitingRoom as _, scale::CapacityRequests as _,
            };

            $(
                #[$crate::testkit::delegate::async_trait]
                impl $store for $wrapper {
                    $(async fn $method(&self, $($arg: $ty),*) -> $crate::Result<$out> {
                        self.$around(stringify!($method), self.$inner.$method($($arg),*)).await
                    })*
                }
            )*
        };
    };
}
