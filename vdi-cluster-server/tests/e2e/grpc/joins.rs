//! Joining over gRPC with a join token: the registration's assigned id and
//! credential, and a node agent with `--control-plane grpc://…`.

use reqwest::Method;
use rustix::process::Signal;
use serde_json::json;
use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::tonic::Code;

use super::{HOST_A, HOST_B, client, control_plane, heartbeat, refused, registration, with};
use crate::common::{Api, Worker, WorkerOptions, eventually, wait_worker};

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
    // The address of its API base URL, carried by the gRPC heartbeat.
    assert_eq!(view["ipAddress"], "127.0.0.1", "{view}");
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
