//! Exams over HTTP: booking with admission control (invariant D), the
//! organiser's answer when an exam does not fit, re-admission on change,
//! and exams flagged at risk when capacity falls.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Setup, TestServer, slots_heartbeat};

/// One worker of 20 slots: 18 bookable with the default 10 % headroom.
async fn server_with_20_slots() -> TestServer {
    let (setup, _workers) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s
        .heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 20, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    s
}

fn exam(id: &str, starts_at: &str, ends_at: &str, students: u32) -> Value {
    json!({
        "examId": id,
        "name": format!("Exam {id}"),
        "startsAt": starts_at,
        "endsAt": ends_at,
        "students": students,
    })
}

async fn book(s: &TestServer, body: &Value) -> crate::common::Reply {
    s.send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(body))
        .await
}

#[tokio::test]
async fn an_exam_that_does_not_fit_gets_a_start_that_does() {
    let s = server_with_20_slots().await;
    let a = book(
        &s,
        &exam("math", "2030-06-01T08:00:00Z", "2030-06-01T10:00:00Z", 12),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.json["fits"], true);

    // An offset is accepted: 09:00+07:00 is 02:00Z, no overlap, it fits.
    let elsewhere = book(
        &s,
        &exam(
            "physics",
            "2030-06-01T09:00:00+07:00",
            "2030-06-01T11:00:00+07:00",
            10,
        ),
    )
    .await;
    assert_eq!(elsewhere.status, 201, "{elsewhere:?}");

    // Overlapping hours, 10 more students: 22 > 18.
    let r = book(
        &s,
        &exam("chem", "2030-06-01T08:30:00Z", "2030-06-01T10:30:00Z", 10),
    )
    .await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.json["shortfall"], 4, "{r:?}");
    assert_eq!(r.json["demand"], 22, "{r:?}");
    let overlapping: Vec<&str> = r.json["overlapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["examId"].as_str().unwrap())
        .collect();
    assert!(
        overlapping.contains(&"math") && overlapping.contains(&"chem"),
        "{r:?}"
    );
    let start = r.json["earliestStart"]
        .as_str()
        .expect("a suggestion")
        .to_owned();

    // The suggested start, same length, is accepted.
    let later = book(&s, &exam("chem", &start, &shift_end(&start), 10)).await;
    assert_eq!(later.status, 201, "{later:?}");

    let calendar = s.get("/api/vdi/exams").await;
    assert_eq!(calendar.status, 200, "{calendar:?}");
    assert_eq!(calendar.json["exams"].as_array().unwrap().len(), 3);
    s.stop().await;
}

/// `start` plus two hours, for an exam of the same length as `chem`'s.
fn shift_end(start: &str) -> String {
    let (date, rest) = start.split_once('T').unwrap();
    let hour: u32 = rest[..2].parse().unwrap();
    assert!(hour + 2 < 24, "suggestion too late in the day: {start}");
    format!("{date}T{:02}{}", hour + 2, &rest[2..])
}

#[tokio::test]
async fn concurrent_bookings_that_fit_alone_but_not_together_admit_one() {
    let s = server_with_20_slots().await;
    let bodies: Vec<Value> = (0..6)
        .map(|i| {
            exam(
                &format!("e{i}"),
                "2030-07-01T08:00:00Z",
                "2030-07-01T09:00:00Z",
                10,
            )
        })
        .collect();
    let answers = futures::future::join_all(bodies.iter().map(|b| book(&s, b))).await;
    let accepted = answers.iter().filter(|r| r.status == 201).count();
    let refused = answers.iter().filter(|r| r.status == 409).count();
    assert_eq!((accepted, refused), (1, 5), "{answers:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_change_is_readmitted_and_a_drain_puts_exams_at_risk() {
    let s = server_with_20_slots().await;
    let r = book(
        &s,
        &exam("bio", "2030-08-01T08:00:00Z", "2030-08-01T09:00:00Z", 10),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");

    let grow = |n: u32| json!({ "students": n });
    let r = s
        .send(
            Method::PATCH,
            "/api/vdi/exams/bio",
            &Cred::Admin,
            Some(&grow(19)),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = s
        .send(
            Method::PATCH,
            "/api/vdi/exams/bio",
            &Cred::Admin,
            Some(&grow(18)),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["students"], 18);

    // The only worker drains: the exam no longer fits.
    let r = s.patch_worker("w-1", &json!({"isDraining": true})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let detail = s.get("/api/vdi/exams/bio").await;
    assert_eq!(detail.status, 200, "{detail:?}");
    assert_eq!(detail.json["atRisk"], true, "{detail:?}");
    assert_eq!(detail.json["fits"], false, "{detail:?}");
    assert_eq!(detail.json["figures"]["bookedStudents"], 18, "{detail:?}");

    // Cancelling frees it; an unknown exam is a 404.
    let r = s
        .send(Method::DELETE, "/api/vdi/exams/bio", &Cred::Admin, None)
        .await;
    assert!(r.status == 200 || r.status == 204, "{r:?}");
    assert_eq!(s.get("/api/vdi/exams/bio").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn bad_bookings_name_the_field() {
    let s = server_with_20_slots().await;
    let mut body = exam("x", "2030-06-01T10:00:00Z", "2030-06-01T09:00:00Z", 5);
    let r = book(&s, &body).await;
    assert!(r.status == 400 || r.status == 422, "{r:?}");
    assert_eq!(r.json["field"], "endsAt", "{r:?}");
    body["endsAt"] = json!("tomorrow");
    let r = book(&s, &body).await;
    assert!(r.status == 400 || r.status == 422, "{r:?}");
    assert_eq!(r.json["field"], "endsAt", "{r:?}");
    // Proctors may read the calendar, not book.
    let ok = exam("y", "2030-06-01T08:00:00Z", "2030-06-01T09:00:00Z", 5);
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Proctor, Some(&ok))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        s.get("/api/vdi/exams?from=2030-01-01T00:00:00Z")
            .await
            .status
            == 200
    );
    s.stop().await;
}
