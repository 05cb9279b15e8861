//! Registration, heartbeats, listing and deregistration over gRPC leave
//! the same registry as the same scenario over HTTP.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_grpc::pb;

use super::{HOST_A, HOST_B, as_admin, as_worker, client, control_plane, heartbeat, registration};
use crate::common::{Api, ControlPlane, CpOptions, WORKER_TOKEN};

/// The registry as comparable facts: per code (the random suffix of an
/// assigned code left out), what the API shows that does not depend on
/// time.
async fn registry(api: &Api) -> BTreeMap<String, Value> {
    let list = api.get("/api/vdi/workers").await;
    list["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let code = w["code"].as_str().unwrap();
            let stem = match code.strip_prefix("exam-node-1-") {
                Some(_) => "exam-node-1-*".to_owned(),
                None => code.to_owned(),
            };
            let facts = json!({
                "status": w["status"], "availability": w["availability"],
                "isDraining": w["isDraining"], "drainStatus": w["drainStatus"],
                "maxSessions": w["maxSessions"], "usedSessions": w["usedSessions"],
                "zone": w["zone"], "hostname": w["hostname"], "os": w["os"],
                "diskGb": w["diskGb"], "usedDiskGb": w["usedDiskGb"],
                "usedCpuCores": w["usedCpuCores"],
                "deregisterReason": w["deregisterReason"],
            });
            (stem, facts)
        })
        .collect()
}

/// The scenario over gRPC; answers the code the collision got.
async fn scenario_over_grpc(addr: &str, api: &Api) -> String {
    let mut c = client(addr).await;
    // No code requested: one derived from the host name.
    let first = c
        .register_worker(as_worker(registration("", HOST_A, None)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.worker_id, "exam-node-1");
    assert!(first.credential.is_none());
    // The same host again: the same id.
    let again = c
        .register_worker(as_worker(registration("exam-node-1", HOST_A, None)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.worker_id, "exam-node-1");
    // Another host asking for that id gets another one.
    let other = c
        .register_worker(as_worker(registration("exam-node-1", HOST_B, Some("z1"))))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(other.worker_id, "exam-node-1");
    assert!(other.worker_id.starts_with("exam-node-1-"), "{other:?}");

    let ack = c
        .heartbeat(as_worker(heartbeat("exam-node-1", HOST_A, 1)))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.accepted);
    assert_eq!(ack.max_sessions, 4);
    let i = ack.instructions.unwrap();
    assert!(i.accept_sessions && !i.is_draining);
    assert!(i.next_heartbeat_sec > 0.0, "{i:?}");

    let (status, body) = api
        .admin(
            Method::PATCH,
            "/api/vdi/workers/exam-node-1",
            Some(json!({"isDraining": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ack = c
        .heartbeat(as_worker(heartbeat("exam-node-1", HOST_A, 2)))
        .await
        .unwrap()
        .into_inner();
    let i = ack.instructions.unwrap();
    assert!(i.is_draining && !i.accept_sessions, "{i:?}");
    assert_eq!(i.drain_status, "draining");

    let healthy = c
        .list_workers(as_admin(pb::ListWorkersRequest {
            status: "HEALTHY".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<&str> = healthy
        .workers
        .iter()
        .map(|w| w.worker_id.as_str())
        .collect();
    assert_eq!(codes, ["exam-node-1"]);
    let zoned = c
        .list_workers(as_admin(pb::ListWorkersRequest {
            zone: "z1".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zoned.total, 1);
    assert_eq!(zoned.workers[0].worker_id, other.worker_id);

    let gone = c
        .deregister_worker(as_admin(pb::DeregisterWorkerRequest {
            worker_id: other.worker_id.clone(),
            reason: "maintenance".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .worker
        .unwrap();
    assert_eq!(gone.deregister_reason.as_deref(), Some("maintenance"));
    assert_eq!(gone.status, "offline");
    other.worker_id
}

/// The same scenario over HTTP; answers the code the collision got.
async fn scenario_over_http(api: &Api) -> String {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", api.base))
            .header("x-worker-token", WORKER_TOKEN)
            .json(&body)
            .send()
    };
    let register = |code: Option<&str>, url: &str, zone: Option<&str>| {
        let mut body = json!({"name": "Exam node", "apiBaseUrl": url,
                              "hostname": "exam-node-1", "diskGb": 500, "os": "Ubuntu 22.04"});
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        if let Some(z) = zone {
            body["zone"] = json!(z);
        }
        post("/api/vdi/workers/register", body)
    };
    let first: Value = register(None, HOST_A, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["code"], "exam-node-1");
    let again: Value = register(Some("exam-node-1"), HOST_A, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["code"], "exam-node-1");
    let other: Value = register(Some("exam-node-1"), HOST_B, Some("z1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = other["code"].as_str().unwrap().to_owned();
    assert!(other.starts_with("exam-node-1-"), "{other}");
    for seq in 1..=2 {
        if seq == 2 {
            api.admin(
                Method::PATCH,
                "/api/vdi/workers/exam-node-1",
                Some(json!({"isDraining": true})),
            )
            .await;
        }
        let r = post(
            "/api/vdi/workers/heartbeat",
            json!({"code": "exam-node-1", "name": "Exam node", "apiBaseUrl": HOST_A,
                   "totalCpuCores": 8, "totalMemoryMb": 12288,
                   "reservedCpuCores": 1, "reservedMemoryMb": 1024,
                   "vmCpuCores": 1.5, "vmMemoryMb": 2048, "activeSessions": 1,
                   "bootId": "boot-1", "seq": seq, "usedDiskGb": 50}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    let list = api.get("/api/vdi/workers?status=healthy").await;
    assert_eq!(list["total"], 1, "{list}");
    let (status, body) = api
        .admin(
            Method::POST,
            &format!("/api/vdi/workers/{other}/deregister"),
            Some(json!({"reason": "maintenance"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    other
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_leave_the_same_registry() {
    let (grpc_cp, addr) = control_plane().await;
    let grpc_api = Api::new(&grpc_cp.url);
    let collided = scenario_over_grpc(&addr, &grpc_api).await;
    let http_cp = ControlPlane::start(CpOptions::default()).await;
    let http_api = Api::new(&http_cp.url);
    scenario_over_http(&http_api).await;

    let over_grpc = registry(&grpc_api).await;
    assert_eq!(over_grpc, registry(&http_api).await);
    let node = &over_grpc["exam-node-1"];
    assert_eq!(node["hostname"], "exam-node-1");
    assert_eq!(node["usedDiskGb"], 50);
    assert_eq!(node["usedCpuCores"], 1.5);

    // Aetherium's cluster figures, by the slot math, under minicloud's name too.
    let stats = grpc_api.get("/api/vdi/workers/stats").await;
    assert_eq!(stats, grpc_api.get("/api/vdi/cluster/stats").await);
    assert_eq!(stats["usedCpuCores"], 1.5, "{stats}");
    assert_eq!(stats["usedMemoryMb"], 2048, "{stats}");

    // The reason is in the worker's detail and the audit trail.
    let detail = grpc_api.worker(&collided).await;
    assert_eq!(detail["deregisterReason"], "maintenance");
    let audit = grpc_api.get("/api/vdi/audit").await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "deregister")
        .cloned()
        .unwrap_or_else(|| panic!("no deregister entry: {audit}"));
    assert_eq!(entry["target"], collided.as_str());
    assert_eq!(entry["detail"]["reason"], "maintenance");
}
