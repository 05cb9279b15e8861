//! Registration with a join token, the worker's own credential from then
//! on (kept in its credential file across restarts), deregistration on
//! SIGTERM, and the host's real usage in heartbeats.

use reqwest::Method;
use rustix::process::Signal;
use serde_json::json;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually, wait_worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joins_with_a_token_and_uses_its_own_credential() {
    let dir = std::env::temp_dir().join(format!("vdi-e2e-join-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let credential_file = dir.join("credential");
    // Heartbeats need a token: the shared one, or a worker's own.
    let cp = ControlPlane::start(CpOptions {
        worker_token: true,
        ..CpOptions::default()
    })
    .await;
    let api = Api::new(&cp.url);
    let (status, created) = api
        .admin(
            Method::POST,
            "/api/vdi/join-tokens",
            Some(json!({"ttlSec": 600, "maxUses": 1})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();

    let options = WorkerOptions {
        slots: 4,
        extra: vec![
            "--join-token".into(),
            token.clone(),
            "--credential-file".into(),
            credential_file.display().to_string(),
        ],
        ..WorkerOptions::default()
    };
    let mut worker = Worker::start("joiner", &cp.api_base(), options.clone()).await;
    let first = wait_worker(&api, "joiner", "availability", json!("healthy")).await;
    let view = worker.status().await["controlPlane"].clone();
    assert_eq!(view["credential"], "own", "{view}");
    let kept = std::fs::read_to_string(&credential_file).unwrap();
    assert!(kept.starts_with("vdiw.joiner."), "{kept}");
    let s = api.allocate("exam-j", "s1").await;
    assert_eq!(s["workerCode"], "joiner");

    // SIGTERM: the worker deregisters (with its credential), then exits.
    worker.proc.signal(Signal::TERM);
    let exit = worker.proc.wait_exit().await;
    assert!(exit.success(), "{exit}");
    let gone = wait_worker(&api, "joiner", "availability", json!("offline")).await;
    assert!(gone["deregisteredAt"].is_u64(), "{gone}");

    // Restarted with the used-up token: the kept credential is enough.
    worker.restart().await;
    let back = wait_worker(&api, "joiner", "availability", json!("healthy")).await;
    assert_ne!(back["bootId"], first["bootId"]);
    assert_eq!(worker.status().await["controlPlane"]["credential"], "own");

    // Another worker with the same token cannot join; it keeps trying.
    let stranger = Worker::start(
        "stranger",
        &cp.api_base(),
        WorkerOptions {
            slots: 2,
            extra: vec!["--join-token".into(), token],
            ..WorkerOptions::default()
        },
    )
    .await;
    let view = eventually("the stranger's joins to fail", || async {
        let v = stranger.status().await["controlPlane"].clone();
        (v["consecutiveFailures"].as_u64() >= Some(2)).then_some(v)
    })
    .await;
    assert!(
        view["lastError"].as_str().unwrap().contains("x-join-token"),
        "{view}"
    );
    let (status, _) = api
        .admin(Method::GET, "/api/vdi/workers/stranger", None)
        .await;
    assert_eq!(status, 404);

    // A worker reporting the host's usage: the control plane shows it.
    let _usage = Worker::start(
        "usage",
        &cp.api_base(),
        WorkerOptions {
            slots: 2,
            worker_token: true,
            report_usage: true,
            ..WorkerOptions::default()
        },
    )
    .await;
    let seen = eventually("host usage in heartbeats", || async {
        let (status, w) = api.admin(Method::GET, "/api/vdi/workers/usage", None).await;
        (status == 200 && w["memoryPercent"].is_number() && w["cpuPercent"].is_number())
            .then_some(w)
    })
    .await;
    let memory = seen["memoryPercent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&memory), "{seen}");
    drop(worker);
    std::fs::remove_dir_all(dir).unwrap();
}
