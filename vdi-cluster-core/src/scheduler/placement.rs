//! An exam's placement hints and their revisions: what a ranking reads
//! about the exam (its sticky worker, its sessions per worker) and which
//! version of those hints it is, so the [`RankIndex`] can keep the order
//! of the exam's affine workers from one revision to the next.
//!
//! [`RankIndex`]: super::RankIndex

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::WorkerId;

/// The exam's placement hints, as the store last recorded them: the
/// sticky worker and the exam's sessions per worker.
#[derive(Debug, Clone, Default)]
pub struct ExamPlacement {
    /// The sticky worker, if the key has not expired.
    pub sticky: Option<WorkerId>,
    /// Sessions of this exam per worker. Once ranked, change it through
    /// [`placed`](Self::placed), or give the hints a fresh `revision`.
    pub affinity: BTreeMap<WorkerId, u32>,
    /// Which version of these hints this is: a [`RankIndex`] keeps the
    /// order of the affine workers per revision.
    pub revision: PlacementRevision,
}

impl ExamPlacement {
    /// Hints read from the store, as a fresh revision.
    pub fn new(sticky: Option<WorkerId>, affinity: BTreeMap<WorkerId, u32>) -> Self {
        Self {
            sticky,
            affinity,
            revision: PlacementRevision::default(),
        }
    }

    /// Moves the hints by a session placed on `worker`: it becomes the
    /// sticky worker and holds one more session of the exam.
    pub fn placed(&mut self, worker: &WorkerId) {
        self.sticky = Some(worker.clone());
        *self.affinity.entry(worker.clone()).or_default() += 1;
        self.revision.changed(worker);
    }
}

/// Hints are equal when they say the same, whatever their revisions.
impl PartialEq for ExamPlacement {
    fn eq(&self, other: &Self) -> bool {
        self.sticky == other.sticky && self.affinity == other.affinity
    }
}

impl Eq for ExamPlacement {}

/// Changes a revision records before it starts afresh (the next ranking
/// then orders the exam's workers again, once).
const MAX_CHANGES: usize = 256;

/// Stamps of revisions, unique in the process.
static STAMPS: AtomicU64 = AtomicU64::new(1);

fn stamp() -> u64 {
    STAMPS.fetch_add(1, Ordering::Relaxed)
}

/// Which version of an exam's placement hints a value is. Hints read from
/// the store get a fresh one (its `Default`); [`ExamPlacement::placed`]
/// records what it changed, so an index that ordered an earlier version
/// moves only those workers. Hints changed any other way once ranked need
/// a fresh revision (`PlacementRevision::default()`), or rankings keep the
/// order of the old content. A revision is not content: it never takes
/// part in comparing hints.
#[derive(Debug, Clone)]
pub struct PlacementRevision {
    /// Stamp of the hints the changes apply to.
    origin: u64,
    /// Workers that got one more session since, each with a stamp.
    changes: Vec<(u64, WorkerId)>,
}

impl Default for PlacementRevision {
    fn default() -> Self {
        Self {
            origin: stamp(),
            changes: Vec::new(),
        }
    }
}

impl PlacementRevision {
    /// Records that `worker`'s sessions changed.
    fn changed(&mut self, worker: &WorkerId) {
        if self.changes.len() >= MAX_CHANGES {
            *self = Self::default();
        } else {
            self.changes.push((stamp(), worker.clone()));
        }
    }

    /// The stamp of the hints the changes apply to: the same for every
    /// later version of them.
    pub(super) fn origin(&self) -> u64 {
        self.origin
    }

    /// The stamp of this very version.
    pub(super) fn latest(&self) -> u64 {
        self.changes.last().map_or(self.origin, |c| c.0)
    }

    /// The workers changed after version `stamp` of the same hints; `None`
    /// if `stamp` is not an earlier version of these.
    pub(super) fn since(&self, stamp: u64) -> Option<impl Iterator<Item = &WorkerId>> {
        let from = if stamp == self.origin {
            0
        } else {
            self.changes.iter().rposition(|c| c.0 == stamp)? + 1
        };
        Some(self.changes[from..].iter().map(|(_, w)| w))
    }
}
