//! A worker slower than the control plane's call timeout: the student is
//! told 503, the reservation is undone with its slot held, and the worker
//! starts the session anyway. Its next report has the session adopted, so
//! nothing runs that the control plane does not know, and the student's
//! retry gets that desktop. On the embedded store, Redis and PostgreSQL.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually};
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

async fn a_slow_start_is_adopted(options: CpOptions) {
    let cp = ControlPlane::start(CpOptions {
        call_timeout_ms: 500,
        ..options
    })
    .await;
    let api = Api::new(&cp.url);
    let slow = WorkerOptions {
        slots: 2,
        start_latency_ms: 2_000,
        ..WorkerOptions::default()
    };
    let worker = Worker::start("w1", &cp.api_base(), slow).await;
    eventually("the worker schedulable", || async {
        (api.summary().await["schedulableWorkers"] == 1).then_some(())
    })
    .await;

    let (status, body) = api.try_allocate("exam", "slow").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    // The worker started it anyway; its report has it adopted.
    eventually("the worker to run the session", || async {
        (worker.session_keys().await == ["exam/slow"]).then_some(())
    })
    .await;
    eventually("the session recorded", || async {
        (api.worker_session_keys("w1").await == ["exam/slow"]).then_some(())
    })
    .await;
    let report = api.reconcile().await;
    assert_eq!(report["drift"], json!([]), "{report}");
    assert_eq!(
        worker.session_keys().await,
        api.worker_session_keys("w1").await
    );

    // The student's retry gets that desktop; the slot count is exact.
    let again = api.allocate("exam", "slow").await;
    assert_eq!(again["workerCode"], "w1", "{again}");
    let summary = eventually("one session, one slot free", || async {
        let s = api.summary().await;
        (s["totalActiveSessions"] == 1 && s["totalAvailableSessions"] == 1).then_some(s)
    })
    .await;
    assert_eq!(summary["totalMaxSessions"], 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_is_adopted_on_memory() {
    a_slow_start_is_adopted(CpOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_is_adopted_on_redis() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    a_slow_start_is_adopted(redis.options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_is_adopted_on_postgres() {
    let Some(db) = PgDatabase::new().await else {
        return;
    };
    a_slow_start_is_adopted(db.options()).await;
}
