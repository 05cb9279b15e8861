//! The exam platform's registry over HTTP
//! (`docs/compat/exam-platform-registry.md`): the heartbeat numbers and the
//! whole graceful drain runbook. Run on every backend (memory here, Redis and PostgreSQL in
//! `backends`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Setup, TestServer, exam_platform_heartbeat};

/// The exam platform's heartbeat body exactly as its runbook writes it.
pub const EXAM_PLATFORM_HEARTBEAT_BODY: &str = r#"{
  "code": "worker-node-2",
  "name": "Worker Node 2",
  "apiBaseUrl": "https://worker2.example.edu.vn",
  "totalCpuCores": 32,
  "totalMemoryMb": 65536,
  "reservedCpuCores": 4,
  "reservedMemoryMb": 8192,
  "vmCpuCores": 1.5,
  "vmMemoryMb": 2048,
  "activeSessions": 11
}"#;

/// The exam platform's numbers: 18 slots, 7 available with 11 active, through the
/// heartbeat answer, the worker list and the summary.
pub async fn exam_platform_numbers(s: &TestServer) {
    let r = s
        .request(Method::POST, "/api/vdi/workers/heartbeat")
        .header("x-worker-token", crate::common::WORKER_TOKEN)
        .header("content-type", "application/json")
        .body(EXAM_PLATFORM_HEARTBEAT_BODY)
        .send()
        .await
        .unwrap();
    let r = crate::common::Reply::from(r).await;
    assert_eq!(r.status, 200, "{r:?}");
    let ack = &r.json;
    assert_eq!(ack["code"], "worker-node-2");
    assert_eq!(ack["accepted"], true);
    assert_eq!(ack["maxSessions"], 18);
    assert_eq!(ack["availableSessions"], 7);
    assert_eq!(ack["isDraining"], false);
    assert_eq!(ack["isEnabled"], true);
    assert_eq!(ack["drainStatus"], "none");
    assert_eq!(ack["status"], "active");
    assert!(ack["nextHeartbeatSec"].as_f64().unwrap() > 0.0);

    let list = s.get("/api/vdi/workers").await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json["total"], 1);
    let w = &list.json["workers"][0];
    assert_eq!(w["code"], "worker-node-2");
    assert_eq!(w["apiBaseUrl"], "https://worker2.example.edu.vn");
    assert_eq!(w["maxSessions"], 18);
    assert_eq!(w["availableSessions"], 7);
    assert_eq!(w["activeSessions"], 11);
    assert_eq!(w["vmCpuCores"], 1.5);
    assert_eq!(w["isHealthy"], true);
    assert_eq!(w["drainStatus"], "none");

    let summary = s.get("/api/vdi/workers/summary").await;
    assert_eq!(summary.status, 200, "{summary:?}");
    let sum = &summary.json;
    assert_eq!(sum["healthyWorkers"], 1);
    assert_eq!(sum["totalWorkers"], 1);
    assert_eq!(sum["totalMaxSessions"], 18);
    assert_eq!(sum["totalAvailableSessions"], 7);
    assert_eq!(sum["totalActiveSessions"], 11);
    assert_eq!(sum["drainingWorkers"], 0);
    assert_eq!(sum["drainedWorkers"], 0);
}

fn users(v: &Value) -> Vec<String> {
    let mut u: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    u.sort();
    u
}

