//! Two live processes never share one worker record (the trust issue): a
//! second agent reporting a live worker's code from another port or host
//! name, under a boot id of its own, is refused over HTTP and gRPC; its
//! registration gets a code of its own; the first keeps its record. Its
//! own credential, a restart where it ran, or a record no longer live are
//! let through.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::pb::worker_management_service_client::WorkerManagementServiceClient;
use vdi_cluster_grpc::tonic::{Code, Request};

use crate::common::{
    Behaviour, Cred, FakeWorker, Reply, Setup, TestServer, WORKER_TOKEN, slots_heartbeat,
};

/// A heartbeat of `code` at `url` from boot `boot`, heartbeat `seq`, on
/// host `hostname`.
fn beat(code: &str, url: &str, boot: &str, seq: u64, hostname: &str) -> Value {
    let mut hb = slots_heartbeat(code, url, 4, 0);
    hb["bootId"] = json!(boot);
    hb["seq"] = json!(seq);
    hb["hostname"] = json!(hostname);
    hb
}

async fn send(s: &TestServer, hb: &Value) -> Reply {
    s.send(
        Method::POST,
        "/api/vdi/workers/heartbeat",
        &Cred::Worker,
        Some(hb),
    )
    .await
}

#[tokio::test]
async fn a_second_agent_with_the_same_code_cannot_take_a_live_record() {
    let s = TestServer::start(Setup::memory_http()).await;
    let first = FakeWorker::start(Behaviour::Healthy).await;
    let second = FakeWorker::start(Behaviour::Healthy).await;
    let r = send(&s, &beat("w-dup", &first.url, "boot-a", 1, "exam-node-1")).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Another port on the same address, or another host name: refused.
    for (url, hostname) in [(&second.url, "exam-node-1"), (&first.url, "exam-node-2")] {
        let r = send(&s, &beat("w-dup", url, "boot-b", 1, hostname)).await;
        assert_eq!(r.status, 409, "{url} {hostname}: {}", r.text);
        assert!(r.error_message().contains("another process"), "{}", r.text);
    }
    let kept = s.worker("w-dup").await;
    assert_eq!(kept["apiBaseUrl"], first.url.as_str());
    let r = send(&s, &beat("w-dup", &first.url, "boot-a", 2, "exam-node-1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["accepted"], true,
        "the first keeps heartbeating: {}",
        r.text
    );

    // Its registration is another worker: a code of its own.
    let registered = s
        .send(
            Method::POST,
            "/api/vdi/workers/register",
            &Cred::Worker,
            Some(&json!({"code": "w-dup", "apiBaseUrl": second.url})),
        )
        .await;
    assert_eq!(registered.status, 200, "{}", registered.text);
    let other = registered.json["code"].as_str().unwrap();
    assert_ne!(other, "w-dup");
    assert_eq!(s.worker("w-dup").await["apiBaseUrl"], first.url.as_str());

    // Over gRPC, the same refusal.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(vdi_cluster_server::grpc::serve(listener, s.state.clone()));
    let mut grpc = WorkerManagementServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut request = Request::new(pb::HeartbeatRequest {
        worker_id: "w-dup".into(),
        description: Some(pb::WorkerDescription {
            name: "w-dup".into(),
            api_base_url: second.url.clone(),
            ..Default::default()
        }),
        capacity: Some(pb::Capacity {
            total_cpu_cores: 4.0,
            total_memory_mb: 4096,
            vm_cpu_cores: 1.0,
            vm_memory_mb: 1024,
            ..Default::default()
        }),
        boot_id: Some("boot-c".into()),
        seq: Some(1),
        host: Some(pb::HostInfo {
            hostname: Some("exam-node-1".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-worker-token", WORKER_TOKEN.parse().unwrap());
    let status = grpc.heartbeat(request).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(s.worker("w-dup").await["apiBaseUrl"], first.url.as_str());

    // A restart where it ran (new boot, same URL and host) is not a takeover.
    let r = send(&s, &beat("w-dup", &first.url, "boot-d", 1, "exam-node-1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["accepted"], true, "{}", r.text);
}
