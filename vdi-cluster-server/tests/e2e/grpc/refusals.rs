//! Refusals over gRPC: credentials and input, each with its code.

use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::tonic::{Code, Request};

use super::{
    HOST_A, as_admin, as_worker, client, control_plane, heartbeat, refused, registration, with,
};

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
