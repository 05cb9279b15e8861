//! The waiting room: a student of a booked exam with its waiting room on
//! who cannot be placed waits in the exam's queue, first come, first
//! served.
//!
//! Here are its pure parts — queue entries, positions, claims, the
//! totals, the wait estimate and who abandoned; no I/O, time arrives as
//! `now` — and, in `store`, the [`WaitingRoom`] storage trait and its
//! contract. Whom to place and when is decided by the service: the
//! placement wing claims and places the head (`service::placement`), the
//! exams wing tends every exam's room on the leader's tick
//! (`service::exams`).

mod store;

pub use store::{Completion, Enqueued, Standing, WaitingRoom};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{ExamId, UserId};
use crate::time::Timestamp;

/// Longest wait an estimate ever answers: 24 hours.
pub const MAX_ESTIMATE: Duration = Duration::from_secs(86_400);

/// One waiting student.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    /// The student.
    pub user: UserId,
    /// When they joined the queue.
    pub enqueued_at: Timestamp,
    /// When they last asked (joined, polled or repeated the request).
    pub last_seen: Timestamp,
}

/// A student's place in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1 for the head.
    pub position: u32,
    /// Their entry.
    pub entry: QueueEntry,
    /// The queue's totals at the same read (for the wait estimate).
    pub totals: QueueTotals,
}

/// A promoter's hold on the head of one exam's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueClaim {
    /// The exam.
    pub exam: ExamId,
    /// The student at the head when claimed.
    pub user: UserId,
    /// Unique across the storage; fences completion.
    pub token: u64,
    /// The claim lapses then, and another promoter may claim the head.
    pub until: Timestamp,
}

/// What a queue has done since it was first used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueTotals {
    /// Students placed from the queue.
    pub placed: u64,
    /// Students removed for not polling.
    pub abandoned: u64,
    /// The first placement from the queue.
    pub first_placed_at: Option<Timestamp>,
    /// The latest placement from the queue.
    pub last_placed_at: Option<Timestamp>,
}

/// One exam's queue, read as one view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExamQueue {
    /// The waiting students, head first.
    pub entries: Vec<QueueEntry>,
    /// The claim on the head, if one is recorded (it may have lapsed).
    pub claim: Option<QueueClaim>,
    /// Its totals.
    pub totals: QueueTotals,
}

impl ExamQueue {
    /// `user`'s position, if queued.
    pub fn position_of(&self, user: &UserId) -> Option<u32> {
        self.entries
            .iter()
            .position(|e| &e.user == user)
            .map(position_from_index)
    }

    /// The students to abandon at `now`: last seen more than `abandon_after`
    /// ago, except one holding a claim that has not lapsed.
    pub fn abandoned(&self, now: Timestamp, abandon_after: Duration) -> Vec<UserId> {
        let cutoff = now.minus(abandon_after);
        let claimed = self
            .claim
            .as_ref()
            .filter(|c| c.until > now)
            .map(|c| &c.user);
        self.entries
            .iter()
            .filter(|e| e.last_seen < cutoff && Some(&e.user) != claimed)
            .map(|e| e.user.clone())
            .collect()
    }
}

/// The 1-based position of the entry at `index`, saturating.
pub fn position_from_index(index: usize) -> u32 {
    u32::try_from(index.saturating_add(1)).unwrap_or(u32::MAX)
}

/// How long the student at `position` may expect to wait at `now`.
///
/// The queue moves at the rate it was seen to move: the mean interval
/// between its placements so far, `(last − first) ÷ (placed − 1)`, once
/// two placements are known. Before that, `per_position` (a configured
/// default) stands for it. If the last placement is longer ago than that
/// interval, the time since it (up to four intervals) is the better guess
/// for the next one: the queue has slowed down. The estimate is
/// `position × interval`, at most [`MAX_ESTIMATE`].
pub fn estimate_wait(
    position: u32,
    totals: &QueueTotals,
    now: Timestamp,
    per_position: Duration,
) -> Duration {
    let observed = match (totals.first_placed_at, totals.last_placed_at) {
        (Some(first), Some(last)) if totals.placed >= 2 => {
            let gaps = u32::try_from(totals.placed - 1).unwrap_or(u32::MAX);
            Some(last.since(first) / gaps)
        }
        _ => None,
    };
    let mut interval = observed.unwrap_or(per_position);
    if let Some(last) = totals.last_placed_at {
        interval = interval.max(now.since(last).min(interval.saturating_mul(4)));
    }
    interval.saturating_mul(position).min(MAX_ESTIMATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u32) -> UserId {
        UserId::parse("userId", format!("u{n}")).unwrap()
    }

    fn entry(n: u32, seen: u64) -> QueueEntry {
        QueueEntry {
            user: user(n),
            enqueued_at: Timestamp::from_millis(seen),
            last_seen: Timestamp::from_millis(seen),
        }
    }

    #[test]
    fn positions_are_one_based_ranks() {
        let q = ExamQueue {
            entries: vec![entry(1, 0), entry(2, 0), entry(3, 0)],
            ..ExamQueue::default()
        };
        assert_eq!(q.position_of(&user(1)), Some(1));
        assert_eq!(q.position_of(&user(3)), Some(3));
        assert_eq!(q.position_of(&user(4)), None);
    }

    #[test]
    fn a_claimed_head_is_not_abandoned_until_the_claim_lapses() {
        let minute = Duration::from_secs(60);
        let q = ExamQueue {
            entries: vec![entry(1, 0), entry(2, 0), entry(3, 100_000)],
            claim: Some(QueueClaim {
                exam: ExamId::parse("examId", "e").unwrap(),
                user: user(1),
                token: 1,
                until: Timestamp::from_millis(130_000),
            }),
            totals: QueueTotals::default(),
        };
        let now = Timestamp::from_millis(120_000);
        assert_eq!(q.abandoned(now, minute), vec![user(2)]);
        let later = Timestamp::from_millis(140_000);
        assert_eq!(q.abandoned(later, minute), vec![user(1), user(2)]);
    }

    #[test]
    fn estimate_uses_the_default_until_the_queue_has_moved() {
        let d = Duration::from_secs(30);
        let now = Timestamp::from_millis(1_000_000);
        assert_eq!(estimate_wait(3, &QueueTotals::default(), now, d), d * 3);
        let totals = QueueTotals {
            placed: 5,
            abandoned: 0,
            first_placed_at: Some(Timestamp::from_millis(960_000)),
            last_placed_at: Some(now),
        };
        // Four gaps over 40 s: one placement every 10 s.
        assert_eq!(estimate_wait(3, &totals, now, d), Duration::from_secs(30));
    }
}
