//! minicloud's gRPC service against a real `serve --grpc-listen`: a tonic
//! client registers (assigned ids, a collision gets another id),
//! heartbeats (instructions: draining, next interval), lists with filters
//! and deregisters with a reason; the same scenario over HTTP leaves the
//! same registry; refusals carry the right codes. Health and reflection
//! answer. A node agent with `--control-plane grpc://…` joins with a join
//! token, heartbeats and takes sessions.

mod health;
mod joins;
mod refusals;
mod registry;

use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::pb::worker_management_service_client::WorkerManagementServiceClient;
use vdi_cluster_grpc::tonic::transport::Channel;
use vdi_cluster_grpc::tonic::{Code, Request, Status};

use crate::common::{ControlPlane, CpOptions, WORKER_TOKEN, admin_token};

pub(crate) type Client = WorkerManagementServiceClient<Channel>;

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

pub(crate) fn as_worker<T>(message: T) -> Request<T> {
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

pub(crate) fn registration(
    requested: &str,
    url: &str,
    zone: Option<&str>,
) -> pb::RegisterWorkerRequest {
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

pub(crate) fn heartbeat(code: &str, url: &str, seq: u64) -> pb::HeartbeatRequest {
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
pub(crate) fn refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    what: &str,
) -> Status {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    status
}

const HOST_A: &str = "http://10.0.0.1:8081";
const HOST_B: &str = "http://10.0.0.2:8081";
