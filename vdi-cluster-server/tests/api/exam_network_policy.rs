//! An exam's network policy over HTTP: booked with the exam, shown in its
//! answers, changed and removed by PATCH; a bad entry is refused naming
//! it, a malformed one too, and nothing is booked.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Reply, Setup, TestServer, slots_heartbeat};

async fn server() -> TestServer {
    let (setup, _workers) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s
        .heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 20, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    s
}

fn exam(id: &str, policy: Value) -> Value {
    json!({
        "examId": id, "name": format!("Exam {id}"), "students": 10,
        "startsAt": "2030-06-01T08:00:00Z", "endsAt": "2030-06-01T10:00:00Z",
        "networkPolicy": policy,
    })
}

async fn send(s: &TestServer, method: Method, path: &str, body: Option<&Value>) -> Reply {
    s.send(method, path, &Cred::Admin, body).await
}

fn assert_names(r: &Reply, status: u16, field: &str) {
    assert_eq!(r.status, status, "{field}: {r:?}");
    assert_eq!(r.json["field"], field, "{r:?}");
    let message = r.json["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{field} not named in {message:?}");
}

#[tokio::test]
async fn a_policy_is_booked_shown_changed_and_removed() {
    let s = server().await;
    let policy = json!({
        "restrictInternet": true,
        "allowedDomains": ["SOT.umtoj.edu.vn"],
        "allowedCidrs": ["103.90.220.0/22", "42.1.76.128/28"],
        "allowedIps": ["10.0.0.7"],
        "originIp": "203.210.213.198",
    });
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("math", policy)),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let stored = json!({
        "restrictInternet": true,
        "allowedDomains": ["sot.umtoj.edu.vn"],
        "allowedCidrs": ["103.90.220.0/22", "42.1.76.128/28"],
        "allowedIps": ["10.0.0.7"],
        "originIp": "203.210.213.198",
        "enforceStrict": true,
    });
    assert_eq!(r.json["networkPolicy"], stored, "{r:?}");
    let detail = send(&s, Method::GET, "/api/vdi/exams/math", None).await;
    assert_eq!(detail.json["networkPolicy"], stored, "{detail:?}");
    let calendar = send(&s, Method::GET, "/api/vdi/exams", None).await;
    assert_eq!(calendar.json["exams"][0]["networkPolicy"], stored);

    let open = json!({"networkPolicy": {"restrictInternet": false}});
    let r = send(&s, Method::PATCH, "/api/vdi/exams/math", Some(&open)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json["networkPolicy"],
        json!({"restrictInternet": false, "enforceStrict": true})
    );
    let renamed = json!({"name": "Maths"});
    let r = send(&s, Method::PATCH, "/api/vdi/exams/math", Some(&renamed)).await;
    assert_eq!(r.json["networkPolicy"]["restrictInternet"], false, "kept");
    let cleared = json!({"networkPolicy": null});
    let r = send(&s, Method::PATCH, "/api/vdi/exams/math", Some(&cleared)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json.get("networkPolicy").is_none(), "{r:?}");
}

#[tokio::test]
async fn a_bad_policy_is_refused_naming_the_entry_and_nothing_is_booked() {
    let s = server().await;
    let cidrs = json!({
        "restrictInternet": true,
        "allowedCidrs": ["103.90.220.0/22", "42.1.76.128/28", "1.55.145.7/24"],
    });
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("bad", cidrs)),
    )
    .await;
    assert_names(&r, 422, "networkPolicy.allowedCidrs[2]");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("1.55.145.0/24"),
        "the network meant: {r:?}"
    );
    let twice = json!({"restrictInternet": true, "allowedIps": ["10.0.0.7", "10.0.0.7"]});
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("bad", twice)),
    )
    .await;
    assert_names(&r, 422, "networkPolicy.allowedIps[1]");
    let nothing = json!({"restrictInternet": true});
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("bad", nothing)),
    )
    .await;
    assert_names(&r, 422, "networkPolicy.restrictInternet");
    let wildcard = json!({"restrictInternet": true, "allowedDomains": ["*.edu.vn"]});
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("bad", wildcard)),
    )
    .await;
    assert_names(&r, 422, "networkPolicy.allowedDomains[0]");
    // Not a policy at all: the body does not parse.
    let malformed = json!({"restrictInternet": "yes", "allowedIps": "10.0.0.7"});
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("bad", malformed)),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    let unknown = json!({"restrictInternet": true, "allowedPorts": [443]});
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("bad", unknown)),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");

    let calendar = send(&s, Method::GET, "/api/vdi/exams", None).await;
    assert_eq!(calendar.json["exams"], json!([]), "nothing booked");
    let r = send(
        &s,
        Method::POST,
        "/api/vdi/exams",
        Some(&exam("ok", json!({"restrictInternet": false}))),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let bad_patch = json!({"networkPolicy": {"restrictInternet": true, "originIp": "203.210.213"}});
    let r = send(&s, Method::PATCH, "/api/vdi/exams/ok", Some(&bad_patch)).await;
    assert_names(&r, 422, "networkPolicy.originIp");
}
