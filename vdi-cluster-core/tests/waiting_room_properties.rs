//! Property tests of the waiting room's pure parts: positions, who is
//! abandoned, and the wait estimate, against direct oracles.

use std::time::Duration;

use proptest::prelude::*;
use vdi_cluster_core::waiting_room::{
    ExamQueue, MAX_ESTIMATE, QueueClaim, QueueEntry, QueueTotals, estimate_wait,
};
use vdi_cluster_core::{ExamId, Timestamp, UserId};

fn user(n: usize) -> UserId {
    UserId::parse("userId", format!("u{n}")).unwrap()
}

/// A queue of distinct students last seen at `seen[i]` (ms), the head
/// possibly claimed until `claim_until`.
fn queue(seen: &[u64], claim_until: Option<u64>) -> ExamQueue {
    ExamQueue {
        entries: seen
            .iter()
            .enumerate()
            .map(|(i, s)| QueueEntry {
                user: user(i),
                enqueued_at: Timestamp::from_millis(0),
                last_seen: Timestamp::from_millis(*s),
            })
            .collect(),
        claim: claim_until
            .filter(|_| !seen.is_empty())
            .map(|until| QueueClaim {
                exam: ExamId::parse("examId", "e").unwrap(),
                user: user(0),
                token: 1,
                until: Timestamp::from_millis(until),
            }),
        totals: QueueTotals::default(),
    }
}

fn totals() -> impl Strategy<Value = QueueTotals> {
    (0u64..1000, 0u64..10_000_000, 0u64..10_000_000).prop_map(|(placed, a, b)| {
        let (first, last) = (a.min(b), a.max(b));
        QueueTotals {
            placed,
            abandoned: 0,
            first_placed_at: (placed > 0).then_some(Timestamp::from_millis(first)),
            last_placed_at: (placed > 0).then_some(Timestamp::from_millis(last)),
        }
    })
}

proptest! {
    #[test]
    fn positions_are_ranks(seen in proptest::collection::vec(0u64..1000, 0..40)) {
        let q = queue(&seen, None);
        for i in 0..seen.len() {
            prop_assert_eq!(q.position_of(&user(i)), Some(u32::try_from(i + 1).unwrap()));
        }
        prop_assert_eq!(q.position_of(&user(seen.len())), None);
    }

    #[test]
    fn exactly_the_silent_and_unclaimed_are_abandoned(
        seen in proptest::collection::vec(0u64..200_000, 0..40),
        claim_until in proptest::option::of(0u64..400_000),
        now in 0u64..400_000,
        after in 1u64..200_000,
    ) {
        let q = queue(&seen, claim_until);
        let gone = q.abandoned(Timestamp::from_millis(now), Duration::from_millis(after));
        let cutoff = now.saturating_sub(after);
        let live_claim = claim_until.is_some_and(|u| u > now);
        let oracle: Vec<UserId> = seen
            .iter()
            .enumerate()
            .filter(|(i, s)| **s < cutoff && !(*i == 0 && live_claim))
            .map(|(i, _)| user(i))
            .collect();
        prop_assert_eq!(gone, oracle);
    }

    #[test]
    fn the_estimate_grows_with_the_position_and_is_bounded(
        totals in totals(),
        position in 1u32..10_000,
        now in 0u64..20_000_000,
        per in 1u64..600,
    ) {
        let now = Timestamp::from_millis(now);
        let per = Duration::from_secs(per);
        let here = estimate_wait(position, &totals, now, per);
        let behind = estimate_wait(position + 1, &totals, now, per);
        prop_assert!(here <= behind);
        prop_assert!(behind <= MAX_ESTIMATE);
        prop_assert!(here > Duration::ZERO || totals.placed >= 2);
    }

    #[test]
    fn before_two_placements_the_default_stands(
        position in 1u32..1000,
        per in 1u64..600,
    ) {
        let per = Duration::from_secs(per);
        let e = estimate_wait(position, &QueueTotals::default(), Timestamp::from_millis(0), per);
        prop_assert_eq!(e, (per * position).min(MAX_ESTIMATE));
    }
}
