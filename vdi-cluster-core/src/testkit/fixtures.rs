//! Values every test builds: identifiers, worker records as a first
//! heartbeat stores them, reservation requests, and two checks on a store.
//!
//! One definition for the conformance suite, the orchestration tests and
//! each backend's own tests, so a fixture means the same thing everywhere.
//!
//! ```
//! use vdi_cluster_core::Timestamp;
//! use vdi_cluster_core::testkit::{key, request, wid, worker_record};
//!
//! let record = worker_record("w-1", 4, 1);
//! assert_eq!((record.max_sessions(), record.reported_active), (4, 1));
//! let reserve = request(&key("exam-1", "user-1"), &wid("w-1"), Timestamp(5));
//! assert_eq!(reserve.dispatch.worker, record.id);
//! ```

use std::time::Duration;

use crate::dispatch::Dispatch;
use crate::health::{HeartbeatStamp, ResourceThresholds};
use crate::ids::{SessionKey, WorkerId};
use crate::store::{DispatchStore, Registry, Reservation, ReserveRequest};
use crate::time::Timestamp;
use crate::worker::{HeartbeatUpdate, WorkerRecord, apply_heartbeat, unrecorded};

use super::heartbeat_with_slots;

/// The boot id of every fixture worker and reservation.
pub const FIXTURE_BOOT: &str = "boot-1";

/// When [`worker_record`] heard its worker.
pub const FIXTURE_TIME: Timestamp = Timestamp(1_000);

/// A worker id; panics on an invalid code.
pub fn wid(code: &str) -> WorkerId {
    WorkerId::parse("code", code).expect("valid worker code")
}

/// A session key; panics on an invalid exam or user id.
pub fn key(exam: &str, user: &str) -> SessionKey {
    SessionKey::parse(exam, user).expect("valid session key")
}

/// A worker named `code` with exactly `slots` slots and `active` reported
/// sessions, as its first heartbeat (boot [`FIXTURE_BOOT`], sequence 1)
/// at [`FIXTURE_TIME`] stores it: policy active.
pub fn worker_record(code: &str, slots: u32, active: u32) -> WorkerRecord {
    worker_record_at(code, slots, active, FIXTURE_TIME)
}

/// [`worker_record`], heard at `at`.
pub fn worker_record_at(code: &str, slots: u32, active: u32, at: Timestamp) -> WorkerRecord {
    let mut hb = heartbeat_with_slots(code, slots, active);
    hb.stamp = HeartbeatStamp {
        boot_id: Some(FIXTURE_BOOT.into()),
        seq: Some(1),
    };
    match apply_heartbeat(None, &hb, at, &ResourceThresholds::default()) {
        HeartbeatUpdate::Apply { mut record, .. } => {
            // As the heartbeat stores it: nothing is dispatched yet.
            record.unrecorded = unrecorded(&hb, |_| false, 0);
            *record
        }
        HeartbeatUpdate::Stale => unreachable!("a first heartbeat is never stale"),
    }
}

/// A fresh reservation of `key` on `worker` at `at` (worker boot
/// [`FIXTURE_BOOT`], sequence 1), superseding nothing.
pub fn request(key: &SessionKey, worker: &WorkerId, at: Timestamp) -> ReserveRequest {
    ReserveRequest {
        dispatch: Dispatch::reserve(
            key.clone(),
            worker.clone(),
            at,
            Some(FIXTURE_BOOT.into()),
            Some(1),
        ),
        supersede: None,
        permit: None,
    }
}

/// Reserves `request` and confirms it at `at`, keeping the exam's sticky
/// worker for `sticky_ttl`: the now active dispatch. Panics unless both
/// steps succeed.
pub async fn reserve_and_confirm(
    store: &(impl DispatchStore + ?Sized),
    request: &ReserveRequest,
    at: Timestamp,
    sticky_ttl: Duration,
) -> Dispatch {
    let key = &request.dispatch.key;
    let Reservation::Reserved { dispatch, .. } = store.reserve(request).await.expect("reserve")
    else {
        panic!("{key} was not reserved");
    };
    store
        .confirm(key, dispatch.id, None, at, sticky_ttl, None)
        .await
        .expect("confirm")
        .expect("the reservation is still there")
}

/// The dispatched counts of every worker, summed.
pub async fn total_dispatched(store: &(impl Registry + ?Sized)) -> u32 {
    store
        .workers()
        .await
        .expect("workers")
        .iter()
        .map(|s| s.dispatched)
        .sum()
}

/// Panics unless every counter equals a recount of the records
/// (invariant C); repairs nothing.
pub async fn assert_no_drift(store: &(impl DispatchStore + ?Sized)) {
    let report = store.recount(false).await.expect("recount");
    assert!(report.drift.is_empty(), "counter drift: {:?}", report.drift);
}

/// An exam `id` of `students` from `starts_at` for `minutes`, no
/// constraints, the default lead (900 s) and teardown (300 s), booked by
/// `admin` at `starts_at`'s epoch.
pub fn exam(id: &str, starts_at: Timestamp, minutes: u64, students: u32) -> crate::exam::Exam {
    crate::exam::Exam {
        id: crate::ids::ExamId::parse("examId", id).expect("valid exam id"),
        name: format!("Exam {id}"),
        starts_at,
        ends_at: starts_at.plus(Duration::from_secs(minutes * 60)),
        students,
        constraints: crate::scheduler::Constraints::default(),
        prewarm: crate::exam::Prewarm::default(),
        teardown_sec: crate::exam::DEFAULT_TEARDOWN_SEC,
        queue: true,
        booked_by: "admin".into(),
        booked_at: Timestamp(0),
        updated_at: Timestamp(0),
        prewarm_started_at: None,
        prewarm_marks: Default::default(),
        network_policy: None,
        extensions: Vec::new(),
        extra_time: Vec::new(),
        expiry_warned_through: None,
    }
}

/// A restricted exam network policy with an entry in every list (the exam
/// platform runbook's site, networks and origin), strict.
pub fn exam_network_policy() -> crate::network::NetworkPolicy {
    crate::network::NetworkPolicy {
        allowed_domains: vec!["sot.umtoj.edu.vn".into()],
        allowed_cidrs: vec![
            "103.90.220.0/22".parse().expect("a network"),
            "2001:db8::/32".parse().expect("a network"),
        ],
        allowed_ips: vec!["10.0.0.7".parse().expect("an address")],
        origin_ip: Some("203.210.213.198".parse().expect("an address")),
        ..crate::network::NetworkPolicy::restricted()
    }
}
