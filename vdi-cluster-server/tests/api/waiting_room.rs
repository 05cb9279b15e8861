//! The waiting room over HTTP: a booked exam's students beyond capacity
//! get 202 with their position, poll it, leave it, and are placed in order
//! when a slot frees; operators see the queue; exams that are not booked
//! (or queue nobody) keep 503.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Reply, Setup, TestServer, slots_heartbeat};

/// A server with one worker of `slots` slots.
async fn server(slots: u32) -> TestServer {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s
        .heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", slots, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    s
}

async fn book(s: &TestServer, id: &str, queue: bool) {
    let body = json!({
        "examId": id,
        "name": "Waiting room",
        "startsAt": "2030-06-01T08:00:00Z",
        "endsAt": "2030-06-01T10:00:00Z",
        "students": 1,
        "queue": queue,
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

async fn get(s: &TestServer, exam: &str, user: &str) -> Reply {
    s.send(
        Method::GET,
        &format!("/api/vdi/sessions/{exam}/{user}"),
        &Cred::Service,
        None,
    )
    .await
}

async fn queue(s: &TestServer, exam: &str, cred: &Cred) -> Reply {
    s.send(
        Method::GET,
        &format!("/api/vdi/exams/{exam}/queue"),
        cred,
        None,
    )
    .await
}

fn waiting(r: &Reply) -> Vec<(u64, String)> {
    r.json["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["position"].as_u64().unwrap(),
                w["userId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_queued(r: &Reply, position: u64) {
    assert_eq!(r.json["state"], "queued", "{r:?}");
    assert_eq!(r.json["position"], position, "{r:?}");
    assert!(r.json["estimatedWaitSec"].as_u64().is_some(), "{r:?}");
}

#[tokio::test]
async fn students_beyond_capacity_queue_and_are_placed_in_order() {
    let s = server(2).await;
    book(&s, "wr", true).await;
    for user in ["s1", "s2"] {
        let r = s.allocate("wr", user).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let s3 = s.allocate("wr", "s3").await;
    assert_eq!(s3.status, 202, "{s3:?}");
    assert_queued(&s3, 1);
    let s4 = s.allocate("wr", "s4").await;
    assert_eq!(s4.status, 202, "{s4:?}");
    assert_queued(&s4, 2);
    let again = s.allocate("wr", "s3").await;
    assert_eq!(
        again.status, 202,
        "a repeated request keeps the place: {again:?}"
    );
    assert_queued(&again, 1);

    let polled = get(&s, "wr", "s4").await;
    assert_eq!(polled.status, 200, "{polled:?}");
    assert_queued(&polled, 2);

    let q = queue(&s, "wr", &Cred::Proctor).await;
    assert_eq!(q.status, 200, "{q:?}");
    assert_eq!(waiting(&q), vec![(1, "s3".into()), (2, "s4".into())]);
    assert_eq!(q.json["queued"], 2);
    let detail = s
        .send(Method::GET, "/api/vdi/exams/wr", &Cred::Admin, None)
        .await;
    assert_eq!(detail.json["figures"]["queued"], 2, "{detail:?}");

    // s4 leaves the queue; s1 submits: its slot goes to s3.
    let left = s.release("wr", "s4").await;
    assert_eq!(left.status, 200, "{left:?}");
    assert_eq!(
        (
            left.json["leftQueue"].clone(),
            left.json["released"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(get(&s, "wr", "s4").await.status, 404);
    let released = s.release("wr", "s1").await;
    assert_eq!(released.json["released"], true, "{released:?}");
    let placed = wait_placed(&s, "wr", "s3").await;
    assert_eq!(placed.json["workerCode"], "w-1", "{placed:?}");

    let q = queue(&s, "wr", &Cred::Admin).await;
    assert_eq!(waiting(&q), vec![]);
    assert_eq!(
        (q.json["placedTotal"].clone(), q.json["queued"].clone()),
        (json!(1), json!(0))
    );
    let detail = s
        .send(Method::GET, "/api/vdi/exams/wr", &Cred::Admin, None)
        .await;
    assert_eq!(detail.json["figures"]["placedFromQueue"], 1, "{detail:?}");

    // Full again: the next arrival waits at the head.
    let s5 = s.allocate("wr", "s5").await;
    assert_eq!(s5.status, 202, "{s5:?}");
    assert_queued(&s5, 1);
}

/// Polls the session until the student is placed.
async fn wait_placed(s: &TestServer, exam: &str, user: &str) -> Reply {
    let mut last = None;
    let placed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let r = get(s, exam, user).await;
            if r.status == 200 && r.json["state"] != "queued" {
                return r;
            }
            last = Some(r);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    placed.unwrap_or_else(|_| panic!("{user} never placed: {last:?}"))
}

#[tokio::test]
async fn the_queue_is_for_operators_only() {
    let s = server(2).await;
    book(&s, "wr", true).await;
    assert_eq!(queue(&s, "wr", &Cred::Service).await.status, 403);
    assert_eq!(
        queue(&s, "wr", &Cred::Student("s1".into())).await.status,
        403
    );
    assert_eq!(queue(&s, "wr", &Cred::None).await.status, 401);
    let empty = queue(&s, "never-queued", &Cred::Proctor).await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_eq!(empty.json["queued"], 0);
}

#[tokio::test]
async fn exams_not_booked_or_without_a_queue_keep_503() {
    let s = server(2).await;
    book(&s, "no-queue", false).await;
    for exam in ["not-booked", "no-queue"] {
        for user in ["a", "b"] {
            let placed = s.allocate(exam, user).await;
            assert_eq!(placed.status, 201, "{placed:?}");
        }
        let r = s.allocate(exam, "c").await;
        assert_eq!(r.status, 503, "{exam}: {r:?}");
        assert!(r.headers.contains_key("retry-after"), "{r:?}");
        for user in ["a", "b"] {
            let released = s.release(exam, user).await;
            assert_eq!(released.json["released"], true);
        }
    }
    let q = queue(&s, "no-queue", &Cred::Admin).await;
    assert_eq!(q.json["queued"], 0, "{q:?}");
}

#[tokio::test]
async fn bad_ids_name_the_field() {
    let s = server(2).await;
    let r = queue(&s, "%20bad", &Cred::Admin).await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json["field"], "examId", "{r:?}");
    let _: Value = r.json;
}
