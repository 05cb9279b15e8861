//! Maintenance windows, pure: when workers can be taken out for a while
//! without making any booked exam fit worse.
//!
//! Taking workers out over an interval is safe when, at every instant of
//! it, the booked exams whose [window] contains that instant miss no more
//! students without the workers than with them (the same
//! [`Capacity::shortfall`] admission uses). The set of exams present
//! changes only at window starts and ends, so the range asked about is cut
//! at those instants into pieces on which the answer is constant; safe
//! pieces that touch are merged, and every merged run at least as long as
//! the maintenance is a window: the maintenance may start anywhere from
//! its start to its end less the duration.
//!
//! [window]: super::Exam::window

use std::collections::BTreeSet;
use std::time::Duration;

use super::Exam;
use super::admission::Capacity;
use crate::time::Timestamp;

/// An interval `[start, end)` in which the workers may be out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// The first instant.
    pub start: Timestamp,
    /// The first instant after it.
    pub end: Timestamp,
}

impl MaintenanceWindow {
    /// The latest start of a maintenance of `duration` inside it.
    pub fn latest_start(&self, duration: Duration) -> Timestamp {
        self.end.minus(duration)
    }
}

/// Whether taking the capacity from `with` down to `without` is harmless
/// to the exams present at `t`.
fn safe_at(exams: &[Exam], with: &Capacity, without: &Capacity, t: Timestamp) -> bool {
    let present: Vec<&Exam> = exams.iter().filter(|e| e.window().contains(t)).collect();
    present.is_empty() || without.shortfall(&present, t) <= with.shortfall(&present, t)
}

/// Every window inside `[from, to)` at least `duration` long in which the
/// capacity may go from `with` down to `without` without making any of
/// `exams` miss more students, in order. Empty when `duration` is zero or
/// longer than the range.
pub fn maintenance_windows(
    exams: &[Exam],
    with: &Capacity,
    without: &Capacity,
    from: Timestamp,
    to: Timestamp,
    duration: Duration,
) -> Vec<MaintenanceWindow> {
    if duration.is_zero() || from >= to || to.since(from) < duration {
        return Vec::new();
    }
    let mut cuts = BTreeSet::from([from, to]);
    for e in exams {
        cuts.extend(
            e.demand_changes()
                .into_iter()
                .filter(|&t| from < t && t < to),
        );
    }
    let cuts: Vec<Timestamp> = cuts.into_iter().collect();
    let mut runs: Vec<MaintenanceWindow> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        if !safe_at(exams, with, without, start) {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(MaintenanceWindow { start, end }),
        }
    }
    runs.retain(|w| w.end.since(w.start) >= duration);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::tests::{MIN, cap, exam};

    fn m(n: u64) -> Timestamp {
        Timestamp(n * MIN)
    }

    #[test]
    fn windows_are_the_gaps_the_exams_leave_long_enough() {
        // Windows 85..165 and 175..225 need more than 6 slots.
        let exams = [exam("a", 100, 160, 8), exam("b", 190, 220, 7)];
        let two_hours = Duration::from_secs(7200);
        let got = maintenance_windows(&exams, &cap(10), &cap(6), m(0), m(400), two_hours);
        assert_eq!(
            got,
            [MaintenanceWindow {
                start: m(225),
                end: m(400)
            }]
        );
        let ten = Duration::from_secs(600);
        let got = maintenance_windows(&exams, &cap(10), &cap(6), m(0), m(400), ten);
        assert_eq!(got.len(), 3);
        assert_eq!((got[1].start, got[1].end), (m(165), m(175)));
        assert_eq!(got[0].latest_start(ten), m(75));
        // Enough without the worker: the whole range.
        let got = maintenance_windows(&exams, &cap(10), &cap(8), m(0), m(400), two_hours);
        assert_eq!((got[0].start, got[0].end), (m(0), m(400)));
        assert!(maintenance_windows(&exams, &cap(10), &cap(8), m(0), m(60), two_hours).is_empty());
    }
}
