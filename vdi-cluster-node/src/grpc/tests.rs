//! `WorkerService` called over real gRPC on 127.0.0.1: the cluster token
//! checked as over HTTP, and each RPC doing what its HTTP route does on the
//! same session table.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use vdi_cluster_core::{SessionKey, WorkerId};
use vdi_cluster_grpc::pb::worker_service_client::WorkerServiceClient;

use super::*;
use crate::provision::{SimulatedCheck, SimulatedProvisioner};
use crate::sessions::WorkerNode;

const TOKEN: &str = "cluster-token-for-the-grpc-tests-0123456789";

struct Served {
    node: Arc<WorkerNode>,
    client: WorkerServiceClient<Channel>,
    shutdown: CancellationToken,
}

async fn served(slots: u32) -> Served {
    served_checking(slots, SimulatedCheck::Passes).await
}

/// A node whose simulated provisioner answers a rehearsal's check as
/// `check` says.
async fn served_checking(slots: u32, check: SimulatedCheck) -> Served {
    let code = WorkerId::parse("code", "w-grpc").unwrap();
    let sim =
        SimulatedProvisioner::new(code.clone(), "127.0.0.1", Duration::ZERO, 0.0).with_check(check);
    let node = Arc::new(WorkerNode::new(code, slots, Arc::new(sim)));
    let api = WorkerApi::without_agent(Arc::clone(&node), TOKEN);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, api, shutdown.clone()));
    let client = WorkerServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Served {
        node,
        client,
        shutdown,
    }
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(CLUSTER_TOKEN_HEADER, token.parse().unwrap());
    request
}

fn start(exam: &str, user: &str) -> StartSessionRequest {
    StartSessionRequest {
        exam_id: exam.into(),
        user_id: user.into(),
        network_policy_json: None,
    }
}

