//! A worker given several control-plane URLs (two `serve` replicas on one
//! Redis store, under a random key prefix deleted afterwards): when the
//! replica it talks to is SIGKILLed, it heartbeats through the other, stays
//! healthy there and takes new sessions placed by it. An unreachable Redis
//! is a SKIP, or a failure with `VDI_REQUIRE_BACKENDS=1`.

use serde_json::{Value, json};

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually, wait_worker};
use crate::redis_prefix::RedisPrefix;

/// The worker's view of the control plane once `pred` holds.
async fn wait_view(worker: &Worker, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || async {
        let view = worker.status().await["controlPlane"].clone();
        pred(&view).then_some(view)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_heartbeats_through_the_surviving_replica() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    let options = redis.options();
    let mut first = ControlPlane::start(options.clone()).await;
    let second = ControlPlane::start(options).await;
    let (first_api, second_api) = (first.api_base(), second.api_base());
    let survivor = Api::new(&second.url);
    let worker = Worker::start(
        "w1",
        &format!("{first_api},{second_api}"),
        WorkerOptions::default(),
    )
    .await;

    // Both replicas see it through the shared store; it talks to the first.
    wait_worker(
        &Api::new(&first.url),
        "w1",
        "availability",
        json!("healthy"),
    )
    .await;
    wait_worker(&survivor, "w1", "availability", json!("healthy")).await;
    let view = wait_view(&worker, "heartbeats to the first replica", |v| {
        v["url"] == first_api.as_str() && v["heartbeatsOk"].as_u64() > Some(0)
    })
    .await;
    assert_eq!(view["urls"], json!([first_api, second_api]), "{view}");

    // The replica it talks to dies.
    first.proc.kill();

    // It moves to the survivor and keeps heartbeating there.
    let moved = wait_view(&worker, "heartbeats to the second replica", |v| {
        v["url"] == second_api.as_str() && v["reachable"] == true && v["consecutiveFailures"] == 0
    })
    .await;
    let since = moved["heartbeatsOk"].as_u64().unwrap();
    let later = wait_view(&worker, "more heartbeats to the second replica", |v| {
        v["heartbeatsOk"].as_u64() >= Some(since + 5)
    })
    .await;
    assert_eq!(later["url"], second_api.as_str(), "{later}");

    // The survivor keeps it healthy and places a new session on it.
    let seen = wait_worker(&survivor, "w1", "availability", json!("healthy")).await;
    assert_eq!(seen["isSchedulable"], true, "{seen}");
    let session = survivor.allocate("exam-replicas", "s1").await;
    assert_eq!(session["workerCode"], "w1", "{session}");
    eventually("the worker to run the new session", || async {
        worker
            .session_keys()
            .await
            .contains(&"exam-replicas/s1".to_owned())
            .then_some(())
    })
    .await;

    drop(worker);
    drop(second);
    drop(first);
    drop(redis);
}

/// Given a dead URL first, a worker registers through the next one without
/// backing off for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_url_does_not_silence_a_worker() {
    let cp = ControlPlane::start(CpOptions::default()).await;
    let dead = format!("http://127.0.0.1:{}/api", crate::common::free_port());
    let worker = Worker::start(
        "w-dead-first",
        &format!("{dead},{}", cp.api_base()),
        WorkerOptions::default(),
    )
    .await;
    wait_worker(
        &Api::new(&cp.url),
        "w-dead-first",
        "availability",
        json!("healthy"),
    )
    .await;
    wait_view(&worker, "heartbeats to the live URL", |v| {
        v["url"] == cp.api_base().as_str() && v["reachable"] == true
    })
    .await;
}
