//! The conformance suite: one set of behaviour and concurrency tests that
//! every backend runs against real storage.
//!
//! A backend implements [`StoreFactory`] (each call to
//! [`replica`](StoreFactory::replica) opens an independent handle — its own
//! connection or pool — on one shared, isolated storage namespace) and
//! expands [`conformance_tests!`](crate::conformance_tests) once in its
//! `tests/conformance.rs`:
//!
//! ```
//! use std::sync::Arc;
//! use vdi_cluster_core::testkit::conformance::StoreFactory;
//! use vdi_cluster_core::{MemoryStore, Store};
//!
//! struct Memory(MemoryStore);
//!
//! #[async_trait::async_trait]
//! impl StoreFactory for Memory {
//!     async fn replica(&self) -> Arc<dyn Store> {
//!         Arc::new(self.0.clone())
//!     }
//! }
//!
//! /// `None` when the backend is unreachable: the case is skipped.
//! async fn factory() -> Option<Memory> {
//!     Some(Memory(MemoryStore::new()))
//! }
//!
//! // In the backend's tests/conformance.rs:
//! // vdi_cluster_core::conformance_tests!(factory());
//! ```
//!
//! Every case then shows up by name in the test output.

mod adopted;
mod adoption;
mod audit;
mod capacity_requests;
mod coalescing;
mod concurrency;
mod credentials;
mod dispatch;
mod drain_race;
mod ended;
mod exams;
mod extensions;
mod fixtures;
mod freed_slots;
mod interruptions;
mod lease;
mod ledger;
mod lost;
mod operator_sessions;
mod outbox;
mod outbox_causes;
mod pages;
mod permits;
mod prewarm_pool;
mod registry;
mod rehearsals;
mod reserved_permits;
mod resumed_pass;
mod scheduled;
mod transfer;
mod waiting_room;
mod waiting_room_service;
mod worker_credentials;

use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::WorkerId;
use crate::store::Store;

pub use adopted::{
    a_release_racing_a_heartbeat_frees_the_slot_at_the_next_report,
    an_adopted_mark_is_stored_and_dropped_by_a_placement,
};
pub use adoption::{
    adopt_records_a_session_without_a_dispatch, adoption_races_allocation_to_one_dispatch,
    heartbeat_adoption_races_allocations_on_replicas,
};
pub use audit::audit_trail_is_newest_first;
pub use capacity_requests::{
    a_scale_request_is_issued_once_across_racing_replicas,
    a_scale_request_survives_a_leader_change,
    capacity_requests_are_inserted_once_and_compare_and_set,
};
pub use coalescing::duplicate_requests_on_replicas_share_the_last_slot;
pub use concurrency::{SCALE, Scale};
pub use concurrency::{
    concurrent_allocate_of_one_session_yields_one_dispatch,
    concurrent_allocations_never_over_allocate, heartbeats_from_replicas_keep_the_newest,
    interrupted_allocations_leave_no_drift,
};
pub use credentials::join_tokens_are_redeemed_atomically;
pub use dispatch::{
    dispatch_lifecycle_keeps_counters_exact, hostile_ids_do_not_collide,
    orphaned_dispatch_keeps_its_slot, recount_finds_and_repairs_drift,
    reserve_respects_capacity_and_policy, reserve_returns_the_existing_dispatch,
    scans_cover_every_dispatch, sticky_worker_expires, supersede_moves_the_session_atomically,
};
pub use drain_race::{
    drain_and_disable_exclude_reservations, guarded_worker_put_checks_the_dispatched_count,
};
pub use ended::{
    a_move_never_brings_back_a_released_session, releases_racing_moves_on_replicas_never_resurrect,
};
pub use exams::{
    concurrent_bookings_keep_invariant_d, exam_calendar_is_compare_and_set,
    racing_bookings_accept_exactly_one,
};
pub use extensions::concurrent_extensions_accept_exactly_what_fits;
pub use freed_slots::{
    freed_slots_keep_invariant_a_under_concurrency, held_removals_keep_the_slot_and_others_free_it,
};
pub use interruptions::{
    a_refused_student_is_placed_with_a_refused_entry,
    a_restarted_workers_student_is_placed_with_its_entry,
    a_restarts_release_opens_its_interruption_in_the_same_step,
    a_wait_in_a_started_exams_waiting_room_is_an_entry,
    open_interruptions_keep_the_first_and_close_only_themselves,
};
pub use lease::{
    lease_is_exclusive_and_fenced, renewal_keeps_the_fence,
    stale_fence_is_refused_and_current_fence_writes,
};
pub use ledger::{
    a_redispatch_and_its_ledger_entry_commit_together,
    ledger_entries_commit_with_their_confirmation,
};
pub use lost::{
    replicas_applying_one_restart_free_its_slots_once,
    restarted_worker_releases_lost_sessions_in_one_step,
};
pub use operator_sessions::operator_sessions_end_on_every_replica;
pub use outbox::{
    concurrent_deliverers_never_share_a_lease, expired_delivery_lease_redelivers_once,
    finished_deliveries_past_retention_are_purged, outbox_entries_commit_with_their_cause,
};
pub use outbox_causes::{
    confirmations_commit_their_alerts, exam_risk_swaps_commit_their_alerts,
    worker_removals_and_guarded_writes_commit_their_alerts,
};
pub use pages::{audit_trail_pages_newest_first, deliveries_page_newest_first};
pub use permits::{
    a_dead_replicas_permits_come_back_after_their_lease,
    start_permits_never_exceed_the_limit_across_replicas,
    start_permits_queue_in_order_and_keep_samples,
};
pub use prewarm_pool::{
    heartbeats_on_replicas_keep_the_newest_pool_report, prewarm_pool_is_stored_with_the_record,
};
pub use registry::{
    worker_listing_and_delete, worker_put_is_compare_and_set, worker_put_races_have_one_winner,
};
pub use rehearsals::{
    a_cancelled_exams_rehearsal_is_removed,
    a_failing_worker_is_left_out_of_its_exam_on_every_replica,
    rehearsal_failures_commit_with_their_record, rehearsals_are_inserted_once_and_compare_and_set,
    rehearsals_are_removed_only_at_the_version_read,
};
pub use reserved_permits::{
    a_free_permit_comes_with_the_reservation_and_goes_with_its_end,
    reserved_permits_never_exceed_the_limit_across_replicas,
};
pub use resumed_pass::{
    a_pass_resumes_on_the_next_leader, resumed_scans_cover_every_dispatch_once,
};
pub use scheduled::{
    a_cancelled_scheduled_drain_never_fires, a_due_scheduled_drain_fires_once_across_replicas,
    scheduled_actions_are_compare_and_set_and_listed_in_time_order,
};
pub use transfer::{
    fill_every_part, store_contents_survive_export_and_import, worker_credentials_are_listed,
};
pub use waiting_room::{
    concurrent_queue_keeps_invariant_e, queue_claims_are_exclusive_and_fenced,
    queue_is_fifo_and_enqueue_is_idempotent,
};
pub use waiting_room_service::queued_students_are_placed_once_across_replicas;
pub use worker_credentials::{
    join_claims_are_atomic_and_scoped, rotation_racing_revocation_never_leaves_a_usable_secret,
    worker_credentials_are_compare_and_set,
};

