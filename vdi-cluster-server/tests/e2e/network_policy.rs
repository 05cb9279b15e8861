//! An exam's network policy, booked on the calendar, reaches the
//! provisioning program of a real node agent with the allocation and the
//! prewarm; a session of an exam booked without one gets the node's own
//! `EXAM_*` default; the node's status says whose policy each desktop got.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually};

/// A provisioning program that records, per action and session, the
/// policy it was handed (`none` without `VDI_NETWORK_POLICY`).
fn recording_script(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("provision.sh");
    std::fs::write(
        &path,
        r#"#!/bin/sh
out="$(dirname "$0")/$VDI_ACTION-$VDI_EXAM_ID-$VDI_USER_ID.policy"
printf '%s' "${VDI_NETWORK_POLICY:-none}" > "$out"
case "$VDI_ACTION" in
  allocate) printf '{"rdp":"rdp://%s/%s-%s"}' "$VDI_WORKER_CODE" "$VDI_EXAM_ID" "$VDI_USER_ID" ;;
  prewarm) printf '{"vm":"warm-%s"}' "$VDI_EXAM_ID" ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn recorded(dir: &Path, action: &str, exam: &str, user: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(format!("{action}-{exam}-{user}.policy")))
        .unwrap_or_else(|e| panic!("{action} {exam}/{user} not recorded: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text))
}

fn in_minutes(minutes: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let at = now + Duration::from_secs(minutes * 60);
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(at.as_millis()).unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exams_policy_reaches_the_provisioner_over_the_nodes_default() {
    let dir = std::env::temp_dir().join(format!("vdi-e2e-net-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = recording_script(&dir);
    let cp = ControlPlane::start(CpOptions::default()).await;
    let api = Api::new(&cp.url);
    let options = WorkerOptions {
        slots: 4,
        extra: [
            "--provisioner",
            "command",
            "--provision-command",
            &script.display().to_string(),
            "--exam-restrict-internet",
            "true",
            "--exam-allowed-domains",
            "neighbour.edu.vn",
        ]
        .map(String::from)
        .to_vec(),
        ..WorkerOptions::default()
    };
    let worker = Worker::start("net-1", &cp.api_base(), options).await;
    eventually("the worker healthy", || async {
        let s = api.summary().await;
        (s["schedulableWorkers"] == 1).then_some(())
    })
    .await;

    let policy = json!({
        "restrictInternet": true,
        "allowedCidrs": ["103.90.220.0/22"],
        "originIp": "203.210.213.198",
        "enforceStrict": false
    });
    let booking = json!({
        "examId": "exam-net", "name": "Networks", "students": 2,
        "startsAt": in_minutes(120), "endsAt": in_minutes(180),
        "networkPolicy": policy,
    });
    let (status, booked) = api
        .admin(Method::POST, "/api/vdi/exams", Some(booking))
        .await;
    assert_eq!(status, 201, "{booked}");

    api.allocate("exam-net", "ana").await;
    api.allocate("exam-plain", "binh").await;
    let applied = json!({
        "restrictInternet": true,
        "allowedCidrs": ["103.90.220.0/22"],
        "originIp": "203.210.213.198",
        "enforceStrict": true
    });
    assert_eq!(
        recorded(&dir, "allocate", "exam-net", "ana"),
        applied,
        "the exam's policy, the node's strict flag a floor"
    );
    assert_eq!(
        recorded(&dir, "allocate", "exam-plain", "binh"),
        json!({"restrictInternet": true, "allowedDomains": ["neighbour.edu.vn"], "enforceStrict": true}),
        "an exam not booked gets the node's default"
    );

    let (status, _) = api
        .admin(
            Method::POST,
            "/api/vdi/exams/exam-net/prewarm",
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 200);
    eventually("the prewarm recorded", || async {
        dir.join("prewarm-exam-net-.policy").exists().then_some(())
    })
    .await;
    eventually("the prewarm's policy written", || async {
        (recorded(&dir, "prewarm", "exam-net", "") == applied).then_some(())
    })
    .await;

    let sessions = worker.status().await["sessions"].clone();
    let whose = |user: &str| {
        sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["userId"] == user)
            .map(|s| s["networkPolicy"].clone())
    };
    assert_eq!(whose("ana"), Some(json!("exam")), "{sessions}");
    assert_eq!(whose("binh"), Some(json!("node")), "{sessions}");
    drop(worker);
    drop(cp);
    std::fs::remove_dir_all(dir).unwrap();
}
