//! A student's own end over HTTP: accommodations booked with the exam,
//! `PATCH /api/vdi/sessions/{examId}/{userId}` by a proctor, admitted like
//! a booking (409 with what fits, unless forced), audited.

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

async fn patch(s: &TestServer, user: &str, body: &Value) -> crate::common::Reply {
    let path = format!("/api/vdi/sessions/math/{user}");
    s.send(Method::PATCH, &path, &Cred::Proctor, Some(body))
        .await
}

/// `math` 08:00–10:00 (12 students, two of them at +30 min, its main
/// window to 10:05) and `physics` from 10:30 (16 students, its window
/// opening at 10:15): 18 seats at 10:15, all taken.
async fn booked(s: &TestServer) {
    let math = json!({
        "examId": "math", "name": "Math", "students": 12,
        "startsAt": "2030-06-01T08:00:00Z", "endsAt": "2030-06-01T10:00:00Z",
        "extraTime": [{"extraSec": 1800, "students": 2}],
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&math))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["extraTime"][0]["students"], 2, "{r:?}");
    assert_eq!(r.json["reservedUntil"], "2030-06-01T10:35:00Z", "{r:?}");
    let physics = json!({
        "examId": "physics", "name": "Physics", "students": 16,
        "startsAt": "2030-06-01T10:30:00Z", "endsAt": "2030-06-01T11:30:00Z",
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&physics))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

#[tokio::test]
async fn an_extension_is_granted_while_it_fits_and_refused_with_what_would() {
    let s = server_with_20_slots().await;
    booked(&s).await;
    // Two students take the booked seats.
    for user in ["s1", "s2"] {
        let r = patch(
            &s,
            user,
            &json!({"extendSec": 1800, "reason": "accommodation"}),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json["endsAt"], "2030-06-01T10:30:00Z", "{r:?}");
        assert_eq!(r.json["examEndsAt"], "2030-06-01T10:00:00Z", "{r:?}");
        assert_eq!(r.json["extraSec"], 1800, "{r:?}");
    }
    // A third needs a seat of its own past 10:15, when physics takes all.
    let r = patch(&s, "s3", &json!({"extendSec": 3600, "reason": "incident"})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.json["shortfall"], 1, "{r:?}");
    assert_eq!(r.json["peakAt"], "2030-06-01T10:15:00Z", "{r:?}");
    assert_eq!(r.json["currentExtraSec"], 0, "{r:?}");
    assert_eq!(r.json["fitsExtendSec"], 600, "{r:?}");
    // What fits is granted.
    let r = patch(&s, "s3", &json!({"extendSec": 600, "reason": "incident"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // A later booking sees the extended seats as taken.
    let r = patch(
        &s,
        "s4",
        &json!({"endsAt": "2030-06-01T10:10:00Z", "reason": "incident"}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let chem = json!({
        "examId": "chem", "name": "Chem", "students": 15,
        "startsAt": "2030-06-01T10:10:00Z", "endsAt": "2030-06-01T10:14:00Z",
        "prewarm": {"leadSec": 0}, "teardownSec": 0,
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&chem))
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    // math holds 4 seats at 10:10 (two booked, s3's and s4's).
    assert_eq!(r.json["demand"], 4 + 15, "{r:?}");
    // Forced with a reason, it is written and audited as forced.
    let r = patch(
        &s,
        "s3",
        &json!({"extendSec": 3000, "reason": "court order", "force": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["extraSec"], 3600, "{r:?}");
    let audit = s.get("/api/vdi/audit").await;
    let forced = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session-end" && e["detail"]["forced"] == true)
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(forced["target"], "math/s3", "{forced}");
    assert_eq!(forced["detail"]["reason"], "court order", "{forced}");
    assert_eq!(forced["detail"]["shortfall"], 1, "{forced}");
    // The exam's end takes the extension away.
    let r = patch(
        &s,
        "s3",
        &json!({"endsAt": "2030-06-01T10:00:00Z", "reason": "withdrawn"}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["extraSec"], 0, "{r:?}");
    let r = s.get("/api/vdi/exams/math").await;
    let named: Vec<&str> = r.json["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["userId"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["s1", "s2", "s4"], "{r:?}");
}

#[tokio::test]
async fn bad_changes_name_the_field() {
    let s = server_with_20_slots().await;
    booked(&s).await;
    let field = |r: &crate::common::Reply| r.json["field"].as_str().map(str::to_owned);
    for (body, status, name) in [
        (json!({"extendSec": 0, "reason": "r"}), 422, "extendSec"),
        (json!({"extendSec": 86401, "reason": "r"}), 422, "extendSec"),
        (
            json!({"extendSec": 1, "endsAt": "2030-06-01T10:10:00Z", "reason": "r"}),
            422,
            "extendSec",
        ),
        (json!({"reason": "r"}), 422, "extendSec"),
        (
            json!({"endsAt": "2030-06-01T09:00:00Z", "reason": "r"}),
            422,
            "endsAt",
        ),
        (json!({"endsAt": "tomorrow", "reason": "r"}), 422, "endsAt"),
        (json!({"extendSec": 60, "reason": " "}), 422, "reason"),
    ] {
        let r = patch(&s, "s1", &body).await;
        assert_eq!(r.status, status, "{body}: {r:?}");
        assert_eq!(field(&r).as_deref(), Some(name), "{body}: {r:?}");
    }
    let r = patch(&s, "s1", &json!({"extendSec": 60})).await;
    assert!(matches!(r.status, 400 | 422), "{r:?}");
    let r = s
        .send(
            Method::PATCH,
            "/api/vdi/sessions/nope/s1",
            &Cred::Admin,
            Some(&json!({"extendSec": 60, "reason": "r"})),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = s
        .send(
            Method::PATCH,
            "/api/vdi/sessions/math/s1",
            &Cred::Service,
            Some(&json!({"extendSec": 60, "reason": "r"})),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let bad = json!({
        "examId": "bio", "name": "Bio", "students": 1,
        "startsAt": "2030-06-02T08:00:00Z", "endsAt": "2030-06-02T10:00:00Z",
        "extensions": [{"userId": "a", "extraSec": 60}, {"userId": "b", "extraSec": 60}],
    });
    let r = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&bad))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(field(&r).as_deref(), Some("extensions"), "{r:?}");
}
