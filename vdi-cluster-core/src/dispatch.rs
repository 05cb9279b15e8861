//! Dispatch records: which worker holds a student's session.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::time::Timestamp;
use crate::worker::WorkerRecord;

/// Life of a dispatch record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DispatchState {
    /// A slot is reserved; the worker is being asked to start the session.
    Reserved,
    /// The worker started the session.
    Active,
    /// Its worker failed and the `manual` failure policy is waiting for an
    /// operator to evacuate it.
    Orphaned,
}

impl DispatchState {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Active => "active",
            Self::Orphaned => "orphaned",
        }
    }
}

/// One student's session placed on one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispatch {
    /// Exam and student.
    pub key: SessionKey,
    /// This dispatch attempt.
    pub id: DispatchId,
    /// The worker holding it.
    pub worker: WorkerId,
    /// Reserved, active or orphaned.
    pub state: DispatchState,
    /// When the slot was reserved.
    pub reserved_at: Timestamp,
    /// When the worker confirmed the session.
    pub activated_at: Option<Timestamp>,
    /// The worker's boot id when the slot was reserved.
    pub worker_boot_id: Option<String>,
    /// The worker's heartbeat sequence when the slot was reserved: only a
    /// heartbeat with a higher sequence may prove the session gone.
    pub worker_seq: Option<u64>,
    /// What the worker answered (remote-desktop connection details), passed
    /// through untouched.
    pub session: Option<serde_json::Value>,
}

impl Dispatch {
    /// A new reservation.
    pub fn reserve(
        key: SessionKey,
        worker: WorkerId,
        now: Timestamp,
        worker_boot_id: Option<String>,
        worker_seq: Option<u64>,
    ) -> Self {
        Self {
            key,
            id: DispatchId::new(),
            worker,
            state: DispatchState::Reserved,
            reserved_at: now,
            activated_at: None,
            worker_boot_id,
            worker_seq,
            session: None,
        }
    }

    /// The active dispatch of a session `worker` reports running without a
    /// record, adopted at `now` with the connection details it sent, if any.
    pub fn adopted(
        key: SessionKey,
        worker: &WorkerRecord,
        now: Timestamp,
        session: Option<serde_json::Value>,
    ) -> Self {
        Self {
            state: DispatchState::Active,
            activated_at: Some(now),
            session,
            ..Self::reserve(
                key,
                worker.id.clone(),
                now,
                worker.boot_id().map(str::to_owned),
                worker.stamp.as_ref().and_then(|s| s.seq),
            )
        }
    }
}

/// Whether the worker restarted after this dispatch was placed: the
/// dispatch names an older boot, and was reserved before the control plane
/// first heard from the current boot. Its session is gone.
pub fn lost_to_restart(dispatch: &Dispatch, worker: &WorkerRecord) -> bool {
    match (
        &dispatch.worker_boot_id,
        worker.boot_id(),
        worker.boot_seen_at,
    ) {
        (Some(then), Some(now), Some(seen)) => then != now && dispatch.reserved_at < seen,
        _ => false,
    }
}

/// Whether the worker's report proves this session lost: the dispatch is
/// settled (active or orphaned; a reservation belongs to its allocator),
/// it was placed on a boot the worker has since left
/// ([`lost_to_restart`]), and the worker's latest report of live
/// sessions, if it sent one, does not list it (a start that reached the
/// new boot runs there). The worker answered: its sessions are not on a
/// failed worker, they are gone, and their slots are free to release.
pub fn lost_to_report(dispatch: &Dispatch, worker: &WorkerRecord) -> bool {
    dispatch.state != DispatchState::Reserved
        && lost_to_restart(dispatch, worker)
        && !worker
            .live_sessions
            .as_ref()
            .is_some_and(|live| live.contains(&dispatch.key))
}

