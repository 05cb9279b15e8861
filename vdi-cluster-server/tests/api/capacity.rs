//! `GET /api/vdi/capacity-requests`: what the scale hook was asked for,
//! for operators (empty without `--scale-command`); and admission counting
//! the slots the hook may add (`--admission-counts-scalable`).

use reqwest::Method;
use serde_json::json;

use crate::common::{Cred, Setup, TestServer, slots_heartbeat};

#[tokio::test]
async fn operators_list_capacity_requests() {
    let (setup, _workers) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s.get("/api/vdi/capacity-requests").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json, json!({"requests": []}));
}

#[tokio::test]
async fn a_booking_beyond_the_fleet_fits_with_scale_up() {
    let (mut setup, _workers) = Setup::memory();
    setup.config.admission_scalable_slots = 10;
    let s = TestServer::start(setup).await;
    // 20 slots, 18 bookable with the headroom; the hook may add 10.
    let r = s
        .heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 20, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let exam = |id: &str, students: u32| {
        json!({
            "examId": id, "name": id, "students": students,
            "startsAt": "2030-06-01T08:00:00Z", "endsAt": "2030-06-01T10:00:00Z",
        })
    };
    let booked = book(&s, exam("math", 25)).await;
    assert_eq!(booked.status, 201, "{booked:?}");
    assert_eq!(booked.json["fits"], "with scale-up");
    assert_eq!(booked.json["atRisk"], false);
    let listed = s
        .send(Method::GET, "/api/vdi/exams/math", &Cred::Admin, None)
        .await;
    assert_eq!(listed.json["fits"], "with scale-up", "{listed:?}");
    // Beyond the fleet and the hook together: refused as ever.
    let refused = book(&s, exam("physics", 4)).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    // Within the fleet: a plain `true`.
    let s2 = book(
        &s,
        json!({
            "examId": "early", "name": "early", "students": 5,
            "startsAt": "2030-05-01T08:00:00Z", "endsAt": "2030-05-01T10:00:00Z",
        }),
    )
    .await;
    assert_eq!(s2.json["fits"], true, "{s2:?}");
}

async fn book(s: &TestServer, body: serde_json::Value) -> crate::common::Reply {
    s.send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&body))
        .await
}
