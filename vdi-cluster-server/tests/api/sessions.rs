//! The session API: idempotency, failover through real HTTP calls to fake
//! workers, release, NoCapacity, backend outage and recovery, prewarm.

use reqwest::Method;
use serde_json::json;

use crate::common::{
    Behaviour, Cred, FakeWorker, Setup, TestServer, exam_platform_heartbeat, slots_heartbeat,
};

#[tokio::test]
async fn allocate_is_idempotent() {
    let (setup, sim) = Setup::memory();
    idempotency(setup, sim).await;
}

/// Allocating twice returns the same dispatch; the next student of the
/// exam follows the sticky worker. Run on every backend.
pub async fn idempotency(setup: Setup, sim: vdi_cluster_core::testkit::SimulatedWorkers) {
    let s = TestServer::start(setup).await;
    for code in ["w-a", "w-b"] {
        assert_eq!(
            s.heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0))
                .await
                .status,
            200
        );
    }
    let first = s.allocate("exam-1", "sv-1").await;
    assert_eq!(first.status, 201, "{first:?}");
    let second = s.allocate("exam-1", "sv-1").await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json["outcome"], "existing");
    assert_eq!(first.json["dispatchId"], second.json["dispatchId"]);
    assert_eq!(first.json["workerCode"], second.json["workerCode"]);
    assert_eq!(sim.allocate_calls(), 1);
    let got = s
        .send(
            Method::GET,
            "/api/vdi/sessions/exam-1/sv-1",
            &Cred::Service,
            None,
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["dispatchId"], first.json["dispatchId"]);
    assert_eq!(got.json["state"], "active");
    assert!(got.json["session"]["connection"].is_string());
    // The exam's next student lands on the same worker (sticky).
    let next = s.allocate("exam-1", "sv-2").await;
    assert_eq!(next.json["workerCode"], first.json["workerCode"]);
}

async fn failover(bad: Behaviour) {
    failover_on(Setup::memory_http(), bad).await;
}

/// The first worker misbehaves (`bad`), the second gets the session, and
/// nothing is left on the first. Run on every backend.
pub async fn failover_on(setup: Setup, bad: Behaviour) {
    let broken = FakeWorker::start(bad).await;
    let good = FakeWorker::start(Behaviour::Healthy).await;
    let s = TestServer::start(setup).await;
    // The broken worker has more free slots: spread tries it first.
    assert_eq!(
        s.heartbeat(&slots_heartbeat("w-broken", &broken.url, 10, 0))
            .await
            .status,
        200
    );
    assert_eq!(
        s.heartbeat(&slots_heartbeat("w-good", &good.url, 4, 0))
            .await
            .status,
        200
    );
    let r = s.allocate("exam-1", "sv-1").await;
    assert_eq!(r.status, 201, "{bad:?}: {r:?}");
    assert_eq!(r.json["workerCode"], "w-good");
    assert_eq!(r.json["failedCalls"], 1);
    assert_eq!(r.json["session"]["connection"], "rdp://fake/exam-1/sv-1");
    assert_eq!(broken.allocates(), 1, "{bad:?}");
    assert_eq!(good.allocates(), 1);
    assert_eq!(
        good.state
            .bad_tokens
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // The failed reservation was undone: the broken worker holds nothing.
    let w = s.worker("w-broken").await;
    assert_eq!(w["dispatchedSessions"], 0, "{w}");
    assert_eq!(s.worker("w-good").await["dispatchedSessions"], 1);
    // The sticky worker moved to the worker that succeeded.
    let r = s.allocate("exam-1", "sv-2").await;
    assert_eq!(r.json["workerCode"], "w-good");
    assert_eq!(broken.allocates(), 1);
}

#[tokio::test]
async fn failover_when_a_worker_times_out() {
    failover(Behaviour::Hang).await;
}

#[tokio::test]
async fn failover_when_a_worker_fails() {
    failover(Behaviour::Fail).await;
}

#[tokio::test]
async fn failover_when_a_worker_answers_garbage() {
    failover(Behaviour::BadJson).await;
}

#[tokio::test]
async fn release_twice_is_a_no_op() {
    let worker = FakeWorker::start(Behaviour::Healthy).await;
    let s = TestServer::start(Setup::memory_http()).await;
    s.heartbeat(&slots_heartbeat("w-1", &worker.url, 4, 0))
        .await;
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    let first = s.release("exam-1", "sv-1").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["released"], true);
    assert_eq!(first.json["workerCode"], "w-1");
    assert_eq!(worker.releases(), 1);
    let second = s.release("exam-1", "sv-1").await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json["released"], false);
    let gone = s
        .send(
            Method::GET,
            "/api/vdi/sessions/exam-1/sv-1",
            &Cred::Service,
            None,
        )
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.error_message(), "Session not found: exam-1/sv-1");
    assert_eq!(s.worker("w-1").await["dispatchedSessions"], 0);
}

