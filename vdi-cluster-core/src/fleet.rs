//! The fleet's report is the truth about what runs: what the control plane
//! does with each session a worker reports live ([`judge_live`]).
//!
//! A worker's heartbeat may list the sessions it runs. The records are
//! repaired toward that list, never the reverse:
//!
//! * a live session with **no dispatch at all** (a replica died
//!   mid-allocation, a worker call timed out after the worker started it,
//!   the backend lost its data) is **adopted**: its active dispatch is
//!   created on the reporting worker;
//! * a live session whose dispatch is a **reservation on the reporting
//!   worker**, older than the grace, is adopted by confirming that
//!   reservation (its allocator died, or is late);
//! * a live session whose dispatch sits on **another worker**, settled
//!   (active or orphaned) for at least the grace, is a duplicate: the
//!   reporting worker is told to **stop** it.
//!
//! The grace is at least the worker-call timeout, so an allocation still in
//! flight confirms its own reservation, and a re-dispatch still being
//! placed is not undercut.
//!
//! The other way round, a worker that restarted (new boot id) and reports
//! is the truth about what it no longer runs: its settled dispatches from
//! an older boot that its report does not list are **lost**
//! ([`lost_sessions`], by [`lost_to_report`]) and released with the
//! heartbeat that proves it, in bounded steps of [`MAX_LOST_PER_STEP`].
//! A worker that answers is never a failed worker: its sessions are gone
//! or running, never left waiting for a failure policy.
//!
//! An adoption can race a release: a heartbeat the worker composed before
//! it stopped a released desktop, applied after the record's removal,
//! has the session adopted. The worker's next report omits it, and since
//! the adopted dispatch came from the worker's own report there is no
//! start of it in flight to wait for: the first report of the same boot
//! with a higher sequence that omits it proves it gone
//! ([`gone_adopted`], by [`gone_since_adoption`]) and it is released with
//! that heartbeat, without the live-session grace. Pure: time arrives as
//! `now`.

use std::time::Duration;

use crate::dispatch::{Dispatch, DispatchState, gone_since_adoption, lost_to_report};
use crate::ids::{DispatchId, WorkerId};
use crate::time::Timestamp;
use crate::worker::WorkerRecord;

/// The most lost dispatches one atomic step releases: a worker with more
/// has the rest released by its next heartbeats (or the next reconcile
/// pass), each step as bounded.
pub const MAX_LOST_PER_STEP: usize = 1_000;

/// The dispatches among `dispatches` that `worker`'s record (as its latest
/// report wrote it) proves lost, in session order, at most `limit`.
pub fn lost_sessions<'a>(
    dispatches: impl IntoIterator<Item = &'a Dispatch>,
    worker: &WorkerRecord,
    limit: usize,
) -> Vec<&'a Dispatch> {
    on_worker(dispatches, worker, limit, lost_to_report)
}

/// The adopted dispatches among `dispatches` that `worker`'s record (as
/// its latest report wrote it) proves gone since their adoption
/// ([`gone_since_adoption`]), in session order, at most `limit`.
pub fn gone_adopted<'a>(
    dispatches: impl IntoIterator<Item = &'a Dispatch>,
    worker: &WorkerRecord,
    limit: usize,
) -> Vec<&'a Dispatch> {
    on_worker(dispatches, worker, limit, gone_since_adoption)
}

/// The dispatches on `worker` for which `proven` holds, in session order,
/// at most `limit`.
fn on_worker<'a>(
    dispatches: impl IntoIterator<Item = &'a Dispatch>,
    worker: &WorkerRecord,
    limit: usize,
    proven: fn(&Dispatch, &WorkerRecord) -> bool,
) -> Vec<&'a Dispatch> {
    let mut found: Vec<&Dispatch> = dispatches
        .into_iter()
        .filter(|d| d.worker == worker.id && proven(d, worker))
        .collect();
    found.sort_by(|a, b| a.key.cmp(&b.key));
    found.truncate(limit);
    found
}

