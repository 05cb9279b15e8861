//! Aetherium's resource view: sessions and prewarmed machines as VMs, and
//! the workers under Aetherium's field names.

use serde_json::{Value, json};

use crate::common::{Setup, TestServer, exam_platform_heartbeat, slots_heartbeat};

/// `exam-1`'s id in a VM id (unpadded base64url).
const EXAM_1: &str = "ZXhhbS0x";

/// A worker of 4 one-core slots holding a prewarm pool for `exam-1`: two
/// machines ready, one starting.
fn pooled_heartbeat() -> Value {
    let mut body = slots_heartbeat("w-pool", "http://127.0.0.1:1", 4, 0);
    body["prewarmPool"] = json!({"exam-1": {"ready": 2, "starting": 1, "failed": 4}});
    body
}

fn ids(list: &Value) -> Vec<String> {
    list["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| vm["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sessions_and_prewarmed_machines_are_vms_of_their_worker_s_slot_size() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    assert_eq!(s.heartbeat(&pooled_heartbeat()).await.status, 200);
    // The exam platform's profile: 1.5 cores and 2048 MB per VM, 20 slots.
    let big = exam_platform_heartbeat("w-big", "http://127.0.0.1:1", 0);
    assert_eq!(s.heartbeat(&big).await.status, 200);
    let placed = s.allocate("exam-1", "sv-1").await;
    assert_eq!(placed.status, 201, "{placed:?}");
    let worker = placed.json["workerCode"].as_str().unwrap().to_owned();

    let list = s.get("/api/vdi/vms").await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json["total"], 4);
    let session_id = format!("session:{EXAM_1}:c3YtMQ");
    let mut want = vec![
        format!("prewarm:w-pool:{EXAM_1}:1"),
        format!("prewarm:w-pool:{EXAM_1}:2"),
        format!("prewarm:w-pool:{EXAM_1}:3"),
    ];
    // By worker code, sessions first: on either worker, the session comes
    // before w-pool's machines (w-big < w-pool).
    want.insert(0, session_id.clone());
    assert_eq!(ids(&list.json), want);

    let session = s.get(&format!("/api/vdi/vms/{session_id}")).await;
    assert_eq!(session.status, 200, "{session:?}");
    let (vcpus, memory) = if worker == "w-big" {
        (1.5, 2048)
    } else {
        (1.0, 1024)
    };
    assert_eq!(session.json["worker_id"], worker.as_str());
    assert_eq!(session.json["vcpus"], vcpus);
    assert_eq!(session.json["memory_mb"], memory);
    assert_eq!(session.json["status"], "running");
    assert_eq!(session.json["name"], "exam-1/sv-1");
    assert_eq!(session.json["kind"], "session");
    assert_eq!(session.json["exam_id"], "exam-1");
    assert_eq!(session.json["user_id"], "sv-1");
    assert_eq!(list.json["vms"][0], session.json);

    let ready = s
        .get(&format!("/api/vdi/vms/prewarm:w-pool:{EXAM_1}:2"))
        .await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json["status"], "ready");
    assert_eq!(ready.json["worker_id"], "w-pool");
    assert_eq!(ready.json["vcpus"], 1.0);
    assert_eq!(ready.json["memory_mb"], 1024);
    assert_eq!(ready.json["kind"], "prewarmed");
    assert_eq!(ready.json["user_id"], Value::Null);
    let starting = s
        .get(&format!("/api/vdi/vms/prewarm:w-pool:{EXAM_1}:3"))
        .await;
    assert_eq!(starting.json["status"], "starting");

    // Past the pool, on another worker, for another exam: not found, by id.
    for missing in [
        format!("prewarm:w-pool:{EXAM_1}:4"),
        format!("prewarm:w-big:{EXAM_1}:1"),
        format!("prewarm:w-none:{EXAM_1}:1"),
        format!("session:{EXAM_1}:c3YtMg"),
    ] {
        let r = s.get(&format!("/api/vdi/vms/{missing}")).await;
        assert_eq!(r.status, 404, "{missing}: {r:?}");
        assert_eq!(r.error_message(), format!("VM not found: {missing}"));
    }

    // Released: the session is no VM any more.
    assert_eq!(s.release("exam-1", "sv-1").await.status, 200);
    let gone = s.get(&format!("/api/vdi/vms/{session_id}")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(s.get("/api/vdi/vms").await.json["total"], 3);
}

#[tokio::test]
async fn the_list_is_bounded_and_bad_ids_name_the_field() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    assert_eq!(s.heartbeat(&pooled_heartbeat()).await.status, 200);
    let two = s.get("/api/vdi/vms?limit=2").await;
    assert_eq!(two.status, 200);
    assert_eq!(
        ids(&two.json),
        [
            format!("prewarm:w-pool:{EXAM_1}:1"),
            format!("prewarm:w-pool:{EXAM_1}:2")
        ]
    );
    for bad in ["0", "10001", "x"] {
        let r = s.get(&format!("/api/vdi/vms?limit={bad}")).await;
        assert!(matches!(r.status, 400 | 422), "{bad}: {r:?}");
    }
    for bad in ["vm-123", "session:!!:dTE", "prewarm:w-pool:ZXhhbS0x:0"] {
        let r = s.get(&format!("/api/vdi/vms/{bad}")).await;
        assert_eq!(r.status, 422, "{bad}: {r:?}");
        assert_eq!(r.json["field"], "id", "{bad}");
    }
    // The form of an id, whose parts decode to no student: no such VM.
    let r = s.get("/api/vdi/vms/session:_w:dTE").await;
    assert_eq!(r.status, 404, "{r:?}");
}

#[tokio::test]
async fn workers_under_aetherium_s_names_carry_our_figures() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let mut body = exam_platform_heartbeat("w-big", "http://10.0.0.7:8081/api", 0);
    body["cpuPercent"] = json!(37.5);
    body["zone"] = json!("hn-1");
    assert_eq!(s.heartbeat(&body).await.status, 200);
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);

    let ours = s.worker("w-big").await;
    let theirs = s.get("/api/vdi/aetherium/workers/w-big").await;
    assert_eq!(theirs.status, 200, "{theirs:?}");
    let w = &theirs.json;
    assert_eq!(w["id"], "w-big");
    assert_eq!(w["address"], "10.0.0.7:8081");
    assert_eq!(w["cpu_usage_percent"], 37.5);
    assert_eq!(w["vm_count"], ours["usedSessions"]);
    assert_eq!(w["vm_count"], 1);
    assert_eq!(w["max_vms"], ours["maxSessions"]);
    assert_eq!(w["cpu_cores"], ours["totalCpuCores"]);
    assert_eq!(w["used_cpu_cores"], ours["usedCpuCores"]);
    assert_eq!(w["is_healthy"], true);
    let last_seen = w["last_seen"].as_str().unwrap();
    assert!(
        last_seen.ends_with('Z') && last_seen.contains('T'),
        "{last_seen}"
    );

    let list = s.get("/api/vdi/aetherium/workers?zone=hn-1").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["workers"][0], theirs.json);
    let none = s.get("/api/vdi/aetherium/workers?zone=elsewhere").await;
    assert_eq!(none.json["total"], 0);

    let missing = s.get("/api/vdi/aetherium/workers/w-none").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_message(), "Worker not found: w-none");
}
