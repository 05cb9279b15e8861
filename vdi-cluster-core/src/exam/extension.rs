//! Whether one student's new end fits beside the calendar, pure.
//!
//! An extension adds demand only after the exam's main window (its
//! student's seat outlives it), so it is admitted over that part only:
//! from the later of `now` and the main window's end. A shorter end, or
//! one that an unnamed seat already covers, needs nothing. A refusal says
//! by how much it falls short and the longest extra time that would fit,
//! found by bisection: demand grows with the extra time, so what fits is
//! a prefix.

use super::Exam;
use super::admission::{Capacity, Shortfall, admit};
use crate::ids::UserId;
use crate::time::Timestamp;

/// Why an extension was not granted, and what would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRefusal {
    /// The peak shortfall with the extension.
    pub shortfall: Shortfall,
    /// The student's extra seconds as they stand.
    pub current_extra_sec: u32,
    /// The longest extra time (seconds past the exam's end, at least
    /// `current_extra_sec`) that fits beside the calendar.
    pub fits_extra_sec: u32,
}

/// Whether giving `user` `extra_sec` seconds past `exam`'s end fits
/// beside `others` (the calendar; `exam` itself in it is ignored) on
/// `capacity` from `now`.
pub fn decide_extension(
    exam: &Exam,
    user: &UserId,
    extra_sec: u32,
    others: &[Exam],
    capacity: &Capacity,
    now: Timestamp,
) -> Result<(), Box<ExtensionRefusal>> {
    let current = exam.extra_sec_of(user);
    let extended = exam.with_extra_sec(user, extra_sec);
    if extra_sec <= current || extended.seats() == exam.seats() {
        return Ok(());
    }
    let from = now.max(exam.main_window().end);
    let fits = |extra: u32| admit(&exam.with_extra_sec(user, extra), others, capacity, from);
    let Err(shortfall) = fits(extra_sec) else {
        return Ok(());
    };
    let fits_extra_sec = if fits(current).is_err() {
        current
    } else {
        // fits(lo) holds, fits(hi) does not.
        let (mut lo, mut hi) = (current, extra_sec);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid).is_ok() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    };
    Err(Box::new(ExtensionRefusal {
        shortfall,
        current_extra_sec: current,
        fits_extra_sec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::ExtraSeats;
    use crate::exam::tests::{MIN, cap, exam};

    fn user(id: &str) -> UserId {
        UserId::parse("userId", id).unwrap()
    }

    #[test]
    fn an_extension_fits_until_the_next_exam_needs_the_seat() {
        // a: 100..160 (main window to 165), 10 students, on 10 slots;
        // b opens at 175 (lead 15) with 10 students.
        let a = exam("a", 100, 160, 10);
        let b = exam("b", 190, 220, 10);
        let calendar = [a.clone(), b];
        let now = Timestamp(120 * MIN);
        // +10 min: the seat is held to 175, when b opens: fits.
        assert!(decide_extension(&a, &user("s1"), 600, &calendar, &cap(10), now).is_ok());
        // +30 min overlaps b: refused, with +10 min as what fits.
        let refusal =
            decide_extension(&a, &user("s1"), 1800, &calendar, &cap(10), now).unwrap_err();
        assert_eq!(refusal.shortfall.missing, 1);
        assert_eq!(refusal.shortfall.at, Timestamp(175 * MIN));
        assert_eq!(refusal.fits_extra_sec, 600);
        // With a slot to spare it fits.
        assert!(decide_extension(&a, &user("s1"), 1800, &calendar, &cap(11), now).is_ok());
    }

    #[test]
    fn a_shorter_end_or_a_booked_seat_needs_nothing() {
        let mut a = exam("a", 100, 160, 10);
        a.extra_time = vec![ExtraSeats {
            extra_sec: 1800,
            students: 1,
        }];
        let b = exam("b", 190, 220, 10);
        let calendar = [a.clone(), b];
        let now = Timestamp(120 * MIN);
        // The unnamed seat was admitted with the booking (on 11 slots);
        // on 10 the seat overlaps b, but naming its student adds nothing.
        assert!(decide_extension(&a, &user("s1"), 1800, &calendar, &cap(10), now).is_ok());
        let named = a.with_extra_sec(&user("s1"), 1800);
        assert!(decide_extension(&named, &user("s1"), 60, &calendar, &cap(10), now).is_ok());
    }
}
