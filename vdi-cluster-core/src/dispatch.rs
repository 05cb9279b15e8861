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
    /// The worker's heartbeat sequence when the slot was reserved (for an
    /// adopted dispatch, of the report that listed the session): only a
    /// heartbeat with a higher sequence may prove the session gone.
    pub worker_seq: Option<u64>,
    /// What the worker answered (remote-desktop connection details), passed
    /// through untouched.
    pub session: Option<serde_json::Value>,
    /// Adopted from its worker's report of a session that had no record
    /// ([`Dispatch::adopted`]), not placed by a reservation: no start of it
    /// can be in flight that a later report might not list yet, so the
    /// first report of the same boot with a higher sequence than
    /// `worker_seq` that omits it proves it gone ([`gone_since_adoption`]).
    /// A placement writes a new dispatch without it. Absent from records
    /// and dumps written before it existed, and then false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
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
            adopted: false,
        }
    }

    /// The active dispatch of a session `worker` reports running without a
    /// record, adopted at `now` with the connection details it sent, if any.
    /// `worker` is the record as written by the report that lists the
    /// session, so the dispatch carries that report's boot and sequence,
    /// and it is marked [`adopted`](Self::adopted).
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
            adopted: true,
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

/// Whether the worker's latest report omits this active session: it sends
/// live session ids and the dispatch is not among them.
fn omitted(dispatch: &Dispatch, worker: &WorkerRecord) -> bool {
    dispatch.state == DispatchState::Active
        && worker
            .live_sessions
            .as_ref()
            .is_some_and(|live| !live.contains(&dispatch.key))
}

/// Whether the worker's report proves this adopted session gone, with no
/// grace: the dispatch was [`adopted`](Dispatch::adopted) from the
/// worker's report at sequence `worker_seq`, which listed the session
/// running, and the worker's latest report — of the same boot, with a
/// strictly higher sequence — omits it. Nothing of it can be in flight
/// that the later report might not list yet (the grace of
/// [`reported_gone`] exists only for a start in flight), so it stopped in
/// between: a release that raced the report that had it adopted. A worker
/// that sends no sequences, or a report of another boot, proves nothing
/// here (the grace, or [`lost_to_report`], decides).
pub fn gone_since_adoption(dispatch: &Dispatch, worker: &WorkerRecord) -> bool {
    let Some(stamp) = &worker.stamp else {
        return false;
    };
    dispatch.adopted
        && dispatch.worker_boot_id == stamp.boot_id
        && matches!((dispatch.worker_seq, stamp.seq), (Some(then), Some(now)) if now > then)
        && omitted(dispatch, worker)
}

/// Whether the worker has positively reported this session gone: it sends
/// live session ids, its latest heartbeat is newer (higher sequence, and at
/// least `grace` after activation) than the dispatch, and omits it — or,
/// for an adopted dispatch, [`gone_since_adoption`] without the grace.
pub fn reported_gone(dispatch: &Dispatch, worker: &WorkerRecord, grace: Duration) -> bool {
    if !omitted(dispatch, worker) || lost_to_restart(dispatch, worker) {
        return false;
    }
    if gone_since_adoption(dispatch, worker) {
        return true;
    }
    let (Some(heard), Some(activated)) = (worker.last_heartbeat_at, dispatch.activated_at) else {
        return false;
    };
    let newer_seq = match (
        dispatch.worker_seq,
        worker.stamp.as_ref().and_then(|s| s.seq),
    ) {
        (Some(then), Some(now)) => now > then,
        _ => true,
    };
    newer_seq && heard >= activated.plus(grace)
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

    /// The dispatch adopted at 1 s from boot `a`'s report at sequence 3.
    fn adopted() -> Dispatch {
        let listing = worker("a", 3, 0, 1_000, Some(vec![]));
        let d = Dispatch::adopted(
            SessionKey::parse("e", "u").unwrap(),
            &listing,
            Timestamp(1_000),
            None,
        );
        assert_eq!((d.worker_seq, d.adopted), (Some(3), true));
        d
    }

    #[test]
    fn an_adopted_session_omitted_by_a_later_report_is_gone_without_the_grace() {
        let grace = Duration::from_secs(60);
        let d = adopted();
        let later = worker("a", 4, 0, 2_000, Some(vec![]));
        assert!(gone_since_adoption(&d, &later));
        assert!(reported_gone(&d, &later, grace), "well within the grace");
    }

    #[test]
    fn the_report_that_adopted_a_session_does_not_prove_it_gone() {
        let grace = Duration::from_secs(60);
        let d = adopted();
        let same = worker("a", 3, 0, 2_000, Some(vec![]));
        assert!(!gone_since_adoption(&d, &same));
        assert!(!reported_gone(&d, &same, grace), "same seq");
        let listed = worker("a", 4, 0, 2_000, Some(vec![d.key.clone()]));
        assert!(!reported_gone(&d, &listed, grace), "still running");
        let no_list = worker("a", 4, 0, 2_000, None);
        assert!(!reported_gone(&d, &no_list, grace), "no live list");
    }

    #[test]
    fn a_placed_session_omitted_by_a_later_report_waits_for_the_grace() {
        let grace = Duration::from_secs(60);
        let placed = Dispatch {
            adopted: false,
            ..adopted()
        };
        let later = worker("a", 4, 0, 2_000, Some(vec![]));
        assert!(!gone_since_adoption(&placed, &later));
        assert!(!reported_gone(&placed, &later, grace), "a start in flight");
        let after_grace = worker("a", 4, 0, 61_000, Some(vec![]));
        assert!(reported_gone(&placed, &after_grace, grace));
    }

    #[test]
    fn without_sequences_or_across_boots_an_adopted_session_waits_for_the_grace() {
        let grace = Duration::from_secs(60);
        let unsequenced = Dispatch {
            worker_seq: None,
            ..adopted()
        };
        let mut later = worker("a", 4, 0, 2_000, Some(vec![]));
        assert!(!reported_gone(&unsequenced, &later, grace));
        later.stamp = Some(HeartbeatStamp {
            boot_id: Some("a".into()),
            seq: None,
        });
        assert!(!reported_gone(&adopted(), &later, grace), "no seq now");
        later.last_heartbeat_at = Some(Timestamp(61_000));
        assert!(reported_gone(&adopted(), &later, grace), "after the grace");
        // Another boot's sequences do not compare with the adopting one's.
        let other_boot = worker("b", 9, 0, 2_000, Some(vec![]));
        assert!(!gone_since_adoption(&adopted(), &other_boot));
    }
}