#[tokio::test]
async fn every_rpc_takes_the_cluster_token_and_nothing_else() {
    let mut s = served(2).await;
    let missing = s
        .client
        .start_session(Request::new(start("exam-1", "u1")))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "x-cluster-token is required");
    let wrong = s
        .client
        .list_sessions(with_token(ListSessionsRequest {}, "not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let status = s
        .client
        .get_node_status(with_token(GetNodeStatusRequest {}, "wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(s.node.sessions().is_empty(), "nothing started");
    s.shutdown.cancel();
}

#[tokio::test]
async fn sessions_start_list_and_stop_as_over_http() {
    let mut s = served(1).await;
    let started = s
        .client
        .start_session(with_token(start("exam-1", "u1"), TOKEN))
        .await
        .unwrap()
        .into_inner();
    let details: serde_json::Value = serde_json::from_str(&started.session_json).unwrap();
    assert!(details.is_object(), "{details}");
    let again = s
        .client
        .start_session(with_token(start("exam-1", "u1"), TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.session_json, started.session_json, "idempotent");

    let listed = s
        .client
        .list_sessions(with_token(ListSessionsRequest {}, TOKEN))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].exam_id.as_str(), listed[0].user_id.as_str()),
        ("exam-1", "u1")
    );
    assert_eq!(listed[0].state, "running");
    assert_eq!(
        listed[0].session_json.as_deref(),
        Some(started.session_json.as_str())
    );

    // The node is full: the HTTP API's 409.
    let full = s
        .client
        .start_session(with_token(start("exam-1", "u2"), TOKEN))
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::AlreadyExists);
    let bad = s
        .client
        .start_session(with_token(start("exam-1", ""), TOKEN))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("userId"), "{}", bad.message());
    let mut unreadable = start("exam-1", "u2");
    unreadable.network_policy_json = Some("[1]".into());
    let unreadable = s
        .client
        .start_session(with_token(unreadable, TOKEN))
        .await
        .unwrap_err();
    assert_eq!(unreadable.code(), Code::InvalidArgument);
    assert!(
        unreadable.message().starts_with("networkPolicy"),
        "{}",
        unreadable.message()
    );

    let stopped = s
        .client
        .stop_session(with_token(
            StopSessionRequest {
                exam_id: "exam-1".into(),
                user_id: "u1".into(),
            },
            TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(stopped.released);
    let key = SessionKey::parse("exam-1", "u1").unwrap();
    assert!(s.node.sessions().iter().all(|v| v.key != key));
    s.shutdown.cancel();
}

#[tokio::test]
async fn prewarm_discard_and_status_as_over_http() {
    let mut s = served(4).await;
    let accepted = s
        .client
        .prewarm_machines(with_token(
            PrewarmMachinesRequest {
                exam_id: "exam-p".into(),
                count: 3,
                network_policy_json: None,
            },
            TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .accepted;
    assert_eq!(accepted, 3);
    let exam = vdi_cluster_core::ExamId::parse("examId", "exam-p").unwrap();
    assert_eq!(s.node.pool_report().of(&exam).held(), 3);
    let zero = s
        .client
        .prewarm_machines(with_token(
            PrewarmMachinesRequest {
                exam_id: "exam-p".into(),
                count: 0,
                network_policy_json: None,
            },
            TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(zero.code(), Code::InvalidArgument);
    assert!(zero.message().contains("count"), "{}", zero.message());

    s.client
        .discard_prewarmed(with_token(
            DiscardPrewarmedRequest {
                exam_id: "exam-p".into(),
            },
            TOKEN,
        ))
        .await
        .unwrap();
    assert_eq!(s.node.pool_report().of(&exam).ready, 0);

    // A node without a heartbeat agent has no status: the HTTP API's 404.
    let status = s
        .client
        .get_node_status(with_token(GetNodeStatusRequest {}, TOKEN))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    s.shutdown.cancel();
}

fn check(exam: &str) -> CheckExamRequest {
    CheckExamRequest {
        exam_id: exam.into(),
        network_policy_json: None,
    }
}

#[tokio::test]
async fn a_rehearsals_check_answers_as_over_http() {
    let mut s = served_checking(1, SimulatedCheck::Passes).await;
    let missing = s
        .client
        .check_exam(Request::new(check("exam-r")))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let wrong = s
        .client
        .check_exam(with_token(check("exam-r"), "not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let passed = s
        .client
        .check_exam(with_token(check("exam-r"), TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(passed.started, "{passed:?}");
    assert_eq!(passed.image_present, Some(true));
    assert_eq!(passed.image.as_deref(), Some("simulated-exam-image"));
    assert!(passed.checks.is_empty() && passed.error.is_none());
    // The same operation as `POST /api/vdi/cluster/check`: the answer is
    // the HTTP body's, field for field (the start's time aside).
    let api = WorkerApi::without_agent(Arc::clone(&s.node), TOKEN);
    let over_http = api
        .check(CheckRequest {
            exam_id: "exam-r".into(),
            network_policy: None,
        })
        .await
        .unwrap();
    let mut over_grpc = vdi_cluster_protocol::CheckResponse::from(passed);
    over_grpc.start_ms = over_http.start_ms;
    assert_eq!(over_grpc, over_http);
    assert!(s.node.sessions().is_empty(), "a test desktop is no session");

    let bad = s
        .client
        .check_exam(with_token(check(""), TOKEN))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("examId"), "{}", bad.message());
    let mut unreadable = check("exam-r");
    unreadable.network_policy_json = Some("\"open\"".into());
    let unreadable = s
        .client
        .check_exam(with_token(unreadable, TOKEN))
        .await
        .unwrap_err();
    assert_eq!(unreadable.code(), Code::InvalidArgument);
    assert!(
        unreadable.message().starts_with("networkPolicy"),
        "{}",
        unreadable.message()
    );
    s.shutdown.cancel();
}

#[tokio::test]
async fn a_failing_check_is_an_answer_that_names_what_failed() {
    let mut s = served_checking(1, SimulatedCheck::AllowListFails).await;
    let answer = s
        .client
        .check_exam(with_token(check("exam-r"), TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.started);
    assert_eq!(answer.checks.len(), 1);
    assert_eq!(answer.checks[0].name, "network-allow-list");
    assert!(!answer.checks[0].ok);
    assert!(answer.checks[0].detail.is_some());
    s.shutdown.cancel();

    let mut s = served_checking(1, SimulatedCheck::Fails).await;
    let answer = s
        .client
        .check_exam(with_token(check("exam-r"), TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.started, "the desktop did not start: {answer:?}");
    let error = answer.error.unwrap_or_default();
    assert!(error.contains("simulated check failure"), "{error}");
    s.shutdown.cancel();

    let mut s = served_checking(1, SimulatedCheck::ImageMissing).await;
    let answer = s
        .client
        .check_exam(with_token(check("exam-r"), TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.image_present, Some(false));
    s.shutdown.cancel();
}

/// `vdi-cluster worker`'s options, as the binary parses them.
#[derive(clap::Parser)]
struct Worker {
    #[command(flatten)]
    args: crate::config::WorkerArgs,
}

#[tokio::test]
async fn a_worker_started_with_grpc_listen_serves_its_sessions_there() {
    use clap::Parser as _;
    let argv = [
        "worker",
        "--code",
        "w-grpc",
        "--cluster-token",
        TOKEN,
        "--listen",
        "127.0.0.1:0",
        "--grpc-listen",
        "127.0.0.1:0",
        // Slots whatever the host's size.
        "--reserved-cpus",
        "0",
        "--reserved-memory-mb",
        "0",
        "--vm-cpus",
        "0.1",
        "--vm-memory-mb",
        "64",
        // No control plane answers: the node serves its API regardless.
        "--control-plane",
        "http://127.0.0.1:9/api",
    ];
    let config = Worker::try_parse_from(argv)
        .unwrap()
        .args
        .resolve_with(|_| None)
        .unwrap();
    let listener = crate::listen::bind(config.listen).unwrap();
    let shutdown = CancellationToken::new();
    let (running, task) = crate::start(config, listener, shutdown.clone()).unwrap();
    let addr = running.grpc_addr.expect("--grpc-listen binds");
    let mut client = WorkerServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client
        .start_session(with_token(start("exam-1", "u1"), TOKEN))
        .await
        .unwrap();
    let key = SessionKey::parse("exam-1", "u1").unwrap();
    assert!(
        running.node.sessions().iter().any(|v| v.key == key),
        "the session is in the node's own table"
    );
    let status: serde_json::Value = serde_json::from_str(
        &client
            .get_node_status(with_token(GetNodeStatusRequest {}, TOKEN))
            .await
            .unwrap()
            .into_inner()
            .status_json,
    )
    .unwrap();
    assert!(status.is_object(), "{status}");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
