//! The change freeze, pure: whether taking workers out of service now
//! would make an exam that is under way no longer fit.
//!
//! An exam is *under way* from the start of its [window] (its prewarm lead
//! has begun) to the window's end. A change that takes workers out (drain,
//! disable, delete, a credential revoked or reset) is *frozen* when an exam
//! under way would miss more students without those workers than with
//! them, from now on: [`admit`](super::admit) decides both, on the
//! capacities with and without the workers, so the freeze is the same
//! admission as a booking's, asked twice.
//!
//! `safe_from` is the earliest instant from which none of the exams named
//! is hurt any more: an exam's shortfall from an instant on only shrinks
//! as that instant moves later, and the exams overlapping it change only
//! at window ends, so the candidates are now and every window's end, and
//! each exam named is safe at its own window's end at the latest. The
//! check runs again when the change is asked for then.
//!
//! [window]: super::Exam::window

use super::admission::{Capacity, risk};
use super::{Exam, ExamLoad};
use crate::ids::WorkerId;
use crate::time::Timestamp;

/// An exam under way that a change would hurt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenExam {
    /// The exam.
    pub exam: ExamLoad,
    /// Students it could not place at its peak without the workers.
    pub missing: u32,
    /// Students it could not place at its peak with them (usually 0).
    pub missing_before: u32,
    /// The peak instant without the workers.
    pub at: Timestamp,
}

/// Why a change is frozen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// The exams it would hurt, by start then id.
    pub exams: Vec<FrozenExam>,
    /// The earliest instant from which none of them is hurt.
    pub safe_from: Timestamp,
}

/// How `exam` fares from `from` without the workers, if worse than with
/// them.
fn hurt(
    exam: &Exam,
    exams: &[Exam],
    with: &Capacity,
    without: &Capacity,
    from: Timestamp,
) -> Option<FrozenExam> {
    let after = risk(exam, exams, without, from)?;
    let before = risk(exam, exams, with, from).map_or(0, |s| s.missing);
    (after.missing > before).then(|| FrozenExam {
        exam: ExamLoad {
            id: exam.id.clone(),
            name: exam.name.clone(),
            students: exam.students,
        },
        missing: after.missing,
        missing_before: before,
        at: after.at,
    })
}

/// The freeze of a change that leaves `without` of the capacity `with`,
/// at `now`, over the booked `exams`; `None` when the change keeps every
/// exam under way fitting as it does.
pub fn freeze(
    exams: &[Exam],
    with: &Capacity,
    without: &Capacity,
    now: Timestamp,
) -> Option<Freeze> {
    let mut under_way: Vec<&Exam> = exams.iter().filter(|e| e.window().contains(now)).collect();
    under_way.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
    let frozen: Vec<FrozenExam> = under_way
        .iter()
        .filter_map(|e| hurt(e, exams, with, without, now))
        .collect();
    if frozen.is_empty() {
        return None;
    }
    let mut candidates: Vec<Timestamp> = exams
        .iter()
        .flat_map(Exam::demand_changes)
        .filter(|&change| change > now)
        .collect();
    candidates.sort();
    candidates.dedup();
    let safe_from = candidates
        .into_iter()
        .find(|&t| {
            under_way
                .iter()
                .filter(|e| frozen.iter().any(|f| f.exam.id == e.id))
                .all(|e| hurt(e, exams, with, without, t).is_none())
        })
        .unwrap_or(now);
    Some(Freeze {
        exams: frozen,
        safe_from,
    })
}

/// A change of workers the change freeze refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenChange {
    /// The workers the change takes out.
    pub workers: Vec<WorkerId>,
    /// The change: `drain`, `disable`, `remove`, `revoke-credential`,
    /// `reset-credential`.
    pub change: String,
    /// The exams it hurts and when it is safe.
    pub freeze: Freeze,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::tests::{MIN, cap, exam};

    #[test]
    fn a_change_under_a_running_exam_is_frozen_until_it_no_longer_needs_the_worker() {
        // a: window 85..165 (lead 15, teardown 5), 8 students; b: 175..225, 6.
        let a = exam("a", 100, 160, 8);
        let b = exam("b", 190, 220, 6);
        let exams = [a.clone(), b];
        let now = Timestamp(120 * MIN);
        let f = freeze(&exams, &cap(10), &cap(6), now).unwrap();
        assert_eq!(f.exams.len(), 1);
        assert_eq!(f.exams[0].exam.id, a.id);
        assert_eq!(f.exams[0].missing, 2);
        assert_eq!(f.exams[0].missing_before, 0);
        assert_eq!(f.safe_from, a.window().end);
        // Enough left: not frozen.
        assert!(freeze(&exams, &cap(10), &cap(8), now).is_none());
        // Before a's lead begins nothing is under way.
        assert!(freeze(&exams, &cap(10), &cap(0), Timestamp(80 * MIN)).is_none());
    }

    #[test]
    fn an_exam_already_short_is_frozen_only_if_it_gets_shorter() {
        let a = exam("a", 100, 160, 12);
        let exams = [a];
        let now = Timestamp(120 * MIN);
        assert!(freeze(&exams, &cap(10), &cap(10), now).is_none());
        let f = freeze(&exams, &cap(10), &cap(9), now).unwrap();
        assert_eq!((f.exams[0].missing_before, f.exams[0].missing), (2, 3));
    }
}
