//! The control plane restarts mid-run on the Redis backend: no dispatch is
//! lost, and reconcile finds no counter drift. Keys live under a random
//! prefix and are deleted afterwards; an unreachable Redis is a SKIP, or a
//! failure with `VDI_REQUIRE_BACKENDS=1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::common::{Cluster, eventually};
use crate::redis_prefix::RedisPrefix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_restart_on_redis_loses_no_dispatch() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    let options = redis.options();
    let mut cluster = Cluster::start(&[10, 10, 10], options).await;
    let api = cluster.api.clone();

    // A first wave is placed.
    let mut first = Vec::new();
    for i in 0..12 {
        first.push(
            api.allocate(&format!("exam-{}", i % 3), &format!("s{i}"))
                .await,
        );
    }

    // A second wave runs across the restart: each student retries until
    // placed, as the exam application would.
    let placed_in_wave = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&placed_in_wave);
    let wave_api = api.clone();
    let wave = tokio::spawn(async move {
        let mut out = Vec::new();
        for i in 12..24 {
            let exam = format!("exam-{}", i % 3);
            let user = format!("s{i}");
            let session = eventually(&format!("{exam}/{user} placed"), || async {
                match wave_api.try_allocate(&exam, &user).await {
                    Ok((status, body)) if status == 200 || status == 201 => Some(body),
                    _ => None,
                }
            })
            .await;
            counter.fetch_add(1, Ordering::SeqCst);
            out.push(session);
        }
        out
    });
    eventually("the second wave under way", || async {
        (placed_in_wave.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;
    cluster.cp.restart().await;
    let second: Vec<Value> = wave.await.unwrap();

    // No dispatch is lost: the first wave's are unchanged, every student has
    // exactly the session it was given, on a worker that runs it.
    for s in first.iter().chain(&second) {
        let (status, now) = api
            .session(s["examId"].as_str().unwrap(), s["userId"].as_str().unwrap())
            .await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(now["dispatchId"], s["dispatchId"], "{now}");
        assert_eq!(now["state"], "active");
    }
    // Workers and control plane agree (a start cut short by the kill is
    // stopped by the workers once the heartbeat answer names it).
    eventually("workers and control plane to agree", || async {
        let mut total = 0;
        for w in &cluster.workers {
            let own = w.session_keys().await;
            if own != api.worker_session_keys(&w.code).await {
                return None;
            }
            total += own.len();
        }
        (total == 24).then_some(())
    })
    .await;

    // Reconcile: zero drift.
    let report = api.reconcile().await;
    assert_eq!(report["drift"], serde_json::json!([]), "{report}");
    let summary = eventually("the summary to count 24 sessions", || async {
        let s = api.summary().await;
        (s["totalActiveSessions"] == 24).then_some(s)
    })
    .await;
    assert_eq!(summary["healthyWorkers"], 3, "{summary}");
    drop(cluster);
    drop(redis);
}
