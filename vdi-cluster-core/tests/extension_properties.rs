//! Admission with each student's own end, against a brute-force oracle
//! over time: every minute is examined; an exam's demand at a minute is
//! the fewest seats any assignment of its named students to its unnamed
//! extended seats leaves (every assignment enumerated), and feasibility is
//! Hall's deficiency over every subset of the exams (no flow algorithm).

use proptest::prelude::*;
use vdi_cluster_core::exam::{
    Capacity, ExtraSeats, Pool, Prewarm, PrewarmTarget, StudentExtra, admit, decide_extension,
};
use vdi_cluster_core::{Constraints, Exam, ExamId, Timestamp, UserId, WorkerDescription};

const MIN: u64 = 60_000;

fn zone(z: u8) -> WorkerDescription {
    WorkerDescription {
        zone: Some(format!("z{z}")),
        ..WorkerDescription::default()
    }
}

fn user(i: usize) -> UserId {
    UserId::parse("userId", format!("s{i}")).unwrap()
}

/// Exam `i`: its times in minutes, its students, its named students'
/// extra minutes and its unnamed seats (extra minutes, count).
fn exam(
    i: usize,
    shape: (u64, u64, u32, u32, Option<u8>),
    named: &[u32],
    unnamed: &[(u32, u32)],
) -> Exam {
    let (start, len, lead, students, z) = shape;
    let students = students
        .max(named.len() as u32)
        .max(unnamed.iter().map(|u| u.1).sum());
    Exam {
        id: ExamId::parse("examId", format!("e{i}")).unwrap(),
        name: format!("exam {i}"),
        starts_at: Timestamp::from_millis(start * MIN),
        ends_at: Timestamp::from_millis((start + len) * MIN),
        students,
        constraints: Constraints {
            zone: z.map(|z| format!("z{z}")),
            ..Constraints::default()
        },
        prewarm: Prewarm {
            target: PrewarmTarget::Count(0),
            lead_sec: lead * 60,
        },
        teardown_sec: 60,
        queue: true,
        booked_by: "t".into(),
        booked_at: Timestamp(0),
        updated_at: Timestamp(0),
        prewarm_started_at: None,
        prewarm_marks: Default::default(),
        network_policy: None,
        extensions: named
            .iter()
            .enumerate()
            .map(|(k, m)| StudentExtra {
                user_id: user(k),
                extra_sec: m * 60,
            })
            .collect(),
        extra_time: unnamed
            .iter()
            .map(|&(m, n)| ExtraSeats {
                extra_sec: m * 60,
                students: n,
            })
            .collect(),
        expiry_warned_through: None,
    }
}

fn arb_exam(i: usize) -> impl Strategy<Value = Exam> {
    (
        (
            20u64..70,
            1u64..15,
            0u32..5,
            1u32..7,
            proptest::option::of(0u8..2),
        ),
        proptest::collection::vec(1u32..25, 0..4),
        proptest::collection::vec((1u32..25, 1u32..3), 0..3),
    )
        .prop_map(move |(shape, named, unnamed)| exam(i, shape, &named, &unnamed))
}

fn arb_capacity() -> impl Strategy<Value = Capacity> {
    proptest::collection::vec((0u8..2, 0u32..9), 0..3).prop_map(|pools| {
        Capacity::new(pools.into_iter().map(|(z, slots)| Pool {
            signature: zone(z),
            slots,
        }))
    })
}

/// Seats of `e` held at minute `t`, brute force: the students in its main
/// window; after it, the fewest seats ending after `t` over every
/// assignment of named students to unnamed seats at least as long.
fn oracle_demand(e: &Exam, t: u64) -> u32 {
    let start = e.window().start.as_millis() / MIN;
    let main_end = (e.ends_at.as_millis() + u64::from(e.teardown_sec) * 1000) / MIN;
    if t < start {
        return 0;
    }
    if t < main_end {
        return e.students;
    }
    let after = (t - main_end) * 60;
    let mut free: Vec<u32> = e
        .extra_time
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.extra_sec, s.students as usize))
        .collect();
    let unnamed_left = free.iter().filter(|&&x| u64::from(x) > after).count() as u32;
    fn best(named: &[u32], free: &mut [u32], taken: &mut Vec<bool>, after: u64) -> u32 {
        let Some((&first, rest)) = named.split_first() else {
            return 0;
        };
        let own = u32::from(u64::from(first) > after) + best(rest, free, taken, after);
        let mut fewest = own;
        for k in 0..free.len() {
            if !taken[k] && free[k] >= first {
                taken[k] = true;
                fewest = fewest.min(best(rest, free, taken, after));
                taken[k] = false;
            }
        }
        fewest
    }
    let named: Vec<u32> = e.extensions.iter().map(|s| s.extra_sec).collect();
    let mut taken = vec![false; free.len()];
    (unnamed_left + best(&named, &mut free, &mut taken, after)).min(e.students)
}

