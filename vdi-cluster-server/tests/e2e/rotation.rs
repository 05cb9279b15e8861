//! A real worker process rotates its own credential before it expires
//! (short lifetime by flag) and keeps heartbeating: the rotated credential
//! replaces the old one in its credential file, the old one is refused
//! once the overlap is over, and the worker never has to join again (its
//! join token allows one use).

use reqwest::Method;
use serde_json::json;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually, wait_worker};

/// The secret on the first line of the credential file.
fn kept(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().next().map(str::to_owned)
}

/// The control plane's answer to `credential` on the heartbeat route (an
/// empty body: 401 if the credential is refused, a body error otherwise).
async fn gate_status(cp_url: &str, credential: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{cp_url}/api/vdi/workers/heartbeat"))
        .header("x-worker-token", credential)
        .json(&json!({}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_rotates_its_credential_and_keeps_heartbeating() {
    let dir =
        std::env::temp_dir().join(format!("vdi-e2e-rotate-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let credential_file = dir.join("credential");
    let cp = ControlPlane::start(CpOptions {
        worker_token: true,
        extra: vec![
            "--worker-credential-ttl-sec".into(),
            "6".into(),
            "--worker-credential-overlap-sec".into(),
            "3".into(),
        ],
        ..CpOptions::default()
    })
    .await;
    let api = Api::new(&cp.url);
    let (status, created) = api
        .admin(
            Method::POST,
            "/api/vdi/join-tokens",
            Some(json!({"maxUses": 1})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let worker = Worker::start(
        "rotator",
        &cp.api_base(),
        WorkerOptions {
            slots: 2,
            extra: vec![
                "--join-token".into(),
                token,
                "--credential-file".into(),
                credential_file.display().to_string(),
            ],
            ..WorkerOptions::default()
        },
    )
    .await;
    wait_worker(&api, "rotator", "availability", json!("healthy")).await;
    let first = eventually("the joined credential in its file", || async {
        kept(&credential_file)
    })
    .await;
    assert!(first.starts_with("vdiw.rotator."), "{first}");

    // Two rotations, each before the credential in use expires.
    let second = eventually("a first rotation", || async {
        kept(&credential_file).filter(|c| *c != first)
    })
    .await;
    let third = eventually("a second rotation", || async {
        kept(&credential_file).filter(|c| *c != second)
    })
    .await;
    assert!(third.starts_with("vdiw.rotator."), "{third}");

    // The first credential is refused once its overlap is over; the
    // worker's current one is accepted, and the worker stays healthy on
    // its own credential without joining again.
    eventually("the first credential to be refused", || async {
        (gate_status(&cp.url, &first).await == 401).then_some(())
    })
    .await;
    let current = kept(&credential_file).unwrap();
    let status = gate_status(&cp.url, &current).await;
    assert!(status != 401 && status != 403, "{status}");
    let view = worker.status().await["controlPlane"].clone();
    assert_eq!(view["credential"], "own", "{view}");
    wait_worker(&api, "rotator", "availability", json!("healthy")).await;
    let (_, audit) = api
        .admin(Method::GET, "/api/vdi/audit?limit=100", None)
        .await;
    let text = audit.to_string();
    assert!(text.contains("rotate-credential"), "{text}");
    assert!(!text.contains("\"rejoin\""), "{text}");
    drop(worker);
    std::fs::remove_dir_all(dir).unwrap();
}