#[tokio::test]
async fn no_capacity_is_503_with_retry_after() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s.allocate("exam-1", "sv-1").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json["error"], "Service Unavailable");
    assert!(r.error_message().contains("exam-1"));
    // A full worker: 1 slot, 1 taken.
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 1, 0))
        .await;
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    let r = s.allocate("exam-1", "sv-2").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.error_message().contains("full"), "{r:?}");
}

#[tokio::test]
async fn every_worker_failing_is_503() {
    let a = FakeWorker::start(Behaviour::Fail).await;
    let b = FakeWorker::start(Behaviour::Fail).await;
    let s = TestServer::start(Setup::memory_http()).await;
    s.heartbeat(&slots_heartbeat("w-a", &a.url, 4, 0)).await;
    s.heartbeat(&slots_heartbeat("w-b", &b.url, 4, 0)).await;
    let r = s.allocate("exam-1", "sv-1").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.error_message().contains("failed"), "{r:?}");
    assert_eq!(
        s.get("/api/vdi/workers/summary").await.json["totalAvailableSessions"],
        8
    );
}

#[tokio::test]
async fn backend_down_is_503_and_recovers() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&exam_platform_heartbeat(
        "worker-node-2",
        "http://127.0.0.1:1",
        0,
    ))
    .await;
    s.memory().set_unavailable(true);
    for r in [
        s.get("/api/vdi/workers/summary").await,
        s.get("/api/vdi/workers").await,
        s.heartbeat(&exam_platform_heartbeat(
            "worker-node-2",
            "http://127.0.0.1:1",
            1,
        ))
        .await,
        s.allocate("exam-1", "sv-1").await,
        s.patch_worker("worker-node-2", &json!({"isDraining": true}))
            .await,
        s.send(Method::GET, "/readyz", &Cred::None, None).await,
    ] {
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.headers.contains_key("retry-after"), "{r:?}");
        assert!(
            !r.text.contains("switched"),
            "no backend detail leaks: {r:?}"
        );
        r.error_message();
    }
    let live = s.send(Method::GET, "/healthz", &Cred::None, None).await;
    assert_eq!(live.status, 200);
    let metrics = s.send(Method::GET, "/metrics", &Cred::None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("vdi_backend_up 0"),
        "{}",
        metrics.text
    );

    s.memory().set_unavailable(false);
    assert_eq!(s.get("/api/vdi/workers/summary").await.status, 200);
    assert_eq!(
        s.send(Method::GET, "/readyz", &Cred::None, None)
            .await
            .status,
        200
    );
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    // Nothing was half-written while it was down.
    let w = s.worker("worker-node-2").await;
    assert_eq!(w["activeSessions"], 0);
    assert_eq!(w["isDraining"], false);
}

#[tokio::test]
async fn prewarm_splits_across_workers() {
    let a = FakeWorker::start(Behaviour::Healthy).await;
    let b = FakeWorker::start(Behaviour::Healthy).await;
    let s = TestServer::start(Setup::memory_http()).await;
    s.heartbeat(&slots_heartbeat("w-a", &a.url, 6, 0)).await;
    s.heartbeat(&slots_heartbeat("w-b", &b.url, 2, 0)).await;
    let r = s
        .send(
            Method::POST,
            "/api/vdi/exams/exam-9/prewarm",
            &Cred::Service,
            Some(&json!({"count": 4})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["planned"], 4);
    assert_eq!(r.json["started"], 4);
    let shares = r.json["shares"].as_array().unwrap();
    let share = |w: &str| {
        shares
            .iter()
            .find(|s| s["worker"] == w)
            .map_or(0, |s| s["count"].as_u64().unwrap())
    };
    assert_eq!(share("w-a"), 3);
    assert_eq!(share("w-b"), 1);
}

#[tokio::test]
async fn a_student_touches_only_their_own_session() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 0))
        .await;
    let me = Cred::Student("sv-1".into());
    let body = json!({"examId": "exam-1", "userId": "sv-1"});
    let r = s
        .send(Method::POST, "/api/vdi/sessions", &me, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let other = json!({"examId": "exam-1", "userId": "sv-2"});
    let r = s
        .send(Method::POST, "/api/vdi/sessions", &me, Some(&other))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        s.send(Method::GET, "/api/vdi/sessions/exam-1/sv-1", &me, None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.send(Method::DELETE, "/api/vdi/sessions/exam-1/sv-2", &me, None)
            .await
            .status,
        403
    );
    assert_eq!(
        s.send(Method::DELETE, "/api/vdi/sessions/exam-1/sv-1", &me, None)
            .await
            .status,
        200
    );
    // Only sv-1's session was ever placed.
    assert_eq!(s.worker("w-1").await["dispatchedSessions"], 0);
}
