//! Admission (invariant D), the earliest-fit search and maintenance
//! windows against a brute-force oracle over time: every minute of a
//! window is examined, and feasibility at a minute is Hall's deficiency
//! over every subset of the exams present (no flow algorithm).

use std::time::Duration;

use proptest::prelude::*;
use vdi_cluster_core::exam::{
    Capacity, Pool, Prewarm, PrewarmTarget, admit, earliest_fit, format_rfc3339, freeze,
    maintenance_windows, parse_rfc3339,
};
use vdi_cluster_core::{Constraints, Exam, ExamId, Timestamp, WorkerDescription};

const MIN: u64 = 60_000;

fn signature(zone: u8, gpu: bool) -> WorkerDescription {
    WorkerDescription {
        zone: Some(format!("z{zone}")),
        capabilities: if gpu {
            ["gpu".to_owned()].into()
        } else {
            Default::default()
        },
        ..WorkerDescription::default()
    }
}

fn constraints(zone: Option<u8>, gpu: bool) -> Constraints {
    Constraints {
        zone: zone.map(|z| format!("z{z}")),
        capabilities: if gpu {
            ["gpu".to_owned()].into()
        } else {
            Default::default()
        },
        ..Constraints::default()
    }
}

fn exam(
    i: usize,
    start: u64,
    len: u64,
    lead: u32,
    teardown: u32,
    students: u32,
    c: Constraints,
) -> Exam {
    Exam {
        id: ExamId::parse("examId", format!("e{i}")).unwrap(),
        name: format!("exam {i}"),
        starts_at: Timestamp::from_millis(start * MIN),
        ends_at: Timestamp::from_millis((start + len) * MIN),
        students,
        constraints: c,
        prewarm: Prewarm {
            target: PrewarmTarget::Count(0),
            lead_sec: lead * 60,
        },
        teardown_sec: teardown * 60,
        queue: true,
        booked_by: "t".into(),
        booked_at: Timestamp(0),
        updated_at: Timestamp(0),
        prewarm_started_at: None,
        prewarm_marks: Default::default(),
        network_policy: None,
        extensions: Vec::new(),
        extra_time: Vec::new(),
        expiry_warned_through: None,
    }
}

fn arb_exam(i: usize) -> impl Strategy<Value = Exam> {
    (
        20u64..80,
        1u64..20,
        0u32..6,
        0u32..6,
        1u32..9,
        proptest::option::of(0u8..2),
        any::<bool>(),
    )
        .prop_map(move |(s, len, lead, td, n, zone, gpu)| {
            exam(
                i,
                s,
                len,
                lead,
                td,
                n,
                constraints(zone, gpu && zone.is_none()),
            )
        })
}

fn arb_capacity() -> impl Strategy<Value = Capacity> {
    proptest::collection::vec((0u8..2, any::<bool>(), 0u32..8), 0..4).prop_map(|pools| {
        Capacity::new(pools.into_iter().map(|(z, gpu, slots)| Pool {
            signature: signature(z, gpu),
            slots,
        }))
    })
}

/// Hall's deficiency: max over subsets T of demand(T) − slots of pools any
/// exam of T matches.
fn oracle_missing(exams: &[&Exam], cap: &Capacity) -> u32 {
    let mut worst = 0i64;
    for mask in 1u32..(1 << exams.len()) {
        let chosen: Vec<&Exam> = (0..exams.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| exams[i])
            .collect();
        let demand: i64 = chosen.iter().map(|e| i64::from(e.students)).sum();
        let slots: i64 = cap
            .pools()
            .iter()
            .filter(|p| {
                chosen
                    .iter()
                    .any(|e| e.constraints.matches_description(&p.signature))
            })
            .map(|p| i64::from(p.slots))
            .sum();
        worst = worst.max(demand - slots);
    }
    worst as u32
}

