//! Which entries a placement writes with its confirmation: what the
//! student lost, decided from what the placement saw.

use std::time::Duration;

use super::{Disruption, DisruptionKind, OpenInterruption};
use crate::dispatch::{Dispatch, DispatchState, lost_to_restart};
use crate::ids::WorkerId;
use crate::time::Timestamp;
use crate::worker::WorkerRecord;

/// Why and since when a session lost the desktop a re-dispatch replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// Why.
    pub kind: DisruptionKind,
    /// Since when the student has had no desktop.
    pub since: Timestamp,
    /// The worker left.
    pub from: WorkerId,
}

/// The interruption of `old`, the dispatch a re-dispatch replaces, on its
/// worker `worker` (`None`: removed) as read at `now`; `reachable`: the
/// worker's availability is not unreachable or offline.
///
/// * A worker that restarted without it ([`lost_to_restart`]):
///   `workerRestarted`, since the control plane first heard the new boot.
/// * An orphaned dispatch, or a worker an operator disabled or drains:
///   `moved` (an evacuation), since the worker's last heartbeat if it is
///   silent, else now.
/// * Otherwise (silent, deregistered or removed): `workerLost`, since the
///   last heartbeat (deregistration) — the last moment it was known to run.
///
/// Never before the dispatch was reserved, never after `now`.
pub fn interruption(
    old: &Dispatch,
    worker: Option<&WorkerRecord>,
    reachable: bool,
    now: Timestamp,
) -> Interruption {
    let (kind, since) = match worker {
        None => (DisruptionKind::WorkerLost, now),
        Some(w) if lost_to_restart(old, w) => (
            DisruptionKind::WorkerRestarted,
            w.boot_seen_at.unwrap_or(now),
        ),
        Some(w) => {
            let last_seen = match (w.deregistered_at, reachable) {
                (Some(at), _) => at,
                (None, false) => w.last_heartbeat_at.unwrap_or(now),
                (None, true) => now,
            };
            let moved = old.state == DispatchState::Orphaned
                || !w.policy.is_enabled()
                || w.policy.is_draining();
            let kind = if moved && w.deregistered_at.is_none() {
                DisruptionKind::Moved
            } else {
                DisruptionKind::WorkerLost
            };
            (kind, last_seen)
        }
    };
    Interruption {
        kind,
        since: since.max(old.reserved_at).min(now),
        from: old.worker.clone(),
    }
}

/// What one placement went through before `active` was confirmed at
/// `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementStory<'a> {
    /// The desktop it replaces, for a re-dispatch.
    pub replaced: Option<&'a Interruption>,
    /// When the placement began (its first reservation).
    pub began: Timestamp,
    /// Workers whose start call failed before, in order.
    pub failed: &'a [WorkerId],
    /// A start slower than this is a `slowStart` entry.
    pub slow_start: Duration,
    /// The interruptions the student was in when the placement began (a
    /// refusal, a restarted worker's release, a wait in the waiting room):
    /// each is closed into its entry.
    pub open: &'a [OpenInterruption],
    /// Lost time counts from here at the earliest (the start of the
    /// session's booked exam): an open interruption before it is no loss.
    pub not_before: Option<Timestamp>,
}

/// The entries a placement writes with the confirmation of `active` at
/// `now`: the move it made (`replaced`), the starts that failed before it
/// (`startRetried`, from the placement's start), and a start slower than
/// the threshold (`slowStart`), each caused by, and named after, the new
/// dispatch; and each `open` interruption it ends, named after what began
/// it ([`OpenInterruption::close`]). None for an ordinary placement.
pub fn placement_entries(
    story: &PlacementStory<'_>,
    active: &Dispatch,
    now: Timestamp,
) -> Vec<Disruption> {
    let cause = active.id.to_string();
    let mut entries = Vec::new();
    if let Some(i) = story.replaced {
        entries.push(Disruption::new(
            active.key.clone(),
            i.kind,
            i.since,
            now,
            vec![i.from.clone(), active.worker.clone()],
            &cause,
        ));
    }
    if !story.failed.is_empty() {
        let mut workers = story.failed.to_vec();
        workers.push(active.worker.clone());
        entries.push(Disruption::new(
            active.key.clone(),
            DisruptionKind::StartRetried,
            story.began,
            now,
            workers,
            &cause,
        ));
    }
    entries.extend(
        story
            .open
            .iter()
            .filter_map(|o| o.close(active, now, story.not_before)),
    );
    if !story.slow_start.is_zero() && now.since(active.reserved_at) > story.slow_start {
        entries.push(Disruption::new(
            active.key.clone(),
            DisruptionKind::SlowStart,
            active.reserved_at,
            now,
            vec![active.worker.clone()],
            &cause,
        ));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionKey;
    use crate::worker::WorkerDescription;

    fn wid(code: &str) -> WorkerId {
        WorkerId::parse("code", code).unwrap()
    }

    fn dispatch_on(worker: &str, at: Timestamp) -> Dispatch {
        let key = SessionKey::parse("e1", "u1").unwrap();
        Dispatch::reserve(key, wid(worker), at, None, None)
    }

    fn worker_on(code: &str) -> WorkerRecord {
        WorkerRecord::registered(wid(code), WorkerDescription::default(), Timestamp(0))
    }

    #[test]
    fn a_silent_worker_loses_its_sessions_since_its_last_heartbeat() {
        let old = dispatch_on("w1", Timestamp(1_000));
        let mut w = worker_on("w1");
        w.last_heartbeat_at = Some(Timestamp(5_000));
        let i = interruption(&old, Some(&w), false, Timestamp(9_000));
        assert_eq!(i.kind, DisruptionKind::WorkerLost);
        assert_eq!(i.since, Timestamp(5_000));
        let story = PlacementStory {
            replaced: Some(&i),
            began: Timestamp(8_000),
            failed: &[],
            slow_start: Duration::from_secs(30),
            open: &[],
            not_before: None,
        };
        let mut active = dispatch_on("w2", Timestamp(8_000));
        active.key = old.key.clone();
        let entries = placement_entries(&story, &active, Timestamp(9_000));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].span_ms(), 4_000);
        assert_eq!(entries[0].workers.len(), 2);
    }

    #[test]
    fn an_ordinary_placement_writes_nothing() {
        let active = dispatch_on("w2", Timestamp(8_000));
        let story = PlacementStory {
            replaced: None,
            began: Timestamp(8_000),
            failed: &[],
            slow_start: Duration::from_secs(30),
            open: &[],
            not_before: None,
        };
        assert!(placement_entries(&story, &active, Timestamp(9_000)).is_empty());
        let slow = placement_entries(&story, &active, Timestamp(60_000));
        assert_eq!(slow[0].kind, DisruptionKind::SlowStart);
    }
}
