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
//! placed is not undercut. Pure: time arrives as `now`.

use std::time::Duration;

use crate::dispatch::{Dispatch, DispatchState};
use crate::ids::{DispatchId, WorkerId};
use crate::time::Timestamp;

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
