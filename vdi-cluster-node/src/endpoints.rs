//! Which control-plane URL a call goes to when several are configured
//! (`CONTROL_PLANE_API_BASE=https://cp-a/api,https://cp-b/api`, replicas of
//! one control plane on a shared store).
//!
//! The rules, as a small state machine ([`UrlRotation`]) the
//! [client](crate::control_plane::ControlPlaneClient) consults after every
//! attempt:
//!
//! * A call goes to the **current** URL: the one that last answered (the
//!   first configured one until any answers).
//! * An **answer** — any status below 500, a 401 or 404 included: a live
//!   replica that refuses has answered — makes its URL current and ends the
//!   call.
//! * A **failure** — not reached, no answer in time, or a 5xx — moves the
//!   current URL to the next one (in the configured order, wrapping) and the
//!   call tries it right away.
//! * When every URL has failed in a row (one **round**), the call ends
//!   with the last failure and the agent backs off as with a single URL.
//!   The current URL is then back where the round started, so the next
//!   attempt starts with the URL that last answered.
//!
//! With one URL a failure ends the call at once: exactly the behaviour of
//! a single `CONTROL_PLANE_API_BASE`.

/// What one attempt at one URL came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The control plane answered, whatever it said below 500.
    Answered,
    /// Not reached, no answer in time, or a 5xx.
    Failed,
}

/// What a call does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Hand the attempt's result to the caller: an answer, or the failure
    /// that completed a round (the caller backs off).
    Done,
    /// Try the URL at this index right away.
    Try(usize),
}

/// The current URL among `len` and the failures of the round under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRotation {
    len: usize,
    current: usize,
    failed_in_round: usize,
}

impl UrlRotation {
    /// A rotation over `len` URLs (at least one), starting with the first.
    pub fn new(len: usize) -> Self {
        Self {
            len: len.max(1),
            current: 0,
            failed_in_round: 0,
        }
    }

    /// How many URLs rotate.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: a rotation has at least one URL.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The index of the URL the next call goes to.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Records what the attempt at URL `index` came to, and says what the
    /// call does next.
    ///
    /// An attempt that failed at a URL that is no longer current (a
    /// concurrent call moved on meanwhile) changes nothing: the call tries
    /// the current one. Callers bound their own attempts by [`len`]
    /// (`Self::len`) so that a call always ends.
    pub fn record(&mut self, index: usize, outcome: Outcome) -> Next {
        match outcome {
            Outcome::Answered => {
                self.current = index % self.len;
                self.failed_in_round = 0;
                Next::Done
            }
            Outcome::Failed if index != self.current => Next::Try(self.current),
            Outcome::Failed => {
                self.current = (self.current + 1) % self.len;
                self.failed_in_round += 1;
                if self.failed_in_round >= self.len {
                    self.failed_in_round = 0;
                    Next::Done
                } else {
                    Next::Try(self.current)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome::{Answered, Failed};
    use super::*;

    /// Runs one call from the rotation's current URL, where the URL at
    /// index `i` answers when `up[i]`; returns the URLs tried, in
    /// order.
    fn call(rotation: &mut UrlRotation, up: &[bool]) -> Vec<usize> {
        let mut tried = Vec::new();
        let mut index = rotation.current();
        for _ in 0..rotation.len() {
            tried.push(index);
            let outcome = if up[index] { Answered } else { Failed };
            match rotation.record(index, outcome) {
                Next::Done => return tried,
                Next::Try(next) => index = next,
            }
        }
        panic!("a call did not end within {} attempts", rotation.len());
    }

    #[test]
    fn a_single_url_behaves_as_before() {
        let mut r = UrlRotation::new(1);
        assert_eq!(r.record(0, Failed), Next::Done);
        assert_eq!(r.current(), 0);
        assert_eq!(r.record(0, Answered), Next::Done);
        assert_eq!(r.current(), 0);
        assert_eq!(UrlRotation::new(0).len(), 1);
    }

    /// The URLs one call tries, and the current URL after it.
    type Call = (&'static [usize], usize);

    #[test]
    fn the_rules_table() {
        // (URLs up, calls) → the URLs each call tries, and the current URL
        // after it.
        let table: &[(&[bool], &[Call])] = &[
            // All up: the first URL, always.
            (&[true, true, true], &[(&[0], 0), (&[0], 0)]),
            // The first is down: the second, right away, then it sticks.
            (&[false, true, true], &[(&[0, 1], 1), (&[1], 1)]),
            // Only the last is up.
            (&[false, false, true], &[(&[0, 1, 2], 2), (&[2], 2)]),
            // All down: one round per call, starting where the last began.
            (&[false, false, false], &[(&[0, 1, 2], 0), (&[0, 1, 2], 0)]),
        ];
        for (up, calls) in table {
            let mut r = UrlRotation::new(up.len());
            for (tried, current) in *calls {
                assert_eq!(call(&mut r, up), *tried, "up {up:?}");
                assert_eq!(r.current(), *current, "up {up:?}");
            }
        }
    }

    #[test]
    fn it_sticks_to_the_url_that_last_answered() {
        let mut r = UrlRotation::new(3);
        assert_eq!(call(&mut r, &[false, true, true]), [0, 1]);
        // The first comes back: the agent stays where it is.
        assert_eq!(call(&mut r, &[true, true, true]), [1]);
        // Its URL goes down, and every other too: one round from it, and
        // the next call starts with it again.
        assert_eq!(call(&mut r, &[false, false, false]), [1, 2, 0]);
        assert_eq!(r.current(), 1);
        // Then only the first is up.
        assert_eq!(call(&mut r, &[true, false, false]), [1, 2, 0]);
        assert_eq!(r.current(), 0);
    }

    #[test]
    fn a_stale_failure_changes_nothing() {
        let mut r = UrlRotation::new(3);
        assert_eq!(r.record(0, Failed), Next::Try(1));
        // A concurrent call that had tried 0 too.
        assert_eq!(r.record(0, Failed), Next::Try(1));
        assert_eq!(r.current(), 1);
        assert_eq!(r.record(1, Answered), Next::Done);
        assert_eq!(r.current(), 1);
    }

    /// Every sequence of calls over every pattern of URLs up, for up to 4
    /// URLs and 3 calls: each call tries distinct URLs in the configured
    /// order from the current one, stops at the first that answers, backs
    /// off only after trying all, and leaves the one that answered current
    /// (or, after a full round, the one it started with).
    #[test]
    fn exhaustively_every_call_follows_the_rules() {
        for len in 1..=4usize {
            let patterns: Vec<Vec<bool>> = (0..1u32 << len)
                .map(|bits| (0..len).map(|i| bits & (1 << i) != 0).collect())
                .collect();
            for first in &patterns {
                for second in &patterns {
                    for third in &patterns {
                        let mut r = UrlRotation::new(len);
                        for up in [first, second, third] {
                            let start = r.current();
                            let tried = call(&mut r, up);
                            let expected: Vec<usize> =
                                (0..len).map(|k| (start + k) % len).collect();
                            assert_eq!(tried, expected[..tried.len()], "{up:?}");
                            let last = *tried.last().unwrap();
                            if let Some(answered) = expected.iter().position(|&i| up[i]) {
                                assert_eq!(tried.len(), answered + 1, "{up:?}");
                                assert_eq!(r.current(), last, "{up:?}");
                            } else {
                                assert_eq!(tried.len(), len, "{up:?}");
                                assert_eq!(r.current(), start, "{up:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}
