//! The exams wing: the calendar and what it asks of the fleet.
//!
//! `calendar` books, changes and cancels exams under admission control
//! (re-reading on a version conflict) and evaluates which running exams
//! are at risk; `prewarm` starts machines ahead of an exam, `timed_prewarm`
//! when a booked exam's lead begins, `prewarm_target` keeps the target
//! until the start and releases the machines after the end;
//! `session_end` reads and changes a student's own end (extensions,
//! admitted like bookings), `expiry` releases each student's desktop at
//! that end on the leader's tick;
//! `rehearsal` runs an exam's rehearsal (one test desktop per eligible
//! worker, through its start permit) and answers its go / no-go report;
//! `waiting_room` tends every exam's waiting room on the leader's tick and
//! shows it, and `waiting_room_alerts` reports a forming one; `starts`
//! shows an exam's starts (starting, wait percentiles, its workers' start
//! rates).
//!
//! **Owns** the exams whose forming waiting room this replica reported.
//!
//! **Writes** through [`ExamStore`](crate::calendar::ExamStore) (the
//! calendar by compare-and-set on its version, the risk flag with its
//! outbox entries), the waiting room's abandonment
//! ([`WaitingRoom`](crate::waiting_room::WaitingRoom)) and the
//! [`AuditLog`](crate::store::AuditLog), and the rehearsals
//! ([`Rehearsals`](crate::rehearsal::Rehearsals), compare-and-set on the
//! record's version, `exam.rehearsal_failed` in the same step); it places students only through
//! the placement wing.
//!
//! **Keeps** invariant D (admission: core decides on a calendar read at a
//! version, the store writes only if that version is still current) and
//! runs each timed prewarm once (marked on the calendar by
//! compare-and-set), and each end's warning likewise.

mod calendar;
mod expiry;
mod ledger;
mod prewarm;
mod prewarm_target;
mod rehearsal;
mod session_end;
mod starts;
mod timed_prewarm;
mod waiting_room;
mod waiting_room_alerts;

use std::sync::Arc;

pub use calendar::{Booking, ExamFigures, ExamStatus, LostFigures};
pub use expiry::{EXPIRY_LOOKBACK, ExpiryTick};
pub use ledger::SessionLedger;
pub use prewarm::{MAX_PREWARM_REQUEST, PrewarmFailure, PrewarmReport};
pub use rehearsal::RehearsalReport;
pub use session_end::{EndChange, EndChanged, SessionEnd};
pub use starts::ExamStarts;
pub use waiting_room::{PROMOTIONS_PER_TICK, QueueFigures, QueueTick, QueueView, WaitingStudent};

use super::placement::Placement;
use super::shared::Shared;
use waiting_room_alerts::QueueEpisodes;

/// The exams wing (see the module docs); reached through
/// `ClusterService::exams`.
#[derive(Debug)]
pub struct Exams {
    shared: Arc<Shared>,
    /// Places queued students, and holds the calendar this replica caches.
    placement: Arc<Placement>,
    /// The exams whose forming waiting room this replica reported.
    queue_episodes: QueueEpisodes,
}

impl Exams {
    pub(crate) fn new(shared: Arc<Shared>, placement: Arc<Placement>) -> Self {
        Self {
            shared,
            placement,
            queue_episodes: QueueEpisodes::default(),
        }
    }
}
