//! Property tests of the rehearsal's verdicts: a worker is failing exactly
//! when its check failed, started nothing, lacked the image or failed a
//! provisioner check; a report is go exactly when a worker passed and the
//! exam fits the capacity left without the failing workers; re-checks and
//! runs keep one check per worker.

use std::time::Duration;

use proptest::prelude::*;
use vdi_cluster_core::exam::{Capacity, Pool, risk};
use vdi_cluster_core::rehearsal::{
    CheckReport, Outcome, ProvisionerCheck, Rehearsal, Verdict, go_no_go, judge,
};
use vdi_cluster_core::testkit::exam;
use vdi_cluster_core::{ExamId, Timestamp, WorkerDescription, WorkerId};

const SLOW: Duration = Duration::from_secs(30);

fn worker(n: u8) -> WorkerId {
    WorkerId::parse("code", format!("w{n}")).unwrap()
}

/// A worker's answer: the call failed, or a report.
fn answer() -> impl Strategy<Value = Result<CheckReport, String>> {
    prop_oneof![
        1 => Just(Err("unreachable".to_owned())),
        4 => (
            any::<bool>(),
            0u32..60_000,
            prop::option::of(any::<bool>()),
            prop::collection::vec(any::<bool>(), 0..3),
        )
            .prop_map(|(started, start_ms, image_present, checks)| {
                Ok(CheckReport {
                    started,
                    start_ms,
                    image_present,
                    image: Some("img".into()),
                    checks: checks
                        .into_iter()
                        .enumerate()
                        .map(|(i, ok)| ProvisionerCheck {
                            name: format!("c{i}"),
                            ok,
                            detail: None,
                        })
                        .collect(),
                    error: None,
                })
            }),
    ]
}

proptest! {
    #[test]
    fn a_worker_fails_exactly_on_a_failure_and_is_slow_only_past_the_threshold(a in answer()) {
        let expected_failing = match &a {
            Err(_) => true,
            Ok(r) => !r.started || r.image_present == Some(false) || r.checks.iter().any(|c| !c.ok),
        };
        let slow_start = matches!(&a, Ok(r) if u128::from(r.start_ms) > SLOW.as_millis());
        let check = judge(&worker(1), a, SLOW, Timestamp(1));
        prop_assert_eq!(check.outcome.failing(), expected_failing);
        prop_assert_eq!(check.outcome == Outcome::Ok, !expected_failing && !slow_start);
        prop_assert_eq!(check.reason.is_none(), check.outcome == Outcome::Ok);
    }

    #[test]
    fn go_exactly_when_a_worker_passed_and_the_exam_fits_without_the_failing(
        answers in prop::collection::vec(answer(), 0..6),
        rechecks in prop::collection::vec((0u8..8, answer()), 0..4),
        slots in 0u32..20,
        students in 1u32..20,
    ) {
        let now = Timestamp(1_000);
        let checks = answers
            .into_iter()
            .enumerate()
            .map(|(i, a)| judge(&worker(i as u8), a, SLOW, now))
            .collect();
        let id = ExamId::parse("examId", "e").unwrap();
        let mut r = Rehearsal::run(None, id, "admin", now, checks, now);
        for (n, a) in rechecks {
            r = r.rechecked(judge(&worker(n), a, SLOW, now));
        }
        let mut seen: Vec<_> = r.workers.iter().map(|c| c.worker.clone()).collect();
        seen.dedup();
        prop_assert_eq!(seen.len(), r.workers.len(), "one check per worker");
        let e = exam("e", Timestamp(3_600_000), 60, students);
        let without = Capacity::new([Pool { signature: WorkerDescription::default(), slots }]);
        let report = go_no_go(&r, &e, std::slice::from_ref(&e), &without, now);
        let passed = r.workers.iter().any(|c| !c.outcome.failing());
        let fits = risk(&e, std::slice::from_ref(&e), &without, now).is_none();
        prop_assert_eq!(report.verdict == Verdict::Go, passed && fits);
        prop_assert_eq!(report.fits_without_failing, fits);
        prop_assert_eq!(report.missing, students.saturating_sub(slots));
        prop_assert!(report.failing.iter().all(|c| r.excludes(&c.worker)));
        prop_assert_eq!(report.failing.len(), r.failing().len());
    }
}
