//! The disruption ledger: every interruption of a student's session, with
//! the time it cost them.
//!
//! Each [`Disruption`] names its [`DisruptionKind`], when it began and
//! ended, the workers involved and the id of the event that caused it. An
//! entry is written in the same atomic step as its cause (a re-dispatch's
//! entry with the confirmation of the new dispatch,
//! [`Outbox::confirm_with_outbox`](crate::outbox::Outbox::confirm_with_outbox)),
//! so a crash never leaves a move without its entry or an entry without
//! its move.
//!
//! What is decided here, as pure functions: how much time a session lost
//! ([`lost_ms`]: the union of its entries' intervals, so overlapping
//! entries are never counted twice, clipped to the session's lifetime),
//! an exam's figures ([`ExamLost`]: total, median, max), and when a
//! student's lost time crosses the alert threshold ([`crossings`]).
//!
//! An interruption that begins with one write and ends with a later
//! placement (a refusal, a restarted worker's release of the session, a
//! wait in the waiting room) is an [`OpenInterruption`] until then: the
//! placement writes its entry with its confirmation.

mod cause;
mod open;
mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{SessionKey, WorkerId};
use crate::time::{Timestamp, duration_millis};

pub use cause::{Interruption, PlacementStory, interruption, placement_entries};
pub use open::{OPEN_MAX_AGE, OpenInterruption};
pub use store::DisruptionLedger;

/// Why a student lost time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DisruptionKind {
    /// The session's worker went silent or offline; the session was
    /// placed anew elsewhere.
    WorkerLost,
    /// The session's worker restarted (a new boot id) without it.
    WorkerRestarted,
    /// A worker call to start the session failed and another was tried.
    StartRetried,
    /// The session was moved off a draining, disabled or evacuated worker.
    Moved,
    /// The student waited in the exam's waiting room.
    WaitingRoom,
    /// The desktop took longer than the slow-start threshold to start.
    SlowStart,
    /// The student was refused for want of capacity.
    Refused,
}

impl DisruptionKind {
    /// Every kind, in the API's order.
    pub const ALL: [Self; 7] = [
        Self::WorkerLost,
        Self::WorkerRestarted,
        Self::StartRetried,
        Self::Moved,
        Self::WaitingRoom,
        Self::SlowStart,
        Self::Refused,
    ];

    /// The name the API, the CSV export and storage use.
    pub fn name(self) -> &'static str {
        match self {
            Self::WorkerLost => "workerLost",
            Self::WorkerRestarted => "workerRestarted",
            Self::StartRetried => "startRetried",
            Self::Moved => "moved",
            Self::WaitingRoom => "waitingRoom",
            Self::SlowStart => "slowStart",
            Self::Refused => "refused",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == text)
    }
}

/// One interruption of one student's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// The entry's id, derived from its cause: writing the same entry
    /// twice stores it once.
    pub id: String,
    /// The session.
    pub key: SessionKey,
    /// Why.
    pub kind: DisruptionKind,
    /// When the student lost their desktop (or began to wait).
    pub started_at: Timestamp,
    /// When they had one again; never before `started_at`.
    pub ended_at: Timestamp,
    /// The workers involved: the one lost or left first, then the one
    /// that took the session.
    pub workers: Vec<WorkerId>,
    /// The id of the event that caused it (the dispatch that replaced the
    /// lost one, for a move).
    pub cause: String,
}

impl Disruption {
    /// An entry from `started_at` to `ended_at` (an end before the start
    /// is taken as the start: nothing lost). Its id is `{kind}:{cause}`.
    pub fn new(
        key: SessionKey,
        kind: DisruptionKind,
        started_at: Timestamp,
        ended_at: Timestamp,
        workers: Vec<WorkerId>,
        cause: impl Into<String>,
    ) -> Self {
        let cause = cause.into();
        Self {
            id: format!("{}:{cause}", kind.name()),
            key,
            kind,
            started_at,
            ended_at: ended_at.max(started_at),
            workers,
            cause,
        }
    }

