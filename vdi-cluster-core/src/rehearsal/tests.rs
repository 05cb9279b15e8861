use super::*;
use crate::exam::tests::{MIN, cap, exam};

fn w(code: &str) -> WorkerId {
    WorkerId::parse("code", code).unwrap()
}

const SLOW: Duration = Duration::from_secs(60);

fn started(ms: u32) -> CheckReport {
    CheckReport {
        started: true,
        start_ms: ms,
        image_present: Some(true),
        image: Some("sot-exam-linux".into()),
        ..CheckReport::default()
    }
}

fn outcome(answer: Result<CheckReport, String>) -> (Outcome, Option<String>) {
    let c = judge(&w("w1"), answer, SLOW, Timestamp(5));
    (c.outcome, c.reason)
}

#[test]
fn each_answer_gets_its_outcome_in_precedence_order() {
    assert_eq!(outcome(Ok(started(4_000))), (Outcome::Ok, None));
    let (o, reason) = outcome(Ok(started(61_000)));
    assert_eq!(o, Outcome::Slow);
    assert!(reason.unwrap().contains("61000 ms"));
    // Exactly at the threshold is not slow.
    assert_eq!(outcome(Ok(started(60_000))).0, Outcome::Ok);

    let (o, reason) = outcome(Err("timed out".into()));
    assert_eq!(o, Outcome::Failed);
    assert!(reason.unwrap().contains("timed out"));

    let missing = CheckReport {
        image_present: Some(false),
        started: false,
        error: Some("no such image".into()),
        ..started(0)
    };
    let (o, reason) = outcome(Ok(missing));
    assert_eq!(
        o,
        Outcome::ImageMissing,
        "the image explains the failed start"
    );
    assert!(reason.unwrap().contains("sot-exam-linux"));

    let not_started = CheckReport {
        started: false,
        error: Some("qemu: out of memory".into()),
        ..started(0)
    };
    let (o, reason) = outcome(Ok(not_started));
    assert_eq!(o, Outcome::Failed);
    assert!(reason.unwrap().contains("qemu: out of memory"));

    let allow_list = CheckReport {
        checks: vec![
            ProvisionerCheck {
                name: "disk".into(),
                ok: true,
                detail: None,
            },
            ProvisionerCheck {
                name: "network-allow-list".into(),
                ok: false,
                detail: Some("lms.example.edu unreachable".into()),
            },
        ],
        ..started(70_000)
    };
    let (o, reason) = outcome(Ok(allow_list));
    assert_eq!(o, Outcome::Failed, "a failed check outweighs a slow start");
    assert_eq!(
        reason.unwrap(),
        "check network-allow-list failed: lms.example.edu unreachable"
    );
}

#[test]
fn a_check_keeps_what_the_provisioner_reported_and_clips_long_reasons() {
    let c = judge(&w("w1"), Ok(started(1_234)), SLOW, Timestamp(9));
    assert_eq!(c.start_ms, Some(1_234));
    assert_eq!(c.image.as_deref(), Some("sot-exam-linux"));
    assert_eq!(c.checked_at, Timestamp(9));
    let c = judge(&w("w1"), Err("x".repeat(2_000)), SLOW, Timestamp(9));
    assert_eq!(c.reason.unwrap().chars().count(), MAX_REASON_CHARS);
    assert_eq!(c.start_ms, None);
}

fn check(code: &str, outcome: Outcome) -> WorkerCheck {
    WorkerCheck {
        worker: w(code),
        outcome,
        reason: (outcome != Outcome::Ok).then(|| outcome.name().to_owned()),
        start_ms: None,
        image: None,
        checks: Vec::new(),
        checked_at: Timestamp(1),
    }
}

fn rehearsal(checks: Vec<WorkerCheck>) -> Rehearsal {
    let exam_id = ExamId::parse("examId", "a").unwrap();
    Rehearsal::run(None, exam_id, "admin", Timestamp(0), checks, Timestamp(1))
}

