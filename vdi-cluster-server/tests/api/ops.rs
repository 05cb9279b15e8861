//! Operations and the rest of the admin API: health, metrics, request ids,
//! events, reconcile, audit, stats with zones, distribution, filters,
//! registration, removal, errors, graceful shutdown.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::service::BACKGROUND_LEASE;

use crate::common::{Cred, Setup, TestServer, exam_platform_heartbeat, slots_heartbeat};

#[tokio::test]
async fn health_and_readiness() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s.send(Method::GET, "/healthz", &Cred::None, None).await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("ok")));
    let r = s.send(Method::GET, "/readyz", &Cred::None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["store"], "memory");
}

#[tokio::test]
async fn metrics_count_what_happens() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&exam_platform_heartbeat(
        "worker-node-2",
        "http://127.0.0.1:1",
        11,
    ))
    .await;
    let bad = s
        .send(
            Method::POST,
            "/api/vdi/workers/heartbeat",
            &Cred::None,
            Some(&exam_platform_heartbeat(
                "worker-node-2",
                "http://127.0.0.1:1",
                11,
            )),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    assert_eq!(
        s.send(
            Method::POST,
            "/api/vdi/workers/reconcile",
            &Cred::Admin,
            None
        )
        .await
        .status,
        200
    );
    let r = s.send(Method::GET, "/metrics", &Cred::None, None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text")
    );
    for needle in [
        "vdi_workers{status=\"active\"} 1",
        "vdi_workers{status=\"draining\"} 0",
        "vdi_slots_max 18",
        // The 11 the worker reported plus the one placed since.
        "vdi_slots_available 6",
        "vdi_sessions_active 12",
        "vdi_backend_up 1",
        "vdi_heartbeats_total{result=\"accepted\"} 1",
        "vdi_heartbeats_total{result=\"rejected\"} 1",
        "vdi_allocations_total{outcome=\"placed\"} 1",
        "vdi_allocate_duration_seconds_count{outcome=\"placed\"} 1",
        "vdi_reconcile_runs_total 1",
        "vdi_reconcile_removed_total{reason=\"stale\"} 0",
        "vdi_drift_repaired_total 0",
        "# EOF",
    ] {
        assert!(r.text.contains(needle), "{needle} in\n{}", r.text);
    }
}

#[tokio::test]
async fn request_ids_are_set_and_echoed() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s.request(Method::GET, "/healthz").send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    let r = s
        .request(Method::GET, "/healthz")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42");
}

#[tokio::test]
async fn errors_have_the_aetherium_shape() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s.get("/api/vdi/workers/w-9").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json,
        json!({"error": "Not Found", "message": "Worker not found: w-9", "code": 404})
    );
    let r = s.get("/api/vdi/nothing-here").await;
    assert_eq!(r.status, 404);
    r.error_message();
    let r = s
        .send(Method::PUT, "/api/vdi/workers/summary", &Cred::Admin, None)
        .await;
    assert_eq!(r.status, 405);
    r.error_message();
    let r = s
        .send(Method::GET, "/api/vdi/workers", &Cred::None, None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    r.error_message();
}

#[tokio::test]
async fn events_stream_cluster_events() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let mut stream = Cred::Admin
        .apply(s.request(Method::GET, "/api/vdi/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    // The stream opens with a `ready` event: the subscription is live.
    while !seen.contains("event: ready") {
        let chunk = stream.chunk().await.unwrap().expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    s.heartbeat(&exam_platform_heartbeat(
        "worker-node-7",
        "http://127.0.0.1:1",
        0,
    ))
    .await;
    s.patch_worker("worker-node-7", &json!({"isDraining": true}))
        .await;
    let read = async {
        while !(seen.contains("event: workerRegistered") && seen.contains("event: workerPolicy")) {
            let chunk = stream.chunk().await.unwrap().expect("stream open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    // A bound so a broken stream fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("events arrive");
    assert!(seen.contains("\"worker\":\"worker-node-7\""), "{seen}");
    assert!(seen.contains("\"actor\":\"admin-1\""), "{seen}");
}

#[tokio::test]
async fn reconcile_returns_its_report_and_is_audited() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/reconcile",
            &Cred::Proctor,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json["startedAt"].is_u64());
    assert_eq!(r.json["scanComplete"], true);
    assert!(r.json["drift"].as_array().unwrap().is_empty());
    let audit = s.get("/api/vdi/audit?limit=5").await;
    let first = &audit.json["entries"][0];
    assert_eq!(first["action"], "reconcile");
    assert_eq!(first["actor"], "proctor-1");
}

fn zoned(code: &str, zone: &str, slots: u32) -> Value {
    let mut hb = slots_heartbeat(code, "http://127.0.0.1:1", slots, 0);
    hb["zone"] = zone.into();
    hb["labels"] = json!({"env": if zone == "a" { "prod" } else { "test" }});
    hb
}

#[tokio::test]
async fn stats_distribution_filters_and_healthy_list() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&zoned("w-a1", "a", 4)).await;
    s.heartbeat(&zoned("w-a2", "a", 2)).await;
    s.heartbeat(&zoned("w-b1", "b", 3)).await;
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    s.patch_worker("w-b1", &json!({"isDraining": true})).await;

    let stats = s.get("/api/vdi/cluster/stats").await;
    assert_eq!(stats.status, 200, "{stats:?}");
    assert_eq!(stats.json["totalWorkers"], 3);
    assert_eq!(stats.json["zones"]["a"]["workers"], 2);
    assert_eq!(stats.json["zones"]["a"]["maxSessions"], 6);
    assert_eq!(stats.json["zones"]["b"]["workers"], 1);
    assert_eq!(stats.json["byStatus"]["active"], 2);
    assert_eq!(stats.json["byStatus"]["drained"], 1);

    let dist = s.get("/api/vdi/cluster/distribution?perWorker=10").await;
    assert_eq!(dist.status, 200, "{dist:?}");
    assert_eq!(dist.json["totalWorkers"], 3);
    let total: u64 = dist.json["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["sessionCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1);

    let by = |q: &str| {
        let q = q.to_owned();
        let s = &s;
        async move { s.get(&format!("/api/vdi/workers?{q}")).await }
    };
    assert_eq!(by("zone=a").await.json["total"], 2);
    assert_eq!(by("label=env:test").await.json["total"], 1);
    assert_eq!(by("status=drained").await.json["total"], 1);
    assert_eq!(by("status=active&zone=b").await.json["total"], 0);
    let bad = by("status=sleepy").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("status"))
    );
    let bad = by("label=nocolon").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("label"))
    );
    let bad = by("staus=active").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (400, Some("staus"))
    );

    let healthy = s.get("/api/vdi/workers/healthy").await;
    assert_eq!(healthy.json["total"], 3);
    let owner = healthy.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["dispatchedSessions"] == 1)
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions = s.get(&format!("/api/vdi/workers/{owner}/sessions")).await;
    assert_eq!(sessions.json["total"], 1);
    assert_eq!(sessions.json["sessions"][0]["userId"], "sv-1");
}

