//! `vdi-cluster demo` as the README shows it: a live cluster from one
//! command, usable with the printed credentials, with a booked exam that
//! prewarms at once, stopped by Ctrl-C.

use reqwest::Method;
use rustix::process::Signal;
use serde_json::{Value, json};

use crate::common::{Proc, eventually, http};

fn after(line: &str, marker: &str) -> String {
    line.split_once(marker).unwrap().1.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_a_live_cluster_and_stops_on_ctrl_c() {
    let args: Vec<String> = [
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "3",
        "--heartbeat-interval-sec",
        "1",
        "--sim-start-latency-ms",
        "10",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut demo = Proc::spawn("demo", &args);
    let cp = demo.wait_line("control plane   http://").await;
    let url = cp
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let token = after(&demo.wait_line("export TOKEN=").await, "export TOKEN=");
    let service = after(
        &demo.wait_line("export SERVICE_TOKEN=").await,
        "export SERVICE_TOKEN=",
    );
    let cluster = after(
        &demo.wait_line("export CLUSTER_TOKEN=").await,
        "export CLUSTER_TOKEN=",
    );
    // The operators' page, and how to sign in to it.
    demo.wait_line(&format!("The operators' page: {url}/admin/"))
        .await;
    demo.wait_line("Sign in by pasting the ADMIN token above")
        .await;
    demo.wait_line("Ctrl-C stops everything").await;
    for code in ["worker-1", "worker-2", "worker-3"] {
        demo.wait_line(code).await;
    }

    let client = http();
    let summary: Value = eventually("three healthy workers", || async {
        let s: Value = client
            .get(format!("{url}/api/vdi/workers/summary"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["healthyWorkers"] == 3).then_some(s)
    })
    .await;
    // The runbook's 8-core node (4 slots), a 16-core (10) and a 32-core (20).
    assert_eq!(summary["totalMaxSessions"], 34, "{summary}");

    // The demo exam is booked right after the workers join; the leader
    // prewarms it at once and the workers' reports bring it to 100 %.
    let booked = demo.wait_line("A booked exam: demo-exam").await;
    assert!(booked.contains("students"), "{booked}");
    demo.wait_line("/api/vdi/exams/demo-exam ").await;
    let exam: Value = eventually("the demo exam's readiness to reach 100 %", || async {
        let e: Value = client
            .get(format!("{url}/api/vdi/exams/demo-exam"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (e["readiness"]["readinessPercent"] == 100).then_some(e)
    })
    .await;
    assert_eq!(exam["queue"], true, "{exam}");
    assert_eq!(exam["fits"], true, "{exam}");
    assert!(exam["prewarmStartedAt"].is_string(), "{exam}");
    let target = exam["readiness"]["target"].as_u64().unwrap();
    assert!(target > 0, "{exam}");
    assert!(
        exam["readiness"]["ready"].as_u64().unwrap() >= target,
        "{exam}"
    );

    let r = client
        .request(Method::POST, format!("{url}/api/vdi/sessions"))
        .header("x-cluster-token", &cluster)
        .json(&json!({"examId": "exam-1", "userId": "student-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the cluster token is only for workers");
    let r = client
        .request(Method::POST, format!("{url}/api/vdi/sessions"))
        .bearer_auth(&service)
        .json(&json!({"examId": "exam-1", "userId": "student-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["session"]["provider"], "simulated");

    // As the banner shows: more students of the demo exam than slots; the
    // last ones are queued in order, and a release places the head.
    demo.wait_line("/api/vdi/exams/demo-exam/queue").await;
    let mut positions = Vec::new();
    for i in 1..=40 {
        let r = client
            .request(Method::POST, format!("{url}/api/vdi/sessions"))
            .bearer_auth(&service)
            .json(&json!({"examId": "demo-exam", "userId": format!("student-{i}")}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        match status {
            // Placed, or seated with the desktop starting after the answer
            // (the demo's prewarm holds its workers' start permits).
            201 => assert!(positions.is_empty(), "placed after others queued: {body}"),
            202 if body["state"] == "starting" => {
                assert!(positions.is_empty(), "seated after others queued: {body}");
            }
            202 => {
                assert_eq!(body["state"], "queued", "{body}");
                positions.push((format!("student-{i}"), body["position"].as_u64().unwrap()));
            }
            _ => panic!("{status}: {body}"),
        }
    }
    assert!(!positions.is_empty(), "40 students fill 34 slots");
    let expected: Vec<u64> = (1..=positions.len() as u64).collect();
    assert_eq!(positions.iter().map(|p| p.1).collect::<Vec<_>>(), expected);
    let queue: Value = client
        .get(format!("{url}/api/vdi/exams/demo-exam/queue"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        queue["waiting"][0]["userId"],
        positions[0].0.as_str(),
        "{queue}"
    );
    let r = client
        .request(
            Method::DELETE,
            format!("{url}/api/vdi/sessions/demo-exam/student-1"),
        )
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let head = &positions[0].0;
    eventually("the head of the queue to be placed", || async {
        let r = client
            .get(format!("{url}/api/vdi/sessions/demo-exam/{head}"))
            .bearer_auth(&service)
            .send()
            .await
            .ok()?;
        let body: Value = r.json().await.ok()?;
        (body["state"] != "queued" && body["workerCode"].is_string()).then_some(())
    })
    .await;

    // As the banner shows: student-2's worker is taken out, student-2
    // comes back and is moved, and the ledger counts it.
    for i in 3..=30 {
        let r = client
            .request(
                Method::DELETE,
                format!("{url}/api/vdi/sessions/demo-exam/student-{i}"),
            )
            .bearer_auth(&service)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let placed: Value = client
        .get(format!("{url}/api/vdi/sessions/demo-exam/student-2"))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let worker = placed["workerCode"].as_str().unwrap().to_owned();
    let r = client
        .request(Method::PATCH, format!("{url}/api/vdi/workers/{worker}"))
        .bearer_auth(&token)
        .json(&json!({"isEnabled": false, "force": true, "reason": "host failure"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let moved: Value = client
        .request(Method::POST, format!("{url}/api/vdi/sessions"))
        .bearer_auth(&service)
        .json(&json!({"examId": "demo-exam", "userId": "student-2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["outcome"], "redispatched", "{moved}");
    let ledger: Value = client
        .get(format!("{url}/api/vdi/sessions/demo-exam/student-2"))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["disruptions"][0]["kind"], "moved", "{ledger}");

    demo.signal(Signal::INT);
    let status = demo.wait_exit().await;
    assert!(status.success(), "{status}");
    eventually("the demo's ports to close", || async {
        client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
}
