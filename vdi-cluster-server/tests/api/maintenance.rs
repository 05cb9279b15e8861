//! The calendar guards the fleet over HTTP: the change freeze refuses a
//! drain, disable, removal, credential change or agent upgrade that leaves
//! an exam under way short (409 with the exams and `safeFrom`), a forced one goes
//! through audited with its webhook, and maintenance windows answer when
//! workers may be out.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::exam::parse_rfc3339;
use vdi_cluster_core::{Clock, ManualClock};

use crate::common::{Cred, Setup, TestServer, slots_heartbeat};

/// Two workers of 20 slots (36 bookable with the 10 % headroom) and a
/// 30-student exam from 08:00 to 10:00 whose prewarm lead (15 min) has
/// begun: the clock reads 07:50.
pub(crate) async fn exam_under_way() -> TestServer {
    let (setup, _workers) = Setup::memory();
    let clock = ManualClock::new(parse_rfc3339("now", "2030-06-01T07:50:00Z").unwrap());
    let s = TestServer::start_with_clock(setup, Some(Arc::new(clock) as Arc<dyn Clock>)).await;
    for code in ["w-1", "w-2"] {
        let r = s
            .heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 20, 0))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let booked = s
        .send(
            Method::POST,
            "/api/vdi/exams",
            &Cred::Admin,
            Some(&json!({"examId": "math", "name": "Math", "students": 30,
                "startsAt": "2030-06-01T08:00:00Z", "endsAt": "2030-06-01T10:00:00Z"})),
        )
        .await;
    assert_eq!(booked.status, 201, "{booked:?}");
    s
}

fn assert_frozen(r: &crate::common::Reply, change: &str) {
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.json["code"], 409);
    assert_eq!(r.json["change"], change, "{r:?}");
    assert_eq!(r.json["exams"][0]["examId"], "math", "{r:?}");
    assert_eq!(r.json["exams"][0]["shortfall"], 12, "{r:?}");
    assert_eq!(r.json["exams"][0]["shortfallBefore"], 0, "{r:?}");
    // The exam's window ends at 10:05 (teardown 5 min).
    assert_eq!(r.json["safeFrom"], "2030-06-01T10:05:00Z", "{r:?}");
}

#[tokio::test]
async fn a_change_under_a_running_exam_is_refused_until_forced_with_a_reason() {
    let s = exam_under_way().await;
    let hook = s
        .send(
            Method::POST,
            "/api/vdi/webhooks",
            &Cred::Admin,
            Some(&json!({"url": "http://127.0.0.1:9/hook",
                "eventTypes": ["worker.freeze_overridden"]})),
        )
        .await;
    let hook = hook.json["id"].as_str().unwrap().to_owned();

    let drain = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            None,
        )
        .await;
    assert_frozen(&drain, "drain");
    assert!(drain.json["message"].as_str().unwrap().contains("math"));
    let patched = s.patch_worker("w-1", &json!({"isEnabled": false})).await;
    assert_frozen(&patched, "disable");
    let delete = "/api/vdi/workers/w-1";
    assert_frozen(
        &s.send(Method::DELETE, delete, &Cred::Admin, None).await,
        "remove",
    );
    // A worker on the shared token has no own credential to revoke.
    let revoke = "/api/vdi/workers/w-1/credential";
    let revoked = s.send(Method::DELETE, revoke, &Cred::Admin, None).await;
    assert_eq!(revoked.status, 404, "{revoked:?}");
    let reset = "/api/vdi/workers/w-1/credential/reset";
    let reset = s.send(Method::POST, reset, &Cred::Admin, None).await;
    assert_frozen(&reset, "reset-credential");
    assert_eq!(s.worker("w-1").await["status"], "active");

    // Force needs a reason.
    let no_reason = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            Some(&json!({"force": true})),
        )
        .await;
    assert_eq!(no_reason.status, 422, "{no_reason:?}");
    assert_eq!(no_reason.json["field"], "reason");

    let forced = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            Some(&json!({"force": true, "reason": "failing disk"})),
        )
        .await;
    assert_eq!(forced.status, 202, "{forced:?}");
    assert_eq!(s.worker("w-1").await["isDraining"], true);
    let audit = s.get("/api/vdi/audit").await.text;
    assert!(audit.contains("freeze-override"), "{audit}");
    assert!(audit.contains("failing disk"), "{audit}");
    let deliveries = s.get(&format!("/api/vdi/webhooks/{hook}/deliveries")).await;
    let deliveries = deliveries.json["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["type"], "worker.freeze_overridden");

    // The drained worker no longer counts: removing it changes nothing.
    let removed = s.send(Method::DELETE, delete, &Cred::Admin, None).await;
    assert_eq!(removed.status, 204, "{removed:?}");
    // The other one is now all the exam has.
    let patched = s
        .patch_worker("w-2", &json!({"isDraining": true, "force": true}))
        .await;
    assert_eq!(patched.status, 422, "{patched:?}");
    assert_eq!(patched.json["field"], "reason");
    s.stop().await;
}