    /// Milliseconds this entry spans on its own.
    pub fn span_ms(&self) -> u64 {
        self.ended_at
            .as_millis()
            .saturating_sub(self.started_at.as_millis())
    }
}

/// Seconds (with milliseconds) from a count of milliseconds, as the API
/// shows lost time.
pub fn seconds(ms: u64) -> f64 {
    // Exact for any lost time below 2^53 ms.
    #[allow(clippy::cast_precision_loss)]
    let ms = ms as f64;
    ms / 1000.0
}

/// The time a session lost: the union of `entries`' intervals clipped to
/// `lifetime` (`[from, to]`, the session's own span), in milliseconds.
/// Overlapping or repeated entries count once; the result is never more
/// than the lifetime.
pub fn lost_ms(entries: &[Disruption], lifetime: (Timestamp, Timestamp)) -> u64 {
    let (from, to) = (lifetime.0.as_millis(), lifetime.1.as_millis());
    let mut spans: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| {
            (
                e.started_at.as_millis().max(from),
                e.ended_at.as_millis().min(to),
            )
        })
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let mut total = 0u64;
    let mut covered_to = 0u64;
    for (a, b) in spans {
        let a = a.max(covered_to);
        if b > a {
            total += b - a;
            covered_to = b;
        }
    }
    total
}

/// The lifetime of a session as its ledger and dispatch know it: from its
/// earliest entry's start (or `since`, the session's dispatch, if
/// earlier) to `now` (or the latest entry's end, if later); never ends
/// before it starts.
pub fn lifetime(
    entries: &[Disruption],
    since: Option<Timestamp>,
    now: Timestamp,
) -> (Timestamp, Timestamp) {
    let start = entries
        .iter()
        .map(|e| e.started_at)
        .chain(since)
        .min()
        .unwrap_or(now);
    let end = entries
        .iter()
        .map(|e| e.ended_at)
        .chain([now, start])
        .max()
        .unwrap_or(now);
    (start, end)
}

/// The total of a session's `entries` over their own span
/// ([`lost_ms`] over [`lifetime`] with no dispatch).
pub fn session_lost_ms(entries: &[Disruption]) -> u64 {
    let Some(end) = entries.iter().map(|e| e.ended_at).max() else {
        return 0;
    };
    lost_ms(entries, lifetime(entries, None, end))
}

/// The multiples of `threshold` that a student's lost time reaches when
/// it grows from `before_ms` to `after_ms` (1 for the threshold itself, 2
/// for twice it, …): each is one crossing, alerted once. None for a zero
/// threshold.
pub fn crossings(before_ms: u64, after_ms: u64, threshold: Duration) -> Vec<u64> {
    let t = duration_millis(threshold);
    if t == 0 || after_ms <= before_ms {
        return Vec::new();
    }
    (before_ms / t + 1..=after_ms / t).collect()
}

/// One student of an exam with lost time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentLost {
    /// The session.
    pub key: SessionKey,
    /// Its lost time, milliseconds.
    pub lost_ms: u64,
    /// Its entries, oldest first.
    pub entries: Vec<Disruption>,
}

impl StudentLost {
    /// The kinds of its entries, each once, in [`DisruptionKind::ALL`]'s order.
    pub fn kinds(&self) -> Vec<DisruptionKind> {
        DisruptionKind::ALL
            .into_iter()
            .filter(|k| self.entries.iter().any(|e| e.kind == *k))
            .collect()
    }
}

/// The order of an exam's disruption list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LedgerOrder {
    /// Most lost time first (ties by student).
    #[default]
    LostDesc,
    /// Least lost time first (ties by student).
    LostAsc,
    /// By student id.
    User,
}

impl LedgerOrder {
    /// Parses the API's `sort` value: `-lostSec`, `lostSec` or `userId`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "-lostSec" => Self::LostDesc,
            "lostSec" => Self::LostAsc,
            "userId" => Self::User,
            _ => return None,
        })
    }
}

/// An exam's ledger: the students with lost time and the figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExamLost {
    /// Every student with lost time above zero, in the order asked for.
    pub students: Vec<StudentLost>,
    /// Their lost time added up, milliseconds.
    pub total_ms: u64,
    /// The median over them (the lower middle of an even count), milliseconds.
    pub median_ms: u64,
    /// The most any one lost, milliseconds.
    pub max_ms: u64,
}

