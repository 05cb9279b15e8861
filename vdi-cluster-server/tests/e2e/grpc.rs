//! Seed 003's gRPC service against a real `serve --grpc-listen`: a tonic
//! client registers (assigned ids, a collision gets another id),
//! heartbeats (instructions: draining, next interval), lists with filters
//! and deregisters with a reason; the same scenario over HTTP leaves the
//! same registry; refusals carry the right codes. Health and reflection
//! answer. A node agent with `--control-plane grpc://…` joins with a join
//! token, heartbeats and takes sessions.

use std::collections::BTreeMap;

use reqwest::Method;
use rustix::process::Signal;
use serde_json::{Value, json};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::pb::worker_management_service_client::WorkerManagementServiceClient;
use vdi_cluster_grpc::tonic::transport::Channel;
use vdi_cluster_grpc::tonic::{Code, Request, Status};

use crate::common::{
    Api, ControlPlane, CpOptions, WORKER_TOKEN, Worker, WorkerOptions, admin_token, eventually,
    wait_worker,
};

type Client = WorkerManagementServiceClient<Channel>;

/// A control plane with gRPC on a free port, and its `host:port`.
async fn control_plane() -> (ControlPlane, String) {
    let mut cp = ControlPlane::start(CpOptions {
        extra: vec!["--grpc-listen".into(), "127.0.0.1:0".into()],
        ..CpOptions::default()
    })
    .await;
    let line = cp.proc.wait_line("gRPC listening on grpc://").await;
    let addr = line.rsplit("grpc://").next().unwrap().trim().to_owned();
    (cp, addr)
}

async fn client(addr: &str) -> Client {
    Client::connect(format!("http://{addr}")).await.unwrap()
}

/// `message` with `value` in metadata `name`.
fn with<T>(message: T, name: &'static str, value: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert(name, value.parse().unwrap());
    r
}

fn as_worker<T>(message: T) -> Request<T> {
    with(message, "x-worker-token", WORKER_TOKEN)
}

fn as_admin<T>(message: T) -> Request<T> {
    with(
        message,
        "authorization",
        &format!("Bearer {}", admin_token()),
    )
}

fn description(url: &str, zone: Option<&str>) -> pb::WorkerDescription {
    pb::WorkerDescription {
        name: "Exam node".into(),
        api_base_url: url.into(),
        zone: zone.map(str::to_owned),
        ..Default::default()
    }
}

fn registration(requested: &str, url: &str, zone: Option<&str>) -> pb::RegisterWorkerRequest {
    pb::RegisterWorkerRequest {
        requested_id: requested.into(),
        description: Some(description(url, zone)),
        host: Some(pb::HostInfo {
            hostname: Some("exam-node-1".into()),
            disk_gb: Some(500),
            os: Some("Ubuntu 22.04".into()),
            ..Default::default()
        }),
        keep_requested_id: false,
    }
}