/// Hall's deficiency at minute `t` over every subset of `exams`.
fn oracle_missing(exams: &[&Exam], cap: &Capacity, t: u64) -> u32 {
    let mut worst = 0i64;
    for mask in 1u32..(1 << exams.len()) {
        let chosen: Vec<&Exam> = (0..exams.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| exams[i])
            .collect();
        let demand: i64 = chosen.iter().map(|e| i64::from(oracle_demand(e, t))).sum();
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

/// The worst minute of the candidate's window from `from` on.
fn oracle_admit(c: &Exam, others: &[Exam], cap: &Capacity, from: u64) -> Option<(u32, u64)> {
    let w = c.window();
    let mut worst: Option<(u32, u64)> = None;
    // A window may end a few seconds past a minute: that minute counts.
    for t in (w.start.as_millis() / MIN).max(from)..w.end.as_millis().div_ceil(MIN) {
        let mut set = vec![c];
        set.extend(
            others
                .iter()
                .filter(|o| o.id != c.id && oracle_demand(o, t) > 0),
        );
        let m = oracle_missing(&set, cap, t);
        if m > worst.map_or(0, |w| w.0) {
            worst = Some((m, t));
        }
    }
    worst
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Each exam's demand is the oracle's at every minute.
    #[test]
    fn demand_is_the_fewest_seats_of_any_assignment(e in arb_exam(0)) {
        for t in 0..130u64 {
            prop_assert_eq!(e.demand_at(Timestamp::from_millis(t * MIN)), oracle_demand(&e, t), "minute {}", t);
        }
    }

    /// Admission counts every extended student for their own window.
    #[test]
    fn admission_with_own_ends_agrees_with_the_oracle(
        others in (0usize..4).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
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
            }
            (got, want) => prop_assert!(false, "admit {:?}, oracle {:?}", got, want),
        }
    }

    /// An extension is granted exactly when the oracle finds no minute
    /// after the main window short, and a refusal's longest fit is the
    /// longest the oracle accepts.
    #[test]
    fn an_extension_fits_exactly_when_the_oracle_says(
        others in (0usize..4).prop_flat_map(|n| (0..n).map(arb_exam).collect::<Vec<_>>()),
        exam in arb_exam(9),
        who in 0usize..5,
        minutes in 1u32..40,
        cap in arb_capacity(),
        now in 0u64..90,
    ) {
        let u = user(who);
        let current = exam.extra_sec_of(&u);
        let extra = current + minutes * 60;
        prop_assume!(exam.extensions.len() < exam.students as usize || current > 0);
        let main_end = (exam.ends_at.as_millis() + u64::from(exam.teardown_sec) * 1000) / MIN;
        let from = now.max(main_end);
        let short = |sec: u32| {
            let e = exam.with_extra_sec(&u, sec);
            oracle_admit(&e, &others, &cap, from).is_some()
                && e.seats() != exam.seats()
        };
        let got = decide_extension(&exam, &u, extra, &others, &cap, Timestamp::from_millis(now * MIN));
        match got {
            Ok(()) => prop_assert!(!short(extra)),
            Err(r) => {
                prop_assert!(short(extra));
                prop_assert_eq!(r.current_extra_sec, current);
                prop_assert!(r.fits_extra_sec >= current && r.fits_extra_sec < extra);
                if r.fits_extra_sec > current {
                    prop_assert!(!short(r.fits_extra_sec));
                }
                prop_assert!(short(r.fits_extra_sec + 1) || r.fits_extra_sec == current);
            }
        }
    }
}
