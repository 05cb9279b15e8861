//! Individual end times: students who keep their desktop past the exam's
//! end (an accommodation booked up front, or time granted during the
//! exam), and what they ask of the capacity.
//!
//! An exam holds all its students from its window's start to `endsAt +
//! teardownSec`; after that it holds only its extended *seats*, each until
//! its own `endsAt + extraSec + teardownSec`. A seat is a named student
//! ([`StudentExtra`], `extensions`) or one of a count booked without names
//! ([`ExtraSeats`], `extraTime`). A named student takes an unnamed seat
//! first (the longest named first, each the shortest unnamed seat at
//! least as long as theirs, so those left over are the shortest), so an
//! office that booked "12 students at +30 min" and names them later
//! reserves 12 seats, not 24. Demand never exceeds the exam's students.
//!
//! So an exam's demand is zero before its window, all its students until
//! its end plus teardown, then falls step by step as seats end: it never
//! rises after its window opens, which is what lets admission check only
//! the instants where windows open ([`super::admission`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Exam, Window};
use crate::ids::UserId;
use crate::time::Timestamp;
use crate::validation::ValidationError;

/// Longest extra time of one student: 24 hours.
pub const MAX_EXTRA_SEC: u32 = 86_400;

/// A named student's extra time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudentExtra {
    /// The student.
    pub user_id: UserId,
    /// Seconds past the exam's `endsAt` (1 to [`MAX_EXTRA_SEC`]).
    pub extra_sec: u32,
}

/// Seats booked for students not named yet: a count per extra duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtraSeats {
    /// Seconds past the exam's `endsAt` (1 to [`MAX_EXTRA_SEC`]).
    pub extra_sec: u32,
    /// How many students.
    pub students: u32,
}