fn heartbeat(code: &str, url: &str, seq: u64) -> pb::HeartbeatRequest {
    pb::HeartbeatRequest {
        worker_id: code.into(),
        description: Some(description(url, None)),
        capacity: Some(pb::Capacity {
            total_cpu_cores: 8.0,
            total_memory_mb: 12288,
            reserved_cpu_cores: 1.0,
            reserved_memory_mb: 1024,
            vm_cpu_cores: 1.5,
            vm_memory_mb: 2048,
        }),
        active_sessions: 1,
        boot_id: Some("boot-1".into()),
        seq: Some(seq),
        reports_live_sessions: false,
        host: Some(pb::HostInfo {
            used_disk_gb: Some(50),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A refusal with `code`, never `INTERNAL`.
fn refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, what: &str) -> Status {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    status
}

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

const HOST_A: &str = "http://10.0.0.1:8081";
const HOST_B: &str = "http://10.0.0.2:8081";

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

    // Seed 004's cluster figures, by the slot math, under seed 003's name too.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refusals_carry_their_codes() {
    let (_cp, addr) = control_plane().await;
    let mut c = client(&addr).await;
    // Credentials.
    refused(
        c.heartbeat(Request::new(heartbeat("w1", HOST_A, 1))).await,
        Code::Unauthenticated,
        "no token",
    );
    refused(
        c.heartbeat(with(heartbeat("w1", HOST_A, 1), "x-worker-token", "wrong"))
            .await,
        Code::Unauthenticated,
        "wrong token",
    );
    refused(
        c.list_workers(as_worker(pb::ListWorkersRequest::default()))
            .await,
        Code::Unauthenticated,
        "worker token on an operator RPC",
    );
    refused(
        c.register_worker(with(
            registration("w1", HOST_A, None),
            "x-join-token",
            "vdij_unknown",
        ))
        .await,
        Code::Unauthenticated,
        "unknown join token",
    );
    refused(
        c.deregister_worker(as_worker(pb::DeregisterWorkerRequest {
            worker_id: "w1".into(),
            reason: String::new(),
        }))
        .await,
        Code::PermissionDenied,
        "shared token on deregistration",
    );
    // Input.
    let mut bad = heartbeat("bad code!", HOST_A, 1);
    let e = refused(
        c.heartbeat(as_worker(bad.clone())).await,
        Code::InvalidArgument,
        "bad code",
    );
    assert!(e.message().contains("code"), "{e:?}");
    bad.worker_id = "w1".into();
    bad.capacity = None;
    refused(
        c.heartbeat(as_worker(bad.clone())).await,
        Code::InvalidArgument,
        "no capacity",
    );
    let mut bad = heartbeat("w1", HOST_A, 1);
    bad.capacity.as_mut().unwrap().vm_cpu_cores = 0.0;
    let e = refused(
        c.heartbeat(as_worker(bad)).await,
        Code::InvalidArgument,
        "zero VM",
    );
    assert!(e.message().contains("vmCpuCores"), "{e:?}");
    refused(
        c.register_worker(as_worker(registration("w1", "ftp://x", None)))
            .await,
        Code::InvalidArgument,
        "bad URL",
    );
    refused(
        c.list_workers(as_admin(pb::ListWorkersRequest {
            status: "sleeping".into(),
            ..Default::default()
        }))
        .await,
        Code::InvalidArgument,
        "unknown status",
    );
    c.heartbeat(as_worker(heartbeat("w1", HOST_A, 1)))
        .await
        .unwrap();
    refused(
        c.deregister_worker(as_admin(pb::DeregisterWorkerRequest {
            worker_id: "w1".into(),
            reason: "bad\u{7}".into(),
        }))
        .await,
        Code::InvalidArgument,
        "control character in the reason",
    );
    refused(
        c.get_worker(as_admin(pb::GetWorkerRequest {
            worker_id: "nobody".into(),
        }))
        .await,
        Code::NotFound,
        "unknown worker",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_over_grpc_answer_the_assigned_id_and_its_credential() {
    let (cp, addr) = control_plane().await;
    let api = Api::new(&cp.url);
    let (status, created) = api
        .admin(
            Method::POST,
            "/api/vdi/join-tokens",
            Some(json!({"ttlSec": 600, "maxUses": 3})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let mut c = client(&addr).await;
    let join = |requested: &str, url: &str, keep: bool| {
        let message = pb::RegisterWorkerRequest {
            keep_requested_id: keep,
            ..registration(requested, url, None)
        };
        with(message, "x-join-token", &token)
    };
    let first = c
        .register_worker(join("joined", HOST_A, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.worker_id, "joined");
    let credential = first.credential.unwrap();
    assert!(credential.starts_with("vdiw.joined."), "{credential}");
    assert!(first.credential_ttl_sec.is_some_and(|t| t > 0));
    // Taken: another id, with a credential naming it.
    let second = c
        .register_worker(join("joined", HOST_B, false))
        .await
        .unwrap()
        .into_inner();
    assert!(second.worker_id.starts_with("joined-"), "{second:?}");
    let other = second.credential.unwrap();
    assert!(
        other.starts_with(&format!("vdiw.{}.", second.worker_id)),
        "{other}"
    );
    // A worker whose id is fixed is refused instead.
    refused(
        c.register_worker(join("joined", HOST_B, true)).await,
        Code::AlreadyExists,
        "a taken id kept",
    );
    // The credential works for its own worker only.
    c.heartbeat(with(
        heartbeat("joined", HOST_A, 1),
        "x-worker-token",
        &credential,
    ))
    .await
    .unwrap();
    refused(
        c.heartbeat(with(
            heartbeat(&second.worker_id, HOST_B, 1),
            "x-worker-token",
            &credential,
        ))
        .await,
        Code::PermissionDenied,
        "another worker's credential",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    let (_cp, addr) = control_plane().await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: vdi_cluster_grpc::SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&vdi_cluster_grpc::SERVICE_NAME), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_grpc_joins_heartbeats_and_takes_sessions() {
    let (cp, addr) = control_plane().await;
    let api = Api::new(&cp.url);
    let (status, created) = api
        .admin(
            Method::POST,
            "/api/vdi/join-tokens",
            Some(json!({"ttlSec": 600, "maxUses": 1})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let options = WorkerOptions {
        slots: 4,
        worker_token: false,
        extra: vec!["--join-token".into(), token],
        ..WorkerOptions::default()
    };
    let mut worker = Worker::start("grpc-agent", &format!("grpc://{addr}"), options).await;
    let view = wait_worker(&api, "grpc-agent", "availability", json!("healthy")).await;
    assert_eq!(view["maxSessions"], 4);
    assert!(view["hostname"].is_string(), "{view}");
    assert_eq!(view["agentVersion"], env!("CARGO_PKG_VERSION"));
    let own = worker.status().await["controlPlane"].clone();
    assert_eq!(own["credential"], "own", "{own}");

    for user in ["s1", "s2", "s3"] {
        let placed = api.allocate("exam-grpc", user).await;
        assert_eq!(placed["workerCode"], "grpc-agent", "{placed}");
    }
    eventually("the agent's heartbeats report its sessions", || async {
        let v = api.worker("grpc-agent").await;
        (v["activeSessions"] == 3).then_some(())
    })
    .await;
    api.release("exam-grpc", "s1").await;

    worker.proc.signal(Signal::TERM);
    assert!(worker.proc.wait_exit().await.success());
    let gone = wait_worker(&api, "grpc-agent", "availability", json!("offline")).await;
    assert_eq!(gone["deregisterReason"], "worker agent shutting down");
}
