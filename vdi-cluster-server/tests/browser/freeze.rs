//! The change freeze on the worker's page: an exam under way needs both
//! workers, so the page shows no maintenance window until after it, a
//! drain is refused with the exams and the time it is safe from (in
//! Vietnamese, then in English), and "Force drain…" with a reason drains
//! the worker, audited. An agent upgrade's clearance is refused alike and
//! forced with a reason.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;

use crate::common::{Api, Cluster, CpOptions, admin_token, wait_worker};
use crate::harness::Browser;

pub(crate) fn in_secs(secs: u64) -> String {
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(secs);
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(at.as_millis()).unwrap(),
    ))
}

/// Books "final": 6 students in five minutes (its prewarm lead begun) for
/// an hour, which needs both 4-slot workers (7 slots bookable with 10 %
/// headroom).
pub(crate) async fn book_final(api: &Api) {
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(
                json!({"examId": "final", "name": "Final exam", "students": 6,
                        "startsAt": in_secs(300), "endsAt": in_secs(3_900)}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
}

#[tokio::test]
async fn a_drain_refused_by_the_freeze_shows_when_it_is_safe_and_is_forced_with_a_reason() {
    let Some(mut b) = Browser::start("freeze", "vi-VN").await else {
        return;
    };
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;
    // 7 slots bookable (10 % headroom); 6 students need both workers. It
    // starts in five minutes: its prewarm lead has begun.
    book_final(api).await;

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    b.goto(&format!("{url}/admin/#/workers/w1")).await;
    b.wait_for("#worker-facts").await;
    b.wait_text("#worker-window", "the next window, in Vietnamese", |t| {
        t.starts_with("Khung 2 giờ tiếp theo")
    })
    .await;
    b.click("#drain").await;
    b.wait_text("#worker-freeze", "the refusal, in Vietnamese", |t| {
        t.contains("khóa thay đổi") && t.contains("Final exam (final)")
    })
    .await;
    b.check_accessibility("worker refused by the freeze (vi)")
        .await;
    b.screenshot("freeze-refused-vi").await;
    wait_worker(api, "w1", "isDraining", json!(false)).await;

    // An agent upgrade asks the same clearance: refused, then forced with
    // a reason, which clears it (audited) and leaves the worker as it was.
    b.click("#upgrade").await;
    b.wait_for("#force-upgrade").await;
    b.wait_text(
        "#worker-freeze",
        "the upgrade's refusal, in Vietnamese",
        |t| t.contains("khóa thay đổi") && t.contains("Final exam (final)"),
    )
    .await;
    b.click("#force-upgrade").await;
    b.wait_for("#force-dialog").await;
    b.wait_text("#force-title", "the forced upgrade's dialog", |t| {
        t.contains("nâng cấp agent của w1")
    })
    .await;
    b.fill("#force-reason", "agent security fix").await;
    b.click("#force-confirm").await;
    b.wait_text(
        "#notice[data-kind='ok']:not([hidden])",
        "the upgrade cleared",
        |t| t.contains("Có thể nâng cấp agent của w1"),
    )
    .await;
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("agent-upgrade"), "{audit}");
    assert!(audit.contains("agent security fix"), "{audit}");
    wait_worker(api, "w1", "isDraining", json!(false)).await;

    // In English: the window starts when the exam's window ends.
    b.js(
        "const s = document.getElementById('lang'); s.value = 'en'; \
          s.dispatchEvent(new Event('change')); return null;",
    )
    .await;
    let window = b
        .wait_text("#worker-window", "the next window, in English", |t| {
            t.starts_with("Next 2-hour window")
        })
        .await;
    let exam_end = api.get("/api/vdi/exams/final").await["endsAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = b
        .js("return document.getElementById('worker-window').dataset.start;")
        .await;
    assert!(
        start.as_str().unwrap() > exam_end.as_str(),
        "{window}: not before the exam's end {exam_end}"
    );
    b.click("#drain").await;
    let refusal = b
        .wait_text("#worker-freeze", "the refusal, in English", |t| {
            t.contains("Refused by the change freeze") && t.contains("Safe from")
        })
        .await;
    assert!(refusal.contains("3 more student(s) short"), "{refusal}");
    b.check_accessibility("worker refused by the freeze").await;
    b.screenshot("freeze-refused").await;

    b.click("#force-drain").await;
    b.wait_for("#force-dialog").await;
    b.fill("#force-reason", "failing disk").await;
    b.click("#force-confirm").await;
    b.notice("ok").await;
    wait_worker(api, "w1", "isDraining", json!(true)).await;
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("freeze-override"), "{audit}");
    assert!(audit.contains("failing disk"), "{audit}");
    // The refused drains are answered 409, which the browser logs as a
    // failed resource load; nothing else is logged as an error.
    let errors: Vec<String> = b
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !(e.contains("Failed to load resource") && e.contains("409")))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
    b.screenshot("freeze-forced").await;
    b.quit().await;
}
