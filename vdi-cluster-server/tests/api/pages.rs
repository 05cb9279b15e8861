//! Paginated lists: `limit` and `offset` page through the workers, the
//! calendar, an exam's queue, the audit trail and a webhook's deliveries
//! in a stable order, answer the whole list's `total`, and a bad value is
//! refused naming the parameter.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Reply, Setup, TestServer, slots_heartbeat};

fn field_of(list: &Reply, items: &str, field: &str) -> Vec<String> {
    list.json[items]
        .as_array()
        .unwrap_or_else(|| panic!("{list:?}"))
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

async fn ok(s: &TestServer, path: &str) -> Reply {
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r
}

async fn refused(s: &TestServer, path: &str, status: u16, field: &str) {
    let r = s.get(path).await;
    assert_eq!(r.status, status, "{path}: {r:?}");
    assert_eq!(r.json["field"], field, "{path}: {r:?}");
    assert!(r.error_message().contains(field), "{path}: {r:?}");
}

#[tokio::test]
async fn workers_page_by_code_with_the_filters_total() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    for i in [3, 1, 5, 2, 4] {
        let mut hb = slots_heartbeat(&format!("w-{i}"), "http://127.0.0.1:1", 4, 0);
        hb["zone"] = json!(if i % 2 == 0 { "even" } else { "odd" });
        assert_eq!(s.heartbeat(&hb).await.status, 200);
    }
    // Without limit: every worker, as before (SkyPanelV2's and the exam
    // platform's `{"workers", "total"}`).
    let all = ok(&s, "/api/vdi/workers").await;
    assert_eq!(
        field_of(&all, "workers", "code"),
        ["w-1", "w-2", "w-3", "w-4", "w-5"]
    );
    assert_eq!(
        (all.json["total"].clone(), all.json["offset"].clone()),
        (json!(5), json!(0))
    );
    assert!(all.json.get("limit").is_none(), "{all:?}");

    let first = ok(&s, "/api/vdi/workers?limit=2").await;
    assert_eq!(field_of(&first, "workers", "code"), ["w-1", "w-2"]);
    let second = ok(&s, "/api/vdi/workers?limit=2&offset=2").await;
    assert_eq!(field_of(&second, "workers", "code"), ["w-3", "w-4"]);
    assert_eq!(second.json["total"], 5);
    assert_eq!(second.json["limit"], 2);
    assert_eq!(second.json["offset"], 2);
    let last = ok(&s, "/api/vdi/workers?offset=4&limit=2").await;
    assert_eq!(field_of(&last, "workers", "code"), ["w-5"]);
    let past = ok(&s, "/api/vdi/workers?offset=40").await;
    assert_eq!(
        (past.json["workers"].clone(), past.json["total"].clone()),
        (json!([]), json!(5))
    );

    // The filters apply before the page; the total counts what passes.
    let odd = ok(&s, "/api/vdi/workers?zone=odd&limit=2&offset=1").await;
    assert_eq!(field_of(&odd, "workers", "code"), ["w-3", "w-5"]);
    assert_eq!(odd.json["total"], 3);

    refused(&s, "/api/vdi/workers?limit=0", 422, "limit").await;
    refused(&s, "/api/vdi/workers?limit=1001", 422, "limit").await;
    refused(&s, "/api/vdi/workers?offset=1000001", 422, "offset").await;
    refused(&s, "/api/vdi/workers?limit=two", 400, "limit").await;
    refused(&s, "/api/vdi/workers?offset=-1", 400, "offset").await;
    refused(&s, "/api/vdi/workers?zone=odd&page=2", 400, "page").await;
    s.stop().await;
}

