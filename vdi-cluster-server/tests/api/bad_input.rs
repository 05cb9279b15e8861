//! Hostile and broken input: always a 4xx naming the field, never a 5xx,
//! and nothing written.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Reply, Setup, TestServer, exam_platform_heartbeat, slots_heartbeat};

fn assert_names(r: &Reply, status: u16, field: &str) {
    assert_eq!(r.status, status, "{field}: {r:?}");
    let message = r.error_message();
    assert!(message.contains(field), "{field} not named in {message:?}");
    assert_eq!(r.json["field"], field, "{r:?}");
}

fn with(field: &str, value: Value) -> Value {
    let mut body = exam_platform_heartbeat("worker-node-2", "https://worker2.example.edu.vn", 11);
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = exam_platform_heartbeat("worker-node-2", "https://worker2.example.edu.vn", 11);
    body.as_object_mut().unwrap().remove(field);
    body
}

#[tokio::test]
async fn bad_heartbeats_name_the_field_and_write_nothing() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        // Wrong types and shapes: 400.
        (with("totalCpuCores", json!("32")), 400, "totalCpuCores"),
        (with("vmCpuCores", json!("NaN")), 400, "vmCpuCores"),
        (with("totalMemoryMb", json!(-1)), 400, "totalMemoryMb"),
        (with("totalMemoryMb", json!(1e30)), 400, "totalMemoryMb"),
        (
            with("reservedMemoryMb", json!(1.5)),
            400,
            "reservedMemoryMb",
        ),
        (
            with("activeSessions", json!(99_999_999_999_u64)),
            400,
            "activeSessions",
        ),
        (with("activeSessions", json!(null)), 400, "activeSessions"),
        (with("labels", json!(["a"])), 400, "labels"),
        (
            with("liveSessions", json!([{"examId": 1}])),
            400,
            "liveSessions[0].examId",
        ),
        (without("vmMemoryMb"), 400, "vmMemoryMb"),
        (without("code"), 400, "code"),
        // Well-formed but invalid values: 422.
        (with("totalCpuCores", json!(-4)), 422, "totalCpuCores"),
        (with("vmCpuCores", json!(0)), 422, "vmCpuCores"),
        (with("vmCpuCores", json!(1.0005)), 422, "vmCpuCores"),
        (with("vmMemoryMb", json!(0)), 422, "vmMemoryMb"),
        (with("totalCpuCores", json!(1e300)), 422, "totalCpuCores"),
        (with("totalMemoryMb", json!(u64::MAX)), 422, "totalMemoryMb"),
        (with("cpuPercent", json!(250)), 422, "cpuPercent"),
        (with("apiBaseUrl", json!("ftp://x")), 422, "apiBaseUrl"),
        // An absolute http(s) URL with a host; a new worker needs one.
        (with("apiBaseUrl", json!("")), 422, "apiBaseUrl"),
        (without("apiBaseUrl"), 422, "apiBaseUrl"),
        (with("apiBaseUrl", json!("http://")), 422, "apiBaseUrl"),
        (with("apiBaseUrl", json!("https:///x")), 422, "apiBaseUrl"),
        (
            with("apiBaseUrl", json!("http://a@evil.example")),
            422,
            "apiBaseUrl",
        ),
        (
            with("apiBaseUrl", json!("http://host:99999")),
            422,
            "apiBaseUrl",
        ),
        (
            with("apiBaseUrl", json!("worker2.example.edu.vn")),
            422,
            "apiBaseUrl",
        ),
        (with("code", json!("../etc/passwd")), 422, "code"),
        (with("code", json!("wörker-ü")), 422, "code"),
        (with("code", json!("w".repeat(500))), 422, "code"),
        (with("code", json!("")), 422, "code"),
        (with("code", json!("summary")), 422, "code"),
        (with("zone", json!("z".repeat(500))), 422, "zone"),
        (with("ipAddress", json!("192.168.1.300")), 422, "ipAddress"),
        (with("ipAddress", json!(17)), 400, "ipAddress"),
        (
            with("containerRuntime", json!("d".repeat(256))),
            422,
            "containerRuntime",
        ),
        (with("nixVersion", json!("")), 422, "nixVersion"),
        (with("bootId", json!("")), 422, "bootId"),
        (
            with(
                "liveSessions",
                json!([{"examId": "e", "userId": "u".repeat(500)}]),
            ),
            422,
            "liveSessions[0].userId",
        ),
    ];
    for (body, status, field) in cases {
        let r = s.heartbeat(&body).await;
        assert_names(&r, status, field);
    }
    // Malformed JSON, empty body, wrong content type.
    let raw = |body: &'static str, content_type: &'static str| {
        let s = &s;
        async move {
            Reply::from(
                Cred::Worker
                    .apply(s.request(Method::POST, "/api/vdi/workers/heartbeat"))
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    assert_names(&raw("{\"code\": ", "application/json").await, 400, "body");
    assert_names(&raw("", "application/json").await, 400, "body");
    assert_names(&raw("42", "application/json").await, 400, "body");
    // An array is not read as the body's fields in order.
    let array = r#"["w-1", "", "", 8, 12288, 0, 0, 1, 2048, 0]"#;
    assert_names(&raw(array, "application/json").await, 400, "body");
    // `curl -d` sends form-urlencoded: read as JSON.
    assert_names(
        &raw("code=x", "application/x-www-form-urlencoded").await,
        400,
        "body",
    );
    let r = raw("<code/>", "application/xml").await;
    assert_eq!(r.status, 415, "{r:?}");

    // Nothing was written.
    assert!(s.store.workers().await.unwrap().is_empty());
    assert_eq!(s.get("/api/vdi/workers").await.json["total"], 0);

    // Unknown fields are tolerated on heartbeats (rolling upgrades).
    let r = s.heartbeat(&with("agentVersion", json!("9.9.9"))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 0))
        .await;
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    for (method, path, cred) in [
        (Method::POST, "/api/vdi/workers/heartbeat", Cred::Worker),
        (Method::PATCH, "/api/vdi/workers/w-1", Cred::Admin),
        (Method::POST, "/api/vdi/sessions", Cred::Service),
        (Method::POST, "/api/vdi/exams/exam-1/prewarm", Cred::Service),
        (Method::POST, "/api/vdi/workers/w-1/drain", Cred::Admin),
    ] {
        let r = Reply::from(
            cred.apply(s.request(method.clone(), path))
                .header("content-type", "application/json")
                .body(huge.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 413, "{method} {path}: {r:?}");
        r.error_message();
    }
    let w = s.worker("w-1").await;
    assert_eq!(w["isDraining"], false);
    assert_eq!(w["dispatchedSessions"], 0);
}

#[tokio::test]
async fn admin_requests_reject_unknown_fields_and_bad_values() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 1))
        .await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"isDrainig": true}), 400, "isDrainig"),
        (json!({"isDraining": "yes"}), 400, "isDraining"),
        (json!({"isEnabled": 0}), 400, "isEnabled"),
        (json!({"isEnabled": false, "force": "true"}), 400, "force"),
        (json!({}), 422, "body"),
        (
            json!({"isDraining": true, "isEnabled": false}),
            422,
            "isEnabled",
        ),
        (json!({"isDraining": false, "force": true}), 422, "force"),
        (json!({"isDraining": true, "force": true}), 422, "reason"),
        (
            json!({"isDraining": true, "drainDeadlineSec": 0}),
            422,
            "drainDeadlineSec",
        ),
        (
            json!({"isDraining": true, "drainDeadlineSec": -5}),
            400,
            "drainDeadlineSec",
        ),
    ];
    for (body, status, field) in cases {
        let r = s.patch_worker("w-1", &body).await;
        assert_names(&r, status, field);
    }
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            Some(&json!({"deadline": 5})),
        )
        .await;
    assert_names(&r, 400, "deadline");
    // Hostile codes in the path.
    for path in [
        "/api/vdi/workers/..%2F..%2Fetc%2Fpasswd",
        "/api/vdi/workers/w%C3%B6rker",
        "/api/vdi/workers/%E2%80%AEevil",
        &format!("/api/vdi/workers/{}", "w".repeat(500)),
    ] {
        let r = s
            .send(
                Method::PATCH,
                path,
                &Cred::Admin,
                Some(&json!({"isDraining": true})),
            )
            .await;
        assert_names(&r, 422, "code");
        let r = s.get(path).await;
        assert_names(&r, 422, "code");
    }
    // Not even UTF-8 once decoded.
    let r = s.get("/api/vdi/workers/%FF%FE").await;
    assert_eq!(r.status, 400, "{r:?}");
    r.error_message();
    let r = s.get("/api/vdi/workers/w-1/sessions?limit=-1").await;
    assert_names(&r, 400, "limit");
    let r = s.get("/api/vdi/workers/w-1/sessions?limit=0").await;
    assert_names(&r, 422, "limit");
    let r = s.get("/api/vdi/audit?limit=abc").await;
    assert_names(&r, 400, "limit");
    // Nothing changed.
    let w = s.worker("w-1").await;
    assert_eq!(w["status"], "active");
    assert_eq!(w["isDraining"], false);
    assert_eq!(s.store.workers().await.unwrap().len(), 1);
}

