//! Throttling of failed authentication, per peer: a guesser gets 429 with
//! `Retry-After` (even with a good credential, which is not checked), and
//! nobody else is slowed. Two peers on loopback are simulated through a
//! trusted proxy's `X-Forwarded-For`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use reqwest::Method;
use tower::ServiceExt;
use vdi_cluster_core::MemoryStore;
use vdi_cluster_server::auth::Role;
use vdi_cluster_server::throttle::ThrottleConfig;
use vdi_cluster_server::{AppState, router};

use crate::common::{Cred, Reply, Setup, TestServer, auth, jwt, slots_heartbeat};

const GUESSER: &str = "203.0.113.7";
const OPERATOR: &str = "198.51.100.2";

fn throttle(trusted: bool) -> ThrottleConfig {
    ThrottleConfig {
        max_failures: 5,
        window: Duration::from_secs(600),
        trusted_proxies: if trusted {
            vec!["127.0.0.1".parse().unwrap()]
        } else {
            Vec::new()
        },
        ..ThrottleConfig::default()
    }
}

async fn start(trusted: bool) -> TestServer {
    let (mut setup, _sim) = Setup::memory();
    setup.throttle = throttle(trusted);
    TestServer::start(setup).await
}

async fn get_workers(s: &TestServer, from: &str, cred: &Cred) -> Reply {
    let req = cred
        .apply(s.request(Method::GET, "/api/vdi/workers"))
        .header("x-forwarded-for", from);
    Reply::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_guesser_is_turned_away_and_nobody_else_is_slowed() {
    let s = start(true).await;
    for i in 0..5 {
        let r = get_workers(&s, GUESSER, &Cred::WrongSecret).await;
        assert_eq!(r.status, 401, "guess {i}: {}", r.text);
    }
    // Throttled: 429 with Retry-After, before any credential is checked
    // (a good one too).
    for cred in [Cred::WrongSecret, Cred::Admin] {
        let r = get_workers(&s, GUESSER, &cred).await;
        assert_eq!(r.status, 429, "{}", r.text);
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=600).contains(&wait), "{wait}");
    }
    // The hop before the proxy is what counts: another address is served.
    let r = get_workers(&s, OPERATOR, &Cred::Admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .request(Method::POST, "/api/vdi/workers/heartbeat")
        .header("x-forwarded-for", OPERATOR)
        .header("x-worker-token", crate::common::WORKER_TOKEN)
        .json(&slots_heartbeat("w-1", "http://127.0.0.1:1", 2, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The proxy's own requests (no X-Forwarded-For) are another peer.
    assert_eq!(
        s.send(Method::GET, "/api/vdi/workers", &Cred::Admin, None)
            .await
            .status,
        200
    );
    // Public routes are never throttled.
    let r = s
        .request(Method::GET, "/healthz")
        .header("x-forwarded-for", GUESSER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let s = start(false).await;
    // Each guess claims another address: all count for the connection's.
    for i in 0..5 {
        let r = get_workers(&s, &format!("192.0.2.{i}"), &Cred::WrongSecret).await;
        assert_eq!(r.status, 401);
    }
    let r = get_workers(&s, "192.0.2.200", &Cred::Admin).await;
    assert_eq!(r.status, 429, "{}", r.text);
}

#[tokio::test]
async fn a_router_without_the_listener_is_not_throttled() {
    // No ConnectInfo: no peer to count under.
    let state = AppState::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(vdi_cluster_core::testkit::SimulatedWorkers::new()),
        auth(),
    )
    .throttle(ThrottleConfig {
        max_failures: 1,
        ..ThrottleConfig::default()
    })
    .build();
    let app = router(state);
    let bad = jwt("admin-1", &[Role::Student]);
    for _ in 0..5 {
        let req = axum::http::Request::get("/api/vdi/workers")
            .header("authorization", "Bearer not-a-jwt")
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status();
        assert_eq!(status, 401);
    }
    let req = axum::http::Request::get("/api/vdi/workers")
        .header("authorization", format!("Bearer {bad}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 403);
}
