//! Draining a worker through the API: it keeps its sessions, takes no new
//! ones, reaches `drained` once they are released, and is then disabled.

use reqwest::Method;
use serde_json::json;

use crate::common::{Cluster, CpOptions, by_worker, eventually, wait_worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_worker_keeps_its_sessions_then_empties_and_is_disabled() {
    // Room for 18 sessions even without the drained worker.
    let cluster = Cluster::start(&[10, 10, 10], CpOptions::default()).await;
    let api = cluster.api.clone();
    let mut placed = Vec::new();
    for i in 0..9 {
        placed.push(
            api.allocate(&format!("exam-{}", i % 3), &format!("s{i}"))
                .await,
        );
    }
    let placement = by_worker(&placed);
    let (code, keys) = placement
        .iter()
        .max_by_key(|(_, k)| k.len())
        .map(|(w, k)| (w.clone(), k.clone()))
        .unwrap();
    let worker = cluster.worker(&code);

    let (status, body) = api
        .admin(
            Method::PATCH,
            &format!("/api/vdi/workers/{code}"),
            Some(json!({"isDraining": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["to"], "draining");
    let seen = api.worker(&code).await;
    assert_eq!(seen["isDraining"], true);
    assert_eq!(seen["drainStatus"], "draining");

    // The worker learns it from its next heartbeat answer.
    eventually("the worker to know it drains", || async {
        (worker.status().await["admin"]["isDraining"] == true).then_some(())
    })
    .await;

    // It keeps its sessions: a student who reloads gets the same desktop.
    let (exam, user) = keys[0].split_once('/').unwrap();
    let again = api.allocate(exam, user).await;
    assert_eq!(again["outcome"], "existing");
    assert_eq!(again["workerCode"], code.as_str());

    // It takes no new ones, not even of its own exams.
    for i in 0..9 {
        let s = api
            .allocate(&format!("exam-{}", i % 3), &format!("late{i}"))
            .await;
        assert_ne!(s["workerCode"], code.as_str(), "{s}");
    }
    let (status, refused) = worker
        .call(
            "/api/vdi/cluster/allocate",
            json!({"examId": "exam-x", "userId": "direct"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        refused["message"].as_str().unwrap().contains("draining"),
        "{refused}"
    );
    assert_eq!(worker.session_keys().await, keys);

    // Disabling now is refused while sessions remain, naming the count.
    let (status, body) = api
        .admin(
            Method::PATCH,
            &format!("/api/vdi/workers/{code}"),
            Some(json!({"isEnabled": false})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&keys.len().to_string()),
        "{body}"
    );

    // Students submit: their sessions are released, the drain completes.
    for key in &keys {
        let (exam, user) = key.split_once('/').unwrap();
        assert_eq!(api.release(exam, user).await["released"], true);
    }
    assert!(worker.session_keys().await.is_empty());
    wait_worker(&api, &code, "drainStatus", json!("drained")).await;
    let (status, body) = api
        .admin(Method::GET, &format!("/api/vdi/workers/{code}/drain"), None)
        .await;
    assert_eq!(status, 200, "{body}");

    // Then it is disabled for maintenance.
    let (status, body) = api
        .admin(
            Method::PATCH,
            &format!("/api/vdi/workers/{code}"),
            Some(json!({"isEnabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = wait_worker(&api, &code, "status", json!("disabled")).await;
    assert_eq!(seen["isEnabled"], false);
    eventually("the worker to know it is disabled", || async {
        (worker.status().await["admin"]["isEnabled"] == false).then_some(())
    })
    .await;
    let (status, refused) = worker
        .call(
            "/api/vdi/cluster/allocate",
            json!({"examId": "exam-x", "userId": "direct"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        refused["message"].as_str().unwrap().contains("disabled"),
        "{refused}"
    );
    let summary = api.summary().await;
    assert_eq!(summary["disabledWorkers"], 1, "{summary}");
}
