//! A proctor, in Vietnamese, gives students more time on the exam's page:
//! the end times show each extended student's own end and the seats booked
//! without names; an extension that fits is granted, one that does not is
//! refused with how much would fit, and forced with its reason; axe clean,
//! and no console error besides the refusal.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_server::auth::Role;

use crate::common::{Cluster, CpOptions};
use crate::harness::{Browser, token};

fn at(from_now: Duration) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + from_now;
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(now.as_millis()).unwrap(),
    ))
}

const MIN: u64 = 60;

#[tokio::test]
async fn a_proctor_extends_a_student_on_the_exam_page() {
    let Some(mut b) = Browser::start("session-end", "vi-VN").await else {
        return;
    };
    // 4 slots, 3 bookable: `ly` holds all three, one of them booked for
    // +10 min; `hoa` opens ten minutes after ly's teardown with three.
    let cluster = Cluster::start(&[4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;
    let book = |body: Value| async move {
        let (status, r) = api.admin(Method::POST, "/api/vdi/exams", Some(body)).await;
        assert_eq!(status, 201, "{r}");
    };
    book(json!({
        "examId": "ly", "name": "Vật lý", "students": 3,
        "startsAt": at(Duration::from_secs(60 * MIN)), "endsAt": at(Duration::from_secs(120 * MIN)),
        "extraTime": [{"extraSec": 600, "students": 1}],
    }))
    .await;
    book(json!({
        "examId": "hoa", "name": "Hóa học", "students": 3,
        "startsAt": at(Duration::from_secs(150 * MIN)), "endsAt": at(Duration::from_secs(180 * MIN)),
    }))
    .await;

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&token("proctor-1", Role::Proctor)).await;
    b.goto(&format!("{url}/admin/#/exams/ly")).await;
    b.wait_for("#exam-ends-none").await;
    let heading = b
        .js("return document.getElementById('h-ends').textContent")
        .await;
    assert_eq!(heading, json!("Giờ kết thúc"), "in Vietnamese");
    b.wait_text("#exam-ends-unnamed", "the unnamed seat", |t| {
        t.contains("10 phút")
    })
    .await;

    // sv1 takes the booked seat: granted.
    b.fill("#ends-user", "sv1").await;
    b.fill("#ends-minutes", "10").await;
    b.fill("#ends-reason", "Hỗ trợ đặc biệt").await;
    b.click("#ends-submit").await;
    b.wait_text("#notice[data-kind='ok']", "the grant", |t| {
        t.contains("sv1")
    })
    .await;
    b.wait_for("#exam-ends tr[data-user='sv1']").await;
    b.check_accessibility("exam page with its end times").await;
    b.screenshot("ends-granted").await;

    // sv2 for 30 min would still hold a seat when hoa opens: refused.
    b.fill("#ends-user", "sv2").await;
    b.fill("#ends-minutes", "30").await;
    b.fill("#ends-reason", "Máy thi bị lỗi").await;
    b.click("#ends-submit").await;
    let refused = b.notice("error").await;
    assert!(refused.contains("Không đủ chỗ"), "{refused}");
    assert!(refused.contains("10 phút"), "what fits: {refused}");
    let (_, exam) = api.admin(Method::GET, "/api/vdi/exams/ly", None).await;
    assert_eq!(exam["extensions"].as_array().unwrap().len(), 1, "{exam}");
    b.screenshot("ends-refused").await;

    // Forced, it is granted, and the reason is on record.
    b.click("#ends-force").await;
    b.click("#ends-submit").await;
    b.wait_text("#notice[data-kind='ok']", "the forced grant", |t| {
        t.contains("sv2")
    })
    .await;
    b.wait_for("#exam-ends tr[data-user='sv2']").await;
    // The row's Extend fills the student in.
    b.click("button[data-key='extend-sv1']").await;
    let chosen = b
        .js("return document.getElementById('ends-user').value")
        .await;
    assert_eq!(chosen, json!("sv1"));
    let (_, audit) = api.admin(Method::GET, "/api/vdi/audit", None).await;
    let forced = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session-end" && e["detail"]["forced"] == true)
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(forced["actor"], "proctor-1", "{forced}");
    assert_eq!(forced["detail"]["reason"], "Máy thi bị lỗi", "{forced}");
    b.check_accessibility("exam page after a forced extension")
        .await;
    b.screenshot("ends-forced").await;
    let errors = b.console_errors().await;
    assert!(
        errors.iter().all(|e| e.contains("409")),
        "only the refusal: {errors:?}"
    );
    b.quit().await;
}
