//! How far the leader's reconcile pass got: the checkpoint it saves
//! beside the background lease after every step ([`PassCheckpoint`]),
//! where the next step resumes ([`PassCheckpoint::resume`]), and how old
//! the oldest unchecked dispatch may be ([`PassCheckpoint::unchecked_age`]),
//! and which workers' dispatches a step checks before its scan
//! ([`checked_first`]).
//!
//! A **step** checks a bounded number of dispatches, from the store's
//! cursor onwards; a **pass** is the steps from the start of the dispatch
//! keyspace to its end. The store's paging contract (see
//! [`DispatchStore::scan_dispatches`](crate::store::DispatchStore::scan_dispatches))
//! makes a pass resumed from its cursor — by the same leader or the next —
//! read every dispatch that exists throughout it exactly once.
//!
//! Pure: time arrives as `now`; the store keeps the checkpoint as text
//! ([`PassCheckpoint::encode`], [`PassCheckpoint::decode`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::failure_of;
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// Whether a step checks `view`'s dispatches before its scan, without
/// waiting for the pass's cursor to reach them: its worker failed
/// ([`failure_of`]), or restarted since the pass began at
/// `pass_started_at` (its dispatches behind the cursor may name the old
/// boot). Every other dispatch is checked when the cursor comes to it.
pub fn checked_first(view: &WorkerView, pass_started_at: Timestamp) -> bool {
    view.dispatched > 0
        && (failure_of(view).is_some()
            || view
                .record
                .boot_seen_at
                .is_some_and(|seen| seen >= pass_started_at))
}

/// What the leader saves beside the background lease after each step, so
/// that the next step — its own or a new leader's — resumes where it
/// stopped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassCheckpoint {
    /// The pass under way; `None` when the next step begins a new pass.
    #[serde(default)]
    pub current: Option<PassUnderWay>,
    /// The last pass that reached the end of the keyspace.
    #[serde(default)]
    pub last_complete: Option<CompletedPass>,
}

/// A pass that has not reached the end of the keyspace yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassUnderWay {
    /// The store's cursor the next step resumes from (opaque: a position
    /// in the backend's order).
    pub cursor: String,
    /// When the pass began (its first step).
    pub started_at: Timestamp,
    /// Steps run so far.
    pub steps: u32,
    /// Dispatches its scan has read so far.
    pub scanned: u64,
}

/// A pass that reached the end of the keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedPass {
    /// When it began (its first step).
    pub started_at: Timestamp,
    /// When its last step ended.
    pub finished_at: Timestamp,
    /// Its steps.
    pub steps: u32,
    /// Dispatches its scan read.
    pub scanned: u64,
}

impl CompletedPass {
    /// From its first step's start to its last step's end.
    pub fn duration(&self) -> Duration {
        self.finished_at.since(self.started_at)
    }
}

/// Where a step begins: the cursor to resume from and the pass it belongs
/// to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepStart {
    /// The store's cursor (`None`: the start of the keyspace — the step
    /// begins a new pass).
    pub cursor: Option<String>,
    /// When the pass began.
    pub pass_started_at: Timestamp,
    /// Steps of the pass before this one.
    pub steps_before: u32,
    /// Dispatches the pass read before this step.
    pub scanned_before: u64,
}

impl StepStart {
    /// The start of a new pass at `now`.
    pub fn new_pass(now: Timestamp) -> Self {
        Self {
            cursor: None,
            pass_started_at: now,
            steps_before: 0,
            scanned_before: 0,
        }
    }

    /// Whether the step resumes a pass begun by an earlier step.
    pub fn resumes(&self) -> bool {
        self.cursor.is_some()
    }
}

/// How far the pass of a reconcile report's step got (the report's
/// `pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassProgress {
    /// When the pass began (its first step).
    pub started_at: Timestamp,
    /// Its steps so far, this one included.
    pub steps: u32,
    /// Dispatches its scan has read so far, this step's included.
    pub dispatches_scanned: u64,
    /// Whether this step reached the end of the keyspace: the pass is
    /// complete.
    pub complete: bool,
    /// Whether this step resumed from a saved cursor (`false`: it began
    /// the pass).
    pub resumed: bool,
    /// Every dispatch has been checked since this instant, or was created
    /// after it: the start of the last complete pass (this one, when it is
    /// complete). `None` until a pass completes.
    #[serde(default)]
    pub checked_since: Option<Timestamp>,
}

impl PassCheckpoint {
    /// Where the next step, at `now`, begins: at the saved cursor of the
    /// pass under way, or at the start of the keyspace with a new pass.
    pub fn resume(&self, now: Timestamp) -> StepStart {
        match &self.current {
            Some(p) => StepStart {
                cursor: Some(p.cursor.clone()),
                pass_started_at: p.started_at,
                steps_before: p.steps,
                scanned_before: p.scanned,
            },
            None => StepStart::new_pass(now),
        }
    }

    /// The checkpoint after a step that began at `start`, read `scanned`
    /// dispatches and stopped before `next` (`None`: it reached the end of
    /// the keyspace), ending at `now`.
    pub fn after_step(
        &self,
        start: &StepStart,
        scanned: u64,
        next: Option<String>,
        now: Timestamp,
    ) -> Self {
        let steps = start.steps_before.saturating_add(1);
        let scanned = start.scanned_before.saturating_add(scanned);
        match next {
            Some(cursor) => Self {
                current: Some(PassUnderWay {
                    cursor,
                    started_at: start.pass_started_at,
                    steps,
                    scanned,
                }),
                last_complete: self.last_complete,
            },
            None => Self {
                current: None,
                last_complete: Some(CompletedPass {
                    started_at: start.pass_started_at,
                    finished_at: now,
                    steps,
                    scanned,
                }),
            },
        }
    }