/// The extended seats of an exam after named students took unnamed seats:
/// `(extraSec, count)`, by `extraSec`, equal durations merged.
pub fn seats(named: &[StudentExtra], unnamed: &[ExtraSeats]) -> Vec<(u32, u32)> {
    let mut groups: Vec<(u32, u32)> = unnamed
        .iter()
        .filter(|s| s.students > 0)
        .map(|s| (s.extra_sec, s.students))
        .collect();
    groups.sort_unstable();
    let mut free: Vec<(u32, u32)> = groups.clone();
    // Longest first, each into the shortest free seat that covers it: the
    // students left without one are the shortest possible.
    let mut extras: Vec<u32> = named.iter().map(|s| s.extra_sec).collect();
    extras.sort_unstable_by(|a, b| b.cmp(a));
    for extra in extras {
        match free.iter_mut().find(|(e, n)| *e >= extra && *n > 0) {
            Some((_, n)) => *n -= 1,
            None => groups.push((extra, 1)),
        }
    }
    groups.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(groups.len());
    for (e, n) in groups {
        match merged.last_mut() {
            Some((last, count)) if *last == e => *count = count.saturating_add(n),
            _ => merged.push((e, n)),
        }
    }
    merged
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Exam {
    /// The student's extra seconds past `endsAt` (0 without an extension).
    pub fn extra_sec_of(&self, user: &UserId) -> u32 {
        self.extensions
            .iter()
            .find(|s| &s.user_id == user)
            .map_or(0, |s| s.extra_sec)
    }

    /// When the student's own exam ends: `endsAt` plus their extra time.
    pub fn session_ends_at(&self, user: &UserId) -> Timestamp {
        self.ends_at.plus(secs(self.extra_sec_of(user)))
    }

    /// The same exam with `user`'s extra time set to `extra_sec` (0 takes
    /// their extension away); the named students stay in user id order.
    pub fn with_extra_sec(&self, user: &UserId, extra_sec: u32) -> Exam {
        let mut exam = self.clone();
        exam.extensions.retain(|s| &s.user_id != user);
        if extra_sec > 0 {
            exam.extensions.push(StudentExtra {
                user_id: user.clone(),
                extra_sec,
            });
            exam.extensions.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        }
        exam
    }

    /// Its extended seats, `(extraSec, count)` by `extraSec` ([`seats`]).
    pub fn seats(&self) -> Vec<(u32, u32)> {
        seats(&self.extensions, &self.extra_time)
    }

    /// The longest extra time of any seat (0 without one).
    pub fn longest_extra_sec(&self) -> u32 {
        self.extensions
            .iter()
            .map(|s| s.extra_sec)
            .chain(
                self.extra_time
                    .iter()
                    .filter(|s| s.students > 0)
                    .map(|s| s.extra_sec),
            )
            .max()
            .unwrap_or(0)
    }

    /// `[startsAt − leadSec, endsAt + teardownSec)`: the instants all its
    /// students are held.
    pub fn main_window(&self) -> Window {
        let end = self.ends_at.plus(secs(self.teardown_sec));
        Window {
            start: self.window().start,
            end,
        }
    }

    /// Students it holds at `t`: none outside its window, every student
    /// in its [main window](Self::main_window), then the seats not ended
    /// yet (at most its students).
    pub fn demand_at(&self, t: Timestamp) -> u32 {
        let main = self.main_window();
        if t < main.start {
            return 0;
        }
        if t < main.end {
            return self.students;
        }
        let after = t.since(main.end);
        self.seats()
            .iter()
            .filter(|(extra, _)| secs(*extra) > after)
            .map(|(_, n)| *n)
            .fold(0, u32::saturating_add)
            .min(self.students)
    }

    /// Every instant its demand changes: its window's start, its main
    /// window's end and each seat's end, in order.
    pub fn demand_changes(&self) -> Vec<Timestamp> {
        let main = self.main_window();
        let mut out = vec![main.start, main.end];
        out.extend(self.seats().iter().map(|(e, _)| main.end.plus(secs(*e))));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Checks `extensions` and `extraTime` (errors name the entry).
    pub(super) fn validate_extra_time(&self) -> Result<(), ValidationError> {
        let extra = |field: String, s: u32| {
            if (1..=MAX_EXTRA_SEC).contains(&s) {
                Ok(())
            } else {
                Err(ValidationError::new(
                    field,
                    format!("must be 1 to {MAX_EXTRA_SEC}"),
                ))
            }
        };
        for (i, s) in self.extensions.iter().enumerate() {
            extra(format!("extensions[{i}].extraSec"), s.extra_sec)?;
            if self.extensions[..i].iter().any(|o| o.user_id == s.user_id) {
                return Err(ValidationError::new(
                    format!("extensions[{i}].userId"),
                    "names a student twice",
                ));
            }
        }
        if self.extensions.len() > self.students as usize {
            return Err(ValidationError::new(
                "extensions",
                "names more students than the exam has",
            ));
        }
        for (i, s) in self.extra_time.iter().enumerate() {
            extra(format!("extraTime[{i}].extraSec"), s.extra_sec)?;
            if s.students == 0 {
                return Err(ValidationError::new(
                    format!("extraTime[{i}].students"),
                    "must be at least 1",
                ));
            }
        }
        let unnamed = self
            .extra_time
            .iter()
            .map(|s| u64::from(s.students))
            .sum::<u64>();
        if unnamed > u64::from(self.students) {
            return Err(ValidationError::new(
                "extraTime",
                "counts more students than the exam has",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::tests::{MIN, exam};

    fn user(id: &str) -> UserId {
        UserId::parse("userId", id).unwrap()
    }

    #[test]
    fn extended_students_hold_a_seat_until_their_own_end() {
        // 300 students, 12 of them at +30 min: 300 to the end, 12 after.
        let mut e = exam("a", 100, 160, 300);
        e.extra_time = vec![ExtraSeats {
            extra_sec: 1800,
            students: 12,
        }];
        let main = e.main_window();
        assert_eq!(main.end, Timestamp(165 * MIN));
        assert_eq!(e.window().end, Timestamp(195 * MIN));
        assert_eq!(e.demand_at(Timestamp(84 * MIN)), 0);
        assert_eq!(e.demand_at(Timestamp(164 * MIN)), 300);
        assert_eq!(e.demand_at(Timestamp(165 * MIN)), 12);
        assert_eq!(e.demand_at(Timestamp(194 * MIN)), 12);
        assert_eq!(e.demand_at(Timestamp(195 * MIN)), 0);
        assert_eq!(
            e.demand_changes(),
            vec![
                Timestamp(85 * MIN),
                Timestamp(165 * MIN),
                Timestamp(195 * MIN)
            ]
        );
    }

    #[test]
    fn named_students_take_unnamed_seats_first() {
        let mut e = exam("a", 100, 160, 10);
        e.extra_time = vec![ExtraSeats {
            extra_sec: 1800,
            students: 2,
        }];
        let e = e
            .with_extra_sec(&user("s1"), 600)
            .with_extra_sec(&user("s2"), 1800)
            .with_extra_sec(&user("s3"), 900);
        // s2 and s3 take the two unnamed seats; s1 needs a seat of its own.
        assert_eq!(e.seats(), vec![(600, 1), (1800, 2)]);
        assert_eq!(e.session_ends_at(&user("s3")), Timestamp(175 * MIN));
        assert_eq!(e.session_ends_at(&user("s9")), e.ends_at);
        assert_eq!(e.with_extra_sec(&user("s3"), 0).seats(), vec![(1800, 2)]);
        assert_eq!(e.longest_extra_sec(), 1800);
    }

    #[test]
    fn validation_names_the_entry() {
        let e = exam("a", 100, 160, 1);
        let field = |e: Exam| e.validate().unwrap_err().field;
        let zero = e.with_extra_sec(&user("s1"), MAX_EXTRA_SEC + 1);
        assert_eq!(field(zero), "extensions[0].extraSec");
        let two = e
            .with_extra_sec(&user("s1"), 60)
            .with_extra_sec(&user("s2"), 60);
        assert_eq!(field(two), "extensions");
        let mut many = e.clone();
        many.extra_time = vec![ExtraSeats {
            extra_sec: 60,
            students: 2,
        }];
        assert_eq!(field(many), "extraTime");
        let mut twice = e.with_extra_sec(&user("s1"), 60);
        twice.extensions.push(twice.extensions[0].clone());
        twice.students = 2;
        assert_eq!(field(twice), "extensions[1].userId");
    }
}
