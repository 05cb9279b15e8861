//! Issue 12's attack, as an attacker on the same network would run it
//! against `serve` on its defaults: register a worker anonymously with a
//! huge capacity and an `apiBaseUrl` of its own, wait for an allocation to
//! bring it the cluster token, use that token on the session API, redirect
//! a real worker, take a healthy one offline. None of it works.

use std::sync::atomic::Ordering;

use clap::Parser;
use reqwest::Method;
use serde_json::json;
use vdi_cluster_server::auth::Role;
use vdi_cluster_server::config::{Cli, Command, ServeArgs};

use crate::common::{
    Behaviour, CLUSTER_TOKEN, Cred, FakeWorker, JWT_SECRET, Setup, TestServer, WORKER_TOKEN, jwt,
    slots_heartbeat,
};
use crate::trust::serve_on_defaults;

/// `serve` with nothing configured but the JWT secret (so the test can mint
/// the exam application's token) and the cluster token (so the test can
/// present it).
fn defaults() -> ServeArgs {
    let argv = [
        "vdi-cluster",
        "serve",
        "--jwt-secret",
        JWT_SECRET,
        "--worker-cluster-token",
        CLUSTER_TOKEN,
    ];
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

/// Every request the thief's listener received: with the right cluster
/// token (counted as allocations) or not.
fn calls(thief: &FakeWorker) -> u64 {
    thief.allocates() + thief.state.bad_tokens.load(Ordering::SeqCst)
}

#[tokio::test]
async fn on_defaults_the_cluster_token_cannot_be_stolen_anonymously() {
    let (url, shutdown) = serve_on_defaults(&defaults()).await;
    let thief = FakeWorker::start(Behaviour::Healthy).await;
    let http = reqwest::Client::new();

    // 1. An anonymous heartbeat registering a huge worker at the thief.
    let r = http
        .post(format!("{url}/api/vdi/workers/heartbeat"))
        .json(&slots_heartbeat("w-thief", &thief.url, 10_000, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{url}/api/vdi/workers/register"))
        .json(&json!({"code": "w-thief", "apiBaseUrl": thief.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // 2. The exam application allocates: no worker authenticated, so no
    //    worker is called, and the cluster token goes nowhere.
    let service = jwt("exam-app", &[Role::Service]);
    let r = http
        .post(format!("{url}/api/vdi/sessions"))
        .bearer_auth(&service)
        .json(&json!({"examId": "exam-1", "userId": "student-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "no worker may take it");
    let admin = jwt("admin-1", &[Role::Admin]);
    let workers: serde_json::Value = http
        .get(format!("{url}/api/vdi/workers"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(workers["total"], 0, "{workers}");
    assert_eq!(calls(&thief), 0);

    // 3. Even holding the cluster token, the session API stays shut.
    let r = http
        .post(format!("{url}/api/vdi/sessions"))
        .header("x-cluster-token", CLUSTER_TOKEN)
        .json(&json!({"examId": "exam-1", "userId": "student-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{url}/api/vdi/exams/exam-1/prewarm"))
        .header("x-cluster-token", CLUSTER_TOKEN)
        .json(&json!({"count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    shutdown.cancel();
}

#[tokio::test]
async fn a_worker_holding_the_shared_token_cannot_steal_or_sabotage() {
    let s = TestServer::start(Setup::memory_http()).await;
    let real = FakeWorker::start(Behaviour::Healthy).await;
    let thief = FakeWorker::start(Behaviour::Healthy).await;
    let thief_url = thief.url.replace("127.0.0.1", "localhost");
    let beat = |url: &str, slots| slots_heartbeat("w-real", url, slots, 0);
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/heartbeat",
            &Cred::Worker,
            Some(&beat(&real.url, 4)),
        )
        .await;
    assert_eq!(r.status, 200);

    // Redirect the real worker to the thief: refused, nothing changes.
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/heartbeat",
            &Cred::Worker,
            Some(&beat(&thief_url, 10_000)),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let w = s.worker("w-real").await;
    assert_eq!(w["apiBaseUrl"], real.url.as_str());
    assert_eq!(w["maxSessions"], 4);

    // Take it offline: anonymously, or with the shared token. Refused.
    let url = format!("{}/api/vdi/workers/w-real/deregister", s.url);
    let anonymous = s.http.post(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let shared = s
        .http
        .post(&url)
        .header("x-worker-token", WORKER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(shared.status(), 403);
    assert_eq!(s.worker("w-real").await["status"], "active");

    // The token a worker holds opens no session API.
    let r = s
        .send(
            Method::POST,
            "/api/vdi/sessions",
            &Cred::Cluster,
            Some(&json!({"examId": "exam-1", "userId": "student-1"})),
        )
        .await;
    assert_eq!(r.status, 401);

    // Allocations go to the worker that authenticated, at its own URL; the
    // cluster token never reaches the thief.
    for i in 0..3 {
        assert_eq!(
            s.allocate("exam-1", &format!("student-{i}")).await.status,
            201
        );
    }
    assert_eq!(real.allocates(), 3);
    assert_eq!(calls(&thief), 0);
}