/// What to do with one session a worker reports live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveVerdict {
    /// The records already agree: its dispatch is on this worker (active,
    /// orphaned, or a reservation its allocator is still confirming).
    Keep,
    /// No dispatch exists: create the active dispatch on this worker.
    Adopt,
    /// Its dispatch is this reservation on this worker, older than the
    /// grace: confirm it.
    ConfirmReservation(DispatchId),
    /// Its dispatch is settled on another worker: this worker stops it.
    Stop,
    /// Not yet decidable: a reservation on another worker (that placement
    /// may still fail), a dispatch elsewhere younger than the grace, or no
    /// record while this worker takes no adoptions.
    Wait,
}

impl LiveVerdict {
    /// Lowercase name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Adopt => "adopt",
            Self::ConfirmReservation(_) => "confirmReservation",
            Self::Stop => "stop",
            Self::Wait => "wait",
        }
    }
}

/// Judges a session that `worker` reported live at `now`, given the
/// session's dispatch `record` (`None`: no record at all). `adopting` is
/// whether this worker may be given sessions it runs without a record (it
/// is not disabled).
pub fn judge_live(
    record: Option<&Dispatch>,
    worker: &WorkerId,
    adopting: bool,
    now: Timestamp,
    grace: Duration,
) -> LiveVerdict {
    let Some(d) = record else {
        return if adopting {
            LiveVerdict::Adopt
        } else {
            LiveVerdict::Wait
        };
    };
    if &d.worker == worker {
        return match d.state {
            DispatchState::Reserved if now.since(d.reserved_at) >= grace => {
                LiveVerdict::ConfirmReservation(d.id)
            }
            _ => LiveVerdict::Keep,
        };
    }
    if d.state == DispatchState::Reserved {
        return LiveVerdict::Wait;
    }
    let settled_at = d.activated_at.unwrap_or(d.reserved_at);
    if now.since(settled_at) >= grace {
        LiveVerdict::Stop
    } else {
        LiveVerdict::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionKey;

    const GRACE: Duration = Duration::from_secs(30);

    fn w(code: &str) -> WorkerId {
        WorkerId::parse("code", code).unwrap()
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp(s * 1_000)
    }

    fn record(worker: &str, state: DispatchState, at: u64) -> Dispatch {
        let mut d = Dispatch::reserve(
            SessionKey::parse("e", "u").unwrap(),
            w(worker),
            secs(at),
            None,
            None,
        );
        d.state = state;
        if state != DispatchState::Reserved {
            d.activated_at = Some(secs(at));
        }
        d
    }

    #[test]
    fn lost_sessions_are_the_settled_ones_of_an_older_boot_not_listed_live() {
        use crate::health::HeartbeatStamp;
        let mut worker =
            WorkerRecord::registered(w("a"), crate::worker::WorkerDescription::default(), secs(0));
        worker.stamp = Some(HeartbeatStamp {
            boot_id: Some("b2".into()),
            seq: Some(1),
        });
        worker.boot_seen_at = Some(secs(200));
        let on = |user: &str, boot: &str, state| {
            let mut d = record("a", state, 100);
            d.key = SessionKey::parse("e", user).unwrap();
            d.worker_boot_id = Some(boot.into());
            d
        };
        let mut elsewhere = on("x", "b1", DispatchState::Active);
        elsewhere.worker = w("b");
        let all = [
            on("u3", "b1", DispatchState::Active),
            on("u1", "b1", DispatchState::Orphaned),
            on("u2", "b1", DispatchState::Reserved),
            on("u4", "b2", DispatchState::Active),
            on("u5", "b1", DispatchState::Active),
            elsewhere,
        ];
        worker.live_sessions = Some(vec![SessionKey::parse("e", "u5").unwrap()]);
        let users = |lost: Vec<&Dispatch>| -> Vec<String> {
            lost.iter().map(|d| d.key.user_id.to_string()).collect()
        };
        assert_eq!(users(lost_sessions(&all, &worker, 10)), ["u1", "u3"]);
        assert_eq!(users(lost_sessions(&all, &worker, 1)), ["u1"]);
    }

    #[test]
    fn gone_adopted_sessions_are_the_adopted_ones_a_later_report_omits() {
        use crate::health::HeartbeatStamp;
        let report = |seq, live: &[&str]| {
            let mut r = WorkerRecord::registered(
                w("a"),
                crate::worker::WorkerDescription::default(),
                secs(0),
            );
            r.stamp = Some(HeartbeatStamp {
                boot_id: Some("b1".into()),
                seq: Some(seq),
            });
            r.last_heartbeat_at = Some(secs(100));
            r.live_sessions = Some(
                live.iter()
                    .map(|u| SessionKey::parse("e", *u).unwrap())
                    .collect(),
            );
            r
        };
        let listing = report(5, &["u1", "u2", "u3"]);
        let adopt = |user: &str| {
            Dispatch::adopted(
                SessionKey::parse("e", user).unwrap(),
                &listing,
                secs(100),
                None,
            )
        };
        let placed = {
            let mut d = record("a", DispatchState::Active, 100);
            d.key = SessionKey::parse("e", "u4").unwrap();
            d.worker_boot_id = Some("b1".into());
            d.worker_seq = Some(5);
            d
        };
        let mut elsewhere = adopt("u5");
        elsewhere.worker = w("b");
        let all = [adopt("u3"), adopt("u1"), adopt("u2"), placed, elsewhere];
        let users = |gone: Vec<&Dispatch>| -> Vec<String> {
            gone.iter().map(|d| d.key.user_id.to_string()).collect()
        };
        assert!(
            gone_adopted(&all, &listing, 10).is_empty(),
            "the same report"
        );
        let later = report(6, &["u2"]);
        assert_eq!(users(gone_adopted(&all, &later, 10)), ["u1", "u3"]);
        assert_eq!(users(gone_adopted(&all, &later, 1)), ["u1"]);
    }

    #[test]
    fn no_record_is_adopted_unless_the_worker_takes_none() {
        let judge = |adopting| judge_live(None, &w("a"), adopting, secs(100), GRACE);
        assert_eq!(judge(true), LiveVerdict::Adopt);
        assert_eq!(judge(false), LiveVerdict::Wait);
    }

    #[test]
    fn a_reservation_here_is_confirmed_only_after_the_grace() {
        let d = record("a", DispatchState::Reserved, 100);
        let judge = |now| judge_live(Some(&d), &w("a"), true, secs(now), GRACE);
        assert_eq!(judge(129), LiveVerdict::Keep);
        assert_eq!(judge(130), LiveVerdict::ConfirmReservation(d.id));
        let active = record("a", DispatchState::Active, 100);
        assert_eq!(
            judge_live(Some(&active), &w("a"), true, secs(1_000), GRACE),
            LiveVerdict::Keep
        );
    }

    #[test]
    fn a_settled_dispatch_elsewhere_stops_the_duplicate_after_the_grace() {
        let d = record("b", DispatchState::Active, 100);
        let judge = |now| judge_live(Some(&d), &w("a"), true, secs(now), GRACE);
        assert_eq!(judge(110), LiveVerdict::Wait);
        assert_eq!(judge(130), LiveVerdict::Stop);
        let reserved = record("b", DispatchState::Reserved, 0);
        assert_eq!(
            judge_live(Some(&reserved), &w("a"), true, secs(1_000), GRACE),
            LiveVerdict::Wait,
            "a placement elsewhere may still fail"
        );
        let orphaned = record("b", DispatchState::Orphaned, 0);
        assert_eq!(
            judge_live(Some(&orphaned), &w("a"), false, secs(1_000), GRACE),
            LiveVerdict::Stop
        );
    }
}
