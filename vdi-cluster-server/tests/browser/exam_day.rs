//! An exam's page on the day: a booked exam whose prewarm is due shows its
//! readiness reach 100 %, a surge beyond the fleet fills its waiting room
//! (the page lists the students in order, the overview shows the queue),
//! and a released slot places the head of the queue.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;

use crate::common::{Cluster, CpOptions, admin_token, eventually};
use crate::harness::Browser;

fn in_secs(secs: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(secs);
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(now.as_millis()).unwrap(),
    ))
}

/// Opens the exam's page afresh (through the calendar, so the view mounts
/// again and reads the API) and waits for its figures.
async fn open_exam(b: &Browser, url: &str) {
    b.goto(&format!("{url}/admin/#/exams")).await;
    b.wait_for("#booking-form").await;
    b.goto(&format!("{url}/admin/#/exams/final")).await;
    b.wait_for("#exam-facts").await;
}

#[tokio::test]
async fn an_exam_page_shows_readiness_and_the_waiting_room() {
    let Some(mut b) = Browser::start("exam-day", "en-US").await else {
        return;
    };
    // Starts are paced: the prewarm holds its workers' start permits for
    // the machines' expected start (6 s before a start is measured), longer
    // than the harness's 5 s allocate timeout lets a student's start wait.
    let options = CpOptions {
        allocate_timeout_sec: 30,
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[2, 2], options).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;

    // Booked to start in ten minutes, its prewarm (two machines) due now.
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({"examId": "final", "name": "Final exam",
                        "startsAt": in_secs(600), "endsAt": in_secs(4_200), "students": 3,
                        "prewarm": {"count": 2, "leadSec": 900}})),
        )
        .await;
    assert_eq!(status, 201, "{booked}");

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;

    // Readiness on the exam's page, in total and per worker.
    eventually("readiness to reach 100 % on the page", || async {
        open_exam(&b, url).await;
        let shown = b
            .js("return document.querySelector('#exam-prewarm [data-readiness]')?.dataset.readiness ?? null")
            .await;
        (shown == json!("100")).then_some(())
    })
    .await;
    b.wait_for("#exam-prewarm-workers tr[data-worker]").await;
    b.check_accessibility("exam readiness").await;
    b.screenshot("exam-readiness").await;

    // A surge beyond the four slots: the last ones wait, in order. A
    // seated student's desktop may start after the answer (paced starts:
    // the prewarm still holds its workers' start permits).
    let mut queued = Vec::new();
    for i in 0..7 {
        let user = format!("s{i}");
        let (status, body) = api.try_allocate("final", &user).await.unwrap();
        match status.as_u16() {
            200 | 201 => {}
            202 if body["state"] == "starting" => api.until_started("final", &user).await,
            202 => {
                assert_eq!(body["position"], queued.len() + 1, "{body}");
                queued.push(user);
            }
            other => panic!("allocate {user}: {other} {body}"),
        }
    }
    assert!(!queued.is_empty(), "someone waits");
    open_exam(&b, url).await;
    b.wait_for("#exam-queue").await;
    let order = b
        .js("return [...document.querySelectorAll('#exam-queue tr[data-user]')].map((r) => r.dataset.user)")
        .await;
    assert_eq!(
        order,
        json!(queued),
        "the page lists the waiting room in order"
    );
    b.check_accessibility("waiting room").await;
    b.screenshot("waiting-room").await;

    // The overview shows the queue forming.
    b.click("a[data-view='overview']").await;
    b.wait_for("#queues tr[data-queue='final']").await;

    // A student submits: the head of the queue is placed, the page follows.
    api.release("final", "s0").await;
    let head = queued[0].clone();
    eventually("the head of the queue to be placed", || async {
        let (status, body) = api.session("final", &head).await;
        (status == 200 && body["state"] != "queued").then_some(())
    })
    .await;
    eventually("the page to drop the placed student", || async {
        open_exam(&b, url).await;
        let rows = b
            .js("return [...document.querySelectorAll('#exam-queue tr[data-user], #exam-queue-empty')].map((r) => r.dataset.user ?? 'empty')")
            .await;
        (rows.as_array().is_some_and(|r| !r.contains(&json!(head)) && !r.is_empty()))
            .then_some(())
    })
    .await;
    b.screenshot("waiting-room-after-release").await;
    b.quit().await;
}
