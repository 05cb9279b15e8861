//! An exam's rehearsal over HTTP: an ADMIN runs it, every worker's check
//! is in the go / no-go report that ADMIN and PROCTOR read, a failing
//! worker is named with its reason and left out of the exam's
//! placements, a re-check that passes brings it back, the webhook type is
//! known, and bad ids are refused naming the field.

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::testkit::CheckBehaviour;

use crate::common::{Cred, Setup, TestServer, slots_heartbeat};

const EXAM: &str = "exam-reh";

async fn server() -> (TestServer, vdi_cluster_core::testkit::SimulatedWorkers) {
    let (setup, sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    for code in ["w-1", "w-2"] {
        let r = s
            .heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let body = json!({
        "examId": EXAM, "name": "Rehearsed", "students": 6,
        "startsAt": "2030-06-01T08:00:00Z", "endsAt": "2030-06-01T10:00:00Z",
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    (s, sim)
}

fn path() -> String {
    format!("/api/vdi/exams/{EXAM}/rehearsal")
}

#[tokio::test]
async fn a_failing_worker_is_named_and_left_out_until_a_recheck_passes() {
    let (s, sim) = server().await;
    let w2 = WorkerId::parse("code", "w-2").unwrap();
    sim.set_check(&w2, CheckBehaviour::ImageMissing);

    let before = s.send(Method::GET, &path(), &Cred::Admin, None).await;
    assert_eq!(before.status, 200, "{before:?}");
    assert_eq!(before.json["verdict"], "notRehearsed", "{before:?}");
    assert_eq!(before.json["workers"], json!([]));

    let run = s.send(Method::POST, &path(), &Cred::Admin, None).await;
    assert_eq!(run.status, 200, "{run:?}");
    assert_eq!(run.json["verdict"], "noGo", "{run:?}");
    assert_eq!(run.json["passed"], 1);
    assert_eq!(run.json["fitsWithoutFailing"], false);
    assert_eq!(run.json["failing"][0]["worker"], "w-2");
    assert_eq!(run.json["failing"][0]["outcome"], "imageMissing");
    assert_eq!(run.json["failing"][0]["excluded"], true);
    assert_eq!(run.json["workers"].as_array().unwrap().len(), 2);

    let read = s.send(Method::GET, &path(), &Cred::Proctor, None).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json["failing"], run.json["failing"]);

    for user in ["s1", "s2", "s3"] {
        let placed = s.allocate(EXAM, user).await;
        assert_eq!(placed.status, 201, "{placed:?}");
        assert_eq!(placed.json["workerCode"], "w-1", "{placed:?}");
    }

    sim.set_check(&w2, CheckBehaviour::Passes);
    let again = s
        .send(
            Method::POST,
            &format!("{}/workers/w-2", path()),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json["verdict"], "go", "{again:?}");
    assert_eq!(again.json["failing"], json!([]));
    assert_eq!(again.json["run"], 1);

    let audit = s
        .send(Method::GET, "/api/vdi/audit", &Cred::Admin, None)
        .await;
    let actions: Vec<&str> = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"rehearsal"), "{actions:?}");
    assert!(actions.contains(&"rehearsal-recheck"), "{actions:?}");
}

#[tokio::test]
async fn only_an_admin_runs_it_and_bad_ids_name_the_field() {
    let (s, _sim) = server().await;
    let denied = s.send(Method::POST, &path(), &Cred::Proctor, None).await;
    assert_eq!(denied.status, 403, "{denied:?}");
    let anonymous = s.send(Method::GET, &path(), &Cred::None, None).await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    let unknown = s
        .send(
            Method::POST,
            "/api/vdi/exams/nope/rehearsal",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let too_long = "x".repeat(129);
    let bad = s
        .send(
            Method::GET,
            &format!("/api/vdi/exams/{too_long}/rehearsal"),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert_eq!(bad.json["field"], "examId", "{bad:?}");

    let never = s
        .send(
            Method::POST,
            &format!("{}/workers/w-1", path()),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(never.status, 422, "{never:?}");
    assert_eq!(never.json["field"], "examId", "{never:?}");

    assert_eq!(
        s.send(Method::POST, &path(), &Cred::Admin, None)
            .await
            .status,
        200
    );
    let bad_worker = s
        .send(
            Method::POST,
            &format!("{}/workers/{}", path(), "w".repeat(65)),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(bad_worker.status, 422, "{bad_worker:?}");
    assert_eq!(bad_worker.json["field"], "code", "{bad_worker:?}");
    let gone = s
        .send(
            Method::POST,
            &format!("{}/workers/w-9", path()),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(gone.status, 404, "{gone:?}");
}

#[tokio::test]
async fn the_webhook_type_is_offered() {
    let (s, _sim) = server().await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["exam.rehearsal_failed"]});
    let r = s
        .send(Method::POST, "/api/vdi/webhooks", &Cred::Admin, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}