#[tokio::test]
async fn the_audit_trail_pages_newest_first() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    assert_eq!(
        s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 0))
            .await
            .status,
        200
    );
    for i in 0..3 {
        let drain = s.patch_worker("w-1", &json!({"isDraining": true})).await;
        assert_eq!(drain.status, 200, "{i}: {drain:?}");
        let activate = s.patch_worker("w-1", &json!({"isDraining": false})).await;
        assert_eq!(activate.status, 200, "{i}: {activate:?}");
    }
    let all = ok(&s, "/api/vdi/audit").await;
    let total = all.json["total"].as_u64().unwrap();
    assert!(total >= 6, "{all:?}");
    assert_eq!(all.json["limit"], 100, "the default");
    let actions = |r: &Reply| field_of(r, "entries", "action");
    let first = ok(&s, "/api/vdi/audit?limit=2").await;
    let second = ok(&s, "/api/vdi/audit?limit=2&offset=2").await;
    assert_eq!(actions(&first), actions(&all)[..2]);
    assert_eq!(actions(&second), actions(&all)[2..4]);
    assert_eq!(second.json["total"], total);
    refused(&s, "/api/vdi/audit?offset=x", 400, "offset").await;
    refused(&s, "/api/vdi/audit?limit=5000", 422, "limit").await;
    s.stop().await;
}

#[tokio::test]
async fn a_webhooks_deliveries_page_newest_first() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let created = s
        .send(
            Method::POST,
            "/api/vdi/webhooks",
            &Cred::Admin,
            Some(&json!({"url": "http://127.0.0.1:9/hook",
                         "eventTypes": ["worker.policy_changed"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.heartbeat(&slots_heartbeat("w-hook", "http://127.0.0.1:1", 4, 1))
            .await
            .status,
        200
    );
    for draining in [true, false, true] {
        let r = s
            .patch_worker("w-hook", &json!({"isDraining": draining}))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let path = format!("/api/vdi/webhooks/{id}/deliveries");
    let all = ok(&s, &path).await;
    let ids = |r: &Reply| field_of(r, "deliveries", "id");
    assert_eq!(ids(&all).len(), 3, "{all:?}");
    assert_eq!(all.json["limit"], 50, "the default");
    let first = ok(&s, &format!("{path}?limit=2")).await;
    let second = ok(&s, &format!("{path}?limit=2&offset=2")).await;
    assert_eq!(ids(&first), ids(&all)[..2]);
    assert_eq!(ids(&second), ids(&all)[2..]);
    assert_eq!(second.json["total"], 3);
    refused(&s, &format!("{path}?offset=1000001"), 422, "offset").await;
    s.stop().await;
}

fn exam(id: &str, starts_at: &str) -> Value {
    json!({
        "examId": id, "name": format!("Exam {id}"), "startsAt": starts_at,
        "endsAt": "2030-06-01T18:00:00Z", "students": 1,
    })
}

#[tokio::test]
async fn the_calendar_and_a_queue_page() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    assert_eq!(
        s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 20, 0))
            .await
            .status,
        200
    );
    for (id, start) in [
        ("c", "2030-06-01T08:00:00Z"),
        ("b", "2030-06-01T09:00:00Z"),
        ("a", "2030-06-01T08:00:00Z"),
    ] {
        let r = s
            .send(
                Method::POST,
                "/api/vdi/exams",
                &Cred::Admin,
                Some(&exam(id, start)),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    // By start, then id.
    let all = ok(&s, "/api/vdi/exams").await;
    assert_eq!(field_of(&all, "exams", "examId"), ["a", "c", "b"]);
    let page = ok(
        &s,
        "/api/vdi/exams?from=2030-01-01T00:00:00Z&limit=1&offset=1",
    )
    .await;
    assert_eq!(field_of(&page, "exams", "examId"), ["c"]);
    assert_eq!(page.json["total"], 3);
    refused(&s, "/api/vdi/exams?limit=0", 422, "limit").await;
    refused(
        &s,
        "/api/vdi/exams?from=2030-01-01T00:00:00Z&offset=z",
        400,
        "offset",
    )
    .await;

    let queue = ok(&s, "/api/vdi/exams/a/queue?limit=10").await;
    assert_eq!(queue.json["waiting"], json!([]));
    assert_eq!(
        (queue.json["total"].clone(), queue.json["limit"].clone()),
        (json!(0), json!(10))
    );
    refused(&s, "/api/vdi/exams/a/queue?limit=abc", 400, "limit").await;
    s.stop().await;
}