#[test]
fn a_recheck_replaces_one_worker_and_a_run_replaces_all() {
    let first = rehearsal(vec![check("w2", Outcome::Failed), check("w1", Outcome::Ok)]);
    assert_eq!(first.run, 1);
    assert_eq!(first.workers[0].worker, w("w1"), "kept by worker");
    assert!(first.excludes(&w("w2")));
    assert!(!first.excludes(&w("w1")));
    let mut passing = check("w2", Outcome::Slow);
    passing.checked_at = Timestamp(7);
    let again = first.rechecked(passing);
    assert_eq!((again.run, again.updated_at), (1, Timestamp(7)));
    assert!(again.failing().is_empty(), "a slow worker stays in");
    assert_eq!(again.workers.len(), 2);
    let next = Rehearsal::run(
        Some(&again),
        again.exam_id.clone(),
        "system",
        Timestamp(8),
        vec![check("w3", Outcome::ImageMissing)],
        Timestamp(9),
    );
    assert_eq!((next.run, next.by.as_str()), (2, "system"));
    assert_eq!(next.workers.len(), 1);
    assert!(next.excludes(&w("w3")));
}

#[test]
fn go_when_the_exam_fits_without_the_failing_workers() {
    // 100..160, lead 15 and teardown 5; 8 students.
    let a = exam("a", 100, 160, 8);
    let now = Timestamp(50 * MIN);
    let r = rehearsal(vec![check("w1", Outcome::Ok), check("w2", Outcome::Failed)]);
    let report = go_no_go(&r, &a, std::slice::from_ref(&a), &cap(8), now);
    assert_eq!(report.verdict, Verdict::Go);
    assert_eq!((report.passed, report.missing), (1, 0));
    assert_eq!(report.failing.len(), 1);
    assert_eq!(report.failing[0].worker, w("w2"));

    let report = go_no_go(&r, &a, std::slice::from_ref(&a), &cap(5), now);
    assert_eq!(report.verdict, Verdict::NoGo);
    assert!(!report.fits_without_failing);
    assert_eq!(report.missing, 3);
}

#[test]
fn no_go_when_no_worker_passed_and_slow_workers_are_listed() {
    let a = exam("a", 100, 160, 2);
    let now = Timestamp(50 * MIN);
    let none = rehearsal(vec![check("w1", Outcome::ImageMissing)]);
    let report = go_no_go(&none, &a, std::slice::from_ref(&a), &cap(10), now);
    assert_eq!(report.verdict, Verdict::NoGo);
    assert!(report.fits_without_failing);
    let slow = rehearsal(vec![check("w1", Outcome::Slow)]);
    let report = go_no_go(&slow, &a, std::slice::from_ref(&a), &cap(10), now);
    assert_eq!(report.verdict, Verdict::Go);
    assert_eq!(report.slow, vec![w("w1")]);
}

#[test]
fn the_automatic_rehearsal_is_due_once_from_its_lead_until_the_start() {
    // Starts at 100 min, prewarm lead 15 min; a rehearsal lead of 30 min
    // opens at 55 min.
    let a = exam("a", 100, 160, 2);
    let lead = Some(Duration::from_secs(30 * 60));
    let t = |m: u64| Timestamp(m * MIN);
    assert!(!rehearsal_due(&a, lead, None, t(54)));
    assert!(rehearsal_due(&a, lead, None, t(55)));
    assert!(rehearsal_due(&a, lead, None, t(99)));
    assert!(!rehearsal_due(&a, lead, None, t(100)));
    assert!(
        !rehearsal_due(&a, lead, Some(t(56)), t(60)),
        "ran in the span"
    );
    assert!(
        rehearsal_due(&a, lead, Some(t(10)), t(60)),
        "an earlier run"
    );
    assert!(!rehearsal_due(&a, None, None, t(60)));
}