/// The worst minute of the candidate's window from `from` on: (missing, minute).
fn oracle_admit(c: &Exam, others: &[Exam], cap: &Capacity, from: u64) -> Option<(u32, u64)> {
    let w = c.window();
    let mut worst: Option<(u32, u64)> = None;
    for t in (w.start.as_millis() / MIN).max(from)..w.end.as_millis() / MIN {
        let at = Timestamp::from_millis(t * MIN);
        let mut set = vec![c];
        set.extend(others.iter().filter(|o| o.window().contains(at)));
        let m = oracle_missing(&set, cap);
        if m > worst.map_or(0, |w| w.0) {
            worst = Some((m, t));
        }
    }
    worst
}

/// A fleet of workers (zone, gpu, slots) and one of them taken out: the
/// capacities with and without it.
fn arb_fleet() -> impl Strategy<Value = (Capacity, Capacity)> {
    proptest::collection::vec((0u8..2, any::<bool>(), 0u32..8), 1..5).prop_flat_map(|workers| {
        let n = workers.len();
        (Just(workers), 0..n).prop_map(|(workers, out)| {
            let pools = |skip: Option<usize>| {
                Capacity::new(
                    workers
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| Some(*i) != skip)
                        .map(|(_, &(z, gpu, slots))| Pool {
                            signature: signature(z, gpu),
                            slots,
                        }),
                )
            };
            (pools(None), pools(Some(out)))
        })
    })
}

