//! Scheduled drains over HTTP: scheduled at an instant or at the next
//! window, listed by time, cancelled once; bad input is a 4xx naming the
//! field.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, TestServer};
use crate::maintenance::exam_under_way;

async fn schedule(s: &TestServer, code: &str, body: Value) -> crate::common::Reply {
    s.send(
        Method::POST,
        &format!("/api/vdi/workers/{code}/scheduled-drains"),
        &Cred::Admin,
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn drains_are_scheduled_listed_and_cancelled() {
    // 07:50, an exam from 08:00 to 10:00 (its window ends at 10:05) needs
    // both workers.
    let s = exam_under_way().await;
    let next = schedule(
        &s,
        "w-1",
        json!({"window": "next", "duration": "PT2H", "reason": "firmware"}),
    )
    .await;
    assert_eq!(next.status, 201, "{next:?}");
    assert_eq!(next.json["at"], "2030-06-01T10:05:00Z", "after the exam");
    assert_eq!(next.json["state"], "pending");
    assert_eq!(next.json["actor"], "admin-1");
    let at = schedule(
        &s,
        "w-2",
        json!({"at": "2030-06-01T09:00:00Z", "reason": "disk"}),
    )
    .await;
    assert_eq!(at.status, 201, "{at:?}");
    let fleet = s
        .send(Method::GET, "/api/vdi/scheduled-drains", &Cred::Admin, None)
        .await;
    let workers: Vec<&str> = fleet.json["drains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["worker"].as_str().unwrap())
        .collect();
    assert_eq!(workers, ["w-2", "w-1"], "by time: {fleet:?}");

    for (body, field) in [
        (json!({"at": "2030-06-01T07:00:00Z", "reason": "r"}), "at"),
        (json!({"at": "tomorrow", "reason": "r"}), "at"),
        (json!({"window": "next", "reason": "r"}), "duration"),
        (
            json!({"window": "next", "duration": "PT2S", "reason": "r"}),
            "duration",
        ),
        (json!({"reason": "r"}), "at"),
        (
            json!({"at": "2030-06-01T09:00:00Z", "reason": ""}),
            "reason",
        ),
    ] {
        let r = schedule(&s, "w-1", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {r:?}");
        assert_eq!(r.json["field"], field, "{body}: {r:?}");
    }
    // A body without a required field does not decode: 400.
    let missing = schedule(&s, "w-1", json!({"at": "2030-06-01T09:00:00Z"})).await;
    assert_eq!(missing.status, 400, "{missing:?}");
    assert_eq!(missing.json["field"], "reason", "{missing:?}");
    let unknown = schedule(
        &s,
        "w-9",
        json!({"at": "2030-06-01T09:00:00Z", "reason": "r"}),
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let id = next.json["id"].as_str().unwrap();
    let path = format!("/api/vdi/workers/w-1/scheduled-drains/{id}");
    let cancelled = s.send(Method::DELETE, &path, &Cred::Admin, None).await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!(cancelled.json["state"], "cancelled");
    let again = s.send(Method::DELETE, &path, &Cred::Admin, None).await;
    assert_eq!(again.status, 409, "{again:?}");
    let other = format!("/api/vdi/workers/w-2/scheduled-drains/{id}");
    let elsewhere = s.send(Method::DELETE, &other, &Cred::Admin, None).await;
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");
    let left = s
        .send(
            Method::GET,
            "/api/vdi/workers/w-1/scheduled-drains",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(left.json["drains"], json!([]), "{left:?}");
}
