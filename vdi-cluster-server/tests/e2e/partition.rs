//! A worker that cannot reach its control plane keeps serving its sessions
//! and registers as soon as the control plane is back.

use rustix::process::Signal;
use serde_json::{Value, json};

use crate::common::{
    Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually, free_port, wait_worker,
};

async fn control_plane_view(worker: &Worker) -> Value {
    worker.status().await["controlPlane"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_its_control_plane_keeps_serving_and_recovers() {
    // The worker starts before its control plane exists.
    let port = free_port();
    let api_base = format!("http://127.0.0.1:{port}/api");
    let worker = Worker::start("lonely", &api_base, WorkerOptions::default()).await;
    let view = eventually("failed heartbeats to be counted", || async {
        let v = control_plane_view(&worker).await;
        (v["consecutiveFailures"].as_u64() >= Some(2)).then_some(v)
    })
    .await;
    assert_eq!(view["reachable"], false);
    assert_eq!(view["registered"], false);
    assert!(view["lastError"].as_str().is_some(), "{view}");

    // The control plane comes up: the worker registers by itself.
    let cp = ControlPlane::start_on(port, CpOptions::default()).await;
    let api = Api::new(&cp.url);
    wait_worker(&api, "lonely", "availability", json!("healthy")).await;
    let view = control_plane_view(&worker).await;
    assert_eq!(view["registered"], true, "{view}");

    let mut placed = Vec::new();
    for i in 0..4 {
        placed.push(api.allocate("exam-p", &format!("s{i}")).await);
    }
    let keys = worker.session_keys().await;
    assert_eq!(keys.len(), 4);

    // The control plane freezes: heartbeats time out and back off; the
    // worker keeps its sessions and keeps answering.
    cp.proc.signal(Signal::STOP);
    let ok_before = control_plane_view(&worker).await["heartbeatsOk"].clone();
    eventually("heartbeats to fail repeatedly", || async {
        let v = control_plane_view(&worker).await;
        (v["consecutiveFailures"].as_u64() >= Some(3) && v["reachable"] == false).then_some(())
    })
    .await;
    assert_eq!(worker.session_keys().await, keys);
    let (status, again) = worker
        .call(
            "/api/vdi/cluster/allocate",
            json!({"examId": "exam-p", "userId": "s0"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["session"], placed[0]["session"]);

    // Back: heartbeats flow again, nothing was lost on either side.
    cp.proc.signal(Signal::CONT);
    let view = eventually("heartbeats answered again", || async {
        let v = control_plane_view(&worker).await;
        (v["consecutiveFailures"] == 0 && v["heartbeatsOk"] != ok_before).then_some(v)
    })
    .await;
    assert_eq!(view["reachable"], true);
    wait_worker(&api, "lonely", "availability", json!("healthy")).await;
    assert_eq!(worker.session_keys().await, keys);
    assert_eq!(api.worker_session_keys("lonely").await, keys);
    for s in &placed {
        let (status, now) = api
            .session(s["examId"].as_str().unwrap(), s["userId"].as_str().unwrap())
            .await;
        assert_eq!(status, 200);
        assert_eq!(now["dispatchId"], s["dispatchId"]);
    }
}
