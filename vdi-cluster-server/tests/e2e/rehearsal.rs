//! A rehearsal on real processes: a control plane and two node agents on
//! 127.0.0.1, one of them told to fail its `check`. The no-go report names
//! it with the simulated provisioner's reason, `examRehearsalFailed` is
//! streamed, the exam's placements avoid it while another exam still uses
//! it, and a re-check of it fails again.

use reqwest::Method;
use serde_json::json;

use crate::common::{Api, ControlPlane, CpOptions, Events, Worker, WorkerOptions, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_check_fails_is_named_and_avoided() {
    let cp = ControlPlane::start(CpOptions::default()).await;
    let api = Api::new(&cp.url);
    let _good = Worker::start(
        "w1",
        &cp.api_base(),
        WorkerOptions {
            slots: 4,
            ..WorkerOptions::default()
        },
    )
    .await;
    let _bad = Worker::start(
        "w2",
        &cp.api_base(),
        WorkerOptions {
            slots: 4,
            extra: vec!["--sim-check".into(), "fail".into()],
            ..WorkerOptions::default()
        },
    )
    .await;
    eventually("both workers healthy", || async {
        (api.summary().await["healthyWorkers"] == 2).then_some(())
    })
    .await;
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({
                "examId": "reh", "name": "Rehearsed", "students": 6,
                "startsAt": "2031-03-01T08:00:00Z", "endsAt": "2031-03-01T10:00:00Z",
            })),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let events = Events::subscribe(&api).await;

    let (status, report) = api
        .admin(Method::POST, "/api/vdi/exams/reh/rehearsal", None)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "noGo", "{report}");
    assert_eq!(report["failing"].as_array().unwrap().len(), 1, "{report}");
    let failing = &report["failing"][0];
    assert_eq!(failing["worker"], "w2", "{report}");
    assert_eq!(failing["outcome"], "failed", "{report}");
    assert!(
        failing["reason"]
            .as_str()
            .unwrap()
            .contains("simulated check failure on w2"),
        "{report}"
    );
    assert_eq!(report["fitsWithoutFailing"], false, "{report}");
    let passed: Vec<_> = report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["outcome"] == "ok")
        .map(|w| w["worker"].clone())
        .collect();
    assert_eq!(passed, vec![json!("w1")], "{report}");

    let streamed = events
        .wait("examRehearsalFailed", |e| e["examId"] == "reh")
        .await;
    assert_eq!(streamed["failing"][0]["worker"], "w2", "{streamed}");
    assert_eq!(streamed["verdict"], "noGo", "{streamed}");

    for user in ["s1", "s2", "s3", "s4"] {
        let placed = api.allocate("reh", user).await;
        assert_eq!(placed["workerCode"], "w1", "{placed}");
    }
    // Another exam still uses the worker the rehearsal left out.
    let other = api.allocate("other", "s1").await;
    assert_eq!(other["workerCode"], "w2", "{other}");

    let (status, again) = api
        .admin(
            Method::POST,
            "/api/vdi/exams/reh/rehearsal/workers/w2",
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["failing"][0]["worker"], "w2", "{again}");
    let read = api.get("/api/vdi/exams/reh/rehearsal").await;
    assert_eq!(read["failing"][0]["worker"], "w2", "{read}");
}
