//! Thirty students on three workers; idempotency, prewarm and the command
//! provisioner through the whole stack.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, Cluster, CpOptions, Worker, WorkerOptions, by_worker, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_students_land_on_workers_with_room_and_the_counts_agree() {
    let cluster = Cluster::start(&[8, 12, 16], CpOptions::default()).await;
    let api = &cluster.api;
    let max: BTreeMap<&str, u64> = [("w1", 8), ("w2", 12), ("w3", 16)].into();

    // 30 students of three exams click "start" at once.
    let calls = (0..30).map(|i| {
        let api = api.clone();
        async move {
            api.allocate(&format!("exam-{}", i % 3), &format!("student-{i}"))
                .await
        }
    });
    let placed: Vec<Value> = futures::future::join_all(calls).await;
    assert!(placed.iter().all(|s| s["state"] == "active"), "{placed:?}");

    // Every dispatch sits on a worker with room, and the worker runs it.
    let placement = by_worker(&placed);
    for (code, keys) in &placement {
        assert!(
            keys.len() as u64 <= max[code.as_str()],
            "{code} holds {} sessions for {} slots",
            keys.len(),
            max[code.as_str()]
        );
        assert_eq!(&cluster.worker(code).session_keys().await, keys, "{code}");
        assert_eq!(&api.worker_session_keys(code).await, keys, "{code}");
    }
    for s in &placed {
        let details = &s["session"];
        assert_eq!(
            details["worker"], s["workerCode"],
            "details come from the worker"
        );
        assert_eq!(details["userId"], s["userId"]);
    }

    // Once every worker has heartbeated, the summary agrees with the
    // workers' own counts.
    let own: u64 = {
        let mut total = 0;
        for w in &cluster.workers {
            total += w.status().await["activeSessions"].as_u64().unwrap();
        }
        total
    };
    assert_eq!(own, 30);
    let summary = eventually("the summary to count 30 reported sessions", || async {
        let mut agree = true;
        for w in &cluster.workers {
            let own = w.status().await["activeSessions"].clone();
            let seen = api.worker(&w.code).await;
            agree &= seen["activeSessions"] == own && seen["dispatchedSessions"] == own;
        }
        let s = api.summary().await;
        (agree && s["totalActiveSessions"] == 30).then_some(s)
    })
    .await;
    assert_eq!(summary["totalMaxSessions"], 36);
    assert_eq!(summary["totalAvailableSessions"], 6);
    assert_eq!(summary["healthyWorkers"], 3);

    // Allocating again returns the same desktop; releasing twice is harmless.
    let again = api.allocate("exam-0", "student-0").await;
    assert_eq!(again["outcome"], "existing");
    assert_eq!(again["dispatchId"], placed[0]["dispatchId"]);
    assert_eq!(again["session"], placed[0]["session"]);
    let w = cluster.worker(placed[0]["workerCode"].as_str().unwrap());
    let (status, direct) = w
        .call(
            "/api/vdi/cluster/allocate",
            json!({"examId": "exam-0", "userId": "student-0"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        direct["session"], placed[0]["session"],
        "idempotent on the worker"
    );
    assert_eq!(api.release("exam-0", "student-0").await["released"], true);
    assert_eq!(api.release("exam-0", "student-0").await["released"], false);
    assert!(
        !w.session_keys()
            .await
            .contains(&"exam-0/student-0".to_owned())
    );

    // The worker-side API wants the cluster token and names bad fields.
    let r = reqwest::Client::new()
        .post(format!("{}/api/vdi/cluster/allocate", w.url))
        .json(&json!({"examId": "e", "userId": "u"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, body) = w
        .call(
            "/api/vdi/cluster/allocate",
            json!({"examId": "e", "userId": ""}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "userId");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarmed_machines_are_claimed_by_the_next_students_of_their_exam() {
    // Starts are paced: a 4-slot worker starts one machine at a time, and
    // holds each prewarmed machine's permit for its expected start (the
    // permit's lease, 6 s, before it has measured a start), so the second
    // machine and the students after it wait longer for their permit than
    // the harness's 5 s allocate timeout leaves.
    let options = CpOptions {
        allocate_timeout_sec: 30,
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[4, 4], options).await;
    let api = &cluster.api;
    let (status, report) = api
        .admin(
            Method::POST,
            "/api/vdi/exams/exam-p/prewarm",
            Some(json!({"count": 4})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    // The machines start in the background on the workers.
    let pooled = eventually("4 prewarmed machines", || async {
        let mut pooled = BTreeMap::new();
        for w in &cluster.workers {
            let n = w.status().await["prewarmed"]["exam-p"]
                .as_u64()
                .unwrap_or(0);
            pooled.insert(w.code.clone(), n);
        }
        (pooled.values().sum::<u64>() == 4).then_some(pooled)
    })
    .await;
    let mut claimed = 0;
    for i in 0..4 {
        let s = api.allocate("exam-p", &format!("student-{i}")).await;
        if s["session"]["prewarmed"] == true {
            claimed += 1;
        }
    }
    // Each allocation on a worker with an idle machine of the exam claims it.
    let mut left = 0;
    for w in &cluster.workers {
        left += w.status().await["prewarmed"]["exam-p"]
            .as_u64()
            .unwrap_or(0);
    }
    assert_eq!(claimed + left, 4, "pooled before: {pooled:?}");
    assert!(claimed >= 1);
}

fn provision_script(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("provision.sh");
    std::fs::write(
        &path,
        r#"#!/bin/sh
# A stand-in for a real VM or container manager.
case "$VDI_ACTION" in
  allocate) printf '{"rdp":"rdp://%s/%s-%s","machine":%s}' "$VDI_WORKER_CODE" "$VDI_EXAM_ID" "$VDI_USER_ID" "${VDI_MACHINE:-null}" ;;
  prewarm) printf '{"vm":"warm-%s"}' "$VDI_EXAM_ID" ;;
  release) echo "$VDI_EXAM_ID/$VDI_USER_ID" >> "$(dirname "$0")/released" ;;
  discard) ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_provisioner_answers_through_the_control_plane() {
    let dir = std::env::temp_dir().join(format!("vdi-e2e-cmd-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = provision_script(&dir);
    let cp = crate::common::ControlPlane::start(CpOptions::default()).await;
    let api = Api::new(&cp.url);
    let options = WorkerOptions {
        slots: 4,
        extra: vec![
            "--provisioner".into(),
            "command".into(),
            "--provision-command".into(),
            script.display().to_string(),
        ],
        ..WorkerOptions::default()
    };
    let worker = Worker::start("cmd-1", &cp.api_base(), options).await;
    eventually("the worker healthy", || async {
        let s = api.summary().await;
        (s["schedulableWorkers"] == 1).then_some(())
    })
    .await;

    let s = api.allocate("exam-c", "ana").await;
    assert_eq!(
        s["session"]["rdp"], "rdp://cmd-1/exam-c-ana",
        "untouched: {s}"
    );
    assert_eq!(s["session"]["machine"], Value::Null);
    assert_eq!(worker.status().await["provisioner"], "command");

    let (status, _) = api
        .admin(
            Method::POST,
            "/api/vdi/exams/exam-c/prewarm",
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 200);
    eventually("a prewarmed machine", || async {
        (worker.status().await["prewarmed"]["exam-c"] == 1).then_some(())
    })
    .await;
    let s = api.allocate("exam-c", "binh").await;
    assert_eq!(s["session"]["machine"]["vm"], "warm-exam-c", "claimed: {s}");

    assert_eq!(api.release("exam-c", "ana").await["released"], true);
    let released = std::fs::read_to_string(dir.join("released")).unwrap();
    assert_eq!(released.trim(), "exam-c/ana");
    drop(worker);
    drop(cp);
    std::fs::remove_dir_all(dir).unwrap();
}
