//! Field names and conversions of the exam bodies.

use serde_json::json;
use vdi_cluster_core::exam::ExamLoad;

use super::*;

#[test]
fn book_request_field_names_and_offsets() {
    let body: BookExamRequest = serde_json::from_value(json!({
        "examId": "math-1", "name": "Math", "startsAt": "2026-06-01T15:00:00+07:00",
        "endsAt": "2026-06-01T09:30:00Z", "students": 120,
        "constraints": {"zone": "hn"}, "prewarm": {"percent": 10, "leadSec": 1200},
        "teardownSec": 600, "queue": false
    }))
    .unwrap();
    let exam = body.into_exam().unwrap();
    assert_eq!(format_rfc3339(exam.starts_at), "2026-06-01T08:00:00Z");
    assert_eq!(exam.prewarm.machines(exam.students), 12);
    assert_eq!((exam.teardown_sec, exam.queue), (600, false));
    let err = serde_json::from_value::<BookExamRequest>(json!({
        "examId": "x", "name": "x", "startsAt": "2026-06-01T08:00:00Z",
        "endsAt": "2026-06-01T09:00:00Z", "students": 1, "prewarm": {"count": 1, "percent": 2}
    }))
    .unwrap()
    .into_exam()
    .unwrap_err();
    assert_eq!(err.field, "prewarm");
    assert!(serde_json::from_value::<BookExamRequest>(json!({"examId": "x", "bogus": 1})).is_err());
}

#[test]
fn refusal_field_names() {
    let refusal = Refusal {
        shortfall: Shortfall {
            missing: 2,
            at: Timestamp(1_780_300_800_000),
            demand: 10,
            overlapping: vec![ExamLoad {
                id: ExamId::parse("examId", "a").unwrap(),
                name: "A".into(),
                students: 10,
            }],
        },
        earliest_start: Some(Timestamp(1_780_304_400_000)),
        searched_until: Timestamp(1_780_905_600_000),
    };
    let json = serde_json::to_value(AdmissionRefusedJson::from(&refusal)).unwrap();
    assert_eq!(json["code"], 409);
    assert_eq!(json["error"], "Conflict");
    assert_eq!(json["shortfall"], 2);
    assert_eq!(json["peakAt"], "2026-06-01T08:00:00Z");
    assert_eq!(json["demand"], 10);
    assert_eq!(
        json["overlapping"],
        json!([{"examId": "a", "name": "A", "students": 10}])
    );
    assert_eq!(json["earliestStart"], "2026-06-01T09:00:00Z");
    assert_eq!(json["searchedUntil"], "2026-06-08T08:00:00Z");
}

#[test]
fn exam_field_names() {
    let exam = BookExamRequest {
        exam_id: "e".into(),
        name: "E".into(),
        starts_at: "2026-06-01T08:00:00Z".into(),
        ends_at: "2026-06-01T09:00:00Z".into(),
        students: 4,
        constraints: None,
        prewarm: None,
        teardown_sec: None,
        queue: None,
        network_policy: None,
        extensions: None,
        extra_time: None,
    }
    .into_exam()
    .unwrap();
    let json = serde_json::to_value(ExamJson::from(&ExamStatus {
        exam,
        at_risk: None,
        with_scale_up: false,
        prewarm: Default::default(),
    }))
    .unwrap();
    let keys = crate::test_support::sorted_keys(&json);
    assert_eq!(
        keys,
        [
            "bookedAt",
            "bookedBy",
            "constraints",
            "endsAt",
            "examId",
            "extensions",
            "extraTime",
            "fits",
            "atRisk",
            "name",
            "prewarm",
            "prewarmMachines",
            "queue",
            "readiness",
            "reservedFrom",
            "reservedUntil",
            "startsAt",
            "students",
            "teardownSec",
            "updatedAt"
        ]
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(json["reservedFrom"], "2026-06-01T07:45:00Z");
    assert_eq!(json["prewarm"], json!({"count": 0, "leadSec": 900}));
}

#[test]
fn a_network_policy_is_booked_shown_and_patched() {
    let body = json!({
        "examId": "x", "name": "x", "startsAt": "2026-06-01T08:00:00Z",
        "endsAt": "2026-06-01T09:00:00Z", "students": 1,
        "networkPolicy": {
            "restrictInternet": true, "allowedDomains": ["SOT.umtoj.edu.vn"],
            "allowedCidrs": ["103.90.220.0/22"], "originIp": "203.210.213.198"
        }
    });
    let exam = serde_json::from_value::<BookExamRequest>(body.clone())
        .unwrap()
        .into_exam()
        .unwrap();
    let policy = exam.network_policy.clone().unwrap();
    assert_eq!(policy.allowed_domains, ["sot.umtoj.edu.vn"]);
    assert!(policy.enforce_strict, "strict unless said otherwise");
    let shown = serde_json::to_value(ExamJson::from(&ExamStatus {
        exam,
        at_risk: None,
        with_scale_up: false,
        prewarm: Default::default(),
    }))
    .unwrap();
    assert_eq!(
        shown["networkPolicy"],
        json!({
            "restrictInternet": true, "allowedDomains": ["sot.umtoj.edu.vn"],
            "allowedCidrs": ["103.90.220.0/22"], "originIp": "203.210.213.198",
            "enforceStrict": true
        })
    );
    let mut bad = body;
    bad["networkPolicy"]["allowedCidrs"] = json!(["10.0.0.0/8", "1.55.145.0/24", "1.55.145.7/24"]);
    let err = serde_json::from_value::<BookExamRequest>(bad)
        .unwrap()
        .into_exam()
        .unwrap_err();
    assert_eq!(err.field, "networkPolicy.allowedCidrs[2]");
    let patch = |v: serde_json::Value| {
        serde_json::from_value::<PatchExamRequest>(v)
            .unwrap()
            .into_patch()
            .unwrap()
            .network_policy
    };
    assert_eq!(patch(json!({"name": "y"})), None, "absent keeps it");
    assert_eq!(
        patch(json!({"networkPolicy": null})),
        Some(None),
        "null removes it"
    );
    assert!(matches!(
        patch(json!({"networkPolicy": {"restrictInternet": true, "allowedIps": ["10.0.0.7"]}})),
        Some(Some(p)) if p.allowed_ips.len() == 1
    ));
}