impl ExamLost {
    /// Groups an exam's entries by student, counts each student's lost
    /// time ([`session_lost_ms`]), keeps those above zero, in `order`.
    pub fn from_entries(entries: Vec<Disruption>, order: LedgerOrder) -> Self {
        let mut by_student: std::collections::BTreeMap<SessionKey, Vec<Disruption>> =
            std::collections::BTreeMap::new();
        for e in entries {
            by_student.entry(e.key.clone()).or_default().push(e);
        }
        let mut students: Vec<StudentLost> = by_student
            .into_iter()
            .map(|(key, mut entries)| {
                entries.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
                StudentLost {
                    lost_ms: session_lost_ms(&entries),
                    key,
                    entries,
                }
            })
            .filter(|s| s.lost_ms > 0)
            .collect();
        let mut sorted: Vec<u64> = students.iter().map(|s| s.lost_ms).collect();
        sorted.sort_unstable();
        let median_ms = match sorted.len() {
            0 => 0,
            n => sorted[(n - 1) / 2],
        };
        match order {
            LedgerOrder::LostDesc => {
                students.sort_by(|a, b| b.lost_ms.cmp(&a.lost_ms).then(a.key.cmp(&b.key)))
            }
            LedgerOrder::LostAsc => {
                students.sort_by(|a, b| a.lost_ms.cmp(&b.lost_ms).then(a.key.cmp(&b.key)))
            }
            LedgerOrder::User => {}
        }
        Self {
            total_ms: sorted.iter().sum(),
            max_ms: sorted.last().copied().unwrap_or(0),
            median_ms,
            students,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ExamId, UserId};

    fn key(user: &str) -> SessionKey {
        SessionKey::new(
            ExamId::parse("examId", "e1").unwrap(),
            UserId::parse("userId", user).unwrap(),
        )
    }

    fn entry(user: &str, from: u64, to: u64, cause: &str) -> Disruption {
        Disruption::new(
            key(user),
            DisruptionKind::WorkerLost,
            Timestamp(from),
            Timestamp(to),
            Vec::new(),
            cause,
        )
    }

    #[test]
    fn overlapping_entries_count_once() {
        let e = [entry("u", 0, 10_000, "a"), entry("u", 5_000, 12_000, "b")];
        assert_eq!(session_lost_ms(&e), 12_000);
        assert_eq!(lost_ms(&e, (Timestamp(2_000), Timestamp(11_000))), 9_000);
    }

    #[test]
    fn crossings_name_each_multiple_once() {
        let t = Duration::from_secs(60);
        assert_eq!(crossings(0, 59_999, t), Vec::<u64>::new());
        assert_eq!(crossings(59_999, 60_000, t), vec![1]);
        assert_eq!(crossings(30_000, 130_000, t), vec![1, 2]);
        assert_eq!(crossings(60_000, 61_000, t), Vec::<u64>::new());
        assert_eq!(crossings(0, 1_000_000, Duration::ZERO), Vec::<u64>::new());
    }

    #[test]
    fn an_exam_lists_students_with_lost_time_and_its_figures() {
        let exam = ExamLost::from_entries(
            vec![
                entry("a", 0, 10_000, "1"),
                entry("b", 0, 30_000, "2"),
                entry("c", 5, 5, "3"),
                entry("d", 0, 20_000, "4"),
            ],
            LedgerOrder::LostDesc,
        );
        let users: Vec<_> = exam
            .students
            .iter()
            .map(|s| s.key.user_id.as_str().to_owned())
            .collect();
        assert_eq!(users, ["b", "d", "a"]);
        assert_eq!(
            (exam.total_ms, exam.median_ms, exam.max_ms),
            (60_000, 20_000, 30_000)
        );
    }

    #[test]
    fn kinds_parse_their_names() {
        for k in DisruptionKind::ALL {
            assert_eq!(DisruptionKind::parse(k.name()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }
}