    /// The progress a report shows for the step that led to this
    /// checkpoint from `start`.
    pub fn progress(&self, start: &StepStart) -> PassProgress {
        let (steps, dispatches_scanned, complete) = match (&self.current, &self.last_complete) {
            (Some(p), _) => (p.steps, p.scanned, false),
            (None, Some(c)) => (c.steps, c.scanned, true),
            (None, None) => (0, 0, false),
        };
        PassProgress {
            started_at: start.pass_started_at,
            steps,
            dispatches_scanned,
            complete,
            resumed: start.resumes(),
            checked_since: self.checked_since(),
        }
    }

    /// Every dispatch has been checked since this instant, or was created
    /// after it: the start of the last complete pass (it read every
    /// dispatch that existed throughout it). `None` until one completed.
    pub fn checked_since(&self) -> Option<Timestamp> {
        self.last_complete.map(|c| c.started_at)
    }

    /// The age of the oldest unchecked dispatch at `now`, at most: the
    /// time since the last complete pass began, or — before any pass
    /// completed — since the pass under way began. `None` when no step
    /// ever ran.
    pub fn unchecked_age(&self, now: Timestamp) -> Option<Duration> {
        let since = self
            .checked_since()
            .or_else(|| self.current.as_ref().map(|p| p.started_at))?;
        Some(now.since(since))
    }

    /// The checkpoint as the store keeps it (JSON).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A checkpoint the store kept; `None` if it is not one (another
    /// release's or damaged text): the next step then begins a new pass.
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{HealthConfig, HeartbeatStamp};
    use crate::ids::WorkerId;
    use crate::worker::{WorkerDescription, WorkerRecord, WorkerSnapshot};

    fn at(s: u64) -> Timestamp {
        Timestamp(s * 1_000)
    }

    /// A worker booted at `booted`, last heard at `heard`, seen at 1000 s.
    fn worker(booted: u64, heard: u64, dispatched: u32) -> WorkerView {
        let id = WorkerId::parse("code", "w1").unwrap();
        let mut r = WorkerRecord::registered(id, WorkerDescription::default(), at(0));
        r.stamp = Some(HeartbeatStamp {
            boot_id: Some("b1".into()),
            seq: Some(1),
        });
        r.boot_seen_at = Some(at(booted));
        r.last_heartbeat_at = Some(at(heard));
        let snapshot = WorkerSnapshot {
            record: r,
            version: 1,
            dispatched,
        };
        WorkerView::new(snapshot, at(1_000), &HealthConfig::default())
    }

    #[test]
    fn failed_and_restarted_workers_are_checked_before_the_scan() {
        let pass_began = at(500);
        assert!(
            !checked_first(&worker(0, 990, 3), pass_began),
            "booted before"
        );
        assert!(checked_first(&worker(700, 990, 3), pass_began), "restarted");
        assert!(!checked_first(&worker(700, 990, 0), pass_began), "empty");
        assert!(checked_first(&worker(0, 100, 3), pass_began), "offline");
    }

    #[test]
    fn a_pass_runs_over_steps_until_the_end_of_the_keyspace() {
        let empty = PassCheckpoint::default();
        assert_eq!(empty.unchecked_age(at(5)), None, "no step ever ran");
        let first = empty.resume(at(10));
        assert_eq!(first, StepStart::new_pass(at(10)));
        assert!(!first.resumes());

        let one = empty.after_step(&first, 200, Some("c1".into()), at(11));
        let p = one.progress(&first);
        assert_eq!((p.steps, p.dispatches_scanned, p.complete), (1, 200, false));
        assert_eq!(p.checked_since, None);
        assert_eq!(one.unchecked_age(at(40)), Some(Duration::from_secs(30)));

        let second = one.resume(at(20));
        assert_eq!(second.cursor.as_deref(), Some("c1"));
        assert_eq!(second.pass_started_at, at(10), "the pass keeps its start");
        let two = one.after_step(&second, 150, None, at(21));
        let p = two.progress(&second);
        assert_eq!((p.steps, p.dispatches_scanned, p.complete), (2, 350, true));
        assert!(p.resumed);
        assert_eq!(p.checked_since, Some(at(10)));
        assert_eq!(two.current, None, "the next step begins a new pass");
        let done = two.last_complete.expect("complete");
        assert_eq!(done.duration(), Duration::from_secs(11));

        // A new pass: until it completes, the last one's start bounds the age.
        let third = two.resume(at(70));
        assert_eq!(
            (third.cursor.clone(), third.pass_started_at),
            (None, at(70))
        );
        let three = two.after_step(&third, 200, Some("c2".into()), at(71));
        assert_eq!(three.checked_since(), Some(at(10)));
        assert_eq!(three.unchecked_age(at(100)), Some(Duration::from_secs(90)));
        let four = three.after_step(&three.resume(at(80)), 150, None, at(81));
        assert_eq!(four.unchecked_age(at(100)), Some(Duration::from_secs(30)));
    }

    #[test]
    fn the_checkpoint_survives_the_store_and_rejects_other_text() {
        let start = StepStart::new_pass(at(1));
        let c = PassCheckpoint::default().after_step(&start, 3, Some("{\"k\":1}".into()), at(2));
        assert_eq!(PassCheckpoint::decode(&c.encode()), Some(c));
        assert_eq!(PassCheckpoint::decode("not json"), None);
        assert_eq!(
            PassCheckpoint::decode("{}"),
            Some(PassCheckpoint::default()),
            "fields added later default"
        );
    }
}
