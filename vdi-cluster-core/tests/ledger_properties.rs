//! Property tests of the disruption ledger's arithmetic: lost time is the
//! union of the entries' intervals (an oracle counts each millisecond),
//! never counts overlapping entries twice, never exceeds the session's
//! lifetime, and each threshold crossing is alerted once however the
//! entries arrive.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use vdi_cluster_core::ledger::{
    Disruption, DisruptionKind, ExamLost, LedgerOrder, crossings, lifetime, lost_ms,
    session_lost_ms,
};
use vdi_cluster_core::{SessionKey, Timestamp};

fn entry(user: u8, n: usize, from: u64, len: u64) -> Disruption {
    Disruption::new(
        SessionKey::parse("e", format!("u{user}")).unwrap(),
        DisruptionKind::ALL[n % DisruptionKind::ALL.len()],
        Timestamp(from),
        Timestamp(from + len),
        Vec::new(),
        format!("c{n}"),
    )
}

/// Up to 8 entries of one student within 0..400 ms.
fn entries() -> impl Strategy<Value = Vec<Disruption>> {
    prop::collection::vec((0u64..300, 0u64..100), 0..8).prop_map(|spans| {
        spans
            .into_iter()
            .enumerate()
            .map(|(n, (from, len))| entry(1, n, from, len))
            .collect()
    })
}

/// The milliseconds of `[from, to)` some entry covers, counted one by one.
fn oracle(entries: &[Disruption], from: u64, to: u64) -> u64 {
    let mut covered = BTreeSet::new();
    for e in entries {
        for ms in e.started_at.as_millis()..e.ended_at.as_millis() {
            if ms >= from && ms < to {
                covered.insert(ms);
            }
        }
    }
    covered.len() as u64
}

proptest! {
    #[test]
    fn lost_time_is_the_union_of_the_entries(entries in entries(), from in 0u64..200, len in 0u64..300) {
        let to = from + len;
        prop_assert_eq!(lost_ms(&entries, (Timestamp(from), Timestamp(to))), oracle(&entries, from, to));
    }

    #[test]
    fn lost_time_never_exceeds_the_lifetime_nor_the_sum(entries in entries(), since in prop::option::of(0u64..400), now in 0u64..500) {
        let life = lifetime(&entries, since.map(Timestamp), Timestamp(now));
        let lost = lost_ms(&entries, life);
        prop_assert!(lost <= life.1.as_millis() - life.0.as_millis());
        let sum: u64 = entries.iter().map(Disruption::span_ms).sum();
        prop_assert!(lost <= sum);
        prop_assert!(session_lost_ms(&entries) <= sum);
    }

    #[test]
    fn overlapping_and_repeated_entries_count_once(entries in entries()) {
        let once = session_lost_ms(&entries);
        let mut twice = entries.clone();
        twice.extend(entries.iter().cloned());
        prop_assert_eq!(session_lost_ms(&twice), once);
        // Any entry inside the covered span adds nothing.
        if let Some(first) = entries.first() {
            let mut inner = entries.clone();
            inner.push(entry(1, 99, first.started_at.as_millis(), first.span_ms() / 2));
            prop_assert_eq!(session_lost_ms(&inner), once);
        }
    }

    #[test]
    fn each_crossing_is_alerted_once_however_the_entries_arrive(
        entries in entries(), threshold in 1u64..120,
    ) {
        let threshold = Duration::from_millis(threshold);
        let mut seen = Vec::new();
        let mut before = 0;
        for n in 1..=entries.len() {
            let after = session_lost_ms(&entries[..n]);
            prop_assert!(after >= before, "lost time never shrinks as entries arrive");
            seen.extend(crossings(before, after, threshold));
            before = after;
        }
        let total = session_lost_ms(&entries);
        let expected: Vec<u64> = (1..=total / threshold.as_millis() as u64).collect();
        prop_assert_eq!(seen, expected);
    }

    #[test]
    fn an_exams_figures_are_its_students(spans in prop::collection::vec((0u8..6, 0u64..300, 0u64..100), 0..20)) {
        let entries: Vec<Disruption> = spans
            .iter()
            .enumerate()
            .map(|(n, (user, from, len))| entry(*user, n, *from, *len))
            .collect();
        let exam = ExamLost::from_entries(entries.clone(), LedgerOrder::LostDesc);
        let total: u64 = exam.students.iter().map(|s| s.lost_ms).sum();
        prop_assert_eq!(exam.total_ms, total);
        prop_assert!(exam.students.iter().all(|s| s.lost_ms > 0));
        prop_assert!(exam.students.windows(2).all(|w| w[0].lost_ms >= w[1].lost_ms));
        prop_assert_eq!(exam.max_ms, exam.students.first().map_or(0, |s| s.lost_ms));
        prop_assert!(exam.median_ms <= exam.max_ms);
        for s in &exam.students {
            let own: Vec<_> = entries.iter().filter(|e| e.key == s.key).cloned().collect();
            prop_assert_eq!(s.lost_ms, session_lost_ms(&own));
        }
    }
}
