//! Sessions a worker's report proves it no longer runs, released in the
//! same atomic step as the heartbeat that proves it (the record's
//! compare-and-set), and by reconcile for any a bounded step left over:
//!
//! * a restarted worker's **lost** sessions ([`fleet::lost_sessions`]),
//!   each with a `sessionLost` event, its webhook entries written with the
//!   release, and, for a booked exam's student, its `workerRestarted`
//!   interruption opened with it (the disruption ledger's entry is written
//!   when the student is placed again);
//! * **adopted** sessions a later report of the same boot omits
//!   ([`fleet::gone_adopted`]): a release raced the report that had them
//!   adopted, so nobody holds their desktop; they carry no alert, and are
//!   counted among the dispatches reported gone.

use super::CAS_ATTEMPTS;
use super::Fleet;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::events::EventKind;
use crate::fleet::{self, MAX_LOST_PER_STEP};
use crate::ids::{SessionKey, WorkerId};
use crate::outbox::LostRelease;
use crate::worker::WorkerRecord;

/// The `sessionLost` event of `d`, proven lost by `record`'s report.
fn lost_event(d: &Dispatch, record: &WorkerRecord) -> EventKind {
    EventKind::SessionLost {
        session: d.key.clone(),
        worker: record.id.clone(),
        old_boot_id: d.worker_boot_id.clone(),
        new_boot_id: record.boot_id().map(str::to_owned),
    }
}

/// The dispatches a report proves its worker no longer runs, to release
/// with the record's write.
#[derive(Debug, Default)]
pub(crate) struct Proven {
    /// Settled on a boot the worker left, not listed ([`fleet::lost_sessions`]).
    pub(crate) lost: Vec<Dispatch>,
    /// Adopted, and omitted by a later report of the same boot
    /// ([`fleet::gone_adopted`]).
    pub(crate) gone: Vec<Dispatch>,
}

impl Proven {
    /// What `record` (as its latest report writes it) proves among
    /// `dispatches` on its worker, at most [`MAX_LOST_PER_STEP`] in all,
    /// the lost ones first.
    pub(crate) fn by<'a>(
        dispatches: impl IntoIterator<Item = &'a Dispatch> + Clone,
        record: &WorkerRecord,
    ) -> Self {
        let lost: Vec<Dispatch> =
            fleet::lost_sessions(dispatches.clone(), record, MAX_LOST_PER_STEP)
                .into_iter()
                .cloned()
                .collect();
        let room = MAX_LOST_PER_STEP - lost.len();
        let gone = fleet::gone_adopted(dispatches, record, room)
            .into_iter()
            .cloned()
            .collect();
        Self { lost, gone }
    }

    /// Whether there is nothing to release.
    pub(crate) fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.gone.is_empty()
    }

    /// How many there are to release.
    pub(crate) fn len(&self) -> usize {
        self.lost.len() + self.gone.len()
    }
}

/// The answer of [`Fleet::write_releasing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// The record changed since it was read: nothing written.
    Conflict,
    /// Written at `version`; `lost` and `gone` dispatches were removed
    /// (the others had gone or changed already).
    Written { version: u64, lost: u32, gone: u32 },
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Fleet {
    /// Writes `record` on version `expected` with the entries of `events`,
    /// releasing what its report `proven` proves no longer runs in the
    /// same atomic step, and announces the sessions released. The caller
    /// counts them.
    pub(crate) async fn write_releasing(
        &self,
        record: &WorkerRecord,
        expected: u64,
        events: &[&EventKind],
        proven: &Proven,
    ) -> Result<Released> {
        // A booked exam's lost student is followed into the ledger: the
        // release opens their `workerRestarted` interruption.
        let calendar = match proven.lost.is_empty() {
            true => None,
            false => Some(self.placement.cached_calendar().await?),
        };
        let booked = |d: &Dispatch| {
            calendar
                .as_ref()
                .is_some_and(|c| c.get(&d.key.exam_id).is_some())
        };
        let items: Vec<(&Dispatch, Option<EventKind>, bool)> = proven
            .lost
            .iter()
            .map(|d| (d, Some(lost_event(d, record)), booked(d)))
            .chain(proven.gone.iter().map(|d| (d, None, false)))
            .collect();
        let written = self
            .shared
            .put_worker_releasing_lost(record, expected, events, &items)
            .await?;
        Ok(match written {
            LostRelease::Written { version, released } => {
                self.announce_released(&items, &released);
                let lost = proven
                    .lost
                    .iter()
                    .filter(|d| released.contains(&d.key))
                    .count();
                Released::Written {
                    version,
                    lost: count(lost),
                    gone: count(released.len().saturating_sub(lost)),
                }
            }
            LostRelease::Conflict { .. } => Released::Conflict,
        })
    }

    fn announce_released(
        &self,
        items: &[(&Dispatch, Option<EventKind>, bool)],
        released: &[SessionKey],
    ) {
        if released.is_empty() {
            return;
        }
        for (d, kind, _) in items.iter().filter(|(d, ..)| released.contains(&d.key)) {
            match kind {
                Some(kind) => {
                    tracing::info!(session = %d.key, worker = %d.worker, "a restarted worker no longer runs the session: its slot is free");
                    self.shared.emit(kind.clone());
                }
                None => {
                    tracing::info!(session = %d.key, worker = %d.worker, "the worker no longer runs a session adopted from its earlier report: its slot is free");
                }
            }
        }
        self.placement.invalidate_snapshot();
    }

    /// Reconcile's part: releases the dispatches among `candidates` (read
    /// on `worker` by a pass) that the worker's latest stored report proves
    /// lost, in bounded steps, each a compare-and-set on the record as
    /// read (rewritten unchanged), so a late step of a deposed leader
    /// writes nothing a newer report contradicts. Answers how many were
    /// released.
    pub(crate) async fn release_lost(
        &self,
        worker: &WorkerId,
        candidates: &[Dispatch],
    ) -> Result<u32> {
        let mut released = 0u32;
        for chunk in candidates.chunks(MAX_LOST_PER_STEP) {
            for _ in 0..CAS_ATTEMPTS {
                let Some(stored) = self.shared.store.worker(worker).await? else {
                    return Ok(released);
                };
                let proven = Proven {
                    lost: fleet::lost_sessions(chunk, &stored.record, chunk.len())
                        .into_iter()
                        .cloned()
                        .collect(),
                    gone: Vec::new(),
                };
                if proven.is_empty() {
                    break;
                }
                match self
                    .write_releasing(&stored.record, stored.version, &[], &proven)
                    .await?
                {
                    Released::Written { lost, .. } => {
                        released += lost;
                        break;
                    }
                    Released::Conflict => continue,
                }
            }
        }
        Ok(released)
    }
}