/// The exam platform's graceful drain: drain → sessions go to 0 → `drainStatus:
/// drained` → disable; disable refused while sessions remain (409 naming
/// the count); `force: true` allowed. Audited with the JWT's `sub`.
pub async fn drain_runbook(s: &TestServer) {
    let url = "https://worker2.example.edu.vn";
    assert_eq!(
        s.heartbeat(&exam_platform_heartbeat("worker-node-2", url, 0))
            .await
            .status,
        200
    );
    for user in ["sv-1", "sv-2", "sv-3"] {
        let r = s.allocate("exam-1", user).await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.json["workerCode"], "worker-node-2");
        assert_eq!(r.json["outcome"], "placed");
    }
    let hb = s
        .heartbeat(&exam_platform_heartbeat("worker-node-2", url, 3))
        .await;
    assert_eq!(hb.json["availableSessions"], 15);

    // 1. PATCH {"isDraining": true}
    let r = s
        .patch_worker("worker-node-2", &json!({"isDraining": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["from"], "active");
    assert_eq!(r.json["to"], "draining");
    assert_eq!(r.json["worker"]["drainStatus"], "draining");
    assert_eq!(r.json["worker"]["isDraining"], true);
    assert_eq!(s.worker("worker-node-2").await["status"], "draining");
    // The heartbeat answer tells the worker.
    let hb = s
        .heartbeat(&exam_platform_heartbeat("worker-node-2", url, 3))
        .await;
    assert_eq!(hb.json["isDraining"], true);
    assert_eq!(hb.json["drainStatus"], "draining");

    // 2. It keeps its sessions but takes no new one.
    let again = s.allocate("exam-1", "sv-1").await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json["outcome"], "existing");
    assert_eq!(again.json["workerCode"], "worker-node-2");
    let refused = s.allocate("exam-1", "sv-4").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.error_message().contains("draining"), "{refused:?}");

    // Disabling now is refused, naming the count.
    let r = s
        .patch_worker("worker-node-2", &json!({"isEnabled": false}))
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error_message().contains("3 session"), "{r:?}");

    // GET …/drain shows what blocks it.
    let info = s.get("/api/vdi/workers/worker-node-2/drain").await;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.json["drainStatus"], "draining");
    assert_eq!(
        users(&info.json["blocking"]["exam-1"]),
        ["sv-1", "sv-2", "sv-3"]
    );

    // 3. Sessions go to 0 (students submit), the worker reports 0.
    for user in ["sv-1", "sv-2", "sv-3"] {
        let r = s.release("exam-1", user).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json["released"], true);
    }
    let hb = s
        .heartbeat(&exam_platform_heartbeat("worker-node-2", url, 0))
        .await;
    assert_eq!(hb.json["drainStatus"], "drained", "{hb:?}");
    let list = s.get("/api/vdi/workers?status=drained").await;
    assert_eq!(list.json["total"], 1, "{list:?}");
    assert_eq!(list.json["workers"][0]["drainStatus"], "drained");
    assert_eq!(
        s.get("/api/vdi/workers/summary").await.json["drainedWorkers"],
        1
    );

    // 4. Then disable for maintenance.
    let r = s
        .patch_worker("worker-node-2", &json!({"isEnabled": false}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["to"], "disabled");
    assert_eq!(r.json["worker"]["isEnabled"], false);
    let hb = s
        .heartbeat(&exam_platform_heartbeat("worker-node-2", url, 0))
        .await;
    assert_eq!(hb.json["isEnabled"], false);

    // Back to service.
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/worker-node-2/activate",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["to"], "active");

    // 5. Emergency: force-disable a worker that still has sessions.
    assert_eq!(
        s.heartbeat(&exam_platform_heartbeat("worker-node-3", url, 0))
            .await
            .status,
        200
    );
    assert_eq!(
        s.patch_worker("worker-node-2", &json!({"isDraining": true}))
            .await
            .status,
        200
    );
    let placed = s.allocate("exam-2", "sv-9").await;
    assert_eq!(placed.status, 201, "{placed:?}");
    assert_eq!(placed.json["workerCode"], "worker-node-3");
    let r = s
        .patch_worker("worker-node-3", &json!({"isEnabled": false}))
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error_message().contains("1 session"), "{r:?}");
    let r = s
        .patch_worker("worker-node-3", &json!({"isEnabled": false, "force": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["to"], "disabled");
    assert_eq!(s.worker("worker-node-3").await["status"], "disabled");

    // Every admin action is audited with the JWT's subject.
    let audit = s.get("/api/vdi/audit").await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let actions: Vec<(String, String)> = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for action in ["drain", "disable", "activate", "force-disable"] {
        assert!(
            actions.contains(&(action.to_owned(), "admin-1".to_owned())),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn exam_platform_numbers_on_memory() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    exam_platform_numbers(&s).await;
}

#[tokio::test]
async fn drain_runbook_on_memory() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    drain_runbook(&s).await;
}