#[tokio::test]
async fn register_deregister_and_remove() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/register",
            &Cred::Worker,
            Some(&json!({"code": "w-new", "name": "New", "apiBaseUrl": "http://10.0.0.9:3000", "zone": "a",
                         "agentVersion": "2", "ipAddress": "10.0.0.9", "os": "Ubuntu 22.04",
                         "containerRuntime": "docker 24.0.0", "nixVersion": "2.18.0"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["status"], "pending");
    // SkyPanelV2's metadata, kept with the record and shown in both views.
    let one = s.worker("w-new").await;
    let listed = s.get("/api/vdi/workers").await.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "w-new")
        .cloned()
        .unwrap();
    for view in [&one, &listed] {
        assert_eq!(view["ipAddress"], "10.0.0.9", "{view}");
        assert_eq!(view["containerRuntime"], "docker 24.0.0", "{view}");
        assert_eq!(view["nixVersion"], "2.18.0", "{view}");
        assert_eq!(view["os"], "Ubuntu 22.04", "{view}");
        assert_eq!(view["agentVersion"], "2", "{view}");
    }
    // Deregistration: never with the shared token (it would let any worker
    // take every other one offline); an ADMIN may.
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-new/deregister",
            &Cred::Worker,
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(s.worker("w-new").await["status"], "pending");
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-new/deregister",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["status"], "offline");
    // A heartbeat brings it back.
    let r = s
        .heartbeat(&slots_heartbeat("w-new", "http://10.0.0.9:3000", 2, 0))
        .await;
    assert_eq!(r.json["status"], "active");
    // Removal: refused while sessions remain, then allowed; PROCTOR may not.
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    let r = s
        .send(
            Method::DELETE,
            "/api/vdi/workers/w-new",
            &Cred::Proctor,
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .send(Method::DELETE, "/api/vdi/workers/w-new", &Cred::Admin, None)
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    s.release("exam-1", "sv-1").await;
    let r = s
        .send(Method::DELETE, "/api/vdi/workers/w-new", &Cred::Admin, None)
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(s.get("/api/vdi/workers/w-new").await.status, 404);
}

#[tokio::test]
async fn drain_endpoints_and_activate() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 1))
        .await;
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["to"], "draining");
    let r = s
        .send(
            Method::PUT,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            Some(&json!({"deadlineSec": 600})),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let info = s.get("/api/vdi/workers/w-1/drain").await;
    assert!(info.json["deadline"].is_u64(), "{info:?}");
    assert_eq!(info.json["reportedActive"], 1);
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/activate",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(r.json["to"], "active");
    // A disabled worker cannot be drained.
    s.heartbeat(&slots_heartbeat("w-1", "http://127.0.0.1:1", 4, 0))
        .await;
    s.patch_worker("w-1", &json!({"isEnabled": false})).await;
    let r = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-1/drain",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = s.patch_worker("w-1", &json!({"isEnabled": true})).await;
    assert_eq!(r.json["to"], "active");
}

#[tokio::test]
async fn graceful_shutdown_gives_up_the_lease() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let store = std::sync::Arc::clone(&s.store);
    let ttl = Duration::from_secs(30);
    // Wait until the server's background loop holds the lease.
    let held = async {
        loop {
            match store
                .try_acquire(BACKGROUND_LEASE, "another-replica", ttl)
                .await
                .unwrap()
            {
                None => break,
                // Taken before the server's first tick: hand it back.
                Some(lease) => {
                    store.release_lease(&lease).await.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the background loop takes the lease");
    let url = s.url.clone();
    s.stop().await;
    let lease = store
        .try_acquire(BACKGROUND_LEASE, "another-replica", ttl)
        .await
        .unwrap();
    assert!(lease.is_some(), "the lease was given up on shutdown");
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
}