#[tokio::test]
async fn a_change_that_keeps_every_exam_fitting_goes_through() {
    let s = exam_under_way().await;
    let r = s
        .heartbeat(&slots_heartbeat("w-3", "http://127.0.0.1:1", 20, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // 54 bookable; without one worker 36 ≥ 30.
    let drain = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-3/drain",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(drain.status, 202, "{drain:?}");
    let audit = s.get("/api/vdi/audit").await.text;
    assert!(!audit.contains("freeze-override"), "{audit}");
    s.stop().await;
}

#[tokio::test]
async fn an_agent_upgrade_is_cleared_with_the_freeze() {
    let s = exam_under_way().await;
    let upgrade = "/api/vdi/workers/w-1/upgrade";
    assert_frozen(
        &s.send(Method::POST, upgrade, &Cred::Admin, None).await,
        "upgrade",
    );
    let no_reason = format!("{upgrade}?force=true");
    let r = s.send(Method::POST, &no_reason, &Cred::Admin, None).await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json["field"], "reason");
    let unknown = "/api/vdi/workers/w-9/upgrade";
    let r = s.send(Method::POST, unknown, &Cred::Admin, None).await;
    assert_eq!(r.status, 404, "{r:?}");
    let audit = s.get("/api/vdi/audit").await.text;
    assert!(!audit.contains("agent-upgrade"), "{audit}");

    let forced = format!("{upgrade}?force=true&reason=security%20fix");
    let r = s.send(Method::POST, &forced, &Cred::Admin, None).await;
    assert_eq!(r.status, 204, "{r:?}");
    let audit = s.get("/api/vdi/audit").await.text;
    assert!(audit.contains("agent-upgrade"), "{audit}");
    assert!(audit.contains("freeze-override"), "{audit}");
    assert!(audit.contains("security fix"), "{audit}");
    // Clearing an upgrade changes nothing of the worker's own.
    assert_eq!(s.worker("w-1").await["status"], "active");

    // With a third worker the exam fits without either: cleared at once.
    let r = s
        .heartbeat(&slots_heartbeat("w-3", "http://127.0.0.1:1", 20, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.send(Method::POST, upgrade, &Cred::Admin, None).await;
    assert_eq!(r.status, 204, "{r:?}");
    s.stop().await;
}

fn windows(r: &crate::common::Reply) -> Vec<(String, String, String)> {
    assert_eq!(r.status, 200, "{r:?}");
    r.json["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w: &Value| {
            let s = |k: &str| w[k].as_str().unwrap().to_owned();
            (s("start"), s("end"), s("latestStart"))
        })
        .collect()
}

#[tokio::test]
async fn maintenance_windows_avoid_the_exams_that_need_the_workers() {
    let s = exam_under_way().await;
    let one = s
        .get("/api/vdi/workers/w-1/maintenance-windows?duration=PT2H&to=2030-06-01T14:00:00Z")
        .await;
    assert_eq!(
        windows(&one),
        [(
            "2030-06-01T10:05:00Z".to_owned(),
            "2030-06-01T14:00:00Z".to_owned(),
            "2030-06-01T12:00:00Z".to_owned()
        )]
    );
    assert_eq!(
        one.json["from"], "2030-06-01T07:50:00Z",
        "a past from is now"
    );
    assert_eq!(one.json["durationSec"], 7200);
    let group = s
        .get("/api/vdi/maintenance-windows?workers=w-1,w-2&duration=PT5H&to=2030-06-01T14:00:00Z")
        .await;
    assert!(windows(&group).is_empty(), "{group:?}");
    assert_eq!(group.json["workers"], json!(["w-1", "w-2"]));

    for (query, field) in [
        ("workers/w-1/maintenance-windows?duration=2h", "duration"),
        ("workers/w-1/maintenance-windows?duration=PT30S", "duration"),
        (
            "workers/w-1/maintenance-windows?duration=PT2H&from=soon",
            "from",
        ),
        (
            "workers/w-1/maintenance-windows?duration=PT2H&to=2030-06-01T07:00:00Z",
            "to",
        ),
        (
            "workers/w-1/maintenance-windows?duration=PT2H&to=2030-09-01T00:00:00Z",
            "to",
        ),
        ("maintenance-windows?workers=&duration=PT2H", "workers"),
        ("maintenance-windows?duration=PT2H", "workers"),
    ] {
        let r = s.get(&format!("/api/vdi/{query}")).await;
        assert_eq!(r.status, 400, "{query}: {r:?}");
        assert_eq!(r.json["field"], field, "{query}: {r:?}");
    }
    let unknown = s
        .get("/api/vdi/maintenance-windows?workers=w-1,w-9&duration=PT2H")
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let student = s
        .send(
            Method::GET,
            "/api/vdi/workers/w-1/maintenance-windows?duration=PT2H",
            &Cred::Student("u1".into()),
            None,
        )
        .await;
    assert_eq!(student.status, 403, "{student:?}");
    s.stop().await;
}
