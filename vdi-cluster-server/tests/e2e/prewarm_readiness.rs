//! Timed prewarm with readiness, end to end: a booked exam with a short
//! lead is prewarmed on time and reaches 100 % readiness; machines lost
//! with a SIGKILLed worker are replaced on the others before the start;
//! at `endsAt` (and on cancellation) the unclaimed machines are released.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::{format_rfc3339, parse_rfc3339};

use crate::common::{Api, Cluster, CpOptions, Worker, eventually};

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn at(ms: u64) -> String {
    format_rfc3339(Timestamp::from_millis(ms))
}

/// Books `id` for `students` with `machines` prewarmed, its prewarm due
/// `lead_in` from now, starting `start_in` from now and lasting `length`.
async fn book(
    api: &Api,
    id: &str,
    students: u32,
    machines: u32,
    lead_in: Duration,
    start_in: Duration,
    length: Duration,
) -> Value {
    let now = now_ms();
    let starts = now + u64::try_from(start_in.as_millis()).unwrap();
    let lead = (start_in - lead_in).as_secs();
    let (status, body) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({
                "examId": id, "name": id, "startsAt": at(starts),
                "endsAt": at(starts + u64::try_from(length.as_millis()).unwrap()),
                "students": students,
                "prewarm": {"count": machines, "leadSec": lead},
                "teardownSec": 60,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn figures(api: &Api, id: &str) -> Value {
    api.get(&format!("/api/vdi/exams/{id}")).await
}

/// Idle machines of `exam` each worker itself reports.
async fn idle_on_workers(workers: &[&Worker], exam: &str) -> u64 {
    let mut idle = 0;
    for w in workers {
        idle += w.status().await["prewarmed"][exam].as_u64().unwrap_or(0);
    }
    idle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booked_exam_is_prewarmed_on_time_and_lost_machines_are_replaced() {
    let mut cluster = Cluster::start(&[4, 4, 4], CpOptions::default()).await;
    let api = cluster.api.clone();
    // Due in 3 s; starts in 5 min, so the replacement comes before it.
    book(
        &api,
        "exam-ready",
        6,
        6,
        Duration::from_secs(3),
        Duration::from_secs(300),
        Duration::from_secs(3600),
    )
    .await;
    let before = figures(&api, "exam-ready").await;
    assert_eq!(before["figures"]["prewarm"]["target"], 6, "{before}");
    let ready = eventually("readiness 100 %", || async {
        let f = figures(&api, "exam-ready").await;
        (f["figures"]["prewarm"]["readinessPercent"] == 100).then_some(f)
    })
    .await;
    assert!(ready["prewarmStartedAt"].is_string(), "{ready}");
    let calendar = api.get("/api/vdi/exams").await;
    assert_eq!(
        calendar["exams"][0]["readiness"]["readinessPercent"], 100,
        "{calendar}"
    );
    // The workers' own counts agree with the figures.
    let workers: Vec<&Worker> = cluster.workers.iter().collect();
    assert_eq!(idle_on_workers(&workers, "exam-ready").await, 6);

    // Kill a worker that holds some of the machines.
    let per_worker = ready["figures"]["prewarm"]["workers"].as_object().unwrap();
    let (victim, held) = per_worker
        .iter()
        .find(|(_, w)| w["ready"].as_u64().unwrap_or(0) > 0)
        .map(|(code, w)| (code.clone(), w["ready"].as_u64().unwrap()))
        .unwrap();
    cluster.worker_mut(&victim).proc.kill();
    let replaced = eventually("the lost machines replaced", || async {
        let f = figures(&api, "exam-ready").await;
        let p = &f["figures"]["prewarm"];
        (p["lost"].as_u64() == Some(held) && p["readinessPercent"] == 100).then_some(f)
    })
    .await;
    let p = &replaced["figures"]["prewarm"];
    assert_eq!(p["ready"], 6, "{replaced}");
    assert_eq!(p["workers"][&victim]["live"], false, "{replaced}");
    // The survivors hold the six machines themselves.
    let survivors: Vec<&Worker> = cluster
        .workers
        .iter()
        .filter(|w| w.code != victim)
        .collect();
    assert_eq!(idle_on_workers(&survivors, "exam-ready").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclaimed_machines_are_released_at_the_end_and_on_cancellation() {
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = cluster.api.clone();
    let workers: Vec<&Worker> = cluster.workers.iter().collect();
    // The discard call is the control plane's alone.
    let anonymous = reqwest::Client::new()
        .delete(format!(
            "{}/api/vdi/cluster/prewarm/exam-short",
            workers[0].url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // A short exam: prewarmed in 2 s, from 20 s to 25 s after booking.
    book(
        &api,
        "exam-short",
        4,
        3,
        Duration::from_secs(2),
        Duration::from_secs(20),
        Duration::from_secs(5),
    )
    .await;
    // One booked for later, cancelled once prewarmed.
    book(
        &api,
        "exam-cancelled",
        2,
        2,
        Duration::from_secs(2),
        Duration::from_secs(600),
        Duration::from_secs(600),
    )
    .await;
    for exam in ["exam-short", "exam-cancelled"] {
        eventually("readiness 100 %", || async {
            let f = figures(&api, exam).await;
            (f["figures"]["prewarm"]["readinessPercent"] == 100).then_some(())
        })
        .await;
    }
    assert_eq!(idle_on_workers(&workers, "exam-cancelled").await, 2);
    let (status, body) = api
        .admin(Method::DELETE, "/api/vdi/exams/exam-cancelled", None)
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the cancelled exam's machines released", || async {
        (idle_on_workers(&workers, "exam-cancelled").await == 0).then_some(())
    })
    .await;
    // The short exam keeps its machines until it ends, then loses them.
    let ends_at = parse_rfc3339(
        "endsAt",
        figures(&api, "exam-short").await["endsAt"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    eventually("the short exam's machines released", || async {
        (idle_on_workers(&workers, "exam-short").await == 0).then_some(())
    })
    .await;
    let now = now_ms();
    assert!(
        now >= ends_at.as_millis(),
        "released at {now}, before the end {ends_at:?}"
    );
    eventually("the figures show the release", || async {
        let f = figures(&api, "exam-short").await;
        (f["figures"]["prewarm"]["ready"] == 0).then_some(())
    })
    .await;
}