/// Opens handles on one isolated storage namespace (a fresh database, a
/// random key prefix).
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// A new independent handle on the shared namespace: one replica.
    async fn replica(&self) -> Arc<dyn Store>;

    /// Adds `delta` to `worker`'s dispatched counter behind the store's
    /// back (clamping at zero), to prove reconcile finds and repairs drift.
    /// `false` if the backend cannot.
    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        let _ = (worker, delta);
        false
    }

    /// Removes the namespace (drops the database, deletes the prefix's
    /// keys). Called once at the end of every case that passed.
    async fn cleanup(&self) {}
}

/// Expands to one `#[tokio::test]` per conformance case. The argument is
/// an expression evaluating to a future of `Option<impl StoreFactory>`,
/// evaluated afresh for every case (`None` skips the case).
///
/// `conformance_tests!(in_sequence factory)` instead runs every case, one
/// after the other, inside the calling async function, with `factory`
/// (an expression of an `impl StoreFactory`) evaluated afresh for each:
/// for a deployment that a test starts once and shares among the cases
/// (a Redis Cluster of its own). Each case's name is printed before it
/// runs, so a failure names its case.
///
/// The case list is written once, here; [`CASES`] is the same list as
/// names, and a test of this crate checks that it holds every case function
/// of the suite.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@list (@cases $factory));
    };
    (@list ($($then:tt)*)) => {
        $crate::conformance_tests! { $($then)*;
            worker_put_is_compare_and_set,
            worker_put_races_have_one_winner,
            worker_listing_and_delete,
            reserve_respects_capacity_and_policy,
            reserve_returns_the_existing_dispatch,
            dispatch_lifecycle_keeps_counters_exact,
            supersede_moves_the_session_atomically,
            a_move_never_brings_back_a_released_session,
            releases_racing_moves_on_replicas_never_resurrect,
            orphaned_dispatch_keeps_its_slot,
            ledger_entries_commit_with_their_confirmation,
            a_redispatch_and_its_ledger_entry_commit_together,
            open_interruptions_keep_the_first_and_close_only_themselves,
            a_restarts_release_opens_its_interruption_in_the_same_step,
            a_refused_student_is_placed_with_a_refused_entry,
            a_restarted_workers_student_is_placed_with_its_entry,
            a_wait_in_a_started_exams_waiting_room_is_an_entry,
            scans_cover_every_dispatch,
            resumed_scans_cover_every_dispatch_once,
            a_pass_resumes_on_the_next_leader,
            sticky_worker_expires,
            hostile_ids_do_not_collide,
            recount_finds_and_repairs_drift,
            lease_is_exclusive_and_fenced,
            stale_fence_is_refused_and_current_fence_writes,
            renewal_keeps_the_fence,
            audit_trail_is_newest_first,
            audit_trail_pages_newest_first,
            deliveries_page_newest_first,
            join_tokens_are_redeemed_atomically,
            worker_credentials_are_compare_and_set,
            join_claims_are_atomic_and_scoped,
            rotation_racing_revocation_never_leaves_a_usable_secret,
            operator_sessions_end_on_every_replica,
            heartbeats_from_replicas_keep_the_newest,
            concurrent_allocations_never_over_allocate,
            concurrent_allocate_of_one_session_yields_one_dispatch,
            duplicate_requests_on_replicas_share_the_last_slot,
            interrupted_allocations_leave_no_drift,
            exam_calendar_is_compare_and_set,
            racing_bookings_accept_exactly_one,
            concurrent_bookings_keep_invariant_d,
            concurrent_extensions_accept_exactly_what_fits,
            adopt_records_a_session_without_a_dispatch,
            adoption_races_allocation_to_one_dispatch,
            heartbeat_adoption_races_allocations_on_replicas,
            an_adopted_mark_is_stored_and_dropped_by_a_placement,
            a_release_racing_a_heartbeat_frees_the_slot_at_the_next_report,
            guarded_worker_put_checks_the_dispatched_count,
            drain_and_disable_exclude_reservations,
            held_removals_keep_the_slot_and_others_free_it,
            freed_slots_keep_invariant_a_under_concurrency,
            prewarm_pool_is_stored_with_the_record,
            heartbeats_on_replicas_keep_the_newest_pool_report,
            restarted_worker_releases_lost_sessions_in_one_step,
            replicas_applying_one_restart_free_its_slots_once,
            queue_is_fifo_and_enqueue_is_idempotent,
            queue_claims_are_exclusive_and_fenced,
            concurrent_queue_keeps_invariant_e,
            queued_students_are_placed_once_across_replicas,
            outbox_entries_commit_with_their_cause,
            worker_removals_and_guarded_writes_commit_their_alerts,
            confirmations_commit_their_alerts,
            exam_risk_swaps_commit_their_alerts,
            finished_deliveries_past_retention_are_purged,
            concurrent_deliverers_never_share_a_lease,
            expired_delivery_lease_redelivers_once,
            capacity_requests_are_inserted_once_and_compare_and_set,
            a_scale_request_is_issued_once_across_racing_replicas,
            a_scale_request_survives_a_leader_change,
            worker_credentials_are_listed,
            store_contents_survive_export_and_import,
            scheduled_actions_are_compare_and_set_and_listed_in_time_order,
            a_due_scheduled_drain_fires_once_across_replicas,
            a_cancelled_scheduled_drain_never_fires,
            start_permits_queue_in_order_and_keep_samples,
            a_dead_replicas_permits_come_back_after_their_lease,
            start_permits_never_exceed_the_limit_across_replicas,
            a_free_permit_comes_with_the_reservation_and_goes_with_its_end,
            reserved_permits_never_exceed_the_limit_across_replicas,
            rehearsals_are_inserted_once_and_compare_and_set,
            rehearsal_failures_commit_with_their_record,
            a_failing_worker_is_left_out_of_its_exam_on_every_replica,
            rehearsals_are_removed_only_at_the_version_read,
            a_cancelled_exams_rehearsal_is_removed,
        }
    };
    (in_sequence $factory:expr) => {
        $crate::conformance_tests!(@list (@sequence $factory));
    };
    (@sequence $factory:expr; $($case:ident,)*) => {
        $(
            eprintln!("conformance case {}", stringify!($case));
            let factory = $factory;
            $crate::testkit::conformance::$case(&factory).await;
            $crate::testkit::conformance::StoreFactory::cleanup(&factory).await;
        )*
    };
    (@names; $($case:ident,)*) => {
        &[$(stringify!($case)),*]
    };
    (@cases $factory:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(factory) = $factory.await else { return };
                $crate::testkit::conformance::$case(&factory).await;
                $crate::testkit::conformance::StoreFactory::cleanup(&factory).await;
            }
        )*
    };
}

/// The names of the cases [`conformance_tests!`](crate::conformance_tests)
/// runs, in its order.
pub const CASES: &[&str] = crate::conformance_tests!(@list (@names));
