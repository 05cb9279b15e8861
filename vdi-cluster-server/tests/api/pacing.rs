//! Paced starts over HTTP: a booked exam's student whose start waits for
//! the worker's permit gets 202 `starting` with an estimate and reads it
//! until the desktop is up; an exam that is not booked answers so only
//! with `Prefer: respond-async`; operators read a worker's and an exam's
//! starts, and `/metrics` exports them.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::testkit::Behaviour;

use crate::common::{Cred, Reply, Setup, TestServer, slots_heartbeat};

const BOUND: Duration = Duration::from_secs(30);

async fn server() -> Arc<TestServer> {
    let (mut setup, sim) = Setup::memory();
    setup.config.pacing.enabled = true;
    setup.config.pacing.poll = Duration::from_millis(10);
    let s = TestServer::start(setup).await;
    let mut hb = slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 0);
    hb["maxConcurrentStarts"] = json!(1);
    assert_eq!(s.heartbeat(&hb).await.status, 200);
    let w = WorkerId::parse("code", "w-1").unwrap();
    sim.set_behaviour(&w, Behaviour::Slow(Duration::from_millis(400)));
    Arc::new(s)
}

async fn book(s: &TestServer, id: &str) {
    let body = json!({
        "examId": id, "name": "Paced", "students": 3,
        "startsAt": "2030-06-01T08:00:00Z", "endsAt": "2030-06-01T10:00:00Z",
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

/// Starts `user`'s request in the background and waits until its start
/// holds the worker's one permit.
async fn first_start(
    s: &Arc<TestServer>,
    exam: &str,
    user: &str,
) -> tokio::task::JoinHandle<Reply> {
    let task = {
        let (s, exam, user) = (Arc::clone(s), exam.to_owned(), user.to_owned());
        tokio::spawn(async move { s.allocate(&exam, &user).await })
    };
    let held = async {
        while s.get("/api/vdi/workers/w-1/starts").await.json["startsInFlight"] != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(BOUND, held)
        .await
        .expect("the first start runs");
    task
}

async fn session(s: &TestServer, exam: &str, user: &str) -> Value {
    let path = format!("/api/vdi/sessions/{exam}/{user}");
    let r = s.send(Method::GET, &path, &Cred::Service, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json
}

async fn until_active(s: &TestServer, exam: &str, user: &str) {
    let active = async {
        while session(s, exam, user).await["state"] != "active" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, active)
        .await
        .expect("desktop up");
}

#[tokio::test]
async fn a_waiting_start_is_answered_202_starting_then_placed() {
    let s = server().await;
    book(&s, "paced").await;
    let first = first_start(&s, "paced", "s1").await;

    let r = s.allocate("paced", "s2").await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["state"], "starting", "{r:?}");
    assert_eq!(r.json["worker"], "w-1");
    assert_eq!(r.json["startPosition"], 1);
    assert!(r.json["estimatedReadySec"].as_u64().is_some(), "{r:?}");
    let read = session(&s, "paced", "s2").await;
    assert_eq!(read["state"], "starting", "{read}");
    assert_eq!(read["worker"], "w-1");

    let first = tokio::time::timeout(BOUND, first)
        .await
        .expect("answers")
        .unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    until_active(&s, "paced", "s2").await;

    let exam = s.get("/api/vdi/exams/paced/starts").await;
    assert_eq!(exam.status, 200, "{exam:?}");
    assert_eq!(exam.json["placed"], 2, "{exam:?}");
    assert_eq!(exam.json["starting"], 0);
    assert_eq!(exam.json["workers"][0]["code"], "w-1");
    assert_eq!(exam.json["workers"][0]["maxConcurrentStarts"], 1);
    assert_eq!(exam.json["workers"][0]["measuredStarts"], 2);
    let worker = s.get("/api/vdi/workers/w-1/starts").await;
    assert_eq!(worker.json["startLimit"], 1, "{worker:?}");
    let metrics = s.send(Method::GET, "/metrics", &Cred::None, None).await;
    assert!(
        metrics
            .text
            .contains("vdi_worker_start_limit{worker=\"w-1\"} 1"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn an_unbooked_exam_is_answered_early_only_when_it_asks() {
    let s = server().await;
    let first = first_start(&s, "free", "u1").await;
    let asked = s
        .request(Method::POST, "/api/vdi/sessions")
        .header("Prefer", "respond-async");
    let asked = Cred::Service
        .apply(asked)
        .json(&json!({"examId": "free", "userId": "u2"}))
        .send()
        .await
        .unwrap();
    let asked = Reply::from(asked).await;
    assert_eq!(asked.status, 202, "{asked:?}");
    assert_eq!(asked.json["state"], "starting");
    let waited = tokio::time::timeout(BOUND, s.allocate("free", "u3"))
        .await
        .expect("answers");
    assert_eq!(waited.status, 201, "synchronous: {waited:?}");
    assert_eq!(first.await.unwrap().status, 201);
    until_active(&s, "free", "u2").await;
}

#[tokio::test]
async fn starts_of_an_unknown_worker_are_404() {
    let s = server().await;
    assert_eq!(s.get("/api/vdi/workers/w-9/starts").await.status, 404);
    let none = s.get("/api/vdi/exams/nobody/starts").await;
    assert_eq!(none.status, 200, "{none:?}");
    assert_eq!(none.json["placed"], 0);
}