/// Whether the worker may be out during the minute `t`: the exams present
/// miss no more students without it than with it.
fn oracle_safe_minute(exams: &[Exam], with: &Capacity, without: &Capacity, t: u64) -> bool {
    let at = Timestamp::from_millis(t * MIN);
    let present: Vec<&Exam> = exams.iter().filter(|e| e.window().contains(at)).collect();
    oracle_missing(&present, without) <= oracle_missing(&present, with)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The change freeze names exactly the exams under way that miss more
    /// students without the worker (the oracle's worst minute from now),
    /// and none of them is hurt from `safeFrom` on.
    #[test]
    fn the_freeze_names_the_exams_the_change_hurts(
        exams in (0usize..5).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
        (with, without) in arb_fleet(),
        now in 0u64..100,
    ) {
        let at = Timestamp::from_millis(now * MIN);
        let hurt = |e: &Exam, from: u64| {
            let others: Vec<Exam> = exams.iter().filter(|o| o.id != e.id).cloned().collect();
            let worse = oracle_admit(e, &others, &without, from).map_or(0, |w| w.0);
            worse > oracle_admit(e, &others, &with, from).map_or(0, |w| w.0)
        };
        let expected: Vec<&str> = exams
            .iter()
            .filter(|e| e.window().contains(at) && hurt(e, now))
            .map(|e| e.id.as_str())
            .collect();
        match freeze(&exams, &with, &without, at) {
            None => prop_assert!(expected.is_empty(), "{:?}", expected),
            Some(f) => {
                let mut named: Vec<&str> = f.exams.iter().map(|e| e.exam.id.as_str()).collect();
                named.sort_unstable();
                let mut expected = expected.clone();
                expected.sort_unstable();
                prop_assert_eq!(named, expected);
                prop_assert!(f.safe_from >= at);
                let safe = f.safe_from.as_millis() / MIN;
                for e in exams.iter().filter(|e| f.exams.iter().any(|x| x.exam.id == e.id)) {
                    prop_assert!(!hurt(e, safe), "{} still hurt from {}", e.id, safe);
                }
            }
        }
    }

    /// Every maintenance window answered is safe at every minute, and
    /// every start minute from which `duration` minutes are safe lies in
    /// an answered window with room for the whole maintenance.
    #[test]
    fn maintenance_windows_agree_with_the_oracle(
        exams in (0usize..5).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
        (with, without) in arb_fleet(),
        from in 0u64..60,
        span in 0u64..100,
        duration in 1u64..40,
    ) {
        let to = from + span;
        let got = maintenance_windows(
            &exams,
            &with,
            &without,
            Timestamp::from_millis(from * MIN),
            Timestamp::from_millis(to * MIN),
            Duration::from_secs(duration * 60),
        );
        for w in &got {
            let (start, end) = (w.start.as_millis() / MIN, w.end.as_millis() / MIN);
            prop_assert!(from <= start && end <= to && end - start >= duration, "{:?}", w);
            for t in start..end {
                prop_assert!(oracle_safe_minute(&exams, &with, &without, t), "minute {} in {:?}", t, w);
            }
        }
        for s in from..=to.saturating_sub(duration) {
            if s + duration > to {
                continue;
            }
            let safe = (s..s + duration).all(|t| oracle_safe_minute(&exams, &with, &without, t));
            let found = got.iter().any(|w| {
                w.start.as_millis() <= s * MIN && (s + duration) * MIN <= w.end.as_millis()
            });
            prop_assert_eq!(safe, found, "start minute {}", s);
        }
    }

    #[test]
    fn admission_agrees_with_the_oracle(
        others in (0usize..5).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
        candidate in arb_exam(9),
        cap in arb_capacity(),
        from in 0u64..90,
    ) {
        let got = admit(&candidate, &others, &cap, Timestamp::from_millis(from * MIN));
        match (got, oracle_admit(&candidate, &others, &cap, from)) {
            (Ok(()), None) => {}
            (Err(s), Some((missing, minute))) => {
                prop_assert_eq!(s.missing, missing);
                prop_assert_eq!(s.at.as_millis(), minute * MIN);
                prop_assert_eq!(&s.overlapping[0].id, &candidate.id);
                let present = others.iter().filter(|o| o.window().contains(s.at)).count();
                prop_assert_eq!(s.overlapping.len(), present + 1);
                prop_assert_eq!(s.demand, s.overlapping.iter().map(|o| o.students).sum::<u32>());
            }
            (got, want) => prop_assert!(false, "admit {:?}, oracle {:?}", got, want),
        }
    }

    #[test]
    fn earliest_fit_is_the_first_minute_that_fits(
        others in (0usize..5).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
        candidate in arb_exam(9),
        cap in arb_capacity(),
        from in 0u64..60,
        horizon in 0u64..120,
    ) {
        let got = earliest_fit(&candidate, &others, &cap, Timestamp::from_millis(from * MIN), Duration::from_secs(horizon * 60));
        let start = candidate.starts_at.as_millis() / MIN;
        let want = (start..=start + horizon).find(|&s| {
            oracle_admit(&candidate.moved_to(Timestamp::from_millis(s * MIN)), &others, &cap, from).is_none()
        });
        prop_assert_eq!(got.map(|t| t.as_millis()), want.map(|s| s * MIN));
        if let Some(t) = got {
            prop_assert!(admit(&candidate.moved_to(t), &others, &cap, Timestamp::from_millis(from * MIN)).is_ok());
        }
    }

    /// A set of exams booked one by one through `admit` satisfies invariant D
    /// at every minute.
    #[test]
    fn booking_through_admit_keeps_invariant_d(
        exams in (0usize..7).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
        cap in arb_capacity(),
    ) {
        let mut booked: Vec<Exam> = Vec::new();
        for e in exams {
            if admit(&e, &booked, &cap, Timestamp(0)).is_ok() {
                booked.push(e);
            }
        }
        for t in 0..120u64 {
            let at = Timestamp::from_millis(t * MIN);
            let set: Vec<&Exam> = booked.iter().filter(|e| e.window().contains(at)).collect();
            prop_assert_eq!(oracle_missing(&set, &cap), 0, "minute {}", t);
        }
    }

    #[test]
    fn rfc3339_round_trips_with_any_offset(ms in 0u64..253_402_300_799_000, offset in -1439i64..1440) {
        let t = Timestamp::from_millis(ms);
        prop_assert_eq!(parse_rfc3339("t", &format_rfc3339(t)).unwrap(), t);
        // The same instant written in local time with an offset.
        let local = i64::try_from(ms).unwrap() + offset * MIN as i64;
        prop_assume!((0..253_402_300_799_000).contains(&local));
        let text = format_rfc3339(Timestamp::from_millis(local as u64));
        let sign = if offset < 0 { '-' } else { '+' };
        let text = format!("{}{}{:02}:{:02}", &text[..text.len() - 1], sign, offset.abs() / 60, offset.abs() % 60);
        prop_assert_eq!(parse_rfc3339("t", &text).unwrap(), t);
    }
}
