//! Scheduled drains on the worker's page: an exam under way needs the
//! worker, so its next window of the length picked comes after the exam;
//! "Schedule drain" with a reason stores a drain at that window's start,
//! listed with Cancel (in English, then in Vietnamese), and Cancel takes
//! it back, audited.

use serde_json::json;

use crate::common::{Cluster, CpOptions, admin_token};
use crate::freeze::book_final;
use crate::harness::Browser;

#[tokio::test]
async fn a_drain_is_scheduled_for_the_next_window_and_cancelled() {
    let Some(mut b) = Browser::start("scheduled", "en-US").await else {
        return;
    };
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;
    book_final(api).await;

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    b.goto(&format!("{url}/admin/#/workers/w1")).await;
    b.wait_for("#worker-facts").await;
    b.wait_text("#worker-window", "the next 2-hour window", |t| {
        t.starts_with("Next 2-hour window")
    })
    .await;
    b.wait_for("#scheduled-none").await;
    b.js(
        "const s = document.getElementById('window-length'); s.value = '4'; \
          s.dispatchEvent(new Event('change')); return null;",
    )
    .await;
    b.wait_text("#worker-window", "the next 4-hour window", |t| {
        t.starts_with("Next 4-hour window")
    })
    .await;
    let start = b
        .js("return document.getElementById('worker-window').dataset.start;")
        .await;
    b.fill("#schedule-reason", "firmware update").await;
    b.click("#schedule-drain").await;
    b.notice("ok").await;
    b.wait_text("#scheduled-drains", "the scheduled drain", |t| {
        t.contains("firmware update") && t.contains("pending")
    })
    .await;
    let listed = api.get("/api/vdi/workers/w1/scheduled-drains").await;
    let drains = listed["drains"].as_array().unwrap();
    assert_eq!(drains.len(), 1, "{listed}");
    assert_eq!(drains[0]["at"], start, "at the window's start");
    assert_eq!(
        api.get("/api/vdi/scheduled-drains").await["drains"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    b.check_accessibility("worker with a scheduled drain").await;
    b.screenshot("scheduled-drain").await;

    // In Vietnamese, then cancelled.
    b.js(
        "const s = document.getElementById('lang'); s.value = 'vi'; \
          s.dispatchEvent(new Event('change')); return null;",
    )
    .await;
    b.wait_text(
        "#scheduled-drains",
        "the scheduled drain, in Vietnamese",
        |t| t.contains("đang chờ") && t.contains("Hủy hẹn"),
    )
    .await;
    b.check_accessibility("worker with a scheduled drain (vi)")
        .await;
    b.screenshot("scheduled-drain-vi").await;
    b.click("[data-action='cancel-scheduled']").await;
    b.notice("ok").await;
    b.wait_text(
        "#scheduled-none",
        "no drain scheduled, in Vietnamese",
        |t| t.contains("Chưa hẹn drain nào"),
    )
    .await;
    let listed = api.get("/api/vdi/workers/w1/scheduled-drains").await;
    assert_eq!(listed["drains"], json!([]), "{listed}");
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("schedule-drain"), "{audit}");
    assert!(audit.contains("cancel-scheduled-drain"), "{audit}");
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.screenshot("scheduled-drain-cancelled").await;
    b.quit().await;
}