/// Whether the worker has positively reported this session gone: it sends
/// live session ids, its latest heartbeat is newer (higher sequence, and at
/// least `grace` after activation) than the dispatch, and omits it.
pub fn reported_gone(dispatch: &Dispatch, worker: &WorkerRecord, grace: Duration) -> bool {
    if dispatch.state != DispatchState::Active || lost_to_restart(dispatch, worker) {
        return false;
    }
    let (Some(live), Some(heard), Some(activated)) = (
        &worker.live_sessions,
        worker.last_heartbeat_at,
        dispatch.activated_at,
    ) else {
        return false;
    };
    let newer_seq = match (
        dispatch.worker_seq,
        worker.stamp.as_ref().and_then(|s| s.seq),
    ) {
        (Some(then), Some(now)) => now > then,
        _ => true,
    };
    newer_seq && heard >= activated.plus(grace) && !live.contains(&dispatch.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HeartbeatStamp;
    use crate::worker::WorkerDescription;

    fn worker(
        boot: &str,
        seq: u64,
        seen: u64,
        heard: u64,
        live: Option<Vec<SessionKey>>,
    ) -> WorkerRecord {
        let mut r = WorkerRecord::registered(
            WorkerId::parse("code", "w1").unwrap(),
            WorkerDescription::default(),
            Timestamp(0),
        );
        r.stamp = Some(HeartbeatStamp {
            boot_id: Some(boot.into()),
            seq: Some(seq),
        });
        r.boot_seen_at = Some(Timestamp(seen));
        r.last_heartbeat_at = Some(Timestamp(heard));
        r.live_sessions = live;
        r
    }

    fn active(boot: &str, seq: u64, at: u64) -> Dispatch {
        let mut d = Dispatch::reserve(
            SessionKey::parse("e", "u").unwrap(),
            WorkerId::parse("code", "w1").unwrap(),
            Timestamp(at),
            Some(boot.into()),
            Some(seq),
        );
        d.state = DispatchState::Active;
        d.activated_at = Some(Timestamp(at));
        d
    }

    #[test]
    fn restart_evidence() {
        let d = active("a", 3, 1_000);
        assert!(lost_to_restart(&d, &worker("b", 1, 2_000, 2_000, None)));
        // Reserved after the new boot was seen: placed on the new boot.
        assert!(!lost_to_restart(&d, &worker("b", 1, 500, 2_000, None)));
        assert!(!lost_to_restart(&d, &worker("a", 9, 0, 2_000, None)));
    }

    #[test]
    fn a_restart_proves_settled_sessions_lost_unless_listed_live() {
        let d = active("a", 3, 1_000);
        let restarted = worker("b", 1, 2_000, 2_000, Some(vec![]));
        assert!(lost_to_report(&d, &restarted));
        let orphaned = Dispatch {
            state: DispatchState::Orphaned,
            ..d.clone()
        };
        assert!(lost_to_report(&orphaned, &restarted));
        let reserved = Dispatch {
            state: DispatchState::Reserved,
            activated_at: None,
            ..d.clone()
        };
        assert!(!lost_to_report(&reserved, &restarted), "its allocator's");
        let listed = worker("b", 1, 2_000, 2_000, Some(vec![d.key.clone()]));
        assert!(!lost_to_report(&d, &listed), "started on the new boot");
        assert!(lost_to_report(&d, &worker("b", 1, 2_000, 2_000, None)));
        assert!(!lost_to_report(&d, &worker("a", 9, 0, 2_000, Some(vec![]))));
    }

    #[test]
    fn gone_needs_newer_heartbeat_and_grace() {
        let grace = Duration::from_secs(60);
        let d = active("a", 3, 1_000);
        let omitted = Some(vec![]);
        assert!(reported_gone(
            &d,
            &worker("a", 4, 0, 61_000, omitted.clone()),
            grace
        ));
        assert!(
            !reported_gone(&d, &worker("a", 3, 0, 61_000, omitted.clone()), grace),
            "same seq"
        );
        assert!(
            !reported_gone(&d, &worker("a", 4, 0, 30_000, omitted), grace),
            "within grace"
        );
        assert!(
            !reported_gone(&d, &worker("a", 4, 0, 61_000, None), grace),
            "no live list"
        );
        let listed = Some(vec![d.key.clone()]);
        assert!(!reported_gone(
            &d,
            &worker("a", 4, 0, 61_000, listed),
            grace
        ));
    }
}
