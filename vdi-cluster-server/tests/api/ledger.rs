//! The disruption ledger over HTTP: a student moved off a silent worker
//! has a `workerLost` entry in the session's `GET` with the time since the
//! worker's last heartbeat, and the exam's ledger lists them as JSON and
//! CSV (by `format` or `Accept`), sorted, in the exam's figures too, and
//! in `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::ACCEPT;
use serde_json::Value;
use vdi_cluster_core::{Clock, ManualClock, Timestamp};

use vdi_cluster_server::auth::Role;

use crate::common::{Cred, Setup, TestServer, jwt, slots_heartbeat};

const SILENCE: Duration = Duration::from_secs(300);

/// Three workers; `sv-1` and `sv-2` are placed on one of them, which then
/// goes silent past the heartbeat TTL while the others keep reporting;
/// `sv-1` comes back and is moved.
async fn one_student_moved() -> (TestServer, String) {
    let (setup, _workers) = Setup::memory();
    let clock = ManualClock::new(Timestamp(1_900_000_000_000));
    let s =
        TestServer::start_with_clock(setup, Some(Arc::new(clock.clone()) as Arc<dyn Clock>)).await;
    for code in ["w-1", "w-2", "w-3"] {
        let r = s
            .heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let placed = s.allocate("exam-l", "sv-1").await;
    assert_eq!(placed.status, 201, "{placed:?}");
    let lost_worker = placed.json["workerCode"].as_str().unwrap().to_owned();
    clock.advance(SILENCE);
    for code in ["w-1", "w-2", "w-3"].iter().filter(|c| **c != lost_worker) {
        let r = s
            .heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let moved = s.allocate("exam-l", "sv-1").await;
    assert_eq!(moved.json["outcome"], "redispatched", "{moved:?}");
    (s, lost_worker)
}

#[tokio::test]
async fn a_moved_student_has_a_worker_lost_entry_in_the_session() {
    let (s, lost_worker) = one_student_moved().await;
    let got = s
        .send(
            Method::GET,
            "/api/vdi/sessions/exam-l/sv-1",
            &Cred::Service,
            None,
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    let entries = got.json["disruptions"].as_array().expect("disruptions");
    assert_eq!(entries.len(), 1, "{got:?}");
    let e = &entries[0];
    assert_eq!(e["kind"], "workerLost");
    assert_eq!(e["lostSec"].as_f64(), Some(SILENCE.as_secs_f64()));
    assert_eq!(e["workers"][0], lost_worker.as_str());
    assert_eq!(e["workers"][1], got.json["workerCode"]);
    assert_eq!(e["cause"], got.json["dispatchId"]);
    assert_eq!(
        e["endedAt"].as_u64().unwrap() - e["startedAt"].as_u64().unwrap(),
        300_000
    );
    assert_eq!(got.json["lostSec"].as_f64(), Some(SILENCE.as_secs_f64()));

    let fresh = s.allocate("exam-l", "sv-9").await;
    assert_eq!(fresh.status, 201);
    let clean = s
        .send(
            Method::GET,
            "/api/vdi/sessions/exam-l/sv-9",
            &Cred::Service,
            None,
        )
        .await;
    assert_eq!(clean.json["disruptions"], Value::Array(Vec::new()));
    assert_eq!(clean.json["lostSec"].as_f64(), Some(0.0));
}

#[tokio::test]
async fn the_exam_ledger_lists_students_with_lost_time_as_json_and_csv() {
    let (s, _) = one_student_moved().await;
    let placed = s.allocate("exam-l", "sv-2").await;
    assert_eq!(placed.status, 201);

    let json = s
        .send(
            Method::GET,
            "/api/vdi/exams/exam-l/disruptions",
            &Cred::Proctor,
            None,
        )
        .await;
    assert_eq!(json.status, 200, "{json:?}");
    let students = json.json["students"].as_array().unwrap();
    assert_eq!(students.len(), 1, "only students with lost time: {json:?}");
    assert_eq!(students[0]["userId"], "sv-1");
    assert_eq!(students[0]["lostSec"].as_f64(), Some(300.0));
    assert_eq!(students[0]["kinds"][0], "workerLost");
    assert_eq!(json.json["totalLostSec"].as_f64(), Some(300.0));
    assert_eq!(json.json["medianLostSec"].as_f64(), Some(300.0));
    assert_eq!(json.json["maxLostSec"].as_f64(), Some(300.0));

    for csv in [
        s.request(Method::GET, "/api/vdi/exams/exam-l/disruptions?format=csv")
            .bearer_auth(jwt("proctor", &[Role::Proctor]))
            .send()
            .await
            .unwrap(),
        s.request(Method::GET, "/api/vdi/exams/exam-l/disruptions?sort=userId")
            .bearer_auth(jwt("admin", &[Role::Admin]))
            .header(ACCEPT, "text/csv")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(csv.status(), 200);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let body = csv.text().await.unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(
            lines[0],
            "userId,lostSec,kinds,disruptions,firstStartedAt,lastEndedAt"
        );
        assert!(lines[1].starts_with("sv-1,300,workerLost,1,"), "{body}");
        assert_eq!(lines.len(), 2, "{body}");
    }

    let bad = s
        .send(
            Method::GET,
            "/api/vdi/exams/exam-l/disruptions?sort=size",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert!(bad.error_message().contains("sort"), "{bad:?}");
    let student = s
        .send(
            Method::GET,
            "/api/vdi/exams/exam-l/disruptions",
            &Cred::Service,
            None,
        )
        .await;
    assert_eq!(student.status, 403, "operators only: {student:?}");
}