#[tokio::test]
async fn session_requests_reject_unknown_fields_and_bad_values() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 0))
        .await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"examId": "e", "userId": "u", "usrId": "x"}),
            400,
            "usrId",
        ),
        (json!({"examId": "e"}), 400, "userId"),
        (json!({"examId": 5, "userId": "u"}), 400, "examId"),
        (json!({"examId": "e", "userId": ["u"]}), 400, "userId"),
        (json!({"examId": "e", "userId": ""}), 422, "userId"),
        (
            json!({"examId": "x".repeat(500), "userId": "u"}),
            422,
            "examId",
        ),
        (json!({"examId": "e\u{0000}", "userId": "u"}), 422, "examId"),
        (
            json!({"examId": "e", "userId": "u", "constraints": {"zones": "a"}}),
            400,
            "constraints.zones",
        ),
        (
            json!({"examId": "e", "userId": "u", "constraints": {"zone": ""}}),
            422,
            "constraints.zone",
        ),
    ];
    for (body, status, field) in cases {
        let r = s
            .send(
                Method::POST,
                "/api/vdi/sessions",
                &Cred::Service,
                Some(&body),
            )
            .await;
        assert_names(&r, status, field);
    }
    let prewarm: Vec<(Value, u16, &str)> = vec![
        (json!({"count": -1}), 400, "count"),
        (json!({"count": "NaN"}), 400, "count"),
        (json!({"count": 1e12}), 400, "count"),
        (json!({"count": 99_999_999_999_u64}), 400, "count"),
        (json!({}), 400, "count"),
        (json!({"count": 0}), 422, "count"),
        (json!({"count": 100_001}), 422, "count"),
        (json!({"count": 1, "cnt": 1}), 400, "cnt"),
    ];
    for (body, status, field) in prewarm {
        let r = s
            .send(
                Method::POST,
                "/api/vdi/exams/exam-1/prewarm",
                &Cred::Service,
                Some(&body),
            )
            .await;
        assert_names(&r, status, field);
    }
    let long = format!("/api/vdi/sessions/{}/u", "x".repeat(500));
    let r = s.send(Method::GET, &long, &Cred::Service, None).await;
    assert_names(&r, 422, "examId");
    let r = s
        .send(
            Method::DELETE,
            "/api/vdi/sessions/exam-1/%20padded",
            &Cred::Service,
            None,
        )
        .await;
    assert_names(&r, 422, "userId");
    // Nothing was placed.
    assert_eq!(s.worker("w-1").await["dispatchedSessions"], 0);
    let dist = s.get("/api/vdi/cluster/distribution").await;
    assert_eq!(dist.json["distribution"][0]["sessionCount"], 0);
}
