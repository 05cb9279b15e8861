//! Closed by default: `serve` on its defaults refuses anonymous heartbeats;
//! the shared worker token cannot move a known worker to another host nor
//! deregister it; anonymous heartbeats need an explicit opt-in.

use std::time::Duration;

use clap::Parser;
use reqwest::Method;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::service::BackgroundConfig;
use vdi_cluster_server::auth::AuthConfig;
use vdi_cluster_server::config::{Cli, Command, ServeArgs};
use vdi_cluster_server::server::{prepare, run};

use crate::common::{
    Behaviour, Cred, FakeWorker, JWT_SECRET, Reply, Setup, TestServer, slots_heartbeat,
};

fn serve_args(extra: &[&str]) -> ServeArgs {
    let mut argv = vec![
        "vdi-cluster",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        JWT_SECRET,
    ];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

/// A control plane as `serve` builds it from `args` (secrets it generates
/// are printed, as on the command line), on a free loopback port.
pub async fn serve_on_defaults(args: &ServeArgs) -> (String, CancellationToken) {
    let shutdown = CancellationToken::new();
    let state = prepare(args, shutdown.clone()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(run(
        listener,
        state,
        BackgroundConfig::default(),
        Duration::from_secs(1),
    ));
    (url, shutdown)
}

#[tokio::test]
async fn on_defaults_an_anonymous_heartbeat_is_refused() {
    let (url, shutdown) = serve_on_defaults(&serve_args(&[])).await;
    let http = reqwest::Client::new();
    let body = slots_heartbeat("w-anon", "http://127.0.0.1:1", 100, 0);
    for path in ["/api/vdi/workers/heartbeat", "/api/vdi/workers/register"] {
        let r = Reply::from(
            http.post(format!("{url}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
    }
    let r = Reply::from(
        http.post(format!("{url}/api/vdi/workers/w-anon/deregister"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    shutdown.cancel();
}

#[tokio::test]
async fn anonymous_heartbeats_need_the_explicit_opt_in() {
    let (url, shutdown) = serve_on_defaults(&serve_args(&["--allow-anonymous-heartbeats"])).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/vdi/workers/heartbeat"))
        .json(&slots_heartbeat("w-dev", "http://127.0.0.1:1", 2, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Deregistration is never anonymous, even then.
    let r = http
        .post(format!("{url}/api/vdi/workers/w-dev/deregister"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    shutdown.cancel();
}

#[tokio::test]
async fn short_secrets_refuse_to_start() {
    let args = serve_args(&["--worker-heartbeat-token", "too-short"]);
    let e = prepare(&args, CancellationToken::new()).await.unwrap_err();
    assert!(e.to_string().contains("WORKER_HEARTBEAT_TOKEN"), "{e}");
}

async fn heartbeat_as(s: &TestServer, cred: &Cred, code: &str, url: &str) -> Reply {
    s.send(
        Method::POST,
        "/api/vdi/workers/heartbeat",
        cred,
        Some(&slots_heartbeat(code, url, 4, 0)),
    )
    .await
}

#[tokio::test]
async fn the_shared_token_cannot_move_a_worker_to_another_host() {
    let s = TestServer::start(Setup::memory_http()).await;
    let real = FakeWorker::start(Behaviour::Healthy).await;
    let thief = FakeWorker::start(Behaviour::Healthy).await;
    // The same loopback listener, named by another host.
    let stolen_url = thief.url.replace("127.0.0.1", "localhost");
    assert_eq!(
        heartbeat_as(&s, &Cred::Worker, "w-real", &real.url)
            .await
            .status,
        200
    );

    let moved = heartbeat_as(&s, &Cred::Worker, "w-real", &stolen_url).await;
    assert_eq!(moved.status, 403, "{}", moved.text);
    assert_eq!(moved.json["field"], "apiBaseUrl");
    let registered = s
        .send(
            Method::POST,
            "/api/vdi/workers/register",
            &Cred::Worker,
            Some(&json!({"code": "w-real", "apiBaseUrl": stolen_url})),
        )
        .await;
    // Registration does not move it either: the other host is another
    // worker, and gets another code (as minicloud).
    assert_eq!(registered.status, 200, "{}", registered.text);
    let other = registered.json["code"].as_str().unwrap();
    assert!(other.starts_with("w-real-"), "{other}");
    assert_eq!(registered.json["apiBaseUrl"], stolen_url.as_str());
    assert_eq!(s.worker("w-real").await["apiBaseUrl"], real.url.as_str());

    // Another port or path on the same host is not a move.
    let same_host = format!("{}/v2", real.url);
    assert_eq!(
        heartbeat_as(&s, &Cred::Worker, "w-real", &same_host)
            .await
            .status,
        200
    );
    assert_eq!(
        heartbeat_as(&s, &Cred::Worker, "w-real", &real.url)
            .await
            .status,
        200
    );

    // The allocation goes to the real worker; the thief never sees the
    // cluster token.
    assert_eq!(s.allocate("exam-t", "u-1").await.status, 201);
    assert_eq!(real.allocates(), 1);
    assert_eq!(thief.allocates(), 0);
    assert_eq!(
        thief
            .state
            .bad_tokens
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // An admin may move it: delete the record (no sessions left), and the
    // worker registers anew.
    s.release("exam-t", "u-1").await;
    let deleted = s
        .send(
            Method::DELETE,
            "/api/vdi/workers/w-real",
            &Cred::Admin,
            None,
        )
        .await;
    assert!((200..300).contains(&deleted.status), "{}", deleted.text);
    assert_eq!(
        heartbeat_as(&s, &Cred::Worker, "w-real", &stolen_url)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_anonymous_heartbeat_cannot_move_a_worker_either() {
    let (mut setup, _sim) = Setup::memory();
    setup.auth = AuthConfig::new()
        .with_jwt_secret(JWT_SECRET.as_bytes(), None, None)
        .with_worker_token(crate::common::WORKER_TOKEN)
        .allow_anonymous_workers();
    let s = TestServer::start(setup).await;
    let first = heartbeat_as(&s, &Cred::Worker, "w-1", "http://10.0.0.1:3000").await;
    assert_eq!(first.status, 200);
    let moved = heartbeat_as(&s, &Cred::None, "w-1", "http://10.6.6.6:3000").await;
    assert_eq!(moved.status, 403, "{}", moved.text);
    let deregistered = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/deregister",
            &Cred::Worker,
            None,
        )
        .await;
    assert_eq!(deregistered.status, 403, "{}", deregistered.text);
}
