//! The control plane restarts mid-run on the Redis backend: no dispatch is
//! lost, and reconcile finds no counter drift. Keys live under a random
//! prefix and are deleted afterwards; an unreachable Redis is a SKIP, or a
//! failure with `VDI_REQUIRE_BACKENDS=1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_redis::redis;

use crate::common::{Cluster, CpOptions, eventually};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A random key prefix on a reachable Redis; its keys are deleted on drop.
struct RedisPrefix {
    url: String,
    prefix: String,
}

impl RedisPrefix {
    async fn new() -> Option<Self> {
        let url = redis_url();
        let ping = async {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(5), ping).await {
            Ok(Ok(_)) => Some(Self {
                url,
                prefix: format!("vdi-e2e-{}", uuid::Uuid::new_v4().simple()),
            }),
            Ok(Err(e)) => backend_unreachable("Redis", &url, &e),
            Err(e) => backend_unreachable("Redis", &url, &e),
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(5)) else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_restart_on_redis_loses_no_dispatch() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    let options = CpOptions {
        store: Some(redis.url.clone()),
        redis_prefix: Some(redis.prefix.clone()),
        ..CpOptions::default()
    };
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
